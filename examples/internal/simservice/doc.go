// Package simservice holds what the example services share: running a
// simulation under the package-level track tracker until it is interrupted
// or its time is up, flushing on the way out, and drawing Poisson-distributed
// traffic.
package simservice
