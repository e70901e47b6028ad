package track

import "context"

// Flush collects and exports now, as the periodic reader would, so tests do
// not depend on timers.
func (t *Tracker) Flush(ctx context.Context) error {
	t.mu.Lock()
	p := t.pipe
	t.mu.Unlock()
	if p == nil || p.provider == nil {
		return nil
	}
	return p.provider.ForceFlush(ctx)
}

// Std returns the package-level tracker.
func Std() *Tracker { return std }

// Recounted returns how many adds landed on a forgotten series and were
// counted again on a live one, and Raced how many series were incremented
// between the read that judged them idle and their forgetting.
func (t *Tracker) Recounted() uint64 { return t.reg.recounted.Load() }

// Raced: see Recounted.
func (t *Tracker) Raced() uint64 { return t.reg.raced.Load() }
