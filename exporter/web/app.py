"""The live page's routes on the exporter's server: '/' (the page), '/api/overview' (its data, polled by
the page) and '/static/<file>' (its script and style sheet, shipped in the package: no CDN, works offline).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from importlib.resources import files
from pathlib import PurePath
from typing import TYPE_CHECKING, Final, Protocol
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from modelmon.exporter.state import MetricsState
from modelmon.exporter.web.overview import AlertSource, overview

if TYPE_CHECKING:
    from modelmon.exporter.server import Exporter

REFRESH_S: Final = 5.0
STATIC: Final = "/static/"
TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The page loads only its own files; nothing from another origin.
SECURITY: Final = [
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
]


class Mountable(Protocol):
    """The Exporter (or its Router)."""

    def mount(self, path: str, app: WSGIApplication, *, prefix: bool = False) -> None: ...


def _static_files() -> dict[str, tuple[bytes, str]]:
    """Every file of static/, by name, with its content type; read once (a few KB)."""
    found = {}
    for entry in files("modelmon.exporter.web").joinpath("static").iterdir():
        kind = TYPES.get(PurePath(entry.name).suffix)
        if entry.is_file() and kind is not None:
            found[entry.name] = (entry.read_bytes(), kind)
    return found


def _answer(start_response: StartResponse, status: str, body: bytes, kind: str) -> list[bytes]:
    headers = [("Content-Type", kind), ("Content-Length", str(len(body))), ("Cache-Control", "no-cache"), *SECURITY]
    start_response(status, headers)
    return [body]


class LivePage:
    """The page's three routes over one MetricsState; `alerts` gives the alerts firing now (None: no alert
    engine runs)."""

    def __init__(
        self,
        state: MetricsState,
        *,
        topic: str,
        alerts: AlertSource | None = None,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._topic = topic
        self._alerts = alerts
        self._refresh_s = refresh_s
        self._clock = clock
        self._files = _static_files()

    def mount(self, server: Mountable) -> LivePage:
        server.mount("/", self.page)
        server.mount("/api/overview", self.api)
        server.mount(STATIC, self.static, prefix=True)
        return self

    def overview(self) -> dict[str, object]:
        return overview(
            self._state, topic=self._topic, alerts=self._alerts, refresh_s=self._refresh_s, now=self._clock()
        )

    def page(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._file("index.html", environ, start_response)

    def api(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not _readable(environ):
            return _answer(start_response, "405 Method Not Allowed", b"GET only\n", "text/plain; charset=utf-8")
        body = json.dumps(self.overview(), allow_nan=False, separators=(",", ":")).encode()
        return _answer(start_response, "200 OK", body, "application/json")

    def static(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._file(str(environ.get("PATH_INFO", ""))[len(STATIC) :], environ, start_response)

    def _file(self, name: str, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not _readable(environ):
            return _answer(start_response, "405 Method Not Allowed", b"GET only\n", "text/plain; charset=utf-8")
        if name not in self._files:
            return _answer(start_response, "404 Not Found", b"not found\n", "text/plain; charset=utf-8")
        body, kind = self._files[name]
        return _answer(start_response, "200 OK", body, kind)


def _readable(environ: WSGIEnvironment) -> bool:
    return environ.get("REQUEST_METHOD", "GET") in ("GET", "HEAD")


def mount_live_page(exporter: Exporter, alerts: AlertSource | None = None) -> LivePage:
    """The live page at '/' of the exporter's server, over its state; `alerts` e.g. AlertEngine.firing."""
    return LivePage(exporter.state, topic=exporter.cfg.topics.metrics, alerts=alerts).mount(exporter)
