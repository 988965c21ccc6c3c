"""End-to-end throughput of one bounded run, in a child process whose memory is sampled."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from modelmon.benchmarks.processes import PeakMemory


@dataclass(frozen=True)
class RunResult:
    kind: str  # 'full' or 'passthrough'
    events: int
    parallelism: int
    net_runtime_s: float
    peak_rss_jvm_mb: float
    peak_rss_python_mb: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.net_runtime_s


def run_bounded(config_file: Path, kind: str, *, events: int, parallelism: int, log: Path) -> RunResult:
    with log.open("ab") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "modelmon.benchmarks.job_runner", "--config", str(config_file), "--kind", kind],
            stdout=subprocess.PIPE,
            stderr=err,
        )
        with PeakMemory(child.pid) as memory:
            out, _ = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the {kind} run failed (exit {child.returncode}); see {log}")
    figures = json.loads(out.decode().strip().splitlines()[-1])
    return RunResult(
        kind=kind,
        events=events,
        parallelism=parallelism,
        net_runtime_s=float(figures["net_runtime_s"]),
        peak_rss_jvm_mb=memory.peak["jvm"] / 2**20,
        peak_rss_python_mb=memory.peak["python"] / 2**20,
    )
