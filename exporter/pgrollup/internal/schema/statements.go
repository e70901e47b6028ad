package schema

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"
)

//go:embed sql/*.sql
var sqlFiles embed.FS

var templates = template.Must(template.New("").Option("missingkey=error").ParseFS(sqlFiles, "sql/*.sql"))

// DeleteBatch is how many rows one retention DELETE removes. Small batches keep each transaction
// short: writers never wait long on the rows being deleted (they are old rows nobody writes), and
// no long lock is taken.
const DeleteBatch = 5000

// Statements holds the SQL of the write path, retention and migrations for one schema, rendered
// from the embedded templates in sql/. It is safe for concurrent use (it is only read).
type Statements struct {
	// CreateStage creates the connection's staging table; CopyStage copies binary rows into it
	// (see AppendStage).
	CreateStage, CopyStage string
	// InsertKeys records request keys ($1 uuid[], $2 created_at) and returns those that were new.
	InsertKeys string
	// InsertSeries adds series ($1 keys, $2 metrics, $3 services, $4 attributes as JSON);
	// SelectSeries reads the ids of keys; SelectMetric the metrics of ids.
	InsertSeries, SelectSeries, SelectMetric string
	// Upsert adds the staged rows of each resolution to its table; UpsertTotals adds ($1 metrics,
	// $2 times, $3 values) to its totals. Indexed like Resolutions.
	Upsert, UpsertTotals [len(Resolutions)]string
	// The cumulative streams' state.
	AdvanceStreams, UpdateStreams, InsertStreams, ExpireStreams string
	// ExpireRollup and ExpireTotals delete one batch of each resolution's rows at or before $1;
	// ExpireKeys one batch of request keys created at or before $1.
	ExpireRollup, ExpireTotals [len(Resolutions)]string
	ExpireKeys                 string
	// ExpireSpans and ExpireSources delete one batch of the collectors' spans that ended, and of
	// the sources last seen, at or before $1.
	ExpireSpans, ExpireSources string
	// RecordRetention stores a resolution's retention ($1 name, $2 interval).
	RecordRetention string
	// EnsurePartitions creates the events partitions of the days $1 to $2; DropPartitions drops
	// those wholly before $1 and returns their days.
	EnsurePartitions, DropPartitions string
	// RecordLiveness extends or starts the collector's span ($1 collector, $2 lateness, $3 gap);
	// UpsertSources records sources seen ($1 services, $2 instances, $3 times).
	RecordLiveness, UpsertSources string
	// AnomalyTimeZone records anomalies::time_zone ($1); RefreshAnomalies recomputes the anomaly
	// baselines and returns how many metrics have one; JudgeAnomalies judges the newly complete
	// minutes and returns how many anomalous ones it kept.
	AnomalyTimeZone, RefreshAnomalies, JudgeAnomalies string
	// Lock, TryLock and Unlock take and release the session advisory lock named $1.
	Lock, TryLock, Unlock string
	// MigrationsTable creates the schema and its schema_migrations table; RecordMigration records
	// ($1 version, $2 name); Applied lists the applied migrations.
	MigrationsTable, RecordMigration, Applied string
}

// New renders the statements for schema (unquoted; it is quoted here). It panics if a template
// does not render, which the package's tests rule out.
func New(schema string) Statements {
	q := Quote(schema)
	r := func(name string, extra map[string]any) string { return render(name, q, extra) }
	s := Statements{
		CreateStage:      r("create_stage", nil),
		CopyStage:        r("copy_stage", nil),
		InsertKeys:       r("insert_keys", nil),
		InsertSeries:     r("insert_series", nil),
		SelectSeries:     r("select_series", nil),
		SelectMetric:     r("select_metric", nil),
		AdvanceStreams:   r("stream_advance", nil),
		UpdateStreams:    r("stream_update", nil),
		InsertStreams:    r("stream_insert", nil),
		ExpireStreams:    r("stream_expire", nil),
		ExpireKeys:       r("expire", map[string]any{"Table": "item_keys", "Column": "created_at"}),
		ExpireSpans:      r("expire", map[string]any{"Table": "collector_spans", "Column": "until"}),
		ExpireSources:    r("expire", map[string]any{"Table": "source_seen", "Column": "last_seen"}),
		RecordRetention:  r("record_retention", nil),
		EnsurePartitions: r("ensure_partitions", nil),
		DropPartitions:   r("drop_partitions", nil),
		RecordLiveness:   r("record_liveness", nil),
		UpsertSources:    r("upsert_sources", nil),
		AnomalyTimeZone:  r("anomaly_time_zone", nil),
		RefreshAnomalies: r("refresh_anomalies", nil),
		JudgeAnomalies:   r("judge_anomalies", nil),
		Lock:             r("lock", nil),
		TryLock:          r("try_lock", nil),
		Unlock:           r("unlock", nil),
		MigrationsTable:  r("migrations_table", nil),
		RecordMigration:  r("record_migration", nil),
		Applied:          r("applied", nil),
	}
	for i, res := range Resolutions {
		s.Upsert[i] = r("upsert_rollup", map[string]any{"Res": res})
		s.UpsertTotals[i] = r("upsert_totals", map[string]any{"Res": res})
		s.ExpireRollup[i] = r("expire", map[string]any{"Table": res.Table, "Column": "time"})
		s.ExpireTotals[i] = r("expire", map[string]any{"Table": res.Totals, "Column": "time"})
	}
	return s
}

// Grants returns the statements that let the role writer run the exporter with
// migrate_on_start: false, and the role analyst read the views, the series and funnel functions
// and the events, but no table. Schema and roles are unquoted (they are quoted here).
func Grants(schema, writer, analyst string) []string {
	text := render("grants", Quote(schema), map[string]any{
		"Writer": Quote(writer), "Analyst": Quote(analyst), "Resolutions": Resolutions,
	})
	return strings.Split(text, "\n")
}

// render executes the template of sql/name.sql with the schema (quoted), DeleteBatch and extra,
// and returns it without its comment lines and surrounding blank space.
func render(name, quotedSchema string, extra map[string]any) string {
	data := map[string]any{"Schema": quotedSchema, "DeleteBatch": DeleteBatch}
	for k, v := range extra {
		data[k] = v
	}
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name+".sql", data); err != nil {
		panic(fmt.Sprintf("schema: rendering %s.sql: %v", name, err))
	}
	var out []string
	for line := range strings.SplitSeq(b.String(), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") && strings.TrimSpace(line) != "" {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
