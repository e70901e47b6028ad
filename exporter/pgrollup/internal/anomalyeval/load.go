package anomalyeval

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Load writes series into the pgrollup schema (unquoted name) as the exporter would have: one series row per
// metric, the per-metric totals per hour for the whole series, and per minute from minutesFrom (a minute index)
// on; buckets with nothing counted have no row. It does not write the per-series rollups, which the anomaly
// detector does not read.
func Load(ctx context.Context, pool *pgxpool.Pool, schemaName string, series []Series, minutesFrom int) error {
	ident := pgx.Identifier{schemaName}
	for _, s := range series {
		if _, err := pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.series (key, metric, service, attributes)
VALUES (gen_random_uuid(), $1, 'eval', '{}')`, ident.Sanitize()), s.Spec.Name); err != nil {
			return fmt.Errorf("loading %s: %w", s.Spec.Name, err)
		}
		var hours, minutes [][]any
		var sum float64
		for i, v := range s.Counts {
			sum += v
			t := s.Start.Add(time.Duration(i) * time.Minute)
			if v > 0 && i >= minutesFrom {
				minutes = append(minutes, []any{s.Spec.Name, t, v})
			}
			if t.Minute() == 59 || i == len(s.Counts)-1 {
				if sum > 0 {
					hours = append(hours, []any{s.Spec.Name, t.Truncate(time.Hour), sum})
				}
				sum = 0
			}
		}
		cols := []string{"metric", "time", "value"}
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{schemaName, "total_hour"}, cols, pgx.CopyFromRows(hours)); err != nil {
			return fmt.Errorf("loading %s hours: %w", s.Spec.Name, err)
		}
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{schemaName, "total_minute"}, cols, pgx.CopyFromRows(minutes)); err != nil {
			return fmt.Errorf("loading %s minutes: %w", s.Spec.Name, err)
		}
	}
	return nil
}
