package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// stateVersion is the version of the state file's format.
const stateVersion = 1

// stateFile is what -state keeps between runs: the open anomalies, whether their start was posted.
type stateFile struct {
	Version int     `json:"version"`
	Open    []*open `json:"open"`
}

// load reads the open anomalies from path into w. A missing file is an empty state. Every loaded
// anomaly counts as seen at now, so one that ended while the watcher was stopped ends endAfter
// after the restart, with its end posted once.
func (w *watcher) load(path string, now time.Time) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the state: %w", err)
	}
	var s stateFile
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("reading the state %s: %w", path, err)
	}
	if s.Version != stateVersion {
		return fmt.Errorf("the state %s has version %d; this trackwatch reads version %d", path, s.Version, stateVersion)
	}
	for _, o := range s.Open {
		if o == nil || o.First.Metric == "" {
			return fmt.Errorf("the state %s holds an anomaly without a metric", path)
		}
		o.Seen = now
		w.open[o.First.key()] = o
	}
	return nil
}

// save writes the open anomalies to path atomically: a temporary file in the same directory,
// synced, then renamed over path.
func (w *watcher) save(path string) error {
	s := stateFile{Version: stateVersion, Open: []*open{}}
	for _, k := range sortedKeys(w.open) {
		s.Open = append(s.Open, w.open[k])
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the state: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing the state: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("writing the state: %w", err)
	}
	return nil
}
