// Package location is the sampler's location coarsening stage: its configuration and the Policy
// that removes attributes finer than a region (cities, postal codes, coordinates), so that country
// and region are what remains. A Policy is safe for concurrent use.
package location // import "github.com/trackhq/track/processor/sampler/internal/location"
