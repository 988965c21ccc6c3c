"""`modelmon exporter`: a consumer thread feeds the metrics topic into the state (and to listeners), and a
small threaded WSGI server serves /metrics.

The consumer has no group and reads from the beginning, so a restarted exporter rebuilds its state from the
topic. Listeners (the alerting engine will be one) see every row after the state has taken it; one that
raises is logged and counted, never stops the exporter. More routes can be mounted on the same server
(`modelmon exporter` mounts the live page at '/', see `web`).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any, Final
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from modelmon.exporter.collector import MetricsCollector
from modelmon.exporter.state import MetricsState, Outcome, Row, SeriesKey
from prometheus_client import CollectorRegistry, make_wsgi_app

from modelmon.config import Config
from modelmon.errors import ModelmonError
from modelmon.kafka_security import client_options

log = logging.getLogger(__name__)

Listener = Callable[[Row], None]
PROGRESS_EVERY_S: Final = 60.0
RETRY_S: Final = 2.0
STOP_TIMEOUT_S: Final = 10.0
# Warned about once, then only counted (and logged at debug level).
_WARNINGS: Final = {
    Outcome.CARDINALITY: "exporter.max_series reached: dropped the new series %s; further ones are counted "
    'in modelmon_exporter_series_dropped_total{reason="cardinality"}',
    Outcome.INVALID: "skipped a record of the metrics topic that is not a metrics row: %.200r; further ones "
    'are counted in modelmon_exporter_rows_consumed_total{outcome="invalid"}',
    "not json": "skipped a record of the metrics topic that is not a JSON object: %.200r; further ones are "
    "counted in modelmon_exporter_consumer_errors_total",
}


# ---------------------------------------------------------------------------------------------------------
# HTTP


class Router:
    """Routes requests by path; anything not mounted is a 404."""

    def __init__(self) -> None:
        self._exact: dict[str, WSGIApplication] = {}
        self._prefixes: dict[str, WSGIApplication] = {}

    def mount(self, path: str, app: WSGIApplication, *, prefix: bool = False) -> None:
        """Serve `path` with `app`; with `prefix`, every path below it too (the longest prefix wins). The
        app sees the full path in PATH_INFO."""
        if prefix:
            self._prefixes[path.rstrip("/") + "/"] = app
        self._exact[path] = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        app = self._find(environ.get("PATH_INFO") or "/")
        if app is None:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"not found; metrics are at /metrics\n"]
        return app(environ, start_response)

    def _find(self, path: str) -> WSGIApplication | None:
        if path in self._exact:
            return self._exact[path]
        matching = [prefix for prefix in self._prefixes if path.startswith(prefix)]
        return self._prefixes[max(matching, key=len)] if matching else None


def _url(host: str, port: int, path: str) -> str:
    return f"http://[{host}]:{port}{path}" if ":" in host else f"http://{host}:{port}{path}"


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a hanging client never blocks shutdown


class _IPv6Server(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class HttpServer:
    """A threaded WSGI server on host:port (port 0: a free one), serving from a daemon thread."""

    def __init__(self, app: WSGIApplication, host: str, port: int) -> None:
        server_class = _IPv6Server if ":" in host else _ThreadingServer
        try:
            self._httpd = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
        except OSError as exc:
            raise ModelmonError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.host = host
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="exporter-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_port)

    def url(self, path: str = "/") -> str:
        return _url(self.host, self.port, path)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()


# ---------------------------------------------------------------------------------------------------------
# The exporter: consumer thread + HTTP server over one state.


class Exporter:
    """The metrics topic served as Prometheus metrics; `start()` binds and returns, `stop()` ends both
    threads. `host` and `port` default to cfg.exporter's (port 0 picks a free one)."""

    def __init__(
        self, cfg: Config, *, host: str | None = None, port: int | None = None, state: MetricsState | None = None
    ) -> None:
        self.cfg = cfg
        self.state = state or MetricsState.for_config(cfg)
        self.registry = CollectorRegistry()
        self.registry.register(MetricsCollector(self.state))
        self.router = Router()
        self.router.mount("/metrics", make_wsgi_app(self.registry))
        self._host = cfg.exporter.host if host is None else host
        self._port = cfg.exporter.port if port is None else port
        self._listeners: list[Listener] = []
        self._caught_up_hooks: list[Callable[[], None]] = []
        self._caught_up = False
        self._stop = threading.Event()
        self._http: HttpServer | None = None
        self._consumer = threading.Thread(target=self._consume, name="exporter-consumer", daemon=True)
        self._warned: set[str] = set()
        self._rows_logged = -1
        self._logged_at = 0.0

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(row)` with every row of the topic, after the state has taken it, on the consumer
        thread (so keep it quick). After a restart it sees the topic again from the beginning."""
        self._listeners.append(listener)

    def on_caught_up(self, hook: Callable[[], None]) -> None:
        """Call `hook()` once, on the consumer thread, when the backlog of the topic has been read (e.g. the
        alert engine's flush, which evaluates rows it held back to put them in window order)."""
        self._caught_up_hooks.append(hook)

    def mount(self, path: str, app: WSGIApplication, *, prefix: bool = False) -> None:
        """Serve more than /metrics on the same server (see Router.mount)."""
        self.router.mount(path, app, prefix=prefix)

    @property
    def url(self) -> str:
        """The metrics URL (with the real port once started)."""
        return _url(self._host, self._http.port if self._http else self._port, "/metrics")

    def start(self) -> Exporter:
        self._http = HttpServer(self.router, self._host, self._port)
        self._http.start()
        self._consumer.start()
        log.info(
            "serving %s; reading topic %s on %s from the beginning",
            self.url,
            self.cfg.topics.metrics,
            self.cfg.kafka.bootstrap_servers,
        )
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._http is not None:
            self._http.stop()
        if self._consumer.ident is None:  # never started
            return
        self._consumer.join(timeout=STOP_TIMEOUT_S)
        if self._consumer.is_alive():  # still connecting to an absent broker; a daemon thread, it ends with us
            log.warning("the consumer thread did not stop within %.0f s", STOP_TIMEOUT_S)

    def run(self) -> None:
        """Start, serve until Ctrl-C (or SIGTERM, see modelmon.errors.stop_on_sigterm), stop cleanly."""
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            log.info("stopping the exporter")
        finally:
            self.stop()

    def __enter__(self) -> Exporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def dispatch(self, value: bytes | None) -> None:
        """One record value of the topic: into the state, then to every listener."""
        row = self._json_object(value)
        if row is None:
            return
        outcome = self.state.update(row)
        if outcome in _WARNINGS:
            self._warn_once(outcome, SeriesKey.of(row) if outcome is Outcome.CARDINALITY else row)
        for listener in self._listeners:
            try:
                listener(row)
            except Exception:
                self.state.record_listener_error()
                log.exception("listener %r failed on a row; the exporter carries on", listener)

    def dispatch_dead_letter(self, value: bytes | None) -> None:
        """One record value of the dead-letter topic: counted by source topic and reason."""
        row = self._json_object(value)
        if row is not None:
            self.state.record_dead_letter(row)

    def _json_object(self, value: bytes | None) -> dict[str, Any] | None:
        """A record value as a JSON object. None for a tombstone (the job never writes one), and for anything
        else that is not an object, which is also counted as a consumer error and logged once."""
        if value is None:
            return None
        try:
            row = json.loads(value)
        except ValueError:
            row = None
        if isinstance(row, dict):
            return row
        self.state.record_consumer_error()
        self._warn_once("not json", value)
        return None

    def _warn_once(self, kind: str, subject: object) -> None:
        level = logging.DEBUG if kind in self._warned else logging.WARNING
        self._warned.add(kind)
        log.log(level, _WARNINGS[kind], subject)

    def _consume(self) -> None:
        consumer: Any = None
        try:
            while not self._stop.is_set():
                try:
                    if consumer is None:
                        consumer = self._connect()
                    batches = consumer.poll(timeout_ms=500)
                except Exception as exc:
                    self.state.record_consumer_error()
                    log.warning(
                        "reading topic %s failed (%s); retrying in %.0f s", self.cfg.topics.metrics, exc, RETRY_S
                    )
                    self._stop.wait(RETRY_S)
                    continue
                for partition, records in batches.items():
                    for record in records:
                        if partition.topic == self.cfg.topics.dead_letter:
                            self.dispatch_dead_letter(record.value)
                        else:
                            self.dispatch(record.value)
                self._progress(idle=not batches and bool(consumer.assignment()))
        finally:
            if consumer is not None:
                consumer.close()

    def _connect(self) -> Any:
        """A group-less consumer of the metrics and dead-letter topics from their beginning, once they exist."""
        from kafka import KafkaConsumer

        from modelmon.topics import ensure_topics

        # Created with the configured partitions, as `run` would; never auto-created with broker defaults.
        ensure_topics(self.cfg)
        return KafkaConsumer(
            self.cfg.topics.metrics,
            self.cfg.topics.dead_letter,
            **client_options(self.cfg.kafka),
            client_id="modelmon-exporter",
            group_id=None,  # no group, no commits: every start reads the whole topic
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
            allow_auto_create_topics=False,
        )

    def _progress(self, *, idle: bool) -> None:
        """Log once the backlog is read (the first empty poll), then every PROGRESS_EVERY_S if rows came."""
        stats = self.state.stats()
        rows = sum(stats.rows.values())
        now = time.monotonic()
        first = idle and self._rows_logged < 0
        if idle and not self._caught_up:
            self._caught_up = True
            log.info("read the backlog of topic %s (%d rows)", self.cfg.topics.metrics, rows)
            for hook in self._caught_up_hooks:
                try:
                    hook()
                except Exception:
                    self.state.record_listener_error()
                    log.exception("caught-up hook %r failed; the exporter carries on", hook)
        if first or (rows != self._rows_logged and now - self._logged_at >= PROGRESS_EVERY_S):
            log.info(
                "exporting %d series from topic %s on %s (%d rows read)",
                stats.series,
                self.cfg.topics.metrics,
                self.url,
                rows,
            )
            self._rows_logged, self._logged_at = rows, now
