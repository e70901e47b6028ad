package pgrollup

import (
	"errors"
	"fmt"
	"github.com/trackhq/track/exporter/pgrollup/internal/schema"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/trackhq/track/internal/conventions"
)

// Config is the configuration of the pgrollup exporter. It is read-only once the exporter is created.
type Config struct {
	// TimeoutConfig bounds one push, including the wait for the flush that commits it (key `timeout`).
	TimeoutConfig exporterhelper.TimeoutConfig `mapstructure:",squash"`
	// QueueConfig is the exporterhelper sending queue (key `sending_queue`). Its `batch` section must
	// stay unset: every pushed request carries its own idempotency key, which a batcher merging
	// requests would destroy. Use `storage` for a persistent queue.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	// BackOffConfig is the exporterhelper retry policy (key `retry_on_failure`).
	BackOffConfig configretry.BackOffConfig `mapstructure:"retry_on_failure"`

	// DSN is the Postgres connection string, for example ${env:TRACK_PG_DSN}. Required. A DSN that does
	// not parse fails the start; a server that cannot be reached or refuses the login does not.
	DSN configopaque.String `mapstructure:"dsn"`
	// Schema is the Postgres schema holding the tables, views and functions. Default "track".
	Schema string `mapstructure:"schema"`
	// FlushInterval is the longest a pushed request waits in memory, pre-aggregating with other pushes,
	// before the transaction that commits it starts. Default 1s.
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// Retention says how long rows are kept per resolution, and how often expired rows are removed.
	Retention RetentionConfig `mapstructure:"retention"`
	// KeepResourceAttributes lists the resource attributes that are part of a series' identity.
	// Default [service.name]; service.name fills the `service` column, the others join the point's
	// attributes. Every other resource attribute (instance ids, hosts) is dropped, so the copies of a
	// service add up.
	KeepResourceAttributes []string `mapstructure:"keep_resource_attributes"`
	// MigrateOnStart applies the embedded migrations at start, under an advisory lock. Default true.
	// When false, the exporter only checks that the schema is at the version it needs, and refuses
	// pushes (retryably, see ErrNotConnected) until it is. Either way start does not wait for
	// Postgres: it connects and migrates in the background when Postgres is not reachable yet.
	MigrateOnStart bool `mapstructure:"migrate_on_start"`
	// DedupWindow is how long the idempotency key of a committed request is kept. A request pushed
	// again within the window (a retry, a persistent-queue replay, an OTLP client re-sending) is
	// counted once. It must be longer than any replay: the track client's backlog (10 minutes by
	// default) and the longest collector outage a persistent queue should survive. Default 6h.
	DedupWindow time.Duration `mapstructure:"dedup_window"`
	// MaxConns caps the connections of the exporter's pool. Default 4.
	MaxConns int32 `mapstructure:"max_conns"`
	// Cumulative says how cumulative monotonic sums are counted (key `cumulative`).
	Cumulative CumulativeConfig `mapstructure:"cumulative"`
	// Completeness says what the collector records of its own liveness and of the sources it hears
	// from, from which the series function tells complete buckets from those whose counts may still
	// arrive (key `completeness`; see the README's "Completeness").
	Completeness CompletenessConfig `mapstructure:"completeness"`
	// Anomalies says how the anomaly baselines are kept (key `anomalies`; see the README's "Anomalies").
	Anomalies AnomaliesConfig `mapstructure:"anomalies"`
}

// AnomaliesConfig holds the settings of the anomaly baselines that track.anomalies() judges buckets against.
type AnomaliesConfig struct {
	// TimeZone is the IANA time zone of the baselines' seasonal slots (hour of the day, day of the week), so that
	// 09:00 local is compared with 09:00 local across DST changes. Default "UTC". Every collector of a schema
	// should set the same; Postgres must know the zone too.
	TimeZone string `mapstructure:"time_zone"`
	// RefreshInterval is how often the collector checks the baselines (they are recomputed once an hour has
	// completed) and judges the newly complete minutes, which anomalies() then reads instead of judging them
	// again (one collector per schema at a time). Default 10s.
	RefreshInterval time.Duration `mapstructure:"refresh_interval"`
}

func (a AnomaliesConfig) validate() []error {
	var errs []error
	if _, err := time.LoadLocation(a.TimeZone); err != nil || a.TimeZone == "" || a.TimeZone == "Local" {
		errs = append(errs, fmt.Errorf("anomalies::time_zone: %q is not an IANA time zone name such as UTC or Europe/Berlin", a.TimeZone))
	}
	if a.RefreshInterval < time.Second {
		errs = append(errs, fmt.Errorf("anomalies::refresh_interval: must be at least 1s, got %s", a.RefreshInterval))
	}
	return errs
}

