"""The simulator's side of alerting: a degradation window, and rollbacks requested on the control topic."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from modelmon.producers.simulator import (
    ControlListener,
    ControlPoller,
    KafkaWriter,
    SimulatorError,
    TransactionSupplier,
    generate,
    run_simulator,
)
from sklearn.metrics import roc_auc_score

from modelmon.config import Config, SimulatorConfig
from tests.unit.test_simulator import FakeClock, FakeProducer

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def degraded(**overrides: Any) -> SimulatorConfig:
    return SimulatorConfig.model_validate(
        {
            "rate": 10,
            "fraud_rate": 0.3,
            "model_quality": 4,
            "degradation": {"model_version": "v2", "start": "1min", "duration": "2min", "quality": 0},
            **overrides,
        }
    )


def auc_by_phase(cfg: SimulatorConfig, version: str, n: int) -> dict[str, float]:
    """ROC AUC of `version`'s scores before, during and after the degradation window."""
    data = generate(cfg, START, n)
    truth = {tx.transaction_id: tx.is_fraud for tx in data.transactions}
    phases: dict[str, tuple[list[bool], list[float]]] = {p: ([], []) for p in ("before", "during", "after")}
    for prediction in data.predictions:
        if prediction["model_version"] != version:
            continue
        minute = (datetime.fromisoformat(prediction["event_time"]) - START) / timedelta(minutes=1)
        phase = "before" if minute < 1 else "during" if minute < 3 else "after"
        phases[phase][0].append(truth[prediction["transaction_id"]])
        phases[phase][1].append(prediction["predicted_fraud_score"])
    return {phase: float(roc_auc_score(y, s)) for phase, (y, s) in phases.items()}


def test_a_degradation_makes_one_version_worse_for_a_while_then_it_recovers() -> None:
    v2 = auc_by_phase(degraded(), "v2", 10 * 60 * 4)
    v1 = auc_by_phase(degraded(), "v1", 10 * 60 * 4)
    assert v2["before"] > 0.97 and v2["after"] > 0.97
    assert 0.4 < v2["during"] < 0.6
    assert min(v1.values()) > 0.97


def test_a_degradation_changes_no_other_draw() -> None:
    plain, worse = generate(degraded(degradation=None), START, 3000), generate(degraded(), START, 3000)
    assert [t.is_fraud for t in plain.transactions] == [t.is_fraud for t in worse.transactions]
    assert plain.labels == worse.labels
    v1 = [p for p in plain.predictions if p["model_version"] == "v1"]
    assert v1 == [p for p in worse.predictions if p["model_version"] == "v1"]


def test_the_degraded_version_must_exist() -> None:
    with pytest.raises(ValueError, match=r"degradation\.model_version 'v3' is not one of model_versions"):
        degraded(degradation={"model_version": "v3"})


def test_a_rollback_scores_the_traffic_with_the_other_model_from_the_next_transaction() -> None:
    supplier = TransactionSupplier(degraded(), START)
    v1, v2 = supplier.versions
    during = START + timedelta(minutes=2)
    assert supplier.quality(v2, during) == 0
    assert supplier.quality(v1, during) == pytest.approx(4)
    supplier.rollback("v2", "v1")
    assert supplier.quality(v2, during) == pytest.approx(4)
    assert supplier.quality(v2, START) == supplier.quality(v1, START)
    with pytest.raises(SimulatorError, match="cannot roll v2 back to v9"):
        supplier.rollback("v2", "v9")
    # Rolling v1 back to the degraded v2 gives v1 the degradation.
    supplier.scoring.clear()
    supplier.rollback("v1", "v2")
    assert supplier.quality(v1, during) == 0


class FakeRecord:
    def __init__(self, value: bytes) -> None:
        self.value = value


class FakeConsumer:
    """Hands out queued control events on the next poll."""

    def __init__(self) -> None:
        self.queued: list[bytes] = []
        self.polls = 0
        self.closed = False

    def poll(self, timeout_ms: int = 0) -> dict[Any, list[Any]]:
        self.polls += 1
        records, self.queued = [FakeRecord(v) for v in self.queued], []
        return {"partition-0": records} if records else {}

    def close(self) -> None:
        self.closed = True


def rollback(version: str = "v2", to: str = "v1") -> bytes:
    return json.dumps({"action": "rollback", "model_version": version, "to": to, "alert_id": "a-1"}).encode()


def test_the_poller_applies_rollbacks_and_ignores_what_it_cannot_apply() -> None:
    consumer, clock, lines = FakeConsumer(), FakeClock(), []
    supplier = TransactionSupplier(degraded(), START)
    poller = ControlPoller(ControlListener(consumer, "control"), supplier, lines.append, interval_s=1.0, clock=clock)
    next(supplier)
    consumer.queued = [b"not json", json.dumps({"action": "restart"}).encode(), rollback("v7"), rollback(to="v9")]
    consumer.queued.append(rollback())
    poller.tick()
    assert supplier.scoring == {"v2": "v1"}
    assert lines == [
        "control: ignored an event with action 'restart'",
        "control: ignored a rollback of 'v7', which this simulator does not serve",
        "control: ignored: cannot roll v2 back to v9: not one of ['v1', 'v2']",
        "control: ROLLBACK v2 -> v1 (alert a-1): from event time 2026-11-30T09:00:00.100Z on, v2's traffic is "
        "scored by v1's model",
    ]
    poller.tick()
    assert consumer.polls == 1  # at most one poll per interval
    clock.now += 1
    poller.tick()
    assert consumer.polls == 2


def test_a_live_run_obeys_a_rollback_published_while_it_runs() -> None:
    """v2 is a coin flip for the whole run; after the rollback its traffic is scored by v1's model."""
    cfg = Config(simulator=degraded(degradation={"model_version": "v2", "start": "0s", "duration": "1h", "quality": 0}))
    consumer, clock, producer, lines = FakeConsumer(), FakeClock(), FakeProducer(), []
    published: list[bytes] = []

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= 1030 and not published:
            published.append(rollback())  # 30 s into the run
            consumer.queued = list(published)

    stats = run_simulator(
        cfg,
        duration_s=60,
        start=START,
        progress=lines.append,
        writer=KafkaWriter(producer, cfg.topics),
        control=ControlListener(consumer, "control"),
        clock=clock,
        sleep=sleep,
    )
    assert consumer.closed and not stats.interrupted
    switch = [line for line in lines if "ROLLBACK" in line]
    assert len(switch) == 1 and "from event time 2026-11-30T09:00:30" in switch[0]
    switched_at = switch[0].split("from event time ")[1].split(" ")[0]
    values = [json.loads(sent["value"]) for sent in producer.sent if sent["topic"] == "predictions"]
    truth = {tx.transaction_id: tx.is_fraud for tx in generate(cfg.simulator, START, 600).transactions}
    v2 = [v for v in values if v["model_version"] == "v2"]
    before = [v for v in v2 if v["event_time"] < switched_at]
    after = [v for v in v2 if v["event_time"] >= switched_at]

    def auc(rows: list[dict[str, Any]]) -> float:
        return float(
            roc_auc_score([truth[r["transaction_id"]] for r in rows], [r["predicted_fraud_score"] for r in rows])
        )

    assert len(before) > 250 and len(after) > 250
    assert auc(before) < 0.65 and auc(after) > 0.97
