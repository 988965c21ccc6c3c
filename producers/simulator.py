"""A seeded simulator of a fraud model's predictions and of the labels that arrive minutes later.

Three parts, each usable alone:

1. a pure record supplier (`TransactionSupplier`, `RecordStream`, `records`, `generate`): the same config
   and start time give the same records, so tests can assert on them and a backfill can be repeated;
2. a `Throttler` that releases records when their event time comes round on the wall clock;
3. a `KafkaWriter` that produces them as compact JSON, keyed by transaction, stamped with their own time.

`run_simulator` wires them together for `modelmon simulate`. A live run also obeys control events (a
`ControlListener` on topics.control): a rollback of version X to Y scores X's traffic with Y's model from
the next transaction on. `simulator.degradation` makes one model score worse for a stretch of event time.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, Literal, NamedTuple, Protocol, TypedDict, cast

from modelmon.config import Config, KafkaConfig, SimulatorConfig, TopicsConfig
from modelmon.errors import ModelmonError
from modelmon.kafka_security import client_options

log = logging.getLogger(__name__)

TopicKind = Literal["prediction", "label"]
PREDICTION: TopicKind = "prediction"
LABEL: TopicKind = "label"

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)

# Each further model version separates fraud from non-fraud this much better (relative), so that shadow
# versions scoring the same traffic show measurably different metrics.
VERSION_QUALITY_STEP = 0.1
# Log-normal transaction amounts (median e^mu); fraudsters go for larger baskets.
AMOUNT_MU = {False: 3.5, True: 4.5}
AMOUNT_SIGMA = 1.0
SCORE_DECIMALS = 6

PROGRESS_INTERVAL_S = 5.0
# Longest single sleep, so progress lines keep coming and Ctrl-C is seen even at very low rates.
MAX_PAUSE_S = 1.0
# Shorter pauses are not slept: a record 0.1 ms early is harmless, and a clock whose resolution is coarser
# than the pause would otherwise never reach it.
MIN_PAUSE_S = 0.0001
FLUSH_TIMEOUT_S = 30.0
LINGER_MS = 5
# kafka-python waits 30 s for a broker by default; a missing broker should be reported sooner.
BOOTSTRAP_TIMEOUT_MS = 10_000
# Half-second tries to learn the control topic's partitions before giving up.
CONTROL_METADATA_TRIES = 20


class SimulatorError(ModelmonError, ValueError):
    """A simulator setting or argument that cannot work; the message says which."""


class Prediction(TypedDict):
    """The value of a predictions-topic record, as views/predictions_checked expects it."""

    transaction_id: str
    model_version: str
    predicted_fraud_score: float
    predicted_fraud: int
    event_time: str
    amount: float
    country: str
    merchant_category: str


class Label(TypedDict):
    """The value of a labels-topic record: what the transaction turned out to be, and since when we know."""

    transaction_id: str
    actual_fraud: int
    label_time: str


class TimedRecord(NamedTuple):
    """One record to produce: due at its event time (predictions) or label time (labels)."""

    due_time: datetime
    kind: TopicKind
    key: str
    value: Prediction | Label


@dataclass(frozen=True)
class ModelVersion:
    """A model version and how well it separates fraud from non-fraud (see `draw_score`)."""

    name: str
    quality: float


class Purchase(NamedTuple):
    """What was bought, where: the same for every model version scoring the transaction."""

    amount: float
    country: str
    merchant_category: str


@dataclass(frozen=True)
class Transaction:
    """Everything drawn for one transaction; `is_fraud` is ground truth even when no label ever arrives."""

    index: int
    transaction_id: str
    event_time: datetime
    is_fraud: bool
    predictions: tuple[Prediction, ...]
    label: Label | None
    label_time: datetime | None


# -- time -----------------------------------------------------------------------------------------------


def utc_millis(moment: datetime) -> datetime:
    """UTC, truncated to whole milliseconds, so the JSON time, the Kafka timestamp and due_time agree.

    A naive datetime is taken to be UTC already (as `datetime.utcnow()` returns it).
    """
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def iso_utc(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z, e.g. '2026-11-30T09:53:00.123Z'."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_millis(moment: datetime) -> int:
    """Milliseconds since the Unix epoch, the unit of Kafka record timestamps."""
    return (moment - EPOCH) // ONE_MS


def millis(duration: timedelta) -> int:
    return duration // ONE_MS


# -- the record supplier ----------------------------------------------------------------------------------


def model_versions(cfg: SimulatorConfig) -> tuple[ModelVersion, ...]:
    """The configured versions, each later one slightly better than the one before."""
    return tuple(
        ModelVersion(name, cfg.model_quality * (1 + VERSION_QUALITY_STEP * position))
        for position, name in enumerate(cfg.model_versions)
    )


def sigmoid(x: float) -> float:
    """The logistic function, written so that neither branch can overflow."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    exp_x = math.exp(x)
    return exp_x / (1.0 + exp_x)