// CompletenessConfig holds the settings of the liveness records (see the README's "Completeness").
type CompletenessConfig struct {
	// Lateness is the longest a sender takes to deliver a point after its timestamp (its export
	// interval plus the transport's slack), recorded with the collector's liveness: the counts up to
	// (last flush - lateness) have arrived. Default 15s: the track library's export interval (10s)
	// plus 5s for the sampler, the queue and flush_interval. At least 1s.
	Lateness time.Duration `mapstructure:"lateness"`
	// LivenessInterval is how often the collector records that it is alive when it has nothing to
	// flush (a flush records it too). Default 10s; at most half of stale_after.
	LivenessInterval time.Duration `mapstructure:"liveness_interval"`
	// StaleAfter is how long after its last record a collector counts as stopped: its span of
	// liveness ends there, it no longer holds the watermark back, and a time no live collector
	// covered is a gap. Default 1m.
	StaleAfter time.Duration `mapstructure:"stale_after"`
	// SourceResolution bounds the writes of the sources' last_seen: a source's row is written when
	// it was last written more than this long ago (so last_seen lags by at most this plus
	// liveness_interval). Default 30s; at least 1s.
	SourceResolution time.Duration `mapstructure:"source_resolution"`
}

func (c CompletenessConfig) validate() []error {
	var errs []error
	if c.Lateness < time.Second {
		errs = append(errs, fmt.Errorf("completeness::lateness: must be at least 1s, got %s", c.Lateness))
	}
	if c.LivenessInterval <= 0 {
		errs = append(errs, fmt.Errorf("completeness::liveness_interval: must be positive, got %s", c.LivenessInterval))
	} else if 2*c.LivenessInterval > c.StaleAfter {
		errs = append(errs, fmt.Errorf("completeness::liveness_interval: %s must be at most half of completeness::stale_after (%s), "+
			"or an idle collector would count as stopped", c.LivenessInterval, c.StaleAfter))
	}
	if c.StaleAfter <= 0 {
		errs = append(errs, fmt.Errorf("completeness::stale_after: must be positive, got %s", c.StaleAfter))
	}
	if c.SourceResolution < time.Second {
		errs = append(errs, fmt.Errorf("completeness::source_resolution: must be at least 1s, got %s", c.SourceResolution))
	}
	return errs
}

// Values of cumulative::initial_value.
const (
	InitialValueAuto = "auto"
	InitialValueKeep = "keep"
	InitialValueDrop = "drop"
)

// CumulativeConfig says how cumulative monotonic sums are counted. The exporter keeps one state
// row per stream in Postgres (see cumulative.go and the README's "Cumulative sums").
type CumulativeConfig struct {
	// InitialValue says what the first point of a stream without state counts (key
	// `cumulative::initial_value`, named after the cumulativetodelta processor's setting):
	// "auto" (default) counts its whole value when its start time lies at most
	// initial_value_window before the point's time (a process that just started, a cron job), and
	// otherwise nothing: it becomes the baseline of a stream that had been running before; "keep"
	// always counts it; "drop" never does.
	InitialValue string `mapstructure:"initial_value"`
	// InitialValueWindow is how recent a stream's start time must be, measured back from the time
	// of its first point, for "auto" to count that point whole. Default 1h.
	InitialValueWindow time.Duration `mapstructure:"initial_value_window"`
	// MaxStaleness is how long the state of a stream is kept after the exporter last wrote it (by
	// the collector's clock); retention then removes it, and the stream's next point is a first
	// sight again. It must be longer than any gap in a live stream's exports (a collector outage
	// the persistent queue bridges), or what the stream counted during the gap is lost to a
	// baseline. Default 24h.
	MaxStaleness time.Duration `mapstructure:"max_staleness"`
}

func (c CumulativeConfig) validate() []error {
	var errs []error
	switch c.InitialValue {
	case InitialValueAuto, InitialValueKeep, InitialValueDrop:
	default:
		errs = append(errs, fmt.Errorf("cumulative::initial_value: %q must be auto, keep or drop", c.InitialValue))
	}
	if c.InitialValueWindow < 0 {
		errs = append(errs, fmt.Errorf("cumulative::initial_value_window: must not be negative, got %s", c.InitialValueWindow))
	}
	if c.MaxStaleness <= 0 {
		errs = append(errs, fmt.Errorf("cumulative::max_staleness: must be positive, got %s", c.MaxStaleness))
	}
	return errs
}

// RetentionConfig says how long rollup rows are kept per resolution. Durations accept Go syntax
// ("336h") and the units d (24h), w (7d) and y (365d), for example "14d" or "3y".
type RetentionConfig struct {
	// Minute is how long per-minute rows are kept. Default 14d; at least 1m.
	Minute Period `mapstructure:"minute"`
	// Hour is how long per-hour rows are kept. Default 90d; at least 1h.
	Hour Period `mapstructure:"hour"`
	// Day is how long per-day rows are kept. Default 3y; at least 1d.
	Day Period `mapstructure:"day"`
	// Events is how long raw events (the events table, one partition per UTC day) are kept; a day's
	// partition is dropped once the whole day is older than this. Default 90d; at least 1d.
	Events Period `mapstructure:"events"`
	// Interval is how often expired rows and keys are removed. Default 10m.
	Interval time.Duration `mapstructure:"interval"`
}

