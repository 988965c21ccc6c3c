"""The standalone Flink cluster as a user runs it: `modelmon cluster start|status|stop`, `modelmon submit`
(the job through `bin/flink run`, as on any Flink 2.x cluster) and `modelmon cluster stop-job` (stop with
a savepoint, from which the next submit resumes, at any parallelism).

The cluster's home is `<paths.data_dir>/flink-home` (flink_dist.prepare_flink_home) with
`cluster.rest_port` and `cluster.slots` layered over flink-conf/config.yaml. Checkpoints and savepoints
go to local folders under the data directory, which the JobManager, the TaskManager and the submitting
client share because they run on this machine.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelmon.config import Config
from modelmon.flink_dist import (
    ClusterError,
    flink_run,
    flink_run_job_ids,
    prepare_flink_home,
    start_cluster,
    stop_cluster,
)
from modelmon.paths import data_dir, gateway_jar, savepoint_dir
from modelmon.render import render_job
from modelmon.topics import ensure_topics

log = logging.getLogger(__name__)

# Job states after which a job holds no slots and writes nothing more.
TERMINAL_STATES = frozenset({"FINISHED", "CANCELED", "FAILED"})


def cluster_home(cfg: Config) -> Path:
    """The Flink home the cluster runs from and `flink run` submits with (created or refreshed)."""
    conf = {"rest.port": cfg.cluster.rest_port, "taskmanager.numberOfTaskSlots": cfg.cluster.slots}
    return prepare_flink_home(data_dir(cfg), gateway_jar(cfg), conf=conf)


def rest_url(cfg: Config) -> str:
    return f"http://127.0.0.1:{cfg.cluster.rest_port}"


def _request(cfg: Config, path: str, *, method: str = "GET", body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{rest_url(cfg)}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        raise ClusterError(f"{method} {path}: HTTP {exc.code}: {exc.read().decode(errors='replace')[:2000]}") from None
    except OSError as exc:
        raise ClusterError(
            f"no Flink cluster answers at {rest_url(cfg)} ({exc}); start one: modelmon cluster start"
        ) from None


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    name: str
    state: str


@dataclass(frozen=True)
class ClusterStatus:
    url: str
    taskmanagers: int
    slots_total: int
    slots_available: int
    jobs: tuple[JobInfo, ...]

    def describe(self) -> str:
        lines = [
            f"Flink cluster at {self.url}: {self.taskmanagers} TaskManager(s), "
            f"{self.slots_available} of {self.slots_total} slots free"
        ]
        lines += [f"  job {job.job_id} {job.name!r}: {job.state}" for job in self.jobs]
        return "\n".join(lines)


def start(cfg: Config) -> str:
    """Start the JobManager and one TaskManager; returns the REST URL once the TaskManager registered."""
    return start_cluster(cluster_home(cfg))


def stop(cfg: Config) -> None:
    """Stop the cluster's daemons (their running jobs stop with them; a streaming job's checkpoints stay)."""
    stop_cluster(cluster_home(cfg))


def jobs(cfg: Config) -> list[JobInfo]:
    overview = _request(cfg, "/jobs/overview")
    return [JobInfo(job["jid"], job["name"], job["state"]) for job in overview["jobs"]]


def status(cfg: Config) -> ClusterStatus:
    overview = _request(cfg, "/overview")
    return ClusterStatus(
        url=rest_url(cfg),
        taskmanagers=int(overview["taskmanagers"]),
        slots_total=int(overview["slots-total"]),
        slots_available=int(overview["slots-available"]),
        jobs=tuple(jobs(cfg)),
    )


def write_job_config(cfg: Config, parallelism: int) -> Path:
    """The effective config (file and environment merged, validated here) with the parallelism to submit
    at, for the job's client process; secrets stay references (environment variable or file)."""
    submitted = cfg.model_copy(update={"job": cfg.job.model_copy(update={"parallelism": parallelism})})
    path = data_dir(cfg) / "submitted-config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(submitted.model_dump(mode="json"), sort_keys=False))
    return path


