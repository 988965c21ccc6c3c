"""`modelmon demo`: the whole system on one machine: local Kafka, the streaming job, the simulator, and
the metrics topic printed as rows arrive."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import yaml

from modelmon.config import Config, DriftConfig, JoinConfig, format_duration, parse_duration
from modelmon.kafka_local import LocalKafka
from modelmon.paths import data_dir
from modelmon.reference import write_simulated_reference
from modelmon.topics import ensure_topics
from modelmon.watch import watch_metrics

# Long enough for the simulator's final flush and the job's cancellation.
STOP_GRACE_S = 45.0
# The demo's label horizon: final cohort rows after minutes, not after the 6 hours of the default config.
DEMO_HORIZON = timedelta(minutes=12)
REFERENCE_TRANSACTIONS = 20_000


def parse_horizon(value: str | timedelta) -> timedelta:
    """A label horizon as the config reads durations ('12min', '1h', '90s'); ValueError if it is not a valid
    join.label_horizon."""
    horizon = parse_duration(value)
    JoinConfig(label_horizon=horizon)  # positive, whole milliseconds: as the config checks it
    return horizon


def demo_config(cfg: Config, *, horizon: timedelta = DEMO_HORIZON) -> tuple[Config, list[str]]:
    """The config the demo's job and simulator run with, and a line per change from `cfg`.

    The label horizon is `horizon`; without drift.reference_file, the demo writes simulated reference scores
    under the data dir and measures drift against them.
    """
    notes = []
    join = JoinConfig.model_validate({**cfg.join.model_dump(), "label_horizon": horizon})
    final_after = format_duration(horizon + cfg.windows.size)
    notes.append(
        f"label horizon {format_duration(horizon)} for the demo (join.label_horizon is "
        f"{format_duration(cfg.join.label_horizon)}): a cohort's final row comes about {final_after} after its "
        "window starts"
    )
    if horizon < cfg.simulator.label_delay_max:
        notes.append(
            f"labels later than {format_duration(horizon)} are not joined (the simulator sends some up to "
            f"{format_duration(cfg.simulator.label_delay_max)} late)"
        )
    drift = cfg.drift
    if drift.reference_file is None:
        path = data_dir(cfg) / "demo-reference.txt"
        written = write_simulated_reference(cfg.simulator, path, n_transactions=REFERENCE_TRANSACTIONS)
        drift = DriftConfig(reference_file=path)
        notes.append(f"drift reference: {written} simulated scores in {path}")
    return cfg.model_copy(update={"join": join, "drift": drift}), notes


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


def intro(cfg: Config) -> str:
    """What the demo shows when, for its user."""
    window = format_duration(cfg.windows.size)
    first_labels = format_duration(cfg.simulator.label_delay_min)
    final = format_duration(cfg.join.label_horizon + cfg.windows.size)
    return (
        "what appears when:\n"
        f"  unlabelled  throughput, scores, drift, estimated performance: about {window} after start, "
        "no labels needed\n"
        f"  live        measured performance by label arrival: a minute or two after the first labels "
        f"(labels come {first_labels} or more after their prediction)\n"
        "  comparison  challenger vs champion: with the live rows\n"
        "  cohort      provisional rows (revision n) as labels arrive, about one per window of label time; "
        f"each window's final row {final} after the window starts, the first ones about {final} in\n"
        "`modelmon watch --help` explains the columns and filters; Ctrl-C stops the demo"
    )


def run_demo(cfg: Config, *, echo: Callable[[str], None], horizon: timedelta = DEMO_HORIZON) -> None:
    cfg, notes = demo_config(cfg, horizon=horizon)
    echo(LocalKafka(cfg).start().describe())
    ensure_topics(cfg)
    config_file = _write_effective_config(cfg)
    logs = data_dir(cfg) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    job = _spawn(["--config", str(config_file), "run"], logs / "job.log")
    simulator = _spawn(["--config", str(config_file), "simulate"], logs / "simulator.log")
    exporter = _spawn(["--config", str(config_file), "exporter"], logs / "exporter.log")
    sim = cfg.simulator
    delays = f"{format_duration(sim.label_delay_min)} to {format_duration(sim.label_delay_max)}"
    echo(
        f"job: streaming on a local Flink minicluster, log {logs / 'job.log'}\n"
        f"simulator: {sim.rate:g} transactions/s x {len(sim.model_versions)} model versions, "
        f"labels {delays} later, log {logs / 'simulator.log'}\n"
        f"topics on {cfg.kafka.bootstrap_servers}: metrics {cfg.topics.metrics}, labelled predictions "
        f"{cfg.topics.labelled_predictions}, dead letters {cfg.topics.dead_letter}, alerts {cfg.topics.alerts}\n"
        f"live page: http://{cfg.exporter.host}:{cfg.exporter.port}/ (Prometheus metrics at /metrics; alert rules "
        f"evaluated there), log {logs / 'exporter.log'}"
    )
    for note in notes:
        echo(note)
    echo(intro(cfg))
    try:
        watch_metrics(cfg, from_beginning=False, echo=echo)
    except KeyboardInterrupt:
        pass
    finally:
        _stop([exporter, simulator, job])
        kafka = LocalKafka(cfg).status().describe()
        echo(f"stopped the job, the simulator and the exporter; Kafka keeps running ({kafka})")
        echo("stop it with: modelmon kafka stop")
