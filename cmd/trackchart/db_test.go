package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/trackhq/track/internal/pgtest"
)

// TestSchemaWithoutTheFunctions: a schema the migrations never ran on is a failure (exit 1) that
// says to run trackctl migrate; a schema that does not exist is a -schema error (exit 2).
func TestSchemaWithoutTheFunctions(t *testing.T) {
	sc := pgtest.NewSchema(t)
	r := runChart(t, env{envDSN: sc.ServerDSN}, "-schema", sc.Name, "-metric", "new-signup")
	assert.Equal(t, exitFailure, r.code, r.stderr)
	assert.Contains(t, r.stderr, "lacks migration 006; run trackctl migrate")
	assert.Empty(t, r.stdout)

	r = runChart(t, env{envDSN: sc.ServerDSN}, "anomalies", "-schema", sc.Name)
	assert.Equal(t, exitFailure, r.code, r.stderr)
	assert.Contains(t, r.stderr, "lacks migration 007; run trackctl migrate")

	r = runChart(t, env{envDSN: sc.ServerDSN}, "-schema", sc.Name+"_none", "-metric", "new-signup")
	assert.Equal(t, exitUsage, r.code, r.stderr)
	assert.Contains(t, r.stderr, "trackchart: -schema: ")
}
