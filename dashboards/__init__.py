"""The Grafana dashboard of modelmon, built with grafana-foundation-sdk (`build.py`), never edited by hand.

`python -m modelmon.dashboards` (`make dashboards`) writes `dashboards/modelmon.json`; Grafana loads it
through the provisioning files in `dashboards/provisioning/` (docker-compose.yml mounts both). The SDK is a
dev dependency: the generator runs in a checkout, not in a deployment.
"""
