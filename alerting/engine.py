"""`AlertEngine(cfg)`: rules, channels, the alerts topic and the control topic behind one `listener(row)`.

The exporter calls the engine with every row it consumes from the metrics topic. Each transition the rules
produce is logged, written to the alerts topic (JSON keyed by alert_id) and queued for every channel; a
firing rule with `action: {rollback_to: Y}` also asks the model service, through the control topic, to
route version X's traffic to Y's model.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from modelmon.alerting.channels import Channel, Dispatcher, build_channels, event_json
from modelmon.alerting.rules import ALL, AlertEvent, RuleEngine, parse_time

from modelmon.config import Config, KafkaConfig
from modelmon.kafka_security import client_options

log = logging.getLogger(__name__)

# kafka-python blocks send() up to this long for topic metadata or buffer space; the listener must not hang.
MAX_BLOCK_MS = 10_000


class ProducerLike(Protocol):
    """The part of kafka-python's KafkaProducer the engine uses; tests may pass a fake."""

    def send(self, topic: str, *, value: bytes, key: bytes) -> Any: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self, timeout: float | None = None) -> None: ...


def connect_producer(kafka: KafkaConfig) -> ProducerLike:
    from kafka import KafkaProducer

    producer: ProducerLike = KafkaProducer(
        **client_options(kafka),
        client_id="modelmon-alerting",
        acks="all",
        linger_ms=5,
        max_block_ms=MAX_BLOCK_MS,
    )
    return producer


def control_event(event: AlertEvent, at: datetime) -> dict[str, Any] | None:
    """The rollback request of a firing event, or None: only a concrete version other than the target is
    rolled back (the rows over all versions, '*', name no version to roll back)."""
    if event.state != "firing" or event.action is None:
        return None
    target = event.action["rollback_to"]
    if event.model_version in (ALL, target):
        return None
    return {
        "action": "rollback",
        "model_version": event.model_version,
        "to": target,
        "alert_id": event.alert_id,
        "rule": event.rule,
        "window_end": event.window_end,
        "at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


@dataclass
class EngineStats:
    events: int = 0
    stale: int = 0
    published: int = 0
    publish_errors: int = 0
    control_events: int = 0


class AlertEngine:
    """Rules -> (alerts topic, channels, control topic). Call it with each metrics row; `flush()` at the end
    of a bounded read; `close()` to deliver what is queued and stop."""

    def __init__(
        self,
        cfg: Config,
        *,
        channels: Sequence[Channel] | None = None,
        producer: ProducerLike | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfg = cfg
        self.rules = RuleEngine(cfg.alerts.rules, lateness=cfg.alerts.lateness)
        self.dispatcher = Dispatcher(
            build_channels(cfg.alerts, environ) if channels is None else channels, cfg.alerts.retry, sleep=sleep
        )
        self._producer = connect_producer(cfg.kafka) if producer is None else producer
        self._clock = clock
        self._lock = threading.Lock()
        self.stats = EngineStats()

    def __call__(self, row: Mapping[str, Any]) -> None:
        """The exporter's listener: one metrics row in; never raises for a bad channel."""
        with self._lock:
            for event in self.rules.feed(row):
                self._handle(event)

    def flush(self) -> None:
        """Evaluate rows still held for lateness (the end of a bounded read)."""
        with self._lock:
            for event in self.rules.flush():
                self._handle(event)

    def firing(self) -> list[AlertEvent]:
        """Read-only, from any thread: the alerts firing now, each as the event that started it."""
        with self._lock:
            return self.rules.firing()

    def drain(self) -> None:
        """Wait until every queued notification is delivered or given up, and the topics have the events."""
        self.dispatcher.drain()
        self._producer.flush(timeout=30)

    def close(self, timeout_s: float = 30.0) -> None:
        self.flush()
        self.dispatcher.close(timeout_s)
        self._producer.flush(timeout=timeout_s)
        self._producer.close(timeout=timeout_s)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _is_stale(self, event: AlertEvent) -> bool:
        max_age = self.cfg.alerts.max_event_age
        return max_age is not None and self._now() - parse_time(event.window_end) > max_age

    def _handle(self, event: AlertEvent) -> None:
        self.stats.events += 1
        if self._is_stale(event):
            self.stats.stale += 1
            log.info("alert (not sent, window older than alerts.max_event_age): %s", event.message)
            return
        log.warning("alert: %s", event.message)
        self._publish(self.cfg.topics.alerts, event.alert_id, event_json(event))
        self.dispatcher.submit(event)
        request = control_event(event, self._now())
        if request is not None:
            self.stats.control_events += 1
            log.warning("alert %s asks to roll %s back to %s", event.alert_id, request["model_version"], request["to"])
            body = json.dumps(request, separators=(",", ":")).encode()
            self._publish(self.cfg.topics.control, request["model_version"], body)

    def _publish(self, topic: str, key: str, value: bytes) -> None:
        try:
            future = self._producer.send(topic, value=value, key=key.encode())
        except Exception as exc:  # a broker problem must not stop the exporter's loop
            self._publish_failed(topic, exc)
            return
        self.stats.published += 1
        add_errback = getattr(future, "add_errback", None)
        if add_errback is not None:
            add_errback(lambda exc: self._publish_failed(topic, exc))

    def _publish_failed(self, topic: str, exc: BaseException) -> None:
        self.stats.publish_errors += 1
        log.error("alert engine: cannot write to topic %s (%s: %s)", topic, type(exc).__name__, exc)
