package sampling // import "github.com/trackhq/track/processor/sampler/internal/sampling"

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/trackhq/track/internal/conventions"
	"github.com/trackhq/track/processor/sampler/internal/validate"
)

// Config configures sampling.
type Config struct {
	// Logs configures log record sampling.
	Logs LogConfig `mapstructure:"logs"`
	// Metrics configures metric point sampling.
	Metrics MetricConfig `mapstructure:"metrics"`
}

// By selects the value a log sampling decision is consistent on.
type By string

const (
	// ByAttribute decides on the value of an attribute (LogConfig.Attribute), so all records of one
	// user are kept or dropped together.
	ByAttribute By = "attribute"
	// ByTraceID decides on the trace id, so all records of one trace are kept or dropped together.
	ByTraceID By = "trace_id"
	// ByRandom decides independently for every record.
	ByRandom By = "random"
)

// LogConfig configures log record sampling.
type LogConfig struct {
	// Enabled turns log sampling on (default true). Kept records get sampling.adjusted_count.
	Enabled bool `mapstructure:"enabled"`
	// Probability is the keep probability for event names no rule matches, in (0,1] (default 1).
	Probability float64 `mapstructure:"probability"`
	// By is "attribute" (default), "trace_id" or "random".
	By By `mapstructure:"by"`
	// Attribute is the record attribute used when By is "attribute" (default user.id). Records
	// without it fall back to the trace id, then to random.
	Attribute string `mapstructure:"attribute"`
	// Rules set the probability per event name; the first matching rule wins.
	Rules []Rule `mapstructure:"rules"`
}

// MetricConfig configures metric point sampling.
type MetricConfig struct {
	// Enabled turns metric sampling on (default false). Only delta sums and delta histograms are
	// sampled; kept values are scaled by 1/p.
	Enabled bool `mapstructure:"enabled"`
	// Probability is the keep probability for metric names no rule matches, in (0,1] (default 1).
	Probability float64 `mapstructure:"probability"`
	// Rules set the probability per metric name; the first matching rule wins.
	Rules []Rule `mapstructure:"rules"`
}

// Rule sets the keep probability for one event or metric name.
type Rule struct {
	// Name is an exact event or metric name, or a prefix ending in "*".
	Name string `mapstructure:"name"`
	// Probability is the keep probability, in (0,1].
	Probability float64 `mapstructure:"probability"`
}

// Default returns the default sampling configuration: log sampling on at p = 1 by user.id, metric
// sampling off.
func Default() Config {
	return Config{
		Logs: LogConfig{
			Enabled:     true,
			Probability: 1,
			By:          ByAttribute,
			Attribute:   conventions.UserID,
		},
		Metrics: MetricConfig{Probability: 1},
	}
}

// Validate checks the fields of cfg, rules included, while log sampling is enabled and names each
// offending field; the Collector's confmap validation puts the path of cfg in front.
func (cfg *LogConfig) Validate() error {
	if !cfg.Enabled {
		return nil
	}
	errs := appendProbErr(nil, "probability", cfg.Probability)
	switch cfg.By {
	case ByAttribute:
		if cfg.Attribute == "" {
			errs = append(errs, errors.New("attribute: must be set when by is attribute"))
		}
	case ByTraceID, ByRandom:
	default:
		errs = append(errs, fmt.Errorf("by: %q is not one of attribute, trace_id, random", cfg.By))
	}
	return validate.JoinFields(appendRuleErrs(errs, cfg.Rules))
}

// Validate checks the fields of cfg, rules included, while metric sampling is enabled and names
// each offending field; the Collector's confmap validation puts the path of cfg in front.
func (cfg *MetricConfig) Validate() error {
	if !cfg.Enabled {
		return nil
	}
	errs := appendProbErr(nil, "probability", cfg.Probability)
	return validate.JoinFields(appendRuleErrs(errs, cfg.Rules))
}

func appendProbErr(errs []error, key string, p float64) []error {
	if math.IsNaN(p) || p <= 0 || p > 1 {
		return append(errs, fmt.Errorf("%s: %v is outside (0,1]", key, p))
	}
	return errs
}

func appendRuleErrs(errs []error, rules []Rule) []error {
	for i, r := range rules {
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("rules::%d::name: must be set", i))
		} else if strings.Contains(strings.TrimSuffix(r.Name, "*"), "*") {
			errs = append(errs, fmt.Errorf("rules::%d::name: %q may only end in \"*\"", i, r.Name))
		}
		errs = appendProbErr(errs, fmt.Sprintf("rules::%d::probability", i), r.Probability)
	}
	return errs
}
