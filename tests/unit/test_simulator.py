"""The simulator's record supplier, throttler and writer, without Kafka."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelmon.producers.simulator import (
    LABEL,
    PREDICTION,
    Dataset,
    KafkaWriter,
    ProgressReporter,
    SimulatorError,
    Stats,
    Throttler,
    TimedRecord,
    TransactionSupplier,
    epoch_millis,
    generate,
    iso_utc,
    records,
    run_simulator,
    utc_millis,
)
from sklearn.metrics import roc_auc_score

from modelmon.config import Config, SimulatorConfig

START = datetime(2026, 11, 30, 9, 53, tzinfo=UTC)
ISO_UTC_MILLIS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
BIG = 20_000


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def sim(**overrides: Any) -> SimulatorConfig:
    return SimulatorConfig(**overrides)


@pytest.fixture(scope="module")
def big() -> Dataset:
    """20k transactions with default settings (5% fraud, every label arrives, versions v1 and v2)."""
    return generate(sim(), START, BIG)


def auc(dataset: Dataset, version: str) -> float:
    truth = {tx.transaction_id: tx.is_fraud for tx in dataset.transactions}
    scored = [p for p in dataset.predictions if p["model_version"] == version]
    return float(
        roc_auc_score([truth[p["transaction_id"]] for p in scored], [p["predicted_fraud_score"] for p in scored])
    )


# -- determinism ------------------------------------------------------------------------------------------


def test_same_seed_gives_the_same_records() -> None:
    assert generate(sim(seed=7), START, 500) == generate(sim(seed=7), START, 500)


def test_another_seed_gives_other_records() -> None:
    first = generate(sim(seed=7), START, 500).predictions
    second = generate(sim(seed=8), START, 500).predictions
    assert [p["predicted_fraud_score"] for p in first] != [p["predicted_fraud_score"] for p in second]


def test_transaction_ids_are_fresh_and_derived_from_the_seed() -> None:
    dataset = generate(sim(seed=3), START, 100)
    assert [tx.transaction_id for tx in dataset.transactions] == [f"tx-3-{i}" for i in range(100)]


def test_a_longer_run_begins_with_the_shorter_one() -> None:
    short = generate(sim(), START, 200)
    long = generate(sim(), START, 400)
    assert long.transactions[:200] == short.transactions


def test_the_stream_is_the_same_however_it_is_consumed() -> None:
    assert list(records(sim(), START, 300)) == generate(sim(), START, 300).records


# -- shape of the records ---------------------------------------------------------------------------------


def test_every_version_scores_every_transaction_at_the_same_event_time() -> None:
    cfg = sim(model_versions=("a", "b", "c"))
    dataset = generate(cfg, START, 200)
    for tx in dataset.transactions:
        assert [p["model_version"] for p in tx.predictions] == ["a", "b", "c"]
        assert {p["transaction_id"] for p in tx.predictions} == {tx.transaction_id}
        assert {p["event_time"] for p in tx.predictions} == {iso_utc(tx.event_time)}
        assert len({(p["amount"], p["country"], p["merchant_category"]) for p in tx.predictions}) == 1
    assert len(dataset.predictions) == 3 * 200


def test_predictions_are_well_formed(big: Dataset) -> None:
    cfg = sim()
    for p in big.predictions:
        assert 0.0 <= p["predicted_fraud_score"] <= 1.0
        assert p["predicted_fraud"] == int(p["predicted_fraud_score"] >= cfg.threshold)
        assert p["predicted_fraud"] in (0, 1)
        assert ISO_UTC_MILLIS.match(p["event_time"])
        assert p["amount"] > 0
        assert p["country"] in cfg.countries
        assert p["merchant_category"] in cfg.merchant_categories


def test_scores_stay_in_bounds_for_extreme_quality() -> None:
    for p in generate(sim(model_quality=10), START, 2000).predictions:
        assert 0.0 <= p["predicted_fraud_score"] <= 1.0


def test_labels_are_well_formed(big: Dataset) -> None:
    truth = {tx.transaction_id: tx.is_fraud for tx in big.transactions}
    for label in big.labels:
        assert label["actual_fraud"] == int(truth[label["transaction_id"]])
        assert ISO_UTC_MILLIS.match(label["label_time"])


def test_event_times_follow_the_rate() -> None:
    dataset = generate(sim(rate=4), START, 9)
    times = [tx.event_time for tx in dataset.transactions]
    assert times == [START + timedelta(seconds=i / 4) for i in range(9)]


def test_event_times_keep_milliseconds_only() -> None:
    start = datetime(2026, 11, 30, 9, 53, 0, 123_456, tzinfo=UTC)
    first = generate(sim(rate=3), start, 4).transactions
    assert [iso_utc(tx.event_time) for tx in first] == [
        "2026-11-30T09:53:00.123Z",
        "2026-11-30T09:53:00.456Z",
        "2026-11-30T09:53:00.790Z",
        "2026-11-30T09:53:01.123Z",
    ]


def test_a_naive_start_is_taken_as_utc() -> None:
    assert utc_millis(datetime(2026, 11, 30, 9, 53)) == START


# -- labels -----------------------------------------------------------------------------------------------


def test_labels_arrive_within_the_delay_window(big: Dataset) -> None:
    cfg = sim()
    event_times = {tx.transaction_id: tx.event_time for tx in big.transactions}
    assert big.labels
    for label in big.labels:
        delay = parse_iso(label["label_time"]) - event_times[label["transaction_id"]]
        assert cfg.label_delay_min <= delay <= cfg.label_delay_max


def test_labels_come_after_their_predictions_in_the_stream(big: Dataset) -> None:
    position: dict[str, int] = {}
    for index, record in enumerate(big.records):
        if record.kind == PREDICTION:
            position.setdefault(record.key, index)
        else:
            assert position[record.key] < index


def test_a_fixed_delay_is_exact() -> None:
    cfg = sim(label_delay_min="90s", label_delay_max="90s")
    for tx in generate(cfg, START, 100).transactions:
        assert tx.label_time == tx.event_time + timedelta(seconds=90)


def test_a_zero_delay_label_follows_its_prediction() -> None:
    cfg = sim(label_delay_min=0, label_delay_max="1ms", model_versions=("v1",))
    kinds = [record.kind for record in generate(cfg, START, 50).records]
    assert kinds == [PREDICTION, LABEL] * 50


def test_every_label_arrives_by_default(big: Dataset) -> None:
    assert len(big.labels) == BIG
    assert len({label["transaction_id"] for label in big.labels}) == BIG


def test_label_rate_half_labels_about_half() -> None:
    dataset = generate(sim(label_rate=0.5), START, BIG)
    assert len(dataset.labels) / BIG == pytest.approx(0.5, abs=0.02)
    assert sum(tx.label is None for tx in dataset.transactions) == BIG - len(dataset.labels)


def test_label_rate_zero_labels_nothing() -> None:
    assert generate(sim(label_rate=0), START, 1000).labels == []


def test_min_delay_after_max_delay_is_refused() -> None:
    with pytest.raises(SimulatorError, match="label_delay_min"):
        TransactionSupplier(sim(label_delay_min="10min", label_delay_max="1min"), START)


# -- statistics -------------------------------------------------------------------------------------------


def test_fraud_rate_is_about_right(big: Dataset) -> None:
    frauds = sum(tx.is_fraud for tx in big.transactions)
    assert frauds / BIG == pytest.approx(0.05, abs=0.006)
    assert sum(label["actual_fraud"] for label in big.labels) == frauds


def test_higher_model_quality_gives_higher_auc() -> None:
    n = 10_000
    aucs = [auc(generate(sim(model_quality=q, model_versions=("v1",)), START, n), "v1") for q in (0, 1, 2, 3)]
    assert aucs == sorted(aucs)
    assert aucs[0] == pytest.approx(0.5, abs=0.04)
    for quality, measured in zip((1.0, 2.0, 3.0), aucs[1:], strict=True):
        expected = 0.5 * (1 + math.erf(quality / 2))  # Phi(quality / sqrt 2)
        assert measured == pytest.approx(expected, abs=0.03)


def test_later_versions_are_slightly_better(big: Dataset) -> None:
    assert 0.9 < auc(big, "v1") < auc(big, "v2") < 0.96


def test_categories_and_countries_are_all_used(big: Dataset) -> None:
    cfg = sim()
    assert set(Counter(p["country"] for p in big.predictions)) == set(cfg.countries)
    assert set(Counter(p["merchant_category"] for p in big.predictions)) == set(cfg.merchant_categories)


# -- ordering ---------------------------------------------------------------------------------------------


def assert_ordered(ordered: list[TimedRecord]) -> None:
    due = [record.due_time for record in ordered]
    assert due == sorted(due)
    for record in ordered:
        value: Any = record.value
        own_time = value["event_time"] if record.kind == PREDICTION else value["label_time"]
        assert parse_iso(own_time) == record.due_time
        assert record.key == value["transaction_id"]


def test_due_times_never_decrease(big: Dataset) -> None:
    assert_ordered(big.records)
    assert len(big.records) == len(big.predictions) + len(big.labels)


@settings(max_examples=40, deadline=None)
@given(
    rate=st.floats(min_value=0.01, max_value=5000),
    delay_min_ms=st.integers(min_value=0, max_value=600_000),
    delay_span_ms=st.integers(min_value=1, max_value=600_000),
    label_rate=st.floats(min_value=0, max_value=1),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_any_config_gives_an_ordered_stream(
    rate: float, delay_min_ms: int, delay_span_ms: int, label_rate: float, seed: int
) -> None:
    cfg = sim(
        rate=rate,
        label_delay_min=timedelta(milliseconds=delay_min_ms),
        label_delay_max=timedelta(milliseconds=delay_min_ms + delay_span_ms),
        label_rate=label_rate,
        seed=seed,
    )
    dataset = generate(cfg, START, 300)
    assert_ordered(dataset.records)
    for tx in dataset.transactions:
        if tx.label_time is not None:
            assert cfg.label_delay_min <= tx.label_time - tx.event_time <= cfg.label_delay_max


def test_an_endless_stream_interleaves_labels_with_predictions() -> None:
    cfg = sim(rate=10, label_delay_min="1s", label_delay_max="2s")
    stream = records(cfg, START)
    head = [record for record, _ in zip(stream, range(200), strict=False)]
    assert_ordered(head)
    assert {record.kind for record in head} == {PREDICTION, LABEL}
    assert 0 < stream.pending_labels <= 21


def test_model_versions_can_be_switched_between_transactions() -> None:
    supplier = TransactionSupplier(sim(), START)
    before = next(supplier)
    supplier.versions = supplier.versions[:1]
    after = next(supplier)
    assert [p["model_version"] for p in before.predictions] == ["v1", "v2"]
    assert [p["model_version"] for p in after.predictions] == ["v1"]


# -- throttler --------------------------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that only moves when told to, or when slept on."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_throttler_waits_for_the_due_time() -> None:
    clock = FakeClock()
    throttler = Throttler(START, clock=clock, sleep=clock.sleep)
    assert throttler.pause(START) == 0
    assert throttler.pause(START + timedelta(seconds=2)) == pytest.approx(2.0)
    clock.now += 0.5
    assert throttler.pause(START + timedelta(seconds=2)) == pytest.approx(1.5)


def test_throttler_catches_up_without_sleeping() -> None:
    clock = FakeClock()
    throttler = Throttler(START, clock=clock, sleep=clock.sleep)
    clock.now += 10
    for second in range(10):
        assert throttler.wait(START + timedelta(seconds=second)) == 0
    assert clock.sleeps == []
    assert throttler.wait(START + timedelta(seconds=10.25)) == pytest.approx(0.25)


def test_throttler_does_not_drift() -> None:
    clock = FakeClock()
    throttler = Throttler(START, clock=clock, sleep=clock.sleep)
    for i in range(1, 101):
        throttler.wait(START + timedelta(milliseconds=20 * i))
        clock.now += 0.003  # time spent sending
    assert clock.now - 1000.0 == pytest.approx(2.0 + 0.003, abs=1e-9)


def test_throttler_sleeps_in_slices_and_stays_responsive() -> None:
    clock = FakeClock()
    ticks: list[float] = []
    throttler = Throttler(START, clock=clock, sleep=clock.sleep, max_pause_s=1.0)
    slept = throttler.wait(START + timedelta(seconds=3.5), idle=lambda: ticks.append(clock.now))
    assert slept == pytest.approx(3.5)
    assert clock.sleeps == pytest.approx([1.0, 1.0, 1.0, 0.5])
    assert ticks == pytest.approx([1001.0, 1002.0, 1003.0, 1003.5])


# -- writer and run ---------------------------------------------------------------------------------------


class FakeFuture:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def add_errback(self, callback: Any) -> None:
        if self.error is not None:
            callback(self.error)


class FakeProducer:
    """Records what would have been sent; can fail sends, or raise Ctrl-C after some records."""

    def __init__(self, interrupt_after: int | None = None, fail_every: int | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.interrupt_after = interrupt_after
        self.fail_every = fail_every
        self.flushed = False
        self.closed = False
        self.flush_error: Exception | None = None

    def send(self, topic: str, *, value: bytes, key: bytes, timestamp_ms: int) -> FakeFuture:
        if self.interrupt_after is not None and len(self.sent) >= self.interrupt_after:
            raise KeyboardInterrupt
        self.sent.append({"topic": topic, "value": value, "key": key, "timestamp_ms": timestamp_ms})
        failing = self.fail_every is not None and len(self.sent) % self.fail_every == 0
        return FakeFuture(RuntimeError("broker said no") if failing else None)

    def flush(self, timeout: float | None = None) -> None:
        if self.flush_error is not None:
            raise self.flush_error
        self.flushed = True

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def test_writer_sends_compact_json_keyed_and_stamped_with_the_record_time() -> None:
    producer = FakeProducer()
    writer = KafkaWriter(producer, Config().topics)
    dataset = generate(sim(), START, 50)
    for record in dataset.records:
        writer.write(record)
    assert len(producer.sent) == len(dataset.records)
    for sent, record in zip(producer.sent, dataset.records, strict=True):
        value = json.loads(sent["value"])
        assert value == record.value
        assert b" " not in sent["value"]
        assert sent["key"] == value["transaction_id"].encode()
        if record.kind == PREDICTION:
            assert sent["topic"] == "predictions"
            assert sent["timestamp_ms"] == epoch_millis(parse_iso(value["event_time"]))
        else:
            assert sent["topic"] == "labels"
            assert sent["timestamp_ms"] == epoch_millis(parse_iso(value["label_time"]))


def test_writer_counts_failed_sends() -> None:
    writer = KafkaWriter(FakeProducer(fail_every=10), Config().topics)
    for record in generate(sim(), START, 50).records:
        writer.write(record)
    assert writer.errors == 150 // 10
    assert isinstance(writer.first_error, RuntimeError)


def test_writer_reports_a_failed_flush_and_still_closes() -> None:
    producer = FakeProducer()
    writer = KafkaWriter(producer, Config().topics)
    assert writer.flush() is None and producer.flushed
    producer.flush_error = TimeoutError("Expiring 70 record(s)")
    assert writer.flush() == "flush failed: Expiring 70 record(s)"
    assert writer.close() == "flush failed: Expiring 70 record(s)"
    assert producer.closed


def test_replay_writes_every_record_without_sleeping() -> None:
    producer = FakeProducer()
    clock = FakeClock()
    lines: list[str] = []
    stats = run_simulator(
        Config(),
        duration_s=None,
        live=False,
        start=START,
        progress=lines.append,
        n_transactions=300,
        writer=KafkaWriter(producer, Config().topics),
        clock=clock,
        sleep=clock.sleep,
    )
    assert clock.sleeps == []
    assert (stats.transactions, stats.predictions_sent, stats.labels_sent, stats.labels_pending) == (300, 600, 300, 0)
    assert not stats.interrupted
    assert producer.flushed and producer.closed
    assert lines == [str(stats)]
    assert [json.loads(sent["value"]) for sent in producer.sent] == [
        r.value for r in generate(Config().simulator, START, 300).records
    ]


def test_live_run_paces_by_event_time_and_stops_at_the_duration() -> None:
    cfg = Config(simulator=sim(rate=10, label_delay_min="1s", label_delay_max="2s"))
    producer = FakeProducer()
    clock = FakeClock()
    lines: list[str] = []
    stats = run_simulator(
        cfg,
        duration_s=12,
        live=True,
        start=START,
        progress=lines.append,
        writer=KafkaWriter(producer, cfg.topics),
        clock=clock,
        sleep=clock.sleep,
    )
    assert stats.transactions == 120
    assert stats.predictions_sent == 240
    assert 0 < stats.labels_pending <= 20
    assert stats.labels_sent + stats.labels_pending == 120
    assert 11.9 <= clock.now - 1000.0 < 12
    assert stats.transactions_per_s == pytest.approx(120 / (clock.now - 1000.0))
    assert len(lines) == 3  # at about 5 s, 10 s, and the summary
    assert "labels pending" in lines[0] and "target 10" in lines[0]


def test_ctrl_c_stops_cleanly_with_a_summary() -> None:
    producer = FakeProducer(interrupt_after=101)
    lines: list[str] = []
    stats = run_simulator(
        Config(),
        duration_s=None,
        live=False,
        start=START,
        progress=lines.append,
        n_transactions=1000,
        writer=KafkaWriter(producer, Config().topics),
    )
    assert stats.interrupted
    assert stats.predictions_sent + stats.labels_sent == 101
    assert producer.flushed and producer.closed
    assert lines[-1].startswith("simulator interrupted")


def test_replay_needs_a_bound() -> None:
    with pytest.raises(SimulatorError, match="number of transactions"):
        run_simulator(Config(), duration_s=None, live=False, start=START, progress=print)


def test_progress_reports_the_rate_since_the_previous_report() -> None:
    clock = FakeClock()
    stats = Stats()
    lines: list[str] = []
    reporter = ProgressReporter(stats, lines.append, target_rate=50, clock=clock, interval_s=5)
    stats.transactions = 100
    clock.now += 4
    reporter.tick()
    assert lines == []
    clock.now += 1
    reporter.tick()
    stats.transactions = 350
    clock.now += 5
    reporter.tick()
    assert "20.0 transactions/s" in lines[0]
    assert "50.0 transactions/s (target 50)" in lines[1]
