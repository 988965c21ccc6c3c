"""The Flink distribution inside the PyFlink pip bundle, made usable: a Flink home, the SQL client,
a standalone cluster, and `flink run` submissions of the modelmon job.

The pip bundle (site-packages/pyflink) is nearly a Flink distribution, but its `opt/` lacks the
flink-sql-gateway jar, so `bin/sql-client.sh` dies with NoClassDefFoundError (DefaultContext). Rather
than write into site-packages, `prepare_flink_home` builds a FLINK_HOME of its own under the data
directory that links back to the bundle and adds the gateway jar.

Two ways to run a script, both tried for real with Flink 2.3.0:

* local (default): `-D execution.target=local` makes the client start a per-job MiniCluster inside its
  own JVM, so no cluster has to be running. Good for bounded jobs; the job dies with the client.
* remote: submit to a standalone cluster started from the same home with `start_cluster`; the job
  outlives the client, which suits the long-running streaming pipeline.

The Python job itself (`modelmon.pipelines.job`) is submitted with `bin/flink run` from the same home
(`flink_run`), on either target; see `flink_run_command` for the options it needs.

The client exits 0 even when a statement fails (it stops at the first failing statement and prints
`[ERROR] Could not execute SQL statement.`), so `run_sql_file` reads stdout to decide success.
"""

from __future__ import annotations

import contextlib
import filecmp
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import yaml

from modelmon.config import Config
from modelmon.errors import ModelmonError
from modelmon.paths import SOURCE_ROOT, connector_jars, data_dir, gateway_jar
from modelmon.processes import alive
from modelmon.render import render_job

HOME_DIR_NAME = "flink-home"
IDENT = "modelmon"  # FLINK_IDENT_STRING: names pid and log files; $USER may be unset in containers.
LOOPBACK = "127.0.0.1"

# The project's settings, layered over the bundle's conf/config.yaml (kept for its env.java.opts.all).
PROJECT_CONF = SOURCE_ROOT / "flink-conf" / "config.yaml"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FLINK_DIR_VARS = ("FLINK_CONF_DIR", "FLINK_LIB_DIR", "FLINK_OPT_DIR", "FLINK_PLUGINS_DIR", "FLINK_LOG_DIR")


class FlinkHomeError(ModelmonError):
    """The PyFlink bundle, the gateway jar or Java could not be found."""


