// Package deploy holds cdpd's deployment assets: the container image (docker/), a
// docker-compose setup with example pipelines (docker-compose.yml, examples/), Kubernetes
// manifests (kubernetes/: a one-pod Deployment, and a sharded StatefulSet in
// kubernetes/sharded/), systemd units (systemd/), Prometheus scrape config and rules
// (prometheus/) and Grafana dashboards (grafana/: one cdpd, and the fleet through the control
// plane). It has no code; its tests check every
// asset against the code's own flags, environment names, ports, HTTP routes and metric
// names (see package refs).
package deploy
