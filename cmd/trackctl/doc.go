// Command trackctl is the tool of the owner of a track schema in Postgres, for collectors that
// run with migrate_on_start: false (a writer role that cannot create tables).
//
// Usage:
//
//	trackctl migrate [-dsn postgres://...] [-schema track]
//	    applies the pgrollup migrations the schema lacks, as the schema owner, and names them.
//	trackctl grants [-schema track] [-writer track_writer] [-analyst track_analyst] [-apply -dsn ...]
//	    prints the GRANT statements of a writer role (the collectors) and a read-only analyst role,
//	    or with -apply runs them in one transaction. The roles must exist.
//	trackctl status [-dsn postgres://...] [-schema track]
//	    prints the applied and pending migrations, the retention each resolution has recorded and
//	    the exact row count of each table.
//
// The DSN defaults to $TRACK_PG_DSN. Exit status 1 on any error; status exits 1 too when
// migrations are pending, so that a deploy script can check it.
package main
