package cardinality // import "github.com/trackhq/track/processor/sampler/internal/cardinality"

import (
	"fmt"
	"time"

	"github.com/trackhq/track/processor/sampler/internal/validate"
)

// Config configures the cardinality cap.
type Config struct {
	// Enabled turns the cap on (default true).
	Enabled bool `mapstructure:"enabled"`
	// MaxSeries is the largest number of distinct point attribute sets per metric name and
	// window (default 1000).
	MaxSeries int `mapstructure:"max_series"`
	// Window is the length of the window, aligned to the wall clock (default 1h).
	Window time.Duration `mapstructure:"window"`
	// MaxMetrics is the largest number of metric names tracked per window (default 10000). Points of
	// further names all go to their metric's overflow series.
	MaxMetrics int `mapstructure:"max_metrics"`
	// MaxTrackedSeries bounds the series tracked over all metrics per window (default 1000000);
	// once reached, new series of any metric go to overflow. It bounds the memory of the cap.
	MaxTrackedSeries int `mapstructure:"max_tracked_series"`
}

// Default returns the default cardinality configuration.
func Default() Config {
	return Config{
		Enabled:          true,
		MaxSeries:        1000,
		Window:           time.Hour,
		MaxMetrics:       10000,
		MaxTrackedSeries: 1_000_000,
	}
}

// Validate checks the fields of cfg while the cap is enabled and names each offending field; the
// Collector's confmap validation puts the path of cfg in front.
func (cfg *Config) Validate() error {
	if !cfg.Enabled {
		return nil
	}
	var errs []error
	if cfg.MaxSeries < 1 {
		errs = append(errs, fmt.Errorf("max_series: %d must be at least 1", cfg.MaxSeries))
	}
	if cfg.Window <= 0 {
		errs = append(errs, fmt.Errorf("window: %v must be positive", cfg.Window))
	}
	if cfg.MaxMetrics < 1 {
		errs = append(errs, fmt.Errorf("max_metrics: %d must be at least 1", cfg.MaxMetrics))
	}
	if cfg.MaxTrackedSeries < 1 {
		errs = append(errs, fmt.Errorf("max_tracked_series: %d must be at least 1", cfg.MaxTrackedSeries))
	}
	return validate.JoinFields(errs)
}
