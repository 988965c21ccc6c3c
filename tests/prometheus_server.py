"""A real Prometheus server for tests: Debian's /usr/bin/prometheus (installed by `make setup`) with a
generated config that scrapes the targets a test names every second, its data in a temporary folder and its
web API on a free port of 127.0.0.1. Stopped when the test ends."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
import yaml

Sample = dict[str, Any]  # {"metric": {label: value}, "value": [timestamp, "text"]}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PrometheusServer:
    """The HTTP API of a running server: instant queries and the state of its scrape targets."""

    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log

    def query(self, expr: str) -> list[Sample]:
        """GET /api/v1/query: the instant vector of `expr` now."""
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert body.get("status") == "success", f"query {expr!r} failed: {body}"
        assert body["data"]["resultType"] == "vector", body
        result: list[Sample] = body["data"]["result"]
        return result

    def values(self, expr: str) -> dict[frozenset[tuple[str, str]], float]:
        """The query's samples as {labels: value}."""
        return {frozenset(s["metric"].items()): float(s["value"][1]) for s in self.query(expr)}

    def wait_for(
        self,
        expr: str,
        done: Callable[[list[Sample]], bool],
        *,
        timeout_s: float = 60.0,
        detail: Callable[[], str] = str,
    ) -> list[Sample]:
        """Query `expr` until `done(result)` holds; fail with the last result, the targets and `detail()`."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(expr)
            if done(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{expr!r} did not reach the expected state in {timeout_s:.0f}s; last result: {result}\n"
                    f"targets: {self.target_health()}\n{detail()}"
                )
            time.sleep(1)

    def target_health(self) -> dict[str, str]:
        """scrape URL -> "up" / "down" / "unknown" (with the last error), from /api/v1/targets."""
        body = requests.get(f"{self.url}/api/v1/targets", timeout=10).json()
        return {
            target["scrapeUrl"]: f"{target['health']} {target.get('lastError', '')}".strip()
            for target in body["data"]["activeTargets"]
        }


def scrape_config(job: str, targets: Sequence[str]) -> dict[str, Any]:
    return {"job_name": job, "static_configs": [{"targets": list(targets)}]}


@contextlib.contextmanager
def running_prometheus(
    work_dir: Path,
    scrape_configs: Sequence[Mapping[str, Any]],
    *,
    rule_files: Sequence[Path] = (),
    start_timeout_s: float = 60.0,
) -> Iterator[PrometheusServer]:
    """Start Prometheus scraping `scrape_configs` every second, with `rule_files` loaded; yield once it is
    ready (/-/ready); stop it."""
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    assert Path(binary).is_file(), "no prometheus binary: `make setup` installs Debian's prometheus package"
    work_dir.mkdir(parents=True, exist_ok=True)
    config = work_dir / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(path.resolve()) for path in rule_files],
                "scrape_configs": [dict(c) for c in scrape_configs],
            },
            sort_keys=False,
        )
    )
    address = f"127.0.0.1:{free_port()}"
    log = work_dir / "prometheus.log"
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={work_dir / 'data'}",
        f"--web.listen-address={address}",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        server = PrometheusServer(f"http://{address}", log)
        _wait_ready(server, process, start_timeout_s)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(server: PrometheusServer, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}:\n{server.log.read_text()[-3000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{server.url}/-/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"prometheus not ready within {timeout_s:.0f}s:\n{server.log.read_text()[-3000:]}")
