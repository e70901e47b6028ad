// Package anomalyeval evaluates anomaly detectors on counters: it generates realistic labelled count series
// (daily and weekly seasonality, trend, holidays, Poisson noise at low and high rates, injected drops to zero,
// halvings, spikes, level shifts and slow declines), loads them into a pgrollup schema's per-metric totals, and
// scores flagged buckets against the labels (event-level precision, recall and detection delay). It also holds the
// two reference detectors the benchmark runs beside pgrollup's SQL detector: a static threshold and a
// trailing-window z-score (the "windowed Gaussian" of the Numenta Anomaly Benchmark).
//
// Everything here is deterministic for a given seed. Nothing is safe for concurrent mutation; values are
// read-only once built.
package anomalyeval
