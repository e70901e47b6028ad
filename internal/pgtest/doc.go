// Package pgtest gives tests a real PostgreSQL server and a private schema per test.
//
// If the environment variable TRACK_TEST_DSN is set, every test uses that server. Otherwise the
// first test that asks for a database starts a throwaway cluster from the PostgreSQL binaries in
// /usr/lib/postgresql/*/bin (newest version first): initdb runs as the postgres user when the test
// process is root, the data directory and the unix socket live in a temporary directory, and the
// server listens on a free port on 127.0.0.1. The cluster is stopped and its directory removed when
// the test binary ends, which requires calling Main (or M, to combine with goleak) from TestMain:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.M(m)) }
//
// NewSchema creates a randomly named schema for one test and drops it in t.Cleanup, so tests of one
// package may run in parallel against the same server. Storage tests never skip: when no server is
// configured and no PostgreSQL binaries are installed, the test fails with a message naming the
// package to install (apt-get install postgresql-15).
//
// Tests that must stop and start Postgres (a restart scenario) start their own cluster with
// NewServer, so that they do not disturb other tests sharing the server of Shared.
package pgtest
