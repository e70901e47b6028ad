package main

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestTableLayout(t *testing.T) {
	cases := []struct {
		name string
		t    table
		rows string
	}{
		{"numbers right, text left", table{
			headers: []string{"hour", "fraudulent_cards", "reason"},
			numeric: []bool{false, true, false},
			rows:    [][]string{{"2026-11-30 01:00:00+00", "7", "card-testing"}, {"2026-11-30 02:00:00+00", "12345", "stolen"}},
		}, "(2 rows)"},
		{"wide text and an empty cell", table{
			headers: []string{"message", "errors"},
			numeric: []bool{false, true},
			rows:    [][]string{{"charging card [REDACTED] for user-000012@… — déclinée", ""}},
		}, "(1 row)"},
		{"no rows", table{headers: []string{"step", "users"}, numeric: []bool{true, true}}, "(0 rows)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			c.t.print(&b)
			lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
			require.Len(t, lines, len(c.t.rows)+3, "header, rule, rows, count")
			assert.Equal(t, c.rows, lines[len(lines)-1])
			rule := lines[1]
			assert.NotContains(t, strings.Trim(rule, "-+"), " ", "the rule is dashes and crosses")
			// Every column separator of the header and the rows sits above a cross of the rule.
			var crosses []int
			for i, r := range []rune(rule) {
				if r == '+' {
					crosses = append(crosses, i)
				}
			}
			assert.Len(t, crosses, len(c.t.headers)-1)
			for _, line := range append([]string{lines[0]}, lines[2:len(lines)-1]...) {
				runes := []rune(line)
				for _, x := range crosses {
					require.Greater(t, len(runes), x, "line %q", line)
					assert.Equal(t, '|', runes[x], "line %q", line)
				}
				assert.LessOrEqual(t, utf8.RuneCountInString(line), utf8.RuneCountInString(rule))
			}
			for i, row := range c.t.rows {
				cells := strings.Split(lines[i+2], " | ")
				for j, v := range row {
					if v == "" || j == len(row)-1 {
						continue
					}
					if c.t.numeric[j] {
						assert.True(t, strings.HasSuffix(cells[j], v), "%q is right-aligned", v)
					} else {
						assert.True(t, strings.HasPrefix(strings.TrimPrefix(cells[j], " "), v), "%q is left-aligned", v)
					}
				}
			}
		})
	}
}