def draw_score(rng: random.Random, quality: float, is_fraud: bool) -> float:
    """A fraud score in [0, 1] from a binormal model: the latent score is N(+quality/2, 1) for fraud and
    N(-quality/2, 1) otherwise, so `quality` is the separation in standard deviations and the ROC AUC is
    Phi(quality / sqrt 2): 0 is a coin flip, 2 gives about 0.92, 3 about 0.98.
    """
    mean = quality / 2 if is_fraud else -quality / 2
    return round(sigmoid(rng.gauss(mean, 1.0)), SCORE_DECIMALS)


def draw_amount(rng: random.Random, is_fraud: bool) -> float:
    return round(max(0.01, rng.lognormvariate(AMOUNT_MU[is_fraud], AMOUNT_SIGMA)), 2)


def check_label_delays(cfg: SimulatorConfig) -> None:
    if cfg.label_delay_min > cfg.label_delay_max:
        raise SimulatorError(
            f"simulator.label_delay_min ({cfg.label_delay_min}) is after simulator.label_delay_max "
            f"({cfg.label_delay_max})"
        )


class TransactionSupplier(Iterator[Transaction]):
    """An endless, deterministic series of transactions at `cfg.rate` per second of event time.

    All randomness comes from one `random.Random(cfg.seed)`, drawn in a fixed order per transaction, so the
    same config and start give the same transactions whatever consumes them and however fast.

    `versions` is read afresh for every transaction: assigning it while the simulator runs switches the set
    of model versions that score the traffic from the next transaction on; so does `rollback`, which scores
    one version's traffic with another version's model. Neither changes what is drawn from the generator,
    only the quality the scores are drawn with.
    """

    def __init__(self, cfg: SimulatorConfig, start: datetime) -> None:
        check_label_delays(cfg)
        self.cfg = cfg
        self.start = utc_millis(start)
        self.versions = model_versions(cfg)
        self._qualities = {version.name: version.quality for version in self.versions}
        # version -> the version whose model scores its traffic (after a rollback); absent: its own.
        self.scoring: dict[str, str] = {}
        self._rng = random.Random(cfg.seed)
        self._next_index = 0
        self._delay_ms = (millis(cfg.label_delay_min), millis(cfg.label_delay_max))

    def event_time(self, index: int) -> datetime:
        """start + index / rate, in whole milliseconds, so it never decreases with the index."""
        return self.start + timedelta(milliseconds=round(index * 1000 / self.cfg.rate))

    @property
    def next_event_time(self) -> datetime:
        """The event time of the next transaction to be drawn: where a change made now takes effect."""
        return self.event_time(self._next_index)

    def quality(self, version: ModelVersion, event_time: datetime) -> float:
        """How well `version`'s traffic is scored at `event_time`: by its own model or, after a rollback,
        by another's; a model inside its degradation window scores with the degraded quality."""
        model = self.scoring.get(version.name, version.name)
        degradation = self.cfg.degradation
        if degradation is not None and degradation.model_version == model:
            begins = self.start + degradation.start
            if begins <= event_time < begins + degradation.duration:
                return degradation.quality
        return version.quality if model == version.name else self._qualities[model]

    def rollback(self, version: str, to: str) -> None:
        """Score `version`'s traffic with `to`'s model from the next transaction on."""
        if to not in self._qualities:
            raise SimulatorError(f"cannot roll {version} back to {to}: not one of {sorted(self._qualities)}")
        self.scoring[version] = to

    def __next__(self) -> Transaction:
        index = self._next_index
        self._next_index += 1
        return self._draw(index)

    def _draw(self, index: int) -> Transaction:
        rng, cfg = self._rng, self.cfg
        transaction_id = f"tx-{cfg.seed}-{index}"
        event_time = self.event_time(index)
        is_fraud = rng.random() < cfg.fraud_rate
        purchase = Purchase(draw_amount(rng, is_fraud), rng.choice(cfg.countries), rng.choice(cfg.merchant_categories))
        predictions = tuple(
            self._predict(transaction_id, version, event_time, is_fraud, purchase) for version in self.versions
        )
        label_time = self._draw_label_time(event_time)
        label = None if label_time is None else self._label(transaction_id, is_fraud, label_time)
        return Transaction(index, transaction_id, event_time, is_fraud, predictions, label, label_time)

    def _predict(
        self,
        transaction_id: str,
        version: ModelVersion,
        event_time: datetime,
        is_fraud: bool,
        purchase: Purchase,
    ) -> Prediction:
        score = draw_score(self._rng, self.quality(version, event_time), is_fraud)
        return Prediction(
            transaction_id=transaction_id,
            model_version=version.name,
            predicted_fraud_score=score,
            predicted_fraud=int(score >= self.cfg.threshold),
            event_time=iso_utc(event_time),
            amount=purchase.amount,
            country=purchase.country,
            merchant_category=purchase.merchant_category,
        )

    def _draw_label_time(self, event_time: datetime) -> datetime | None:
        """When the label arrives, or None for the share of transactions that never get one."""
        if self._rng.random() >= self.cfg.label_rate:
            return None
        return event_time + timedelta(milliseconds=self._rng.randint(*self._delay_ms))

    @staticmethod
    def _label(transaction_id: str, is_fraud: bool, label_time: datetime) -> Label:
        return Label(transaction_id=transaction_id, actual_fraud=int(is_fraud), label_time=iso_utc(label_time))


