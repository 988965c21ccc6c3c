"""Peak resident memory of a process tree (the CLI's Python, the JVM, the Python UDF workers), from /proc."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree(pid: int) -> list[int]:
    pids, pending = [], [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        pending += _children(current)
    return pids


def _rss_and_kind(pid: int) -> tuple[int, str] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return None
    rss = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return rss, "jvm" if Path(cmdline).name == "java" else "python"


def rss_by_kind(pid: int) -> dict[str, int]:
    """Resident bytes of a process tree, summed per kind: the JVMs and the Python processes."""
    totals = {"jvm": 0, "python": 0}
    for member in tree(pid):
        found = _rss_and_kind(member)
        if found is not None:
            totals[found[1]] += found[0]
    return totals


@dataclass
class PeakMemory:
    """Samples a process tree every `interval_s`; keeps the largest sum of RSS per kind (jvm, python)."""

    pid: int
    interval_s: float = 0.5
    peak: dict[str, int] = field(default_factory=lambda: {"jvm": 0, "python": 0})

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="peak-memory", daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        for kind, total in rss_by_kind(self.pid).items():
            self.peak[kind] = max(self.peak[kind], total)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()
