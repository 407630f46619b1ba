"""Prometheus metrics of odh-hub (names, types and labels: docs/metrics.md). The lowest room: it imports
prometheus_client and odh_spawner.naming only.

- `hub`: the hub side's metrics (spawns, credentials, Spark cluster starts), in prometheus_client's default
  registry, which JupyterHub serves at /hub/metrics beside its own.
- `platform`: the platform service's metrics, built at scrape time from a snapshot of plain data (pure), and the
  model gateway's request counters.
"""
