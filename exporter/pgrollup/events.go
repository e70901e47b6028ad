package pgrollup

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// eventRow is one raw event, a row of the events table. Empty strings are stored as NULL.
type eventRow struct {
	time          time.Time
	day           int64 // Unix days (UTC) of time: the partition
	name, service string
	page, user    string
	country       string
	region        string
	body          string
	attributes    json.RawMessage
	adjustedCount float64
	hasPage       bool
	hasUser       bool
	hasCountry    bool
	hasRegion     bool
	hasBody       bool
	// beyondRetention marks an event older than retention::events: it counts in the rollups but is
	// not stored raw (its partition would be dropped at the next retention round).
	beyondRetention bool
}

// eventColumns are the columns copyEvents fills, in order.
var eventColumns = []string{"time", "name", "service", "page", "user_id", "country", "region", "attributes", "body", "adjusted_count"}

// partitionsAhead is how many days after today ensurePartitionsAhead creates, so that the write
// path rarely has to create a partition.
const partitionsAhead = 2

// ensurePartitions creates the daily partitions of the events table that the events of items need
// and that this exporter has not created or seen yet. It runs outside the flush transaction (a
// partition without rows is harmless), through the SECURITY DEFINER function
// ensure_event_partitions, which serializes concurrent collectors. It is called by the flusher
// goroutine only.
func (e *rollupExporter) ensurePartitions(ctx context.Context, items []*item) error {
	var lo, hi int64
	missing := false
	for _, it := range items {
		for i := range it.events {
			d := it.events[i].day
			if it.events[i].beyondRetention || e.partitions[d] {
				continue
			}
			if !missing || d < lo {
				lo = d
			}
			if !missing || d > hi {
				hi = d
			}
			missing = true
		}
	}
	if !missing {
		return nil
	}
	if err := e.createPartitions(ctx, lo, hi); err != nil {
		return err
	}
	for d := lo; d <= hi; d++ {
		e.partitions[d] = true
	}
	return nil
}

// createPartitions creates the partitions of Unix days lo to hi (inclusive) that do not exist yet.
func (e *rollupExporter) createPartitions(ctx context.Context, lo, hi int64) error {
	first, last := time.Unix(lo*86400, 0).UTC(), time.Unix(hi*86400, 0).UTC()
	_, err := e.pool.Exec(ctx, e.sqls.EnsurePartitions,
		first.Format(time.DateOnly), last.Format(time.DateOnly))
	if err != nil {
		return fmt.Errorf("creating event partitions %s to %s: %w", first.Format(time.DateOnly), last.Format(time.DateOnly), err)
	}
	return nil
}

// ensurePartitionsAhead creates the partitions of today and the next partitionsAhead days. It is
// called at start and by each retention round, and is safe for concurrent use.
func (e *rollupExporter) ensurePartitionsAhead(ctx context.Context) error {
	today := floorDiv(e.now().Unix(), 86400)
	return e.createPartitions(ctx, today, today+partitionsAhead)
}

// copyEvents COPYs the events of the items whose key is fresh (each key once) into the events
// table, in the flush transaction, and returns how many it wrote. It runs before the rollup
// upserts, so that a transaction waiting for the events table's lock (held briefly by a partition
// drop) holds no rollup row locks another collector could be waiting for.
func (e *rollupExporter) copyEvents(ctx context.Context, tx pgx.Tx, items []*item, fresh map[[16]byte]bool) (int, error) {
	var rows []*eventRow
	seen := make(map[[16]byte]bool)
	for _, it := range items {
		if len(it.events) == 0 || !fresh[it.key] || seen[it.key] {
			continue
		}
		seen[it.key] = true
		for i := range it.events {
			if !it.events[i].beyondRetention {
				rows = append(rows, &it.events[i])
			}
		}
	}
	if len(rows) == 0 {
		return 0, nil
	}
	vals := make([]any, len(eventColumns))
	n, err := tx.CopyFrom(ctx, pgx.Identifier{e.cfg.Schema, "events"}, eventColumns,
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			r := rows[i]
			vals[0] = r.time
			vals[1] = r.name
			vals[2] = r.service
			vals[3] = nullable(r.page, r.hasPage)
			vals[4] = nullable(r.user, r.hasUser)
			vals[5] = nullable(r.country, r.hasCountry)
			vals[6] = nullable(r.region, r.hasRegion)
			vals[7] = r.attributes
			vals[8] = nullable(r.body, r.hasBody)
			vals[9] = r.adjustedCount
			return vals, nil
		}))
	if err != nil {
		// A partition this exporter believed in may have been dropped: look them up again.
		clear(e.partitions)
		return 0, fmt.Errorf("copying events: %w", err)
	}
	return int(n), nil
}

func nullable(s string, ok bool) any {
	if !ok {
		return nil
	}
	return s
}

// eventRetention drops the daily partitions of the events table that lie wholly before now minus
// retention::events, and creates the partitions of the next days. It runs in the retention round,
// under the retention advisory lock.
func (e *rollupExporter) eventRetention(ctx context.Context) error {
	if err := e.ensurePartitionsAhead(ctx); err != nil {
		return err
	}
	cutoff := e.now().Add(-e.cfg.Retention.Events.Duration())
	rows, err := e.pool.Query(ctx, e.sqls.DropPartitions, cutoff)
	if err != nil {
		return fmt.Errorf("dropping event partitions: %w", err)
	}
	var dropped []time.Time
	dropped, err = pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if len(dropped) > 0 {
		e.telemetry.ExporterPgrollupEventPartitionsDropped.Add(ctx, int64(len(dropped)))
	}
	if err != nil {
		return fmt.Errorf("dropping event partitions: %w", err)
	}
	return nil
}
