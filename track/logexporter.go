package track

import (
	"context"
	"time"

	sdklog "go.opentelemetry.io/otel/sdk/log"
)

const (
	// eventExportInterval is how long events wait in the batch processor.
	eventExportInterval = time.Second
	// eventQueueSize bounds the events waiting to be exported; beyond it
	// the batch processor drops them, and Shutdown counts them as dropped.
	eventQueueSize = 8192
)

// logExporter puts a backlog in front of the OTLP log exporter.
type logExporter struct {
	next    sdklog.Exporter
	backlog *backlog[[]sdklog.Record]
}

var _ sdklog.Exporter = (*logExporter)(nil)

func newLogExporter(next sdklog.Exporter, limit int, stats *exportStats, report func(error)) *logExporter {
	return &logExporter{next: next, backlog: &backlog[[]sdklog.Record]{
		send: next.Export, limit: limit, what: "events", flow: &stats.events, failures: &stats.failures, report: report,
	}}
}

// Export queues copies of records (the batch processor reuses the slice) and
// sends the backlog. Failures go to the error handler, not to the SDK.
func (e *logExporter) Export(ctx context.Context, records []sdklog.Record) error {
	held := make([]sdklog.Record, len(records))
	for i := range records {
		held[i] = records[i].Clone()
	}
	e.backlog.push(ctx, held, len(held))
	return nil
}

func (e *logExporter) ForceFlush(ctx context.Context) error {
	if err := e.backlog.flush(ctx); err != nil {
		return err
	}
	return e.next.ForceFlush(ctx)
}

func (e *logExporter) Shutdown(ctx context.Context) error {
	return shutdownAfter(ctx, e.backlog, e.next.Shutdown)
}
