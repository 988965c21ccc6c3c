"""The alerts section: defaults, validation naming the field, and secrets that never enter the config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from modelmon.cli import cli
from modelmon.config import Config, ConfigError, SecretRef, load_config

SLACK_URL = "https://hooks.slack.example/services/T0/B0/very-secret-token"


def test_default_rules_mirror_the_tutorial() -> None:
    rules = {rule.name: rule for rule in Config().alerts.rules}
    summary = {name: (r.metric, r.view, r.op, r.threshold, r.severity) for name, r in rules.items()}
    assert summary == {
        "accuracy-low": ("accuracy", "live", "<", 0.90, "critical"),
        "recall-low": ("recall", "live", "<", 0.70, "critical"),
        "label-latency-high": ("label_latency_p95_s", "live", ">", 1800, "warning"),
        "score-drift": ("ks_pvalue", "unlabelled", "<", 0.01, "warning"),
        "throughput-low": ("throughput_per_s", "unlabelled", "<", 500, "warning"),
    }
    accuracy = rules["accuracy-low"]
    assert (accuracy.breaches, accuracy.of_last, accuracy.baseline_windows, accuracy.segments) == (2, 3, 10, False)
    assert accuracy.models is None and accuracy.action is None
    assert Config().alerts.channels == ()


def rules_env(rule: str) -> dict[str, str]:
    return {"MODELMON__ALERTS__RULES": f"[{{{rule}}}]"}


BASE = "name: r, metric: accuracy, severity: critical, op: '<'"
OTHER = "name: r, severity: critical, op: '<', threshold: 1"
EMAIL = "type: email, host: h, sender: a@b.c"


def channels_env(channels: str) -> dict[str, str]:
    return {"MODELMON__ALERTS__CHANNELS": f"[{channels}]"}


@pytest.mark.parametrize(
    ("environ", "field", "says"),
    [
        (rules_env(f"{BASE}, threshold: 0.9, relative_drop: 0.1"), "alerts.rules.0", "exactly one of threshold"),
        (rules_env(f"{BASE}"), "alerts.rules.0", "exactly one of threshold"),
        (rules_env(f"{OTHER}, metric: accuracyy"), "alerts.rules.0.metric", "not a numeric column"),
        (rules_env(f"{OTHER}, metric: model_version"), "alerts.rules.0.metric", "not a numeric column"),
        (rules_env(f"{BASE}, threshold: 0.9, op: '=='"), "alerts.rules.0.op", ""),
        (rules_env(f"{BASE}, threshold: 0.9, view: daily"), "alerts.rules.0.view", ""),
        (rules_env(f"{BASE}, threshold: 0.9, severity: info"), "alerts.rules.0.severity", ""),
        (rules_env(f"{BASE}, threshold: 0.9, breaches: 4, of_last: 3"), "alerts.rules.0", "cannot exceed"),
        (rules_env(f"{BASE}, threshold: 0.9, cooldown: soon"), "alerts.rules.0.cooldown", "duration"),
        (rules_env(f"{BASE}, threshold: 0.9, min_label_coverage: 2"), "alerts.rules.0.min_label_coverage", ""),
        (rules_env(f"{BASE}, threshold: 0.9, view: unlabelled"), "alerts.rules.0", "needs labels"),
        (rules_env(f"{OTHER}, metric: accuracy_diff"), "alerts.rules.0", "comparison view"),
        (
            rules_env(f"{BASE}, threshold: 0.9, models: [v2], action: {{rollback_to: v2}}"),
            "alerts.rules.0",
            "cannot also watch",
        ),
        (
            rules_env(f"{BASE}, threshold: 0.9, action: {{rollback_to: 'v1; rm'}}"),
            "alerts.rules.0.action.rollback_to",
            "",
        ),
        (rules_env(f"{BASE}, threshold: 0.9}}, {{{BASE}, threshold: 0.8"), "alerts.rules", "once"),
        (
            channels_env(f"{{type: slack, webhook_url: '{SLACK_URL}'}}"),
            "alerts.channels.0.slack.webhook_url",
            "never as its value",
        ),
        (
            channels_env("{type: slack, webhook_url: {env: A, file: /b}}"),
            "alerts.channels.0.slack.webhook_url",
            "exactly one",
        ),
        (channels_env("{type: slack, webhook_url: {env: 'A B'}}"), "alerts.channels.0.slack.webhook_url.env", ""),
        (channels_env("{type: sms, number: 1}"), "alerts.channels.0", "type"),
        (channels_env("{type: webhook, url: 'ftp://x'}"), "alerts.channels.0.webhook.url", "URL"),
        (channels_env(f"{{{EMAIL}, recipients: []}}"), "alerts.channels.0.email.recipients", ""),
        (channels_env(f"{{{EMAIL}, recipients: [x@y.z], username: {{env: U}}}}"), "alerts.channels.0.email", "both"),
        (
            channels_env("{type: webhook, url: 'http://a'}, {type: webhook, url: 'http://b'}"),
            "alerts.channels",
            "once",
        ),
        ({"MODELMON__ALERTS__RETRY__ATTEMPTS": "0"}, "alerts.retry.attempts", ""),
        ({"MODELMON__SIMULATOR__DEGRADATION": "{model_version: v9}"}, "simulator", "v9"),
    ],
)
def test_bad_alert_config_fails_naming_the_field(environ: dict[str, str], field: str, says: str) -> None:
    with pytest.raises(ConfigError, match=f"config field {field}") as error:
        load_config(environ=environ)
    assert says in str(error.value)


def full_alerts(secret_file: Path) -> dict[str, object]:
    return {
        "rules": [
            {
                "name": "v2-drop",
                "metric": "accuracy",
                "op": "<",
                "relative_drop": 0.2,
                "severity": "critical",
                "models": ["v2"],
                "action": {"rollback_to": "v1"},
            }
        ],
        "channels": [
            {"type": "slack", "webhook_url": {"env": "MODELMON_SLACK_URL"}},
            {"type": "pagerduty", "routing_key": {"file": str(secret_file)}, "severities": ["critical"]},
            {
                "type": "email",
                "host": "127.0.0.1",
                "port": 2525,
                "starttls": False,
                "sender": "modelmon@example.org",
                "recipients": ["oncall@example.org"],
                "username": {"env": "SMTP_USER"},
                "password": {"env": "SMTP_PASSWORD"},
            },
            {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": {"env": "HOOK_SECRET"}, "timeout": "2s"},
        ],
        "retry": {"attempts": 3, "initial_backoff": "100ms"},
    }


def test_a_full_alerts_section_loads_and_dumps_only_secret_references(tmp_path: Path) -> None:
    secret_file = tmp_path / "pd-key"
    secret_file.write_text("pd-routing-key-secret\n")
    path = tmp_path / "modelmon.yaml"
    path.write_text(yaml.safe_dump({"alerts": full_alerts(secret_file)}))
    environ = {"MODELMON_SLACK_URL": SLACK_URL, "SMTP_PASSWORD": "hunter2", "HOOK_SECRET": "s3cr3t"}
    cfg = load_config(path, environ=environ)
    dumped = yaml.safe_dump(cfg.model_dump(mode="json"))
    for secret in (SLACK_URL, "pd-routing-key-secret", "hunter2", "s3cr3t"):
        assert secret not in dumped
        assert secret not in repr(cfg)
    assert "MODELMON_SLACK_URL" in dumped and str(secret_file) in dumped
    assert load_config(path, environ={}) == cfg  # secrets are read when alerting starts, not with the config


def test_modelmon_config_never_prints_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "pd-key"
    secret_file.write_text("pd-routing-key-secret")
    path = tmp_path / "modelmon.yaml"
    path.write_text(yaml.safe_dump({"alerts": full_alerts(secret_file)}))
    monkeypatch.setenv("MODELMON_SLACK_URL", SLACK_URL)
    monkeypatch.setenv("HOOK_SECRET", "s3cr3t")
    result = CliRunner().invoke(cli, ["--config", str(path), "config"])
    assert result.exit_code == 0, result.output
    assert "MODELMON_SLACK_URL" in result.output
    for secret in (SLACK_URL, "pd-routing-key-secret", "s3cr3t"):
        assert secret not in result.output


def test_secret_references_resolve_from_env_or_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "key"
    secret_file.write_text("  from-file \n")
    assert SecretRef(env="X").resolve({"X": "from-env"}) == "from-env"
    assert SecretRef(file=secret_file).resolve({}) == "from-file"
    with pytest.raises(ConfigError, match="environment variable X is empty or not set"):
        SecretRef(env="X").resolve({})
    with pytest.raises(ConfigError, match="cannot read the secret from file") as error:
        SecretRef(file=tmp_path / "missing").resolve({})
    assert "from-file" not in str(error.value)


def test_rule_defaults_for_samples() -> None:
    rules = {rule.name: rule for rule in Config().alerts.rules}
    assert rules["accuracy-low"].sample_column == "n_labelled"
    assert rules["score-drift"].sample_column == "n_predictions"
    assert rules["throughput-low"].min_samples == 0
