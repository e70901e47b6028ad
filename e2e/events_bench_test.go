package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	logs "go.opentelemetry.io/proto/otlp/logs/v1"
	res "go.opentelemetry.io/proto/otlp/resource/v1"
)

const (
	eventsPerReq     = 500 // log records per request, about one batch of the logs SDK
	eventNames       = 5   // event names per worker
	eventUsers       = 2000
	eventLoadPrefix  = "bench-event-"
	eventRollupNames = "event." + eventLoadPrefix
)

// eventRequest is one worker's request, shaped like one export of track's logs pipeline: 500
// events over eventNames names, each with a page, a user, a country and region, and a click target.
func eventRequest(worker int) (*collogs.ExportLogsServiceRequest, []*logs.LogRecord) {
	str := func(k, v string) *common.KeyValue {
		return &common.KeyValue{Key: k, Value: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: v}}}
	}
	records := make([]*logs.LogRecord, eventsPerReq)
	for i := range records {
		name := fmt.Sprintf("%s%d", eventLoadPrefix, worker*eventNames+i%eventNames)
		records[i] = &logs.LogRecord{
			EventName:      name,
			SeverityNumber: logs.SeverityNumber_SEVERITY_NUMBER_INFO,
			SeverityText:   "INFO",
			Attributes: []*common.KeyValue{
				str("url.path", "/bench/"+strconv.Itoa(i%20)),
				str("user.id", fmt.Sprintf("bench-user-%d-%d", worker, i%eventUsers)),
				str("geo.country.iso_code", "DE"),
				str("geo.region.iso_code", "BE"),
				str("click.target", "button-"+strconv.Itoa(i%7)),
			},
		}
	}
	return &collogs.ExportLogsServiceRequest{ResourceLogs: []*logs.ResourceLogs{{
		Resource: &res.Resource{Attributes: []*common.KeyValue{str("service.name", "bench-events"),
			str("service.instance.id", fmt.Sprintf("worker-%d", worker))}},
		ScopeLogs: []*logs.ScopeLogs{{Scope: &common.InstrumentationScope{Name: "bench"}, LogRecords: records}},
	}}}, records
}

// encodedEventRequest is eventRequest(worker) encoded once, with a slot for each record's time
// and observed time (both the send time + its index).
func encodedEventRequest(t testing.TB, worker int) *encodedRequest {
	req, records := eventRequest(worker)
	var offsets []int64
	for i, r := range records {
		r.TimeUnixNano = stampSentinel(len(offsets))
		r.ObservedTimeUnixNano = stampSentinel(len(offsets) + 1)
		offsets = append(offsets, int64(i), int64(i))
	}
	// LogRecord: time_unix_nano is field 1, observed_time_unix_nano field 11, both fixed64.
	return encodeWithStamps(t, req, offsets, 1<<3|1, 11<<3|1)
}

// sendEventLoad sends event requests from loadWorkers clients for d, each with fresh timestamps,
// retrying a refused request as track would. It returns the events the collector acknowledged.
func sendEventLoad(b *testing.B, endpoint string, d time.Duration) int64 {
	return sendEncoded(b, endpoint, "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
		eventsPerReq, d, func(w int) *encodedRequest { return encodedEventRequest(b, w) })
}

// BenchmarkEventsEndToEndPostgres measures the events per second the built collector, on
// examples/collector.yaml (sampling off: every event is counted into the rollups and stored raw
// in track.events), sustains into Postgres: from the first request until the event.* rollups and
// track.events both hold every acknowledged event. It also reports the collector's peak RSS.
func BenchmarkEventsEndToEndPostgres(b *testing.B) {
	sc := sharedDB(b)
	c := newCollector(b, "bench-events-pg", collectorOptions{dsn: sc.dsn, schema: sc.schema})
	c.start()
	profiled := profileCollector(b, c)
	start := time.Now()
	acked := sendEventLoad(b, c.GRPC, benchDuration())
	sentFor := time.Since(start)
	anon, file := rssParts(c.pid())
	b.Logf("resident when the load stopped: %.0f MiB anonymous, %.0f MiB file-backed (the queue file)", anon, file)
	<-profiled
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	awaitSum(ctx, b, sc, eventRollupNames, acked)
	stored := time.Since(start)
	rss := peakRSS(c.pid())
	conn, err := pgx.Connect(ctx, sc.dsn)
	require.NoError(b, err)
	defer conn.Close(context.Background())
	var rows int64
	require.NoError(b, conn.QueryRow(ctx, "SELECT count(*) FROM "+sc.schema+".events WHERE starts_with(name, $1)", eventLoadPrefix).Scan(&rows))
	require.Equal(b, acked, rows, "rows in %s.events", sc.schema)
	b.ReportMetric(float64(acked)/stored.Seconds(), "events/s")
	b.ReportMetric(float64(acked)/sentFor.Seconds(), "acked-events/s")
	b.ReportMetric(rss, "peak-RSS-MiB")
	b.ReportMetric(0, "ns/op")
	b.Logf("postgres: %d events acknowledged in %s, all counted and stored after %s; peak RSS %.0f MiB", acked, sentFor, stored, rss)
}

// BenchmarkEventsEndToEndDebug is the same event load into the same logs pipeline with the debug
// exporter (verbosity basic) instead of pgrollup: the pipeline's own ceiling on this machine.
func BenchmarkEventsEndToEndDebug(b *testing.B) {
	benchDebug(b, "logs", "events", sendEventLoad)
}
