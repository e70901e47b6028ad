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
