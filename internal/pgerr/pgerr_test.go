package pgerr

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestText: the message always leads, the hint follows only when there is one.
func TestText(t *testing.T) {
	for _, e := range []*pgconn.PgError{
		{Message: "no such metric \"reqs\"", Hint: "did you mean \"requests\"?"},
		{Message: "step must be positive"},
		{Message: "m", Hint: "h; with a semicolon"},
	} {
		got := Text(e)
		assert.True(t, strings.HasPrefix(got, e.Message), got)
		if e.Hint == "" {
			assert.Equal(t, e.Message, got)
		} else {
			assert.Equal(t, e.Message+"; "+e.Hint, got)
		}
	}
}
