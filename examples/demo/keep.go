package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/trackhq/track/internal/pgtest"
)

// keptRecord is the file, under the repository root, that names the cluster a -keep run left
// running: its directory on the first line, its DSN on the second.
const keptRecord = ".demo/postgres.kept"

// keepPostgres lets the demo's throwaway cluster outlive the demo, records it for -stop, and
// prints how to use it.
func (d *demo) keepPostgres() error {
	if err := d.pg.Keep(); err != nil {
		return err
	}
	record := filepath.Join(d.root, keptRecord)
	if err := os.WriteFile(record, []byte(d.pg.Dir()+"\n"+d.dsn+"\n"), 0o600); err != nil {
		return fmt.Errorf("recording the kept Postgres (it still runs in %s): %w", d.pg.Dir(), err)
	}
	chart := filepath.Join("bin", "trackchart")
	if _, err := os.Stat(filepath.Join(d.root, chart)); err != nil {
		chart = filepath.Join(".demo", "bin", "trackchart")
	}
	say("Postgres keeps running with the demo's data; make demo-stop stops it and removes it")
	fmt.Printf("    export TRACK_PG_DSN='%s'\n", d.dsn)
	fmt.Printf("    %s -metric new-signup -since %dm -step %s\n", chart, d.history+15, chartStep(d.history+15))
	fmt.Printf("    %s -metric fraudulent-card -since %dm -step %s\n", chart, d.history+15, chartStep(d.history+15))
	fmt.Printf("    %s -metric new-login -since 1h -step 5m -filter '{\"method\":\"passkey\"}'\n", chart)
	fmt.Printf("    %s anomalies -since 24h\n", chart)
	fmt.Println(`    psql "$TRACK_PG_DSN"    # then the queries of the README's "Queries for analysts"`)
	return nil
}

// stopKeptPostgres stops and removes the cluster a -keep run left running, if there is one.
func stopKeptPostgres(root string) error {
	record := filepath.Join(root, keptRecord)
	b, err := os.ReadFile(record)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	dir, _, _ := strings.Cut(string(b), "\n")
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		fmt.Printf("==> the Postgres a previous make demo KEEP=1 kept (%s) is already gone\n", dir)
		return os.Remove(record)
	}
	fmt.Printf("==> stopping the Postgres a previous make demo KEEP=1 kept (%s)\n", dir)
	if err := pgtest.StopKept(dir); err != nil {
		return err
	}
	return os.Remove(record)
}