class SqlScriptError(ModelmonError):
    """The SQL client failed, or a statement in the script failed (despite exit code 0)."""

    def __init__(self, message: str, result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(message)
        self.result = result


class ClusterError(ModelmonError):
    """The standalone cluster did not start or stop in time."""


def pyflink_dir() -> Path:
    """The pip-installed PyFlink bundle, found without importing pyflink (importing is slow)."""
    spec = importlib.util.find_spec("pyflink")
    if spec is None or not spec.submodule_search_locations:
        raise FlinkHomeError("the apache-flink package (pyflink) is not installed in this environment")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def prometheus_reporter_jar() -> Path | None:
    """Flink's Prometheus metrics reporter, which the PyFlink bundle ships as a plugin, or None without it.

    A standalone cluster loads it from plugins/ (its settings: flink-conf/config.yaml). A local
    minicluster does not: it gives its metric registry no plugin manager, so the reporter factory must be
    on the classpath; the job's runner adds this jar to pipeline.classpaths, which PyFlink puts on the
    class loader the minicluster starts with.
    """
    jars = sorted((pyflink_dir() / "plugins" / "metrics-prometheus").glob("flink-metrics-prometheus-*.jar"))
    return jars[-1] if jars else None


def _link(target: Path, link: Path) -> None:
    """Point `link` at `target`, replacing a stale link (e.g. after the venv moved)."""
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.exists():
        shutil.rmtree(link)
    link.symlink_to(target)


def _link_files(sources: Sequence[Path], folder: Path) -> None:
    """A real folder of per-file links, with links to anything else removed.

    Real folders because config.sh lists lib/ and opt/ with plain `find`, which does not descend into a
    symlinked directory; stale links are dropped because two flink-dist jars are a startup error.
    """
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {source.name: source for source in sources}
    for entry in folder.iterdir():
        if entry.name not in wanted and entry.is_symlink():
            entry.unlink()
    for name, source in wanted.items():
        _link(source, folder / name)


def _copy_bin(source: Path, folder: Path) -> None:
    """Copy (not link) the scripts: config.sh derives FLINK_HOME from the physical path of bin/."""
    folder.mkdir(parents=True, exist_ok=True)
    for script in source.iterdir():
        copy = folder / script.name
        if script.is_file() and not (copy.is_file() and filecmp.cmp(script, copy, shallow=False)):
            shutil.copy2(script, copy)


def _flatten(tree: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    """Nested YAML to Flink's dotted keys, so overrides merge by plain dict update."""
    flat: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _write_if_changed(path: Path, text: str) -> None:
    """Leave an identical file alone so a running cluster never sees a half-written conf."""
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


# Beam's DefaultJobBundleFactory logs the whole environment of a Python worker it closes (INFO) or fails to
# clean up (WARN): every variable, a secret's too (kafka.security.password: {env: ...}). Its messages are
# lifecycle notes; a worker's failure still reaches the log as the task's exception. Appended to each log4j
# file modelmon uses.
_QUIET_LOGGERS = """
# modelmon: Beam logs a Python worker's environment, secrets included, with its messages.
logger.modelmon_beam_environment.name = org.apache.beam.runners.fnexecution.control.DefaultJobBundleFactory
logger.modelmon_beam_environment.level = OFF
"""


def _log4j_properties(bundle_file: Path) -> str:
    return bundle_file.read_text() + _QUIET_LOGGERS


def local_log4j_properties(data_dir: Path) -> Path:
    """The log4j file of a local run's JVM (PyFlink's gateway reads LOG4J_PROPERTIES): the bundle's own,
    with the loggers that would write secrets quieted."""
    path = data_dir / "log4j-local.properties"
    data_dir.mkdir(parents=True, exist_ok=True)
    _write_if_changed(path, _log4j_properties(pyflink_dir() / "conf" / "log4j-cli.properties"))
    return path


def _write_conf(bundle_conf: Path, home: Path, conf: Mapping[str, object]) -> None:
    """conf/: the bundle's other files linked; config.yaml/masters/workers and the log4j files generated."""
    folder = home / "conf"
    log4j = {p.name for p in bundle_conf.glob("log4j*.properties")}
    generated = {"config.yaml", "masters", "workers"} | log4j
    _link_files([p for p in sorted(bundle_conf.iterdir()) if p.name not in generated], folder)
    for name in sorted(log4j):
        _write_if_changed(folder / name, _log4j_properties(bundle_conf / name))
    base = yaml.safe_load((bundle_conf / "config.yaml").read_text()) or {}
    merged = _flatten(base) | {
        "env.log.dir": str(home / "log"),  # the bundle default is site-packages/pyflink/log
        "env.pid.dir": str(home / "run"),  # the default /tmp is shared with any other Flink
    }
    merged |= _flatten(yaml.safe_load(PROJECT_CONF.read_text()) or {})
    merged |= conf
    # Flink 2 reads flattened keys in config.yaml; config.sh greps env.java.home only in that form.
    _write_if_changed(folder / "config.yaml", yaml.safe_dump(merged, sort_keys=True, width=1 << 16))
    _write_if_changed(folder / "masters", f"{LOOPBACK}:{merged['rest.port']}\n")
    _write_if_changed(folder / "workers", f"{LOOPBACK}\n")


def prepare_flink_home(data_dir: Path, gateway_jar: Path, *, conf: Mapping[str, object] | None = None) -> Path:
    """Build (or refresh) `<data_dir>/flink-home`, a FLINK_HOME linking into the PyFlink bundle.

    Idempotent: safe to call before every run. `conf` overrides config.yaml keys (dotted form), e.g.
    {"rest.port": 18081}. Nothing in site-packages is modified.
    """
    if not gateway_jar.is_file():
        raise FlinkHomeError(f"SQL gateway jar not found: {gateway_jar} (run `make jars`)")
    bundle = pyflink_dir()
    home = data_dir.resolve() / HOME_DIR_NAME
    home.mkdir(parents=True, exist_ok=True)
    _copy_bin(bundle / "bin", home / "bin")
    _link_files(sorted((bundle / "lib").glob("*.jar")), home / "lib")
    opt_jars = sorted((bundle / "opt").glob("*.jar"))
    _link_files([*opt_jars, gateway_jar.resolve()], home / "opt")
    _link(bundle / "plugins", home / "plugins")  # Java follows this link; only bash's `find` does not
    for sub in ("log", "run"):
        (home / sub).mkdir(exist_ok=True)
    _write_conf(bundle / "conf", home, conf or {})
    return home


def flink_env(flink_home: Path, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the bin/ scripts: every FLINK_*_DIR pinned to this home.

    A FLINK_CONF_DIR/FLINK_LIB_DIR/... or _FLINK_HOME_DETERMINED inherited from elsewhere (PyFlink
    sets some) would otherwise win over the home the script lives in.
    """
    env = {k: v for k, v in os.environ.items() if k not in _FLINK_DIR_VARS and k != "_FLINK_HOME_DETERMINED"}
    env |= {
        "FLINK_HOME": str(flink_home),
        "FLINK_CONF_DIR": str(flink_home / "conf"),
        "FLINK_LIB_DIR": str(flink_home / "lib"),
        "FLINK_OPT_DIR": str(flink_home / "opt"),
        "FLINK_PLUGINS_DIR": str(flink_home / "plugins"),
        "FLINK_LOG_DIR": str(flink_home / "log"),
        "FLINK_IDENT_STRING": IDENT,
    }
    env |= extra_env or {}
    if not env.get("JAVA_HOME") and shutil.which("java", path=env.get("PATH")) is None:
        raise FlinkHomeError("no Java: set JAVA_HOME or put java (17) on PATH")
    return env


def sql_errors(stdout: str) -> list[str]:
    """The client's `[ERROR] ...` reports, colour codes stripped; empty means every statement ran."""
    text = _ANSI.sub("", stdout)
    return [block.strip() for block in re.findall(r"\[ERROR\](.*?)(?=\nFlink SQL>|\nShutting down|\Z)", text, re.S)]


def submitted_job_ids(stdout: str) -> list[str]:
    """Ids of jobs the client submitted without waiting (no table.dml-sync), e.g. to cancel later."""
    return re.findall(r"Job ID: ([0-9a-f]{32})", _ANSI.sub("", stdout))


def _log_causes(flink_home: Path, limit: int = 6) -> list[str]:
    """The distinct `Caused by:` lines of the last client log.

    In local mode a failing job shows on stdout only as "MiniCluster is not yet running or has
    already been shut down"; the task's real exception is only in the log.
    """
    logs = sorted((flink_home / "log").glob(f"flink-{IDENT}-sql-client-*.log"), key=lambda p: p.stat().st_mtime)
    if not logs:
        return []
    causes = [line for line in logs[-1].read_text(errors="replace").splitlines() if line.startswith("Caused by: ")]
    return list(dict.fromkeys(causes))[-limit:]


def sql_client_command(
    flink_home: Path,
    sql_file: Path | None,
    jars: Sequence[Path] = (),
    *,
    target: Literal["local", "remote"] = "local",
    dynamic_conf: Mapping[str, str] | None = None,
    init_file: Path | None = None,
) -> list[str]:
    """The sql-client.sh argument list, kept separate so it can be logged or shown to a user.

    Without `sql_file` the client is interactive; `init_file` runs first either way (tables, views).
    """
    conf: dict[str, str] = {}
    if target == "local":
        # The per-job MiniCluster would otherwise bind rest.port (8081) and clash with a standalone
        # cluster. Not rest.bind-port: the client's embedded SQL gateway falls back to that key too,
        # binds a random port and the client can no longer reach it (Connection refused).
        conf |= {"execution.target": "local", "rest.port": "0"}
    conf |= dynamic_conf or {}
    command = [str(flink_home / "bin" / "sql-client.sh"), "embedded"]
    for key, value in conf.items():
        command += ["-D", f"{key}={value}"]
    for jar in jars:
        command += ["--jar", str(jar.resolve())]
    # Without --history the client writes ~/.flink-sql-history. The statements it keeps may hold the Kafka
    # password (kafka.security): readable by this user only.
    history = flink_home / "log" / "sql-client.history"
    history.touch(mode=0o600)
    history.chmod(0o600)
    command += ["--history", str(history)]
    if init_file is not None:
        command += ["--init", str(init_file.resolve())]
    if sql_file is not None:
        command += ["--file", str(sql_file.resolve())]
    return command


def run_sql_file(
    flink_home: Path,
    sql_file: Path,
    jars: Sequence[Path] = (),
    *,
    target: Literal["local", "remote"] = "local",
    dynamic_conf: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `sql_file` with the embedded SQL client and return its output.

    target="local" runs jobs on an in-process MiniCluster; "remote" submits to the cluster at
    rest.address:rest.port of this home (see start_cluster). Put `SET 'table.dml-sync' = 'true';` in
    the script to make the client wait for INSERT / EXECUTE STATEMENT SET jobs; in local mode that is
    required, or the job is at the mercy of the client's shutdown. With check=True a non-zero exit or
    any `[ERROR]` in the output raises SqlScriptError; the detailed cause (e.g. a task's exception) is
    in log/flink-modelmon-sql-client-<host>.log, which each run overwrites.
    """
    if not sql_file.is_file():
        raise FileNotFoundError(sql_file)
    for jar in jars:
        if not jar.is_file():
            raise FileNotFoundError(jar)
    if target == "remote" and _overview(rest_url(flink_home)) is None:
        # Otherwise the client retries for about a minute before printing "Connection refused".
        raise ClusterError(f"no Flink cluster answers at {rest_url(flink_home)}; call start_cluster first")
    command = sql_client_command(flink_home, sql_file, jars, target=target, dynamic_conf=dynamic_conf)
    result = subprocess.run(
        command,
        env=flink_env(flink_home, extra_env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        errors = sql_errors(result.stdout)
        if result.returncode != 0 or errors:
            detail = "\n".join([*errors, *_log_causes(flink_home)]) or result.stderr.strip()[-2000:]
            raise SqlScriptError(
                f"{sql_file.name} failed (exit code {result.returncode}); log: {flink_home / 'log'}\n{detail}",
                result,
            )
    return result


def rest_url(flink_home: Path) -> str:
    """The cluster's REST endpoint, read back from the generated config.yaml."""
    conf = yaml.safe_load((flink_home / "conf" / "config.yaml").read_text())
    return f"http://{conf['rest.address']}:{conf['rest.port']}"


def _overview(url: str) -> dict[str, object] | None:
    """GET /overview, or None while nothing answers."""
    try:
        with urllib.request.urlopen(f"{url}/overview", timeout=2) as response:
            body: dict[str, object] = json.load(response)
            return body
    except (OSError, ValueError):  # URLError is an OSError; ValueError covers a half-started server
        return None


def _log_tail(flink_home: Path, pattern: str, lines: int = 30) -> str:
    """The end of the newest matching daemon log, for error messages."""
    logs = sorted((flink_home / "log").glob(pattern), key=lambda p: p.stat().st_mtime)
    if not logs:
        return "(no log)"
    return "\n".join(logs[-1].read_text(errors="replace").splitlines()[-lines:])


def _run_script(flink_home: Path, script: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a bin/ script; a new session keeps the daemons it forks out of our signal group."""
    return subprocess.run(
        [str(flink_home / "bin" / script)],
        env=flink_env(flink_home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        start_new_session=True,
    )


def start_cluster(flink_home: Path, *, timeout: float = 120.0) -> str:
    """Start a standalone JobManager + one TaskManager and wait until a TaskManager has registered.

    Returns the REST URL. Waiting for a registered TaskManager (not just a REST answer) means a job
    submitted right after gets its slots. Refuses to start when something already answers on the
    REST port, so two clusters never fight over it.
    """
    url = rest_url(flink_home)
    if _overview(url) is not None:
        raise ClusterError(f"a Flink REST endpoint already answers at {url}; stop it first")
    started = _run_script(flink_home, "start-cluster.sh", timeout)
    if started.returncode != 0:
        raise ClusterError(f"start-cluster.sh exited {started.returncode}:\n{started.stdout}{started.stderr}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        overview = _overview(url)
        if overview is not None and int(str(overview.get("taskmanagers", 0))) >= 1:
            return url
        time.sleep(1)
    jm_log = _log_tail(flink_home, f"flink-{IDENT}-standalonesession-*.log")
    stop_cluster(flink_home)
    raise ClusterError(f"no TaskManager registered at {url} within {timeout:.0f}s; jobmanager log:\n{jm_log}")


def _daemon_pids(flink_home: Path) -> list[int]:
    """Live pids from the pid files flink-daemon.sh keeps in run/."""
    pids = (
        int(word)
        for pid_file in (flink_home / "run").glob(f"flink-{IDENT}-*.pid")
        for word in pid_file.read_text().split()
        if word.isdigit()
    )
    return [pid for pid in pids if alive(pid)]


def stop_cluster(flink_home: Path, *, timeout: float = 60.0) -> None:
    """Stop the cluster started by start_cluster and wait until its processes are gone.

    stop-cluster.sh sends SIGTERM and SIGKILLs after 10 s; a no-op when nothing runs.
    """
    running = _daemon_pids(flink_home)
    stopped = _run_script(flink_home, "stop-cluster.sh", timeout)
    if stopped.returncode != 0:
        raise ClusterError(f"stop-cluster.sh exited {stopped.returncode}:\n{stopped.stdout}{stopped.stderr}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        remaining = [pid for pid in running if alive(pid)]
        if not remaining:
            return
        time.sleep(0.5)
    raise ClusterError(f"Flink daemons still running after {timeout:.0f}s: pids {remaining}")


def open_sql_client(cfg: Config, *, bounded: bool) -> int:
    """The interactive SQL client on a local minicluster, with the Kafka connector and the job's tables
    and views (init script) loaded. Returns the client's exit code."""
    home = prepare_flink_home(data_dir(cfg), gateway_jar(cfg))
    init = data_dir(cfg) / "sql-client-init.sql"
    # It holds the Kafka password, if any: readable by this user only.
    init.touch(mode=0o600)
    init.chmod(0o600)
    init.write_text(render_job(cfg, bounded=bounded, reveal_secrets=True).to_init_script())
    command = sql_client_command(home, None, connector_jars(cfg), init_file=init)
    return subprocess.run(command, env=flink_env(home), check=False).returncode


def run_sql_script(cfg: Config, sql_file: Path) -> subprocess.CompletedProcess[str]:
    """Run a SQL file (e.g. the rendered job) in the SQL client on a local minicluster and wait for its
    jobs to end (a bounded job ends; a streaming one runs until the client is stopped)."""
    home = prepare_flink_home(data_dir(cfg), gateway_jar(cfg))
    return run_sql_file(home, sql_file, connector_jars(cfg), dynamic_conf={"table.dml-sync": "true"})


# `flink run` prints this line for every job the program submits, attached or detached.
_RUN_JOB_ID = re.compile(r"Job has been submitted with JobID ([0-9a-f]{32})")


class FlinkRunError(ModelmonError):
    """`flink run` failed: the Python program raised, the job failed, or the run timed out."""

    def __init__(self, message: str, result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(message)
        self.result = result


def flink_run_command(
    flink_home: Path,
    job_args: Sequence[str],
    *,
    target: Literal["local", "remote"],
    detached: bool = False,
    python: Path | str | None = None,
) -> list[str]:
    """The `bin/flink run` argument list for the modelmon job (`modelmon.pipelines.job`), as a user
    would type it; `job_args` go to the job, e.g. ["--config", "modelmon.yaml", "--bounded"].

    Why each part, as tried with Flink 2.3.0:

    * `-pyclientexec`: the CLI otherwise starts `python` from PATH, which lacks modelmon and pyflink.
      `python` defaults to this interpreter, unresolved (a resolved venv link loses the venv).
    * `-pyexec`: the interpreter of Python UDF workers on the TaskManagers (none yet; harmless).
    * `-pym modelmon.pipelines.job`: the installed module, so no path into a checkout is needed
      (`-py <checkout>/pipelines/job.py` works too; `--pyFiles` is not required in 2.3).
    * no `--jarfile`/`-C`: the job's own `pipeline.jars` (the Kafka connector) is honoured on both
      targets; the client ships the jars to the cluster.
    * `--`: ends the CLI's options, so no job argument is ever taken for one of them.
    * local: `-D rest.port=0`, or the CLI's MiniCluster binds this home's rest.port and fails with
      BindException while a standalone cluster of the same home runs.
    * detached (`-d`): the CLI returns once the job is submitted. The job's script must then skip
      `TableResult.wait()` (it reads `execution.attached`, which is "false"); a script that waits
      keeps the CLI running as long as the job runs.
    """
    interpreter = str(python or sys.executable)
    command = [str(flink_home / "bin" / "flink"), "run", "-t", target]
    if target == "local":
        command += ["-D", "rest.port=0"]
    if detached:
        command.append("-d")
    command += ["-pyclientexec", interpreter, "-pyexec", interpreter, "-pym", "modelmon.pipelines.job"]
    return [*command, "--", *job_args]


def flink_run_job_ids(stdout: str) -> list[str]:
    """Ids of the jobs a `flink run` submitted, e.g. to cancel a detached one later."""
    return _RUN_JOB_ID.findall(stdout)


def _cancel_job(url: str, job_id: str) -> None:
    """Ask the cluster to cancel a job (PATCH /jobs/<id>?mode=cancel); best effort."""
    request = urllib.request.Request(f"{url}/jobs/{job_id}?mode=cancel", method="PATCH")
    try:
        with urllib.request.urlopen(request, timeout=5):
            pass
    except OSError:
        pass


def _kill_group(pid: int, sig: signal.Signals) -> None:
    """Signal a process group; it may have ended on its own meanwhile."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _run_failure_detail(stdout: str, stderr: str) -> str:
    """The Python program's output (its traceback lands on stdout) and the CLI's exception lines
    (stderr) without the Java stack frames."""
    out = [line for line in stdout.splitlines() if line.strip()][-25:]
    err = [line for line in stderr.splitlines() if line.strip() and not line.lstrip().startswith(("at ", "..."))]
    return "\n".join([*out, *err[-10:]])


def flink_run(
    flink_home: Path,
    job_args: Sequence[str],
    *,
    target: Literal["local", "remote"],
    detached: bool = False,
    python: Path | str | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Submit the modelmon job with this home's `bin/flink run` and wait for the CLI to exit.

    Attached (the default), the CLI returns when the job ends: a bounded run when both topics are
    read, a streaming run never, so give a timeout. The exit code is non-zero when the program or
    the job fails; but a job that keeps failing is restarted (checkpointing enables restarts), so
    only a timeout ends it. On timeout the CLI and its Python process are killed and, for target
    "remote", the attached jobs it submitted are cancelled so they do not hold the cluster's slots.
    Raises FlinkRunError with the end of the output; the client log is in `<home>/log`.
    """
    if target == "remote" and _overview(rest_url(flink_home)) is None:
        # Otherwise the CLI retries for minutes before giving up.
        raise ClusterError(f"no Flink cluster answers at {rest_url(flink_home)}; call start_cluster first")
    command = flink_run_command(flink_home, job_args, target=target, detached=detached, python=python)
    # A session of its own: on timeout the CLI's JVM and the Python process it started die together.
    with subprocess.Popen(
        command,
        env=flink_env(flink_home, extra_env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid, signal.SIGTERM)
            try:
                stdout, stderr = process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                _kill_group(process.pid, signal.SIGKILL)
                stdout, stderr = process.communicate()
            job_ids = flink_run_job_ids(stdout)
            cancelled = job_ids if target == "remote" and not detached else []
            for job_id in cancelled:
                _cancel_job(rest_url(flink_home), job_id)
            raise FlinkRunError(
                f"flink run did not finish within {timeout}s (submitted: {job_ids}, cancelled: {cancelled}); "
                f"log: {flink_home / 'log'}\n{_run_failure_detail(stdout, stderr)}",
                subprocess.CompletedProcess(command, process.returncode, stdout, stderr),
            ) from None
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if result.returncode != 0:
        raise FlinkRunError(
            f"flink run exited {result.returncode}; log: {flink_home / 'log'}\n{_run_failure_detail(stdout, stderr)}",
            result,
        )
    return result
