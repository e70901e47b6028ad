// Package simservice holds what the example programs share: running a
// simulation under the package-level track tracker until it is interrupted
// or its time is up, flushing on the way out, drawing Poisson-distributed
// traffic, and the Report each program prints when it stops (a line for
// people on stderr, a JSON line on stdout that the demo driver decodes).
package simservice
