package pgerr

import "github.com/jackc/pgx/v5/pgconn"

// Text is e's message and, when the server gave one, its hint after "; ". It does not include the
// SQLSTATE code (callers that want it add e.Code). e must not be nil. Safe for concurrent use.
func Text(e *pgconn.PgError) string {
	if e.Hint == "" {
		return e.Message
	}
	return e.Message + "; " + e.Hint
}
