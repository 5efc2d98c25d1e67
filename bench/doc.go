// Package bench compares hostguard with peer libraries. It is its own Go
// module so that the peers never enter hostguard's dependency graph.
//
// Run ./compare.sh for a table of ratios measured in one run.
package bench
