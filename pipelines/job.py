"""The modelmon Flink SQL job: renders the templates and runs them as one STATEMENT SET.

Entry points: `modelmon run` (local minicluster), and on any Flink 2.x cluster
`flink run -pyclientexec .venv/bin/python -pym modelmon.pipelines.job -- --config modelmon.yaml [--bounded]`
(add `-d` to submit a streaming job and return).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from modelmon.history.keeper import HistoryKeeper

from modelmon.config import Config, load_config
from modelmon.errors import stop_on_sigterm
from modelmon.flink_dist import local_log4j_properties, prometheus_reporter_jar
from modelmon.logs import configure_logging
from modelmon.paths import connector_jars, data_dir, has_other_checkpoints, latest_checkpoint
from modelmon.render import RenderedJob, render_job

log = logging.getLogger(__name__)


def create_table_env(cfg: Config, job: RenderedJob) -> Any:
    from pyflink.table import EnvironmentSettings, TableEnvironment

    # A local run's JVM logs with the bundle's log4j file, minus the loggers that would write secrets.
    os.environ.setdefault("LOG4J_PROPERTIES", str(local_log4j_properties(data_dir(cfg))))
    # The heap of the JVM PyFlink starts for a local run (the minicluster's), not a quarter of the machine's
    # memory; JVM_ARGS the user set come after, so theirs win. (`flink run` starts its own JVM: this is unused.)
    os.environ["JVM_ARGS"] = f"-Xmx{cfg.job.heap} {os.environ.get('JVM_ARGS', '')}".strip()
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    for key, value in job.settings.items():
        conf.set(key, value)
    conf.set("pipeline.jars", ";".join(jar.as_uri() for jar in connector_jars(cfg)))
    reporter = prometheus_reporter_jar()
    if reporter is not None and conf.get("execution.target", "local") == "local":
        # Flink's Prometheus reporter (job settings) for a minicluster, which loads no plugins.
        conf.set("pipeline.classpaths", reporter.as_uri())
    return t_env


def execute(t_env: Any, job: RenderedJob) -> Any:
    """Create the job's tables and views, then submit its inserts as one STATEMENT SET; returns the TableResult."""
    for statement in job.setup:
        t_env.execute_sql(statement)
    statements = t_env.create_statement_set()
    for insert in job.inserts:
        statements.add_insert_sql(insert)
    return statements.execute()


def submit(cfg: Config, *, bounded: bool, resume: bool = True) -> tuple[Any, bool]:
    """Create the tables and views, submit the inserts as one job; return its TableResult and whether
    the client is attached (`flink run -d` detaches: then nobody waits for the job).

    A streaming run resumes from the newest checkpoint of the previous one (offsets, join and window
    state), so stopping and starting again neither loses nor double-counts; `resume=False` starts afresh.
    """
    job = render_job(cfg, bounded=bounded, reveal_secrets=True)
    t_env = create_table_env(cfg, job)
    checkpoint = latest_checkpoint(cfg, job.fingerprint) if resume and not bounded else None
    if checkpoint is not None:
        log.info("resuming from checkpoint %s", checkpoint)
        t_env.get_config().set("execution.state-recovery.path", checkpoint.as_uri())
    elif resume and not bounded and has_other_checkpoints(cfg, job.fingerprint):
        log.warning(
            "the job's SQL changed since the last run (config or modelmon version), so its checkpoints cannot be "
            "restored; starting from the consumer group's committed offsets, without the join's state"
        )
    result = execute(t_env, job)
    client = result.get_job_client()
    if client is not None:
        log.info("submitted job %s (%s)", client.get_job_id(), "bounded" if bounded else "streaming")
    return result, t_env.get_config().get("execution.attached", "true") != "false"


def run(cfg: Config, *, bounded: bool, resume: bool = True) -> None:
    """Run until the job ends: a bounded run ends once both topics are read; a streaming run runs until
    Ctrl-C or SIGTERM, which cancel it (its last checkpoint is kept for the next start). Meanwhile the
    history table's committed files are added to its Delta log (HistoryKeeper)."""
    result, attached = submit(cfg, bounded=bounded, resume=resume)
    if not attached:
        return
    keeper = HistoryKeeper(cfg).start() if cfg.history.enabled else None
    try:
        result.wait()
    except KeyboardInterrupt:
        client = result.get_job_client()
        if client is not None:
            log.info("cancelling job %s", client.get_job_id())
            client.cancel().result()
        raise
    finally:
        if keeper is not None:
            keeper.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelmon-job", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML config file (default: built-in defaults)")
    parser.add_argument("--bounded", action="store_true", help="read the topics up to their current end, then exit")
    parser.add_argument("--fresh", action="store_true", help="do not resume from the last streaming checkpoint")
    args = parser.parse_args(argv)
    configure_logging(logging.INFO)
    stop_on_sigterm()
    run(load_config(args.config), bounded=args.bounded, resume=not args.fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
