"""Channel payloads, HMAC signatures, secrets kept out of logs, and the dispatcher's retries, without a network
(except a refused connection to a closed local port)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
from typing import Any

import pytest
from modelmon.alerting.channels import (
    ChannelError,
    Dispatcher,
    SlackChannel,
    backoff_delays,
    build_channels,
    email_message,
    event_json,
    pagerduty_payload,
    signature,
    slack_payload,
)
from modelmon.alerting.rules import AlertEvent

from modelmon.config import AlertsConfig, ConfigError, RetryConfig


def event(state: str = "firing", severity: str = "critical", **fields: Any) -> AlertEvent:
    base: dict[str, Any] = {
        "alert_id": "modelmon/accuracy-low/live/v2/*=*",
        "event_id": f"modelmon/accuracy-low/live/v2/*=*@2026-11-30T10:05:00.000Z/{state}",
        "rule": "accuracy-low",
        "state": state,
        "severity": severity,
        "view": "live",
        "model_version": "v2",
        "segment_key": "*",
        "segment_value": "*",
        "metric": "accuracy",
        "value": 0.61,
        "op": "<",
        "threshold": 0.9,
        "baseline": None,
        "samples": 300,
        "window_start": "2026-11-30T10:05:00.000Z",
        "window_end": "2026-11-30T10:06:00.000Z",
        "message": "[CRITICAL] accuracy-low firing: live accuracy of model v2 is 0.61 < 0.9",
        "action": None,
    }
    return AlertEvent(**{**base, **fields})


def test_event_json_is_canonical() -> None:
    body = event_json(event())
    assert json.loads(body) == event().to_dict()
    assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()


def test_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"a":1}'
    expected = hmac.new(b"s3cr3t", body, hashlib.sha256).hexdigest()
    assert signature("s3cr3t", body) == f"sha256={expected}"
    # RFC 4231 test case 2.
    assert signature("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_slack_payload_has_text_and_blocks() -> None:
    payload = slack_payload(event(action={"rollback_to": "v1"}))
    assert payload["text"] == event().message
    kinds = [block["type"] for block in payload["blocks"]]
    assert kinds == ["section", "section", "context", "section"]
    assert "*accuracy-low* firing (critical)" in payload["blocks"][0]["text"]["text"]
    fields = " ".join(field["text"] for field in payload["blocks"][1]["fields"])
    assert "accuracy = 0.61 (bound < 0.9)" in fields and "v2" in fields and "*=*" in fields
    assert "roll v2 back to v1" in payload["blocks"][3]["text"]["text"]
    resolved = slack_payload(event(state="resolved"))
    assert ":white_check_mark:" in resolved["blocks"][0]["text"]["text"] and len(resolved["blocks"]) == 3


def test_pagerduty_trigger_and_resolve_share_the_dedup_key() -> None:
    trigger = pagerduty_payload(event(), "rk")
    resolve = pagerduty_payload(event(state="resolved"), "rk")
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"] == event().alert_id
    assert trigger["routing_key"] == resolve["routing_key"] == "rk"
    details = trigger["payload"]
    assert details["severity"] == "critical" and details["source"] == "modelmon"
    assert details["summary"] == event().message and details["component"] == "v2"
    assert details["timestamp"] == "2026-11-30T10:06:00.000Z"
    assert details["custom_details"]["value"] == 0.61
    assert "payload" not in resolve
    assert pagerduty_payload(event(severity="warning"), "rk")["payload"]["severity"] == "warning"


def test_email_message() -> None:
    message = email_message(event(), "modelmon@example.org", ["a@example.org", "b@example.org"])
    assert message["Subject"] == "[modelmon critical] accuracy-low firing: v2"
    assert message["To"] == "a@example.org, b@example.org"
    body = message.get_content()
    assert body.startswith(event().message) and "window_start: 2026-11-30T10:05:00.000Z" in body


def test_backoff_is_exponential_and_capped() -> None:
    retry = RetryConfig(attempts=6, initial_backoff="1s", multiplier=3, max_backoff="20s")
    assert backoff_delays(retry) == [1, 3, 9, 20, 20]
    assert backoff_delays(RetryConfig(attempts=1)) == []


def channels_config(**extra: Any) -> AlertsConfig:
    return AlertsConfig.model_validate(
        {
            "channels": [
                {"type": "slack", "webhook_url": {"env": "SLACK_URL"}},
                {"type": "pagerduty", "routing_key": {"env": "PD_KEY"}, "severities": ["critical"]},
                {"type": "webhook", "url": "http://127.0.0.1:1/hook", "secret": {"env": "HOOK_SECRET"}},
                {
                    "type": "email",
                    "host": "127.0.0.1",
                    "sender": "m@example.org",
                    "recipients": ["o@example.org"],
                    "username": {"env": "SMTP_USER"},
                    "password": {"env": "SMTP_PASSWORD"},
                },
            ],
            **extra,
        }
    )


SECRETS = {
    "SLACK_URL": "http://127.0.0.1:1/services/SLACKSECRET",
    "PD_KEY": "PDSECRET",
    "HOOK_SECRET": "HOOKSECRET",
    "SMTP_USER": "USERSECRET",
    "SMTP_PASSWORD": "PASSWORDSECRET",
}


def test_channels_are_built_with_their_secrets_which_never_show_in_repr() -> None:
    channels = build_channels(channels_config(), SECRETS)
    assert [(c.type, c.name, c.severities) for c in channels] == [
        ("slack", "slack", ("warning", "critical")),
        ("pagerduty", "pagerduty", ("critical",)),
        ("webhook", "webhook", ("warning", "critical")),
        ("email", "email", ("warning", "critical")),
    ]
    text = repr(channels)
    assert not any(secret in text for secret in SECRETS.values())


@pytest.mark.parametrize(
    ("missing", "field"),
    [
        ("SLACK_URL", "alerts.channels.0.webhook_url"),
        ("PD_KEY", "alerts.channels.1.routing_key"),
        ("HOOK_SECRET", "alerts.channels.2.secret"),
        ("SMTP_PASSWORD", "alerts.channels.3.password"),
    ],
)
def test_a_missing_secret_fails_naming_the_field(missing: str, field: str) -> None:
    environ = {name: value for name, value in SECRETS.items() if name != missing}
    with pytest.raises(ConfigError, match=f"config field {field}: the secret from environment variable {missing}"):
        build_channels(channels_config(), environ)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_failed_request_never_logs_the_secret_url(caplog: pytest.LogCaptureFixture) -> None:
    secret_url = f"http://127.0.0.1:{closed_port()}/services/T0/B0/SLACKSECRET"
    slack = SlackChannel("slack", secret_url, ("critical",), timeout_s=2)
    with pytest.raises(ChannelError) as error:
        slack.send(event())
    assert "SLACKSECRET" not in str(error.value) and error.value.__cause__ is None
    caplog.set_level(logging.DEBUG, logger="modelmon")
    dispatcher = Dispatcher([slack], RetryConfig(attempts=2), sleep=lambda _: None)
    dispatcher.submit(event())
    dispatcher.drain()
    dispatcher.close()
    assert dispatcher.stats["slack"].failed == 1 and dispatcher.stats["slack"].attempts == 2
    assert "ConnectionError" in caplog.text
    assert "SLACKSECRET" not in caplog.text


class FakeChannel:
    """Fails its first `failures` sends (or always, with `error`), records what it delivered."""

    def __init__(
        self,
        name: str,
        failures: int = 0,
        *,
        error: Exception | None = None,
        severities: tuple[str, ...] = ("warning", "critical"),
    ) -> None:
        self.type = "fake"
        self.name = name
        self.severities = severities
        self.timeout_s = 1.0
        self.failures = failures
        self.error = error
        self.calls = 0
        self.delivered: list[AlertEvent] = []
        self.threads: set[str] = set()

    def send(self, alert: AlertEvent) -> None:
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if self.error is not None:
            raise self.error
        if self.calls <= self.failures:
            raise ChannelError("HTTP 503")
        self.delivered.append(alert)


def test_dispatcher_retries_with_backoff_and_a_broken_channel_stops_nothing() -> None:
    sleeps: list[float] = []
    flaky = FakeChannel("flaky", failures=2)
    broken = FakeChannel("broken", error=RuntimeError("boom"))
    rejecting = FakeChannel("rejecting", error=ChannelError("HTTP 400", permanent=True))
    fine = FakeChannel("fine")
    pager = FakeChannel("pager", severities=("critical",))
    retry = RetryConfig(attempts=4, initial_backoff="1s", multiplier=2, max_backoff="60s")
    dispatcher = Dispatcher([flaky, broken, rejecting, fine, pager], retry, sleep=sleeps.append)
    events = [event(), event(state="resolved"), event(severity="warning", alert_id="w")]
    for alert in events:
        dispatcher.submit(alert)  # returns at once: the caller never waits for a channel
    dispatcher.drain()
    dispatcher.close()
    assert flaky.delivered == fine.delivered == events
    assert pager.delivered == events[:2]
    assert (flaky.calls, broken.calls, rejecting.calls) == (5, 12, 3)
    stats = dispatcher.stats
    assert (stats["flaky"].sent, stats["flaky"].failed) == (3, 0)
    assert (stats["broken"].sent, stats["broken"].failed, stats["broken"].last_error) == (0, 3, "RuntimeError")
    assert (stats["rejecting"].failed, stats["rejecting"].attempts) == (3, 3)
    assert sorted(sleeps) == sorted([1.0, 2.0] + [1.0, 2.0, 4.0] * 3)
    assert flaky.threads == {"modelmon-alert-flaky"} and fine.threads == {"modelmon-alert-fine"}
