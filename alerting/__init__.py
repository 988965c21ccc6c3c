"""Alerting: rules over the metrics rows, notification channels, the alerts and control topics."""