// Period is a duration that also accepts days, weeks and years ("14d", "2w", "3y"; a year is 365
// days) in configuration files.
type Period time.Duration

// Duration returns p as a time.Duration.
func (p Period) Duration() time.Duration { return time.Duration(p) }

var periodRe = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)([dwy])$`)

// UnmarshalText parses a Go duration or a number followed by d, w or y.
func (p *Period) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if m := periodRe.FindStringSubmatch(s); m != nil {
		n, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return fmt.Errorf("invalid period %q: %w", s, err)
		}
		unit := map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "y": 365 * 24 * time.Hour}[m[2]]
		*p = Period(time.Duration(n * float64(unit)))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid period %q: use a Go duration or a number of d, w or y", s)
	}
	*p = Period(d)
	return nil
}

// MarshalText formats p in whole years, weeks or days when it is one, else as a Go duration.
func (p Period) MarshalText() ([]byte, error) {
	d := time.Duration(p)
	const day = 24 * time.Hour
	switch {
	case d > 0 && d%(365*day) == 0:
		return []byte(strconv.FormatInt(int64(d/(365*day)), 10) + "y"), nil
	case d > 0 && d%day == 0:
		return []byte(strconv.FormatInt(int64(d/day), 10) + "d"), nil
	}
	return []byte(d.String()), nil
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration and names the offending key in each error.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(string(c.DSN)) == "" {
		errs = append(errs, errors.New("dsn: must be set, for example to ${env:TRACK_PG_DSN}"))
	}
	if !conventions.ValidIdentifier(c.Schema) {
		errs = append(errs, fmt.Errorf("schema: %q must be a lowercase SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)", c.Schema))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("flush_interval: must be positive, got %s", c.FlushInterval))
	}
	if c.DedupWindow <= 0 {
		errs = append(errs, fmt.Errorf("dedup_window: must be positive, got %s", c.DedupWindow))
	}
	for i, a := range c.KeepResourceAttributes {
		if strings.TrimSpace(a) == "" {
			errs = append(errs, fmt.Errorf("keep_resource_attributes[%d]: must not be empty", i))
		}
	}
	if c.MaxConns < 1 {
		errs = append(errs, fmt.Errorf("max_conns: must be at least 1, got %d", c.MaxConns))
	}
	errs = append(errs, c.Retention.validate()...)
	errs = append(errs, c.Cumulative.validate()...)
	errs = append(errs, c.Completeness.validate()...)
	errs = append(errs, c.Anomalies.validate()...)
	if c.QueueConfig.HasValue() && c.QueueConfig.Get().Batch.HasValue() {
		errs = append(errs, errors.New("sending_queue::batch: must not be set: pgrollup de-duplicates each pushed request "+
			"by its own key and groups concurrent pushes into one transaction itself; a batcher merging requests would make "+
			"a replayed merge count twice (raise sending_queue::num_consumers for larger transactions instead)"))
	}
	return errors.Join(errs...)
}

// validate checks the retention of each resolution (at least its width) and of the events (at
// least one day), and the interval; each error names its YAML key. (Not an exported Validate: the
// Collector's validation would prefix the joined errors once with "retention: ", losing the key
// of every error after the first.)
func (r RetentionConfig) validate() []error {
	var errs []error
	for _, res := range resolutions {
		switch got := r.of(res); {
		case got <= 0:
			errs = append(errs, fmt.Errorf("retention::%s: must be positive, got %s", res.Name, got))
		case got < res.Width:
			errs = append(errs, fmt.Errorf("retention::%s: %s is shorter than its resolution (%s)", res.Name, got, res.Width))
		}
	}
	switch ev := r.Events.Duration(); {
	case ev <= 0:
		errs = append(errs, fmt.Errorf("retention::events: must be positive, got %s", ev))
	case ev < day:
		errs = append(errs, fmt.Errorf("retention::events: %s is shorter than one day (events are kept in daily partitions)", ev))
	}
	if r.Interval <= 0 {
		errs = append(errs, fmt.Errorf("retention::interval: must be positive, got %s", r.Interval))
	}
	return errs
}

// periods returns the retention of each resolution, indexed like schema.Resolutions: the one
// place the configuration's fields meet the list (TestRetentionKeys checks that each field's YAML
// key is its resolution's name).
func (r *RetentionConfig) periods() [len(resolutions)]*Period {
	return [...]*Period{&r.Minute, &r.Hour, &r.Day}
}

// of returns the retention of res.
func (r RetentionConfig) of(res schema.Resolution) time.Duration {
	return r.periods()[res.Index].Duration()
}

// longest returns the longest retention of the resolutions.
func (r RetentionConfig) longest() time.Duration {
	var d time.Duration
	for _, res := range resolutions {
		d = max(d, r.of(res))
	}
	return d
}
