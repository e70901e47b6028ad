// Package pgerr turns a Postgres error into the text the track commands print: the server's
// message followed by its hint, so that the user sees what the database suggests. It is shared by
// cmd/trackchart and cmd/trackwatch so that both word a database refusal the same way.
package pgerr