class RecordStream(Iterable[TimedRecord]):
    """Predictions in event-time order merged with labels in label-time order: one stream by due time.

    A label is scheduled once its transaction's predictions are out and waits in a heap until the stream
    reaches its label time, rather than being slept on; when the transactions run out, the labels still
    pending follow in order.
    """

    def __init__(self, transactions: Iterable[Transaction]) -> None:
        self._transactions = iter(transactions)
        self._pending: list[tuple[datetime, int, Label]] = []

    @property
    def pending_labels(self) -> int:
        """Labels scheduled but not yet yielded."""
        return len(self._pending)

    def __iter__(self) -> Iterator[TimedRecord]:
        for transaction in self._transactions:
            yield from self._labels_due_by(transaction.event_time)
            for prediction in transaction.predictions:
                yield TimedRecord(transaction.event_time, PREDICTION, transaction.transaction_id, prediction)
            if transaction.label is not None and transaction.label_time is not None:
                heapq.heappush(self._pending, (transaction.label_time, transaction.index, transaction.label))
        yield from self._labels_due_by(None)

    def _labels_due_by(self, moment: datetime | None) -> Iterator[TimedRecord]:
        while self._pending and (moment is None or self._pending[0][0] <= moment):
            label_time, _, label = heapq.heappop(self._pending)
            yield TimedRecord(label_time, LABEL, label["transaction_id"], label)


