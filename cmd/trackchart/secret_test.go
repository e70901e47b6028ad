package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
)

func TestRedactDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:s3cret@db:5432/track?sslmode=disable", "postgres://u:xxxxx@db:5432/track?sslmode=disable"},
		{"postgresql://u:p%40ss@db/track", "postgresql://u:xxxxx@db/track"},
		{"postgres://u@db/track?password=s3cret&sslmode=disable", "postgres://u@db/track?password=xxxxx&sslmode=disable"},
		{"postgres://u@db/track", "postgres://u@db/track"},
		{"postgres://u:s3cret@db:notaport/track", "postgres://u:xxxxx@db:notaport/track"},
		{"host=db user=u password=s3cret dbname=track", "host=db user=u password=xxxxx dbname=track"},
		{"host=db password='s3 cr\\'et' dbname=track", "host=db password=xxxxx dbname=track"},
		{"host=db password = s3cret", "host=db password=xxxxx"},
		{"host=db dbname=track", "host=db dbname=track"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, redactDSN(tt.in), tt.in)
	}
}

// TestScrub: whatever form an error quotes the password in, scrub masks it.
func TestScrub(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u:s3cret%2Fpw@db/track",
		"host=db user=u password=s3cret/pw",
		"host=db user=u password='s3cret/pw'",
		"postgres://u@db/track?password=s3cret%2Fpw",
	} {
		hidden := secrets(dsn)
		assert.NotEmpty(t, hidden, dsn)
		for _, leak := range []string{"s3cret/pw", "s3cret%2Fpw"} {
			msg := scrub(fmt.Sprintf("connecting: server said %q in %s", leak, dsn), hidden)
			assert.NotContains(t, msg, "s3cret", dsn)
		}
	}
	// A short password is masked where a DSN holds it, and nowhere else.
	hidden := secrets("postgres://u:ab@db/track")
	assert.Equal(t, "postgres://u:xxxxx@db/track: table ab", scrub("postgres://u:ab@db/track: table ab", hidden))
	assert.Empty(t, secrets("postgres://u@db/track"))

	// pgx's own parse errors, scrubbed, keep the server and lose the password.
	_, err := pgconn.ParseConfig("postgres://u:s3cret@db:notaport/track")
	var pe *pgconn.ParseConfigError
	assert.True(t, errors.As(err, &pe))
	msg := scrub(err.Error(), secrets("postgres://u:s3cret@db:notaport/track"))
	assert.NotContains(t, msg, "s3cret")
	assert.Contains(t, msg, "notaport")
}
