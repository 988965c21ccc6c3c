"""The history upkeep that runs beside a job: sync every history.sync_interval, compaction and retention
every history.compact_interval, and a last sync when the job ends."""

from __future__ import annotations

import logging
import threading
import time

from modelmon.history.maintenance import maintain
from modelmon.history.sync import sync

from modelmon.config import Config

log = logging.getLogger(__name__)


class HistoryKeeper:
    def __init__(self, cfg: Config) -> None:
        self._cfg = cfg
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="modelmon-history", daemon=True)

    def start(self) -> HistoryKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop and register what the job committed last (its final checkpoint's files)."""
        self._stop.set()
        self._thread.join()
        self._step(compact=False)

    def _loop(self) -> None:
        history = self._cfg.history
        next_compaction = time.monotonic() + history.compact_interval.total_seconds()
        while not self._stop.wait(history.sync_interval.total_seconds()):
            compact = time.monotonic() >= next_compaction
            if compact:
                next_compaction = time.monotonic() + history.compact_interval.total_seconds()
            self._step(compact=compact)

    def _step(self, *, compact: bool) -> None:
        # The job must go on whatever happens to its history: a failed step is logged and retried next time.
        try:
            if compact:
                maintain(self._cfg)
            else:
                sync(self._cfg)
        except Exception:
            log.exception("history: %s failed; the next step retries", "maintenance" if compact else "sync")
