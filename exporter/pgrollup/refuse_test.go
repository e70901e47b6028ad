package pgrollup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer/consumererror"
)

// poisonTrigger returns SQL that makes Postgres raise code from a BEFORE INSERT trigger on table of
// schema when the row's column equals value: a data error that no sanitising can foresee (an
// operator's constraint or trigger), injected into the real write path.
func poisonTrigger(schema, table, column, value, code string) string {
	fn := schema + ".poison_" + table
	return fmt.Sprintf(`CREATE FUNCTION %[1]s() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.%[4]s::text = %[5]s THEN
        RAISE EXCEPTION 'poisoned %[3]s' USING ERRCODE = '%[6]s';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER poison BEFORE INSERT ON %[2]s.%[3]s FOR EACH ROW EXECUTE FUNCTION %[1]s()`,
		fn, schema, table, column, "'"+value+"'", code)
}

// TestDataErrorRefusesOnlyItsRequest pushes a round of concurrent requests of which one carries
// data Postgres refuses, injected at each step of the write path: the others commit, the poisoned
// push gets a permanent error, the refusal is counted by reason, and exactly-once holds (a replay
// of a committed request counts once; the refused one, pushed again, is refused again and was
// never recorded).
func TestDataErrorRefusesOnlyItsRequest(t *testing.T) {
	tests := []struct {
		name    string
		sql     string    // %s is the schema
		trigger [4]string // or: table, column, value, SQLSTATE of poisonTrigger
		reason  string
		logs    bool // the poisoned request is a logs request
	}{
		{"series check constraint", "ALTER TABLE %s.series ADD CONSTRAINT poison CHECK (metric <> 'poison')", [4]string{}, refusedIntegrity, false},
		{"rollup value out of range", "", [4]string{"rollup_minute", "value", "666", pgerrcode.NumericValueOutOfRange}, refusedData, false},
		{"totals program limit", "", [4]string{"total_hour", "metric", "poison", pgerrcode.ProgramLimitExceeded}, refusedLimit, false},
		{"events check constraint", "ALTER TABLE %s.events ADD CONSTRAINT poison CHECK (body IS DISTINCT FROM 'poison')", [4]string{}, refusedIntegrity, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := startExporter(t, nil, func(c *Config) { c.FlushInterval = 300 * time.Millisecond })
			ctx := context.Background()
			setup := fmt.Sprintf(tt.sql, te.schema)
			if tt.sql == "" {
				setup = poisonTrigger(te.schema, tt.trigger[0], tt.trigger[1], tt.trigger[2], tt.trigger[3])
			}
			_, err := te.pool.Exec(ctx, setup)
			require.NoError(t, err)

			at := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
			const good = 15
			var wg sync.WaitGroup
			errs := make([]error, good+1)
			for i := range good {
				wg.Go(func() {
					errs[i] = te.pushMetrics(ctx, request(pt{metric: "good", service: "svc", at: at, value: float64(i + 1), isInt: true,
						attrs: map[string]any{"sender": i}}))
				})
			}
			wg.Go(func() {
				if tt.logs {
					errs[good] = te.pushLogs(ctx, logsRequest(ev{name: "crash", service: "svc", at: at, body: "poison"},
						ev{name: "fine", service: "svc", at: at}))
					return
				}
				errs[good] = te.pushMetrics(ctx, request(pt{metric: "poison", service: "svc", at: at, value: 666},
					pt{metric: "fine", service: "svc", at: at, value: 1}))
			})
			wg.Wait()

			for i := range good {
				assert.NoError(t, errs[i], "healthy push %d", i)
			}
			require.Error(t, errs[good])
			assert.True(t, consumererror.IsPermanent(errs[good]), "the poisoned push is refused for good: %v", errs[good])
			var pgErr *pgconn.PgError
			assert.ErrorAs(t, errs[good], &pgErr)
			want := float64(good * (good + 1) / 2)
			assert.Equal(t, want, te.total(t, "minutely", "good"), "every healthy count is committed")
			assert.Equal(t, want, te.total(t, "daily", "good"))
			assert.Zero(t, te.count(t, "SELECT count(*) FROM "+te.schema+".minutely WHERE metric IN ('fine', 'event.fine', 'poison')"),
				"nothing of the refused request is written")
			assertTotalsAgree(t, te.pool, te.schema)
			assert.Equal(t, map[string]int64{tt.reason: 1}, countsBy(t, te.tel, "requests_refused"))
			assert.Equal(t, int64(good), counter(t, te.tel, "items_committed"))
			assert.Equal(t, float64(good), te.count(t, "SELECT count(*) FROM "+te.schema+".item_keys"), "the refused request's key is not recorded")

			// The refused request pushed again is refused again; a committed one is counted once.
			if tt.logs {
				err = te.pushLogs(ctx, logsRequest(ev{name: "crash", service: "svc", at: at, body: "poison"}, ev{name: "fine", service: "svc", at: at}))
			} else {
				err = te.pushMetrics(ctx, request(pt{metric: "poison", service: "svc", at: at, value: 666}, pt{metric: "fine", service: "svc", at: at, value: 1}))
			}
			assert.True(t, consumererror.IsPermanent(err), "%v", err)
			require.NoError(t, te.pushMetrics(ctx, request(pt{metric: "good", service: "svc", at: at, value: 1, isInt: true,
				attrs: map[string]any{"sender": 0}})))
			assert.Equal(t, want, te.total(t, "minutely", "good"), "the replay is counted once")
			assert.Equal(t, int64(1), counter(t, te.tel, "items_duplicate"))
			assert.Equal(t, map[string]int64{tt.reason: 2}, countsBy(t, te.tel, "requests_refused"))
		})
	}
}

