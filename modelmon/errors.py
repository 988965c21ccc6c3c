"""Errors a user can act on (the CLI prints their message without a traceback), and clean stops."""

import signal


class ModelmonError(Exception):
    pass


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so a supervisor's stop cancels the job and flushes producers too."""
    signal.signal(signal.SIGTERM, _interrupt)
