"""The benchmark's input: the simulator's records (realistic JSON with segments, two model versions scoring
every transaction, labels seconds to minutes late), preloaded into Kafka.

Python builds records at about 50,000 per second, far below what the job reads, so a preload writes them once
to a cache file (key, value, timestamp per record, in due-time order) and later preloads of the same input
send that file with confluent-kafka's C producer, at hundreds of thousands of records per second.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from modelmon.producers.simulator import encode_value, epoch_millis, is_prediction, records

from modelmon.config import Config, SimulatorConfig

START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
SEED = 2026
# Per transaction: a prediction by each of the two versions and, as every one is labelled, one label.
EVENTS_PER_TRANSACTION = 3
# A cached record: is-prediction flag, timestamp (ms), key length, value length; then key and value.
_HEADER = struct.Struct(">?qHI")
# Bump when the simulator's records change, so that no stale cache is sent.
CACHE_VERSION = 1


def simulator_config(rate: float) -> SimulatorConfig:
    """Event-time rate `rate` transactions/s; every transaction labelled 1 s to 5 min later."""
    return SimulatorConfig(
        rate=rate,
        label_rate=1.0,
        label_delay_min=timedelta(seconds=1),
        label_delay_max=timedelta(minutes=5),
        seed=SEED,
    )


def cache_file(cache_dir: Path, events: int, *, rate: float, labels: bool) -> Path:
    kind = "all" if labels else "predictions"
    return cache_dir / f"input-v{CACHE_VERSION}-{events}-{kind}-{rate:g}tx-s-seed{SEED}.bin"


def _write_cache(path: Path, events: int, *, rate: float, labels: bool, progress: Callable[[str], None]) -> None:
    """The simulator's records for about `events` events into `path` (written aside, then renamed: a run cut
    short leaves no partial cache)."""
    transactions = max(1, events // (EVENTS_PER_TRANSACTION if labels else EVENTS_PER_TRANSACTION - 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    written, started = 0, time.monotonic()
    with partial.open("wb") as out:
        for record in records(simulator_config(rate), START, transactions):
            prediction = is_prediction(record)
            if not labels and not prediction:
                continue
            key, value = record.key.encode(), encode_value(record.value)
            out.write(_HEADER.pack(prediction, epoch_millis(record.due_time), len(key), len(value)))
            out.write(key)
            out.write(value)
            written += 1
            if written % 500_000 == 0:
                progress(f"  generated {written:,} events ({written / (time.monotonic() - started):,.0f}/s)")
    partial.rename(path)


def _read_cache(source: BinaryIO) -> Iterator[tuple[bool, int, bytes, bytes]]:
    while header := source.read(_HEADER.size):
        prediction, timestamp, key_length, value_length = _HEADER.unpack(header)
        yield prediction, timestamp, source.read(key_length), source.read(value_length)


def preload(
    cfg: Config,
    events: int,
    *,
    rate: float,
    progress: Callable[[str], None],
    cache_dir: Path,
    labels: bool = True,
) -> int:
    """Write about `events` events (predictions and labels; with labels=False only predictions, whose labels
    are still to come) to cfg's topics, keyed by transaction id and stamped with their own time, as the
    simulator sends them; returns how many were written."""
    from confluent_kafka import KafkaException, Producer

    path = cache_file(cache_dir, events, rate=rate, labels=labels)
    if not path.exists():
        progress(f"  generating the input once (cached in {path})")
        _write_cache(path, events, rate=rate, labels=labels, progress=progress)
    errors: list[str] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None and len(errors) < 10:
            errors.append(str(error))

    producer = Producer(
        {
            # The bench's own broker: plaintext on 127.0.0.1.
            "bootstrap.servers": cfg.kafka.bootstrap_servers,
            "client.id": "modelmon-bench-preload",
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
        }
    )
    topics = {True: cfg.topics.predictions, False: cfg.topics.labels}
    written, started = 0, time.monotonic()
    with path.open("rb") as source:
        for prediction, timestamp, key, value in _read_cache(source):
            while True:
                try:
                    producer.produce(
                        topics[prediction], value=value, key=key, timestamp=timestamp, on_delivery=delivered
                    )
                    break
                except BufferError:  # the local queue is full: let the producer send
                    producer.poll(0.05)
            written += 1
            if written % 500_000 == 0:
                progress(f"  preloaded {written:,} events ({written / (time.monotonic() - started):,.0f}/s)")
    remaining = producer.flush(300)
    if remaining or errors:
        raise KafkaException(f"preloading failed: {remaining} records unsent; {errors[:3]}")
    progress(f"  preloaded {written:,} events in {time.monotonic() - started:.1f} s")
    return written