// TestTransientErrorIsRetried makes the first flush fail with errors that are not caused by the
// data (the server running out of memory, shutting down, a broken connection): the push fails with
// a retryable error, the component reports itself degraded, nothing is refused or recorded, and
// the retry counts once and reports it healthy again.
func TestTransientErrorIsRetried(t *testing.T) {
	for _, code := range []string{pgerrcode.OutOfMemory, pgerrcode.AdminShutdown, pgerrcode.ConnectionFailure} {
		t.Run(code, func(t *testing.T) {
			te := startExporter(t, nil)
			host := &statusHost{}
			te.healthMu.Lock()
			te.host = host
			te.healthMu.Unlock()
			ctx := context.Background()
			// Fails the first insert only: a sequence is not rolled back with the transaction.
			_, err := te.pool.Exec(ctx, fmt.Sprintf(`CREATE SEQUENCE %[1]s.flaky;
CREATE FUNCTION %[1]s.flaky() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('%[1]s.flaky') = 1 THEN
        RAISE EXCEPTION 'transient' USING ERRCODE = '%[2]s';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER flaky BEFORE INSERT ON %[1]s.rollup_minute FOR EACH ROW EXECUTE FUNCTION %[1]s.flaky()`, te.schema, code))
			require.NoError(t, err)
			at := time.Now().UTC().Add(-time.Hour)
			md := request(pt{metric: "m", service: "svc", at: at, value: 3})
			err = te.pushMetrics(ctx, md)
			require.Error(t, err)
			assert.False(t, consumererror.IsPermanent(err), "a transient error is retried: %v", err)
			var pgErr *pgconn.PgError
			require.True(t, errors.As(err, &pgErr))
			assert.Equal(t, code, pgErr.Code)
			assert.Zero(t, te.count(t, "SELECT count(*) FROM "+te.schema+".item_keys"))
			assert.Equal(t, []componentstatus.Status{componentstatus.StatusRecoverableError}, host.statuses())

			require.NoError(t, te.pushMetrics(ctx, md), "the retry (exporterhelper's) succeeds")
			assert.Equal(t, []componentstatus.Status{componentstatus.StatusRecoverableError, componentstatus.StatusOK}, host.statuses())
			require.NoError(t, te.pushMetrics(ctx, md), "and a later replay is skipped")
			assert.Equal(t, 3.0, te.total(t, "minutely", "m"))
			assert.Empty(t, countsBy(t, te.tel, "requests_refused"))
		})
	}
}
