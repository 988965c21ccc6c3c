"""The benchmark's input: the simulator's records (realistic JSON with segments, two model versions scoring
every transaction, labels seconds to minutes late), preloaded into Kafka as fast as the producer goes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from modelmon.producers.simulator import KafkaWriter, is_prediction, records

from modelmon.config import Config, SimulatorConfig

START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
# Per transaction: a prediction by each of the two versions and, as every one is labelled, one label.
EVENTS_PER_TRANSACTION = 3
# The preload waits for the producer to send everything every this many records. Without it, kafka-python's
# I/O thread, which shares the GIL with the loop that builds and encodes records, fell behind on 2 million
# events until batches expired in its buffer (delivery.timeout.ms, 120 s).
FLUSH_EVERY = 50_000


def simulator_config(rate: float) -> SimulatorConfig:
    """Event-time rate `rate` transactions/s; every transaction labelled 1 s to 5 min later."""
    return SimulatorConfig(
        rate=rate,
        label_rate=1.0,
        label_delay_min=timedelta(seconds=1),
        label_delay_max=timedelta(minutes=5),
        seed=2026,
    )


def preload(cfg: Config, events: int, *, rate: float, progress: Callable[[str], None], labels: bool = True) -> int:
    """Write about `events` events (predictions and labels; with labels=False only predictions, whose labels
    are still to come) to cfg's topics; returns how many were written."""
    transactions = max(1, events // (EVENTS_PER_TRANSACTION if labels else EVENTS_PER_TRANSACTION - 1))
    writer = KafkaWriter.connect(cfg.kafka, cfg.topics, linger_ms=50)
    written = 0
    started = time.monotonic()
    try:
        for record in records(simulator_config(rate), START, transactions):
            if not labels and not is_prediction(record):
                continue
            writer.write(record)
            written += 1
            if written % FLUSH_EVERY == 0:
                problem = writer.flush(timeout_s=300)
                if problem or writer.errors:
                    raise RuntimeError(f"preloading failed after {written:,} events: {problem or writer.first_error}")
            if written % 500_000 == 0:
                progress(f"  preloaded {written:,} events ({written / (time.monotonic() - started):,.0f}/s)")
    finally:
        problem = writer.close(timeout_s=300)
    if problem or writer.errors:
        raise RuntimeError(f"preloading failed: {problem or writer.first_error}")
    return written