def records(cfg: SimulatorConfig, start: datetime, n_transactions: int | None = None) -> RecordStream:
    """The due-time-ordered records of `n_transactions` transactions (endless if None), then their labels."""
    return RecordStream(islice(TransactionSupplier(cfg, start), n_transactions))


@dataclass(frozen=True)
class Dataset:
    """A complete simulated run, for tests: labels that never arrive are absent from `labels`, but every
    transaction's ground truth is in `transactions`.
    """

    transactions: list[Transaction]
    records: list[TimedRecord]
    predictions: list[Prediction]
    labels: list[Label]


def generate(cfg: SimulatorConfig, start: datetime, n_transactions: int) -> Dataset:
    """All records of `n_transactions` transactions, including every label that will ever arrive."""
    transactions = list(islice(TransactionSupplier(cfg, start), n_transactions))
    ordered = list(RecordStream(transactions))
    return Dataset(
        transactions=transactions,
        records=ordered,
        predictions=[cast(Prediction, record.value) for record in ordered if is_prediction(record)],
        labels=[cast(Label, record.value) for record in ordered if is_label(record)],
    )


def is_prediction(record: TimedRecord) -> bool:
    return record.kind == PREDICTION


def is_label(record: TimedRecord) -> bool:
    return record.kind == LABEL


# -- real-time pacing -------------------------------------------------------------------------------------


class Throttler:
    """Releases a record once as much wall time has passed since the throttler began as event time has
    passed between `start` and the record's due time.

    Pauses are measured from that one anchor, not from the previous record, so rounding and slow sends do
    not add up to drift, and a producer that fell behind gets zero pauses until it has caught up.
    """

    def __init__(
        self,
        start: datetime,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_pause_s: float = MAX_PAUSE_S,
    ) -> None:
        self.start = utc_millis(start)
        self._clock = clock
        self._sleep = sleep
        self._max_pause_s = max_pause_s
        self._began = clock()

    def pause(self, due_time: datetime) -> float:
        """Seconds to wait before `due_time` is reached; 0 when it already has been, or nearly."""
        ahead = (due_time - self.start).total_seconds() - (self._clock() - self._began)
        return ahead if ahead >= MIN_PAUSE_S else 0.0

    def wait(self, due_time: datetime, idle: Callable[[], None] = lambda: None) -> float:
        """Sleep until `due_time`, in slices of at most `max_pause_s` with `idle` called after each;
        returns the seconds slept.
        """
        slept = 0.0
        while (pause := self.pause(due_time)) > 0:
            step = min(pause, self._max_pause_s)
            self._sleep(step)
            slept += step
            idle()
        return slept


# -- Kafka ------------------------------------------------------------------------------------------------


class SendFuture(Protocol):
    def add_errback(self, callback: Callable[[BaseException], None]) -> Any: ...


class ProducerLike(Protocol):
    """The part of kafka-python's KafkaProducer the writer uses; tests pass a fake."""

    def send(self, topic: str, *, value: bytes, key: bytes, timestamp_ms: int) -> SendFuture: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self, timeout: float | None = None) -> None: ...


def encode_value(value: Prediction | Label) -> bytes:
    """Compact JSON, keeping topic volume low at high rates."""
    return json.dumps(value, separators=(",", ":")).encode()


