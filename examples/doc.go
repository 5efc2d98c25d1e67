// Package examples holds deployment examples for hostguard and the tests
// that parse every artefact with the real types (Kubernetes, ECS, YAML) and
// check each hostguard command line against the current CLI. It is its own
// module so that those parsers never enter hostguard's dependency graph.
package examples
