"""Log set-up shared by the CLI and the `flink run` entry point."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int) -> None:
    """modelmon's own loggers write to stderr through a handler of their own, because once a local job runs,
    PyFlink's Python worker (Beam's harness, in this process) replaces the root logger's handlers with one
    that forwards to the JVM's log; modelmon's messages (e.g. the history sync) must stay on the terminal."""
    logging.basicConfig(level=level, format=FORMAT)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    own = logging.getLogger("modelmon")
    own.handlers[:] = [handler]
    own.setLevel(level)
    own.propagate = False
