package main

import (
	"regexp"
	"slices"
	"strings"
	"time"
)

// readmeSection is the heading of the README section whose SQL the demo runs: the analysts'
// queries, up to the next heading of the same level.
const readmeSection = "## Queries for analysts"

// readmeQuery is one SQL statement of the README.
type readmeQuery struct {
	// title is the statement's first comment line, or its first line.
	title string
	sql   string
}

// readmeQueries returns the statements of the ```sql blocks in the README's analysts' section, in
// order. Statements end with a semicolon at the end of a line (or the block's end).
func readmeQueries(markdown string) []readmeQuery {
	_, section, ok := strings.Cut(markdown, "\n"+readmeSection+"\n")
	if !ok {
		return nil
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var out []readmeQuery
	var block []string
	in := false
	flush := func() {
		sql := strings.TrimSpace(strings.Join(block, "\n"))
		block = block[:0]
		if strings.Trim(sql, "; \n") == "" || onlyComments(sql) {
			return
		}
		out = append(out, readmeQuery{title: titleOf(sql), sql: strings.TrimSuffix(sql, ";")})
	}
	for _, line := range strings.Split(section, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !in && trimmed == "```sql":
			in = true
		case in && trimmed == "```":
			flush()
			in = false
		case in:
			block = append(block, line)
			if strings.HasSuffix(stripComment(trimmed), ";") {
				flush()
			}
		}
	}
	return out
}

// stripComment is line without a trailing -- comment (the README's SQL has no "--" in strings).
func stripComment(line string) string {
	if i := strings.Index(line, "--"); i >= 0 {
		line = line[:i]
	}
	return strings.TrimSpace(line)
}

func onlyComments(sql string) bool {
	for _, line := range strings.Split(sql, "\n") {
		if stripComment(line) != "" {
			return false
		}
	}
	return true
}

func titleOf(sql string) string {
	first := strings.TrimSpace(strings.SplitN(sql, "\n", 2)[0])
	if t, ok := strings.CutPrefix(first, "--"); ok {
		return strings.TrimSpace(t)
	}
	return first
}

// grafanaFilter is Grafana's $__timeFilter(column) macro.
var grafanaFilter = regexp.MustCompile(`\$__timeFilter\(([^)]+)\)`)

// expandGrafana replaces the Postgres data source's time macros as Grafana does for the range
// [from, to): $__timeFrom() and $__timeTo() become quoted RFC 3339 times, and $__timeFilter(c)
// becomes "c BETWEEN from AND to".
func expandGrafana(sql string, from, to time.Time) string {
	f := "'" + from.UTC().Format(time.RFC3339) + "'"
	t := "'" + to.UTC().Format(time.RFC3339) + "'"
	sql = grafanaFilter.ReplaceAllString(sql, "$1 BETWEEN "+f+" AND "+t)
	return strings.NewReplacer("$__timeFrom()", f, "$__timeTo()", t).Replace(sql)
}

// The places where a README query names a metric or an event.
var (
	metricRefs = []*regexp.Regexp{
		regexp.MustCompile(`series\(\s*'([^']*)'`),
		regexp.MustCompile(`\bmetric\s*=\s*'([^']*)'`),
		// anomalies(since, until, step, 'metric'): a literal after a comma, right before the ")" that
		// closes the call (its arguments hold strings and calls such as now(), not deeper parentheses).
		regexp.MustCompile(`anomalies\((?:[^()']|'[^']*'|\([^()]*\))*?,\s*'([^']*)'\s*\)`),
	}
	eventRefs = []*regexp.Regexp{
		regexp.MustCompile(`\bname\s*=\s*'([^']*)'`),
	}
	funnelSteps = regexp.MustCompile(`funnel\(\s*ARRAY\[([^\]]*)\]`)
	quoted      = regexp.MustCompile(`'([^']*)'`)
)

// names returns the metric and event names sql refers to, sorted and without repeats.
func names(sql string) (metrics, events []string) {
	for _, re := range metricRefs {
		for _, m := range re.FindAllStringSubmatch(sql, -1) {
			metrics = append(metrics, m[1])
		}
	}
	for _, re := range eventRefs {
		for _, m := range re.FindAllStringSubmatch(sql, -1) {
			events = append(events, m[1])
		}
	}
	for _, m := range funnelSteps.FindAllStringSubmatch(sql, -1) {
		for _, q := range quoted.FindAllStringSubmatch(m[1], -1) {
			events = append(events, q[1])
		}
	}
	slices.Sort(metrics)
	slices.Sort(events)
	return slices.Compact(metrics), slices.Compact(events)
}
