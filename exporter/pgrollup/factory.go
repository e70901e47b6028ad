package pgrollup

import (
	"context"
	"github.com/trackhq/track/internal/conventions"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/trackhq/track/exporter/pgrollup/internal/metadata"
)

// NewFactory returns the factory of the pgrollup exporter. It is safe for concurrent use.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithMetrics(createMetrics, metadata.MetricsStability),
		exporter.WithLogs(createLogs, metadata.LogsStability),
	)
}

const day = 24 * time.Hour

func createDefaultConfig() component.Config {
	queue := exporterhelper.NewDefaultQueueConfig()
	// Never merge pushed requests: each one is de-duplicated by its own key (see Config.Validate).
	queue.Batch = configoptional.None[exporterhelper.BatchConfig]()
	timeout := exporterhelper.NewDefaultTimeoutConfig()
	// A push waits for the flush that commits it: up to flush_interval plus one transaction.
	timeout.Timeout = 30 * time.Second
	retention := RetentionConfig{Events: Period(90 * day), Interval: 10 * time.Minute}
	for _, r := range resolutions {
		*retention.periods()[r.Index] = Period(r.DefaultRetention)
	}
	return &Config{
		TimeoutConfig:          timeout,
		QueueConfig:            configoptional.Some(queue),
		BackOffConfig:          configretry.NewDefaultBackOffConfig(),
		Schema:                 "track",
		FlushInterval:          time.Second,
		KeepResourceAttributes: []string{conventions.ServiceName},
		MigrateOnStart:         true,
		DedupWindow:            6 * time.Hour,
		MaxConns:               4,
		Cumulative: CumulativeConfig{
			InitialValue:       InitialValueAuto,
			InitialValueWindow: time.Hour,
			MaxStaleness:       24 * time.Hour,
		},
		Retention: retention,
		Completeness: CompletenessConfig{
			Lateness:         15 * time.Second,
			LivenessInterval: 10 * time.Second,
			StaleAfter:       time.Minute,
			SourceResolution: 30 * time.Second,
		},
		Anomalies: AnomaliesConfig{TimeZone: "UTC", RefreshInterval: 10 * time.Second},
	}
}

func createMetrics(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
	e, err := newExporter(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewMetrics(ctx, set, cfg, e.pushMetrics, e.helperOptions()...)
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	e, err := newExporter(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, e.pushLogs, e.helperOptions()...)
}

// helperOptions are the exporterhelper options of both signals: the same queue, retry and timeout.
func (e *rollupExporter) helperOptions() []exporterhelper.Option {
	return []exporterhelper.Option{
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithTimeout(e.cfg.TimeoutConfig),
		exporterhelper.WithRetry(e.cfg.BackOffConfig),
		exporterhelper.WithQueue(e.cfg.QueueConfig),
	}
}
