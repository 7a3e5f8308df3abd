// Package check holds the tests of the deployment material in deploy/: the Kubernetes
// manifests (strict decoding into k8s.io/api types, kustomize builds, references between
// volumes, probes and ports) and the compose files (compose-go). It is a module of its own
// so that Kubernetes' and compose's libraries stay out of the akosha binary's dependencies;
// `make test` runs it.
package check
