"""AlertEngine: rules -> alerts topic, channels and control topic, with a fake producer and fake channels."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from modelmon.alerting.engine import AlertEngine, control_event
from modelmon.alerting.rules import AlertEvent

from modelmon.config import Config
from tests.unit.test_alert_channels import FakeChannel
from tests.unit.test_alert_rules import BAD, GOOD, START, row

NOW = (START + timedelta(minutes=30)).timestamp()


class FakeProducer:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.fail = fail
        self.closed = False

    def send(self, topic: str, *, value: bytes, key: bytes) -> Any:
        if self.fail:
            raise RuntimeError("broker down")
        self.sent.append((topic, key, value))
        return None

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def config(**alerts: Any) -> Config:
    rules = [
        {"name": "accuracy-low", "metric": "accuracy", "op": "<", "threshold": 0.9, "severity": "critical"},
        {
            "name": "v2-rollback",
            "metric": "accuracy",
            "op": "<",
            "threshold": 0.9,
            "severity": "warning",
            "models": ["v2", "*"],
            "action": {"rollback_to": "v1"},
        },
    ]
    return Config.model_validate({"alerts": {"rules": rules, **alerts}})


def degraded_rows() -> list[dict[str, Any]]:
    values = [GOOD, GOOD, BAD, BAD, BAD, GOOD, GOOD]
    return [row(i, v, model_version=m) for i, v in enumerate(values) for m in ("v2", "*")]


def engine_with(cfg: Config, producer: FakeProducer, *channels: FakeChannel) -> AlertEngine:
    return AlertEngine(cfg, channels=list(channels), producer=producer, clock=lambda: NOW)


def test_events_go_to_the_alerts_topic_the_channels_and_rollbacks_to_the_control_topic() -> None:
    cfg = config()
    producer, channel = FakeProducer(), FakeChannel("fake")
    engine = engine_with(cfg, producer, channel)
    for metrics_row in degraded_rows():
        engine(metrics_row)
    engine.drain()
    engine.close()
    alerts = [(key.decode(), json.loads(value)) for topic, key, value in producer.sent if topic == cfg.topics.alerts]
    control = [(key.decode(), json.loads(value)) for topic, key, value in producer.sent if topic == cfg.topics.control]
    assert [(a["rule"], a["model_version"], a["state"]) for _, a in alerts] == [
        ("accuracy-low", "v2", "firing"),
        ("v2-rollback", "v2", "firing"),
        ("accuracy-low", "*", "firing"),
        ("v2-rollback", "*", "firing"),
        ("accuracy-low", "v2", "resolved"),
        ("v2-rollback", "v2", "resolved"),
        ("accuracy-low", "*", "resolved"),
        ("v2-rollback", "*", "resolved"),
    ]
    assert all(key == alert["alert_id"] for key, alert in alerts)
    assert [alert for _, alert in alerts] == [e.to_dict() for e in channel.delivered]
    # Only the firing of a concrete version asks for a rollback; '*' names no version.
    assert len(control) == 1
    key, request = control[0]
    assert key == "v2"
    assert request == {
        "action": "rollback",
        "model_version": "v2",
        "to": "v1",
        "alert_id": "modelmon/v2-rollback/live/v2/*=*",
        "rule": "v2-rollback",
        "window_end": "2026-11-30T09:04:00.000Z",
        "at": "2026-11-30T09:30:00.000Z",
    }
    assert producer.closed
    assert (engine.stats.events, engine.stats.control_events, engine.stats.stale) == (8, 1, 0)


def test_events_about_old_windows_update_state_but_are_not_sent() -> None:
    cfg = config(max_event_age="10min")
    producer, channel = FakeProducer(), FakeChannel("fake")
    engine = AlertEngine(cfg, channels=[channel], producer=producer, clock=lambda: NOW + 3600)
    for metrics_row in degraded_rows():
        engine(metrics_row)
    engine.close()
    assert producer.sent == [] and channel.delivered == []
    assert engine.stats.stale == engine.stats.events == 8


def test_a_broken_broker_or_channel_never_reaches_the_caller() -> None:
    producer, channel = FakeProducer(fail=True), FakeChannel("broken", error=RuntimeError("boom"))
    cfg = config(retry={"attempts": 1})
    engine = engine_with(cfg, producer, channel)
    for metrics_row in degraded_rows():
        engine(metrics_row)
    engine.close()
    assert engine.stats.publish_errors == 9  # 8 events and 1 control event
    assert channel.calls == 8


def test_rows_held_for_lateness_are_evaluated_by_flush() -> None:
    producer = FakeProducer()
    engine = engine_with(config(lateness="1h"), producer)
    for metrics_row in degraded_rows():
        engine(metrics_row)
    assert producer.sent == []
    engine.flush()
    assert len(producer.sent) == 9
    engine.close()


def test_control_event_only_for_a_firing_concrete_version() -> None:
    base = {
        "alert_id": "a",
        "event_id": "e",
        "rule": "r",
        "severity": "critical",
        "view": "live",
        "segment_key": "*",
        "segment_value": "*",
        "metric": "accuracy",
        "value": 0.5,
        "op": "<",
        "threshold": 0.9,
        "baseline": None,
        "samples": 100,
        "window_start": "x",
        "window_end": "y",
        "message": "m",
    }
    at = datetime(2026, 1, 1, tzinfo=UTC)
    action = {"rollback_to": "v1"}
    assert control_event(AlertEvent(**base, state="firing", model_version="v2", action=action), at) is not None
    assert control_event(AlertEvent(**base, state="resolved", model_version="v2", action=action), at) is None
    assert control_event(AlertEvent(**base, state="firing", model_version="v1", action=action), at) is None
    assert control_event(AlertEvent(**base, state="firing", model_version="*", action=action), at) is None
    assert control_event(AlertEvent(**base, state="firing", model_version="v2", action=None), at) is None
