"""Prometheus exporter, alert rules and Grafana dashboard for the KPI and scan health."""