def submit(cfg: Config, *, bounded: bool, parallelism: int, fresh: bool = False, timeout: float | None = None) -> str:
    """Submit the job with `bin/flink run`; returns its job id.

    A streaming job is submitted detached (the command returns; the job runs on the cluster) and resumes
    from the newest savepoint or checkpoint of the same SQL unless `fresh`. A bounded job is attached:
    this returns when it has read both topics to their end and committed its results.
    """
    if parallelism > cfg.cluster.slots:
        raise ClusterError(f"parallelism {parallelism} exceeds the cluster's {cfg.cluster.slots} slots (cluster.slots)")
    running = [job for job in jobs(cfg) if job.name == cfg.job.name and job.state not in TERMINAL_STATES]
    if running and not bounded:
        ids = ", ".join(job.job_id for job in running)
        raise ClusterError(
            f"job {cfg.job.name!r} already runs on the cluster ({ids}); stop it first: modelmon cluster stop-job"
        )
    ensure_topics(cfg.model_copy(update={"job": cfg.job.model_copy(update={"parallelism": parallelism})}))
    args = ["--config", str(write_job_config(cfg, parallelism))]
    args += ["--bounded"] if bounded else []
    args += ["--fresh"] if fresh else []
    result = flink_run(
        cluster_home(cfg), args, target="remote", detached=not bounded, python=cfg.job.python, timeout=timeout
    )
    job_ids = flink_run_job_ids(result.stdout)
    if len(job_ids) != 1:
        raise ClusterError(f"flink run submitted {len(job_ids)} jobs, expected one:\n{result.stdout[-3000:]}")
    return job_ids[0]


def stop_job(cfg: Config, job_id: str | None = None, *, timeout: float = 300.0) -> Path:
    """Stop a streaming job with a savepoint (its sinks commit; no further checkpoint is taken) and return the
    savepoint's folder. The next `submit` resumes from it, at any parallelism. Without `job_id`, the job
    named job.name that is running."""
    if job_id is None:
        running = [job for job in jobs(cfg) if job.name == cfg.job.name and job.state == "RUNNING"]
        if len(running) != 1:
            raise ClusterError(f"expected one running job named {cfg.job.name!r}, found {len(running)}: give its id")
        job_id = running[0].job_id
    target = savepoint_dir(cfg, render_job(cfg, bounded=False).fingerprint)
    trigger = _request(
        cfg, f"/jobs/{job_id}/stop", method="POST", body={"targetDirectory": str(target), "drain": False}
    )
    request_id = trigger["request-id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = _request(cfg, f"/jobs/{job_id}/savepoints/{request_id}")
        if answer["status"]["id"] == "COMPLETED":
            operation = answer.get("operation") or {}
            if "location" not in operation:
                raise ClusterError(f"stop with savepoint of job {job_id} failed: {operation.get('failure-cause')}")
            location = str(operation["location"]).removeprefix("file:")
            log.info("job %s stopped with savepoint %s", job_id, location)
            return Path(location)
        time.sleep(1)
    raise ClusterError(f"job {job_id} did not stop with a savepoint within {timeout:.0f}s")


def checkpoint_stats(cfg: Config, job_id: str) -> dict[str, Any]:
    """The job's checkpoint statistics (counts, the latest completed and restored checkpoint, sizes)."""
    stats: dict[str, Any] = _request(cfg, f"/jobs/{job_id}/checkpoints")
    return stats


def failure_cause(cfg: Config, job_id: str) -> str:
    """The first line of a job's root exception and of its deepest cause (the one that says what to do)."""
    entries = (_request(cfg, f"/jobs/{job_id}/exceptions").get("exceptionHistory") or {}).get("entries") or []
    root = str(entries[0].get("stacktrace") or "").strip() if entries else ""  # the newest first
    if not root:
        return "no exception recorded"
    lines = root.splitlines()
    causes = [line for line in lines if line.startswith("Caused by:")]
    return "\n".join([lines[0], *causes[-1:]])


def restored_from(cfg: Config, job_id: str, *, timeout: float = 120.0) -> str | None:
    """The savepoint or checkpoint a job restored its state from (None: it started without state), once the
    job is running; from the job's checkpoint statistics."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = next((job.state for job in jobs(cfg) if job.job_id == job_id), None)
        if state == "RUNNING":
            stats = checkpoint_stats(cfg, job_id)
            restored = (stats.get("latest") or {}).get("restored")
            if restored is not None:
                return str(restored["external_path"]).removeprefix("file:")
            if (stats.get("counts") or {}).get("completed", 0) > 0:
                return None  # checkpoints completed and none was restored
        elif state in TERMINAL_STATES:
            raise ClusterError(f"job {job_id} is {state}: {failure_cause(cfg, job_id)}")
        time.sleep(1)
    raise ClusterError(f"job {job_id} was not running within {timeout:.0f}s")
