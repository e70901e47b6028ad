// Package cardinality is the sampler's cardinality cap: its configuration, the Tracker that admits
// at most max_series distinct point attribute sets per metric and window (the rest go to the
// metric's overflow series, as the OpenTelemetry metrics SDK specification's cardinality limits
// do), and the order-independent attribute-set hash it tracks them by. A Tracker is safe for
// concurrent use.
package cardinality // import "github.com/trackhq/track/processor/sampler/internal/cardinality"