class KafkaWriter:
    """Produces timed records to the predictions and labels topics.

    The key is the transaction id, so a transaction's predictions and its label share a partition; the
    record timestamp is the record's own event or label time, so retention and Flink's kafka_time follow
    simulated time rather than the moment of sending.
    """

    def __init__(self, producer: ProducerLike, topics: TopicsConfig) -> None:
        self._producer = producer
        self._topics = {PREDICTION: topics.predictions, LABEL: topics.labels}
        self.errors = 0
        self.first_error: BaseException | None = None

    @classmethod
    def connect(cls, kafka: KafkaConfig, topics: TopicsConfig, *, linger_ms: int = LINGER_MS) -> KafkaWriter:
        """A writer on a new KafkaProducer; fails fast with an actionable message when no broker answers."""
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        try:
            producer = KafkaProducer(
                **client_options(kafka),
                client_id="modelmon-simulator",
                linger_ms=linger_ms,
                acks="all",
                bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
            )
        except KafkaError as exc:
            raise SimulatorError(
                f"cannot reach Kafka at {kafka.bootstrap_servers} ({exc}): start a broker "
                "(`modelmon kafka start`) or set kafka.bootstrap_servers"
            ) from exc
        return cls(producer, topics)

    def topic(self, kind: TopicKind) -> str:
        return self._topics[kind]

    def write(self, record: TimedRecord) -> None:
        future = self._producer.send(
            self.topic(record.kind),
            value=encode_value(record.value),
            key=record.key.encode(),
            timestamp_ms=epoch_millis(record.due_time),
        )
        future.add_errback(self._failed)

    def _failed(self, error: BaseException) -> None:
        """Called on the producer's I/O thread; kept cheap and only counted, reported at the end."""
        self.errors += 1
        if self.first_error is None:
            self.first_error = error

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> str | None:
        """Wait until every buffered record is sent; returns why that failed, or None."""
        try:
            self._producer.flush(timeout=timeout_s)
        except Exception as exc:  # kafka-python raises KafkaTimeoutError; any failure is only reported
            return f"flush failed: {exc}"
        return None

    def close(self, timeout_s: float = FLUSH_TIMEOUT_S) -> str | None:
        """Flush and close; returns why the flush failed, or None when every buffered record was sent."""
        try:
            return self.flush(timeout_s)
        finally:
            self._producer.close(timeout=timeout_s)


# -- control events ---------------------------------------------------------------------------------------


class ConsumerLike(Protocol):
    """The part of kafka-python's KafkaConsumer the control listener uses."""

    def poll(self, timeout_ms: int = 0) -> dict[Any, list[Any]]: ...

    def close(self) -> None: ...


class ControlListener:
    """Reads control events (JSON) from topics.control, from the end of the topic as it was at start."""

    def __init__(self, consumer: ConsumerLike, topic: str) -> None:
        self._consumer = consumer
        self.topic = topic

    @classmethod
    def connect(cls, kafka: KafkaConfig, topic: str) -> ControlListener:
        """A consumer on every partition of `topic`, positioned at its end now, so an event published from
        here on is seen and older ones are not."""
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        try:
            consumer = KafkaConsumer(
                **client_options(kafka),
                client_id="modelmon-simulator-control",
                enable_auto_commit=False,
                isolation_level="read_committed",
            )
            numbers = consumer.partitions_for_topic(topic)
            for _ in range(CONTROL_METADATA_TRIES):  # a topic created a moment ago may not be known yet
                if numbers:
                    break
                time.sleep(0.5)
                numbers = consumer.partitions_for_topic(topic)
            if not numbers:
                consumer.close()
                raise SimulatorError(f"control topic {topic} does not exist at {kafka.bootstrap_servers}")
            partitions = [TopicPartition(topic, p) for p in sorted(numbers)]
            consumer.assign(partitions)
            consumer.seek_to_end(*partitions)
            for partition in partitions:
                consumer.position(partition)  # resolve the end offset now, not at the first poll
        except KafkaError as exc:
            raise SimulatorError(f"cannot read control topic {topic} at {kafka.bootstrap_servers}: {exc}") from exc
        return cls(consumer, topic)

    def poll(self) -> list[dict[str, Any]]:
        """Control events that arrived since the last poll; records that are not JSON objects are skipped."""
        events = []
        for records in self._consumer.poll(timeout_ms=0).values():
            for record in records:
                try:
                    event = json.loads(record.value)
                except (TypeError, ValueError):
                    event = None
                if isinstance(event, dict):
                    events.append(event)
                else:
                    log.warning("control topic %s: skipped a record that is not a JSON object", self.topic)
        return events

    def close(self) -> None:
        self._consumer.close()


