"""`modelmon demo`: the whole system on one machine: local Kafka, the streaming job, the simulator, and
the metrics topic printed as rows arrive."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from modelmon.config import Config, format_duration
from modelmon.kafka_local import LocalKafka
from modelmon.paths import data_dir
from modelmon.topics import ensure_topics
from modelmon.watch import watch_metrics

# Long enough for the simulator's final flush and the job's cancellation.
STOP_GRACE_S = 45.0


def _write_effective_config(cfg: Config) -> Path:
    """The job and simulator run as child processes; they get exactly this process's config."""
    path = data_dir(cfg) / "demo-config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return path


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A modelmon command as a child process, its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "modelmon.cli", *args], stdout=out, stderr=out)


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (each child then stops cleanly: the job is cancelled, the simulator flushes), SIGKILL after a
    grace period; a second Ctrl-C meanwhile must not leave them running."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for child in children:
            child.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def run_demo(cfg: Config, *, echo: Callable[[str], None]) -> None:
    echo(LocalKafka(cfg).start().describe())
    ensure_topics(cfg)
    config_file = _write_effective_config(cfg)
    logs = data_dir(cfg) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    job = _spawn(["--config", str(config_file), "run"], logs / "job.log")
    simulator = _spawn(["--config", str(config_file), "simulate"], logs / "simulator.log")
    sim = cfg.simulator
    delays = f"{format_duration(sim.label_delay_min)} to {format_duration(sim.label_delay_max)}"
    echo(
        f"job: streaming on a local Flink minicluster, log {logs / 'job.log'}\n"
        f"simulator: {sim.rate:g} transactions/s x {len(sim.model_versions)} model versions, "
        f"labels {delays} later, log {logs / 'simulator.log'}\n"
        f"topics on {cfg.kafka.bootstrap_servers}: metrics {cfg.topics.metrics}, labelled predictions "
        f"{cfg.topics.labelled_predictions}, dead letters {cfg.topics.dead_letter}\n"
        "the first live-view rows appear a minute or two after the first labels arrive"
    )
    try:
        watch_metrics(cfg, from_beginning=False, echo=echo)
    except KeyboardInterrupt:
        pass
    finally:
        _stop([simulator, job])
        echo(f"stopped the job and the simulator; Kafka keeps running ({LocalKafka(cfg).status().describe()})")
        echo("stop it with: modelmon kafka stop")
