package sampler // import "github.com/trackhq/track/processor/sampler"

import (
	"go.opentelemetry.io/collector/component"

	"github.com/trackhq/track/processor/sampler/internal/cardinality"
	"github.com/trackhq/track/processor/sampler/internal/hashing"
	"github.com/trackhq/track/processor/sampler/internal/location"
	"github.com/trackhq/track/processor/sampler/internal/sampling"
	"github.com/trackhq/track/processor/sampler/internal/scrub"
	"github.com/trackhq/track/processor/sampler/internal/validate"
)

// Config is the configuration of the sampler processor. Every stage has an enabled switch; all are
// on by default except metric sampling and IP address redaction. Each stage's configuration
// validates its own fields (the Collector's confmap validation walks the struct and names the full
// key path, such as scrub::custom_patterns::0: regex: ...); Config adds no check of its own. A
// Config is not safe for concurrent mutation; the processor copies what it needs when it is
// created.
type Config struct {
	// Validation drops malformed metrics and log records and bounds attributes.
	Validation ValidationConfig `mapstructure:"validation"`
	// Scrub removes secret and PII attribute keys and redacts PII found in values and log bodies.
	Scrub ScrubConfig `mapstructure:"scrub"`
	// Hashing replaces identifier attributes (user ids) by a keyed hash.
	Hashing HashingConfig `mapstructure:"hashing"`
	// Location coarsens locations: it removes attributes finer than a region (city, postal code,
	// coordinates), so that country and region are what remains.
	Location LocationConfig `mapstructure:"location"`
	// Cardinality caps the number of distinct attribute sets per metric and window.
	Cardinality CardinalityConfig `mapstructure:"cardinality"`
	// Sampling samples log records and, optionally, metric points without biasing totals.
	Sampling SamplingConfig `mapstructure:"sampling"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// The stages' configurations, under the names this package has always given them.
type (
	// ValidationConfig configures the validation stage.
	ValidationConfig = validate.Config
	// ScrubConfig configures the scrubbing stage.
	ScrubConfig = scrub.Config
	// ScrubMode selects how attribute keys are filtered.
	ScrubMode = scrub.Mode
	// PatternsConfig switches the built-in value patterns.
	PatternsConfig = scrub.PatternsConfig
	// CustomPattern is one extra redaction regex.
	CustomPattern = scrub.CustomPattern
	// HashingConfig configures keyed hashing of identifiers.
	HashingConfig = hashing.Config
	// LocationConfig configures location coarsening.
	LocationConfig = location.Config
	// CardinalityConfig configures the cardinality cap.
	CardinalityConfig = cardinality.Config
	// SamplingConfig configures sampling.
	SamplingConfig = sampling.Config
	// LogSamplingConfig configures log record sampling.
	LogSamplingConfig = sampling.LogConfig
	// MetricSamplingConfig configures metric point sampling.
	MetricSamplingConfig = sampling.MetricConfig
	// SamplingRule sets the keep probability for one event or metric name.
	SamplingRule = sampling.Rule
	// SampleBy selects the value a log sampling decision is consistent on.
	SampleBy = sampling.By
)

const (
	// ScrubModeDeny removes the keys on the deny list and keeps every other key.
	ScrubModeDeny = scrub.ModeDeny
	// ScrubModeAllow keeps only the keys on the allow list (plus the hashed identifier keys).
	ScrubModeAllow = scrub.ModeAllow
	// SampleByAttribute decides on the value of an attribute, so all records of one user are kept
	// or dropped together.
	SampleByAttribute = sampling.ByAttribute
	// SampleByTraceID decides on the trace id, so all records of one trace are kept or dropped together.
	SampleByTraceID = sampling.ByTraceID
	// SampleByRandom decides independently for every record.
	SampleByRandom = sampling.ByRandom
)

var _ component.Config = (*Config)(nil)

func createDefaultConfig() component.Config {
	return &Config{
		Validation:  validate.Default(),
		Scrub:       scrub.Default(),
		Hashing:     hashing.Default(),
		Location:    location.Default(),
		Cardinality: cardinality.Default(),
		Sampling:    sampling.Default(),
	}
}