class ControlPoller:
    """Applies control events to the running supplier, polling at most once per `interval_s` of wall time."""

    def __init__(
        self,
        listener: ControlListener,
        supplier: TransactionSupplier,
        report: Callable[[str], None],
        *,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._listener = listener
        self._supplier = supplier
        self._report = report
        self._interval_s = interval_s
        self._clock = clock
        self._last = -math.inf
        self.applied: list[dict[str, Any]] = []

    def tick(self) -> None:
        now = self._clock()
        if now - self._last < self._interval_s:
            return
        self._last = now
        for event in self._listener.poll():
            self.apply(event)

    def apply(self, event: dict[str, Any]) -> None:
        if event.get("action") != "rollback":
            self._report(f"control: ignored an event with action {event.get('action')!r}")
            return
        version, target = str(event.get("model_version")), str(event.get("to"))
        if version not in {v.name for v in self._supplier.versions}:
            self._report(f"control: ignored a rollback of {version!r}, which this simulator does not serve")
            return
        try:
            self._supplier.rollback(version, target)
        except SimulatorError as exc:
            self._report(f"control: ignored: {exc}")
            return
        self.applied.append(event)
        self._report(
            f"control: ROLLBACK {version} -> {target} (alert {event.get('alert_id')}): from event time "
            f"{iso_utc(self._supplier.next_event_time)} on, {version}'s traffic is scored by {target}'s model"
        )

    def close(self) -> None:
        self._listener.close()


# -- the run ----------------------------------------------------------------------------------------------


@dataclass
class Stats:
    """Counts of one simulator run; `str()` is the summary line."""

    transactions: int = 0
    predictions_sent: int = 0
    labels_sent: int = 0
    labels_pending: int = 0
    send_errors: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def transactions_per_s(self) -> float:
        return self.transactions / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def count(self, record: TimedRecord, new_transaction: bool) -> None:
        if is_label(record):
            self.labels_sent += 1
        else:
            self.predictions_sent += 1
            self.transactions += new_transaction

    def __str__(self) -> str:
        how = "interrupted" if self.interrupted else "done"
        line = (
            f"simulator {how} after {self.elapsed_s:.1f}s: {self.transactions} transactions, "
            f"{self.predictions_sent} predictions and {self.labels_sent} labels sent, "
            f"{self.labels_pending} labels pending, {self.transactions_per_s:.1f} transactions/s"
        )
        if self.send_errors:
            line += f", {self.send_errors} records failed to send"
        return "; ".join([line, *self.problems])


class ProgressReporter:
    """Reports counts and the rate achieved since the previous report, every `interval_s` of wall time."""

    def __init__(
        self,
        stats: Stats,
        report: Callable[[str], None],
        *,
        target_rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        interval_s: float = PROGRESS_INTERVAL_S,
    ) -> None:
        self._stats = stats
        self._report = report
        self._target = target_rate
        self._clock = clock
        self._interval_s = interval_s
        self._began = self._last_time = clock()
        self._last_transactions = 0

    def tick(self) -> None:
        now = self._clock()
        if now - self._last_time >= self._interval_s:
            self._report(self.line(now))
            self._last_time, self._last_transactions = now, self._stats.transactions

    def line(self, now: float) -> str:
        stats = self._stats
        rate = (stats.transactions - self._last_transactions) / max(now - self._last_time, 1e-9)
        target = f" (target {self._target:g})" if self._target is not None else ""
        return (
            f"[{now - self._began:6.0f}s] predictions sent {stats.predictions_sent}, labels sent "
            f"{stats.labels_sent}, labels pending {stats.labels_pending}, {rate:.1f} transactions/s{target}"
        )

    def elapsed(self) -> float:
        return self._clock() - self._began


def check_run_arguments(live: bool, duration_s: float | None, n_transactions: int | None) -> None:
    if duration_s is not None and duration_s <= 0:
        raise SimulatorError(f"duration must be positive, got {duration_s}")
    if n_transactions is not None and n_transactions < 0:
        raise SimulatorError(f"the number of transactions must not be negative, got {n_transactions}")
    if not live and duration_s is None and n_transactions is None:
        raise SimulatorError("replaying as fast as possible needs a number of transactions or a duration")


def run_simulator(
    cfg: Config,
    *,
    duration_s: float | None = None,
    live: bool = True,
    start: datetime | None = None,
    progress: Callable[[str], None] = print,
    n_transactions: int | None = None,
    writer: KafkaWriter | None = None,
    control: ControlListener | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Stats:
    """Produce predictions and, later, their labels until `duration_s` of event time has passed, or
    `n_transactions` transactions and all their labels are out, or Ctrl-C.

    `live` paces records by the wall clock; otherwise they are written as fast as Kafka takes them (tests,
    backfills). `start` is the event time of the first transaction (default: now). The writer, given or
    created here, is flushed and closed whatever ends the run. With a `control` listener, rollbacks
    requested on the control topic are applied while the run goes on (and the listener is closed at the end).
    """
    check_run_arguments(live, duration_s, n_transactions)
    origin = utc_millis(start or datetime.now(UTC))
    supplier = TransactionSupplier(cfg.simulator, origin)
    stream = RecordStream(islice(supplier, n_transactions))
    end = None if duration_s is None else origin + timedelta(seconds=duration_s)
    writer = writer or KafkaWriter.connect(cfg.kafka, cfg.topics)
    stats = Stats()
    reporter = ProgressReporter(stats, progress, target_rate=cfg.simulator.rate if live else None, clock=clock)
    throttler = Throttler(origin, clock=clock, sleep=sleep) if live else None
    poller = None
    if control is not None:
        interval_s = cfg.simulator.control_poll_interval.total_seconds()
        poller = ControlPoller(control, supplier, progress, interval_s=interval_s, clock=clock)
        progress(f"control: obeying rollbacks published to topic {control.topic}")
    try:
        pump(stream, writer, stats, reporter, throttler=throttler, end=end, control=poller)
    except KeyboardInterrupt:
        stats.interrupted = True
    finally:
        if poller is not None:
            poller.close()
        finish(writer, stats, reporter)
        progress(str(stats))
    return stats


def pump(
    stream: RecordStream,
    writer: KafkaWriter,
    stats: Stats,
    reporter: ProgressReporter,
    *,
    throttler: Throttler | None,
    end: datetime | None,
    control: ControlPoller | None = None,
) -> None:
    """Move records from the stream to Kafka, in due-time order, until the stream or the time runs out."""
    previous_key: str | None = None

    def idle() -> None:
        reporter.tick()
        if control is not None:
            control.tick()

    for record in stream:
        if end is not None and record.due_time >= end:
            stats.labels_pending = stream.pending_labels + is_label(record)
            return
        if throttler is not None:
            throttler.wait(record.due_time, idle=idle)
        writer.write(record)
        stats.count(record, new_transaction=is_prediction(record) and record.key != previous_key)
        if is_prediction(record):
            previous_key = record.key
        stats.labels_pending = stream.pending_labels
        idle()


def finish(writer: KafkaWriter, stats: Stats, reporter: ProgressReporter) -> None:
    problem = writer.close()
    if problem is not None:
        stats.problems.append(problem)
    stats.send_errors = writer.errors
    if writer.first_error is not None:
        stats.problems.append(f"first send error: {writer.first_error}")
    stats.elapsed_s = reporter.elapsed()
