package pgrollup

import (
	"testing"
	"time"
)

// BenchmarkParse measures the Go side of a push without Postgres: parsing one 1,000-point request
// (benchRequest: 10 services, 1,000 series) into an item. "identity": no series cache, so every
// point builds its canonical identity, where each string is checked (and would be repaired);
// "cached": every series is in the cache and points are looked up by their raw attributes, the
// steady state of a collector. Parsers run in parallel, as the queue's consumers do.
func BenchmarkParse(b *testing.B) {
	at := time.Now().Add(-time.Minute)
	md := benchRequest(0, at)
	longest := 3 * 365 * 24 * time.Hour
	for _, warm := range []bool{false, true} {
		name := "identity"
		var cache *seriesCache
		if warm {
			name, cache = "cached", newSeriesCache()
			p := newParser([]string{"service.name"})
			p.cache = cache
			it, _ := p.parse(md, time.Now(), longest)
			var id int64
			for _, lookup := range it.lookups {
				id++
				cache.byLookup[lookup] = id
			}
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				p := newParser([]string{"service.name"})
				p.cache = cache
				for pb.Next() {
					if it, _ := p.parse(md, time.Now(), longest); it == nil || it.points != benchBatch {
						b.Fatal("every point is counted")
					}
				}
			})
			b.ReportMetric(float64(b.N)*benchBatch/b.Elapsed().Seconds(), "points/s")
		})
	}
}
