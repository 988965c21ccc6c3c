"""Render the Flink SQL job from the templates in sql/ and the config; Python never concatenates SQL."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jinja2

from modelmon.config import Config, format_duration
from modelmon.kafka_security import connector_properties
from modelmon.paths import checkpoint_dir, data_dir, history_dir

# A decimal number as JSON writes one. TRY_CAST(... AS DOUBLE) alone also takes 'NaN', 'Infinity', '1d' and hex
# floats; a NaN would then pass `BETWEEN 0 AND 1`'s negation, which the planner rewrites as `< 0 OR > 1`.
NUMBER_PATTERN = r"^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$"
MAX_ID_LENGTH = 256

# Templates in the order the job creates them: connectors apart from logic, then one STATEMENT SET. The sources'
# computed columns call the parsing functions, so those come first.
PARSING = ("functions/parsing",)
SOURCES = ("sources/predictions_raw", "sources/labels_raw")
STREAMING_SOURCES = ("sources/labelled_predictions_replay",)
SINKS = ("sinks/metrics", "sinks/labelled_predictions", "sinks/dead_letter")
HISTORY_SINKS = ("sinks/history",)
# A template may hold several statements, each ended by a line holding only ";".
VIEWS = (
    "functions/metrics",
    "views/predictions_checked",
    "views/labels_checked",
    "views/labelled_predictions",
    "views/live",
    "views/unlabelled",
    "views/cohort",
    "views/comparison",
    "views/metrics",
)
INSERTS = ("inserts/dead_letter", "inserts/labelled_predictions", "inserts/metrics")
HISTORY_INSERTS = ("inserts/history",)


def sql_interval(value: timedelta) -> str:
    """A Flink day-time interval literal; config durations are whole milliseconds by validation."""
    millis = int(value / timedelta(milliseconds=1))
    seconds, ms = divmod(millis, 1000)
    minutes, s = divmod(seconds, 60)
    hours, mi = divmod(minutes, 60)
    days, h = divmod(hours, 24)
    return f"INTERVAL '{days} {h:02d}:{mi:02d}:{s:02d}.{ms:03d}' DAY TO SECOND(3)"


def sql_string(value: str) -> str:
    """Text for inside a SQL string literal: a quote is doubled, so no value can end the literal."""
    return value.replace("'", "''")


def millis(value: timedelta) -> int:
    return int(value / timedelta(milliseconds=1))


def reference_histogram(cfg: Config) -> str | None:
    """The reference scores of drift.reference_file as counts per score bin ("c0,c1,..."), or None."""
    if cfg.drift.reference_file is None:
        return None
    from modelmon.reference import read_reference_scores
    from modelmon.udfs.metrics_math import score_bin_index
    from modelmon.udfs.window_metrics import format_counts

    counts = [0] * cfg.metrics.score_bins
    for score in read_reference_scores(cfg.drift.reference_file):
        counts[score_bin_index(score, cfg.metrics.score_bins)] += 1
    return format_counts(counts)


def _template_context(cfg: Config, bounded: bool, reveal_secrets: bool, watermarks: bool = True) -> dict[str, object]:
    window = cfg.windows.size
    interval = cfg.cohort.revision_interval
    # A cohort's provisional revisions run from its first prediction until its last label can arrive: labels
    # come up to label_horizon after a prediction of the window, and up to max_label_skew before one.
    cohort_life = window + cfg.join.label_horizon + cfg.join.max_label_skew + 2 * interval
    latency_edges = [int(edge.total_seconds()) for edge in cfg.metrics.latency_buckets]
    return {
        "cfg": cfg,
        "bounded": bounded,
        # The inputs have watermarks (Kafka tables); the checking views then tell late records.
        "watermarks": watermarks,
        "number_pattern": NUMBER_PATTERN,
        "max_id_length": MAX_ID_LENGTH,
        "window_seconds": int(window.total_seconds()),
        "revision_seconds": int(interval.total_seconds()),
        "cohort_range": cohort_life,
        # A silent labels topic stops holding the watermark back only after the horizon (sources/labels_raw).
        "labels_idle_timeout": max(cfg.windows.idle_timeout, cfg.join.label_horizon),
        # A partition of the replayed labelled-predictions topic gets rows at each checkpoint that its task wrote
        # any; three checkpoints without is a task with nothing to write, or none (after a rescale to fewer).
        "replay_idle_timeout": 3 * cfg.job.checkpoint_interval,
        # How far an interval join holds its output watermark back: its widest bound.
        "join_delay": max(cfg.join.label_horizon, cfg.join.max_label_skew),
        # Above every provisional revision: ceil((bucket_end - cohort_start) / interval) < this.
        "final_revision": str(math.ceil(cohort_life / interval) + 1),
        "latency_edges": latency_edges,
        "latency_columns": [f"latency_{i}" for i in range(len(latency_edges) + 1)],
        "reference_counts": reference_histogram(cfg),
        "history_uri": history_dir(cfg).as_uri(),
        "kafka_properties": connector_properties(cfg.kafka, reveal=reveal_secrets),
    }


def split_statements(text: str) -> list[str]:
    """The statements of one rendered template, separated by lines holding only ';'."""
    parts = re.split(r"^;[ \t]*$", text, flags=re.MULTILINE)
    return [part.strip() for part in parts if part.strip()]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_sql_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
    )
    env.filters["interval"] = sql_interval
    env.filters["millis"] = millis
    env.filters["duration"] = format_duration
    env.filters["sql_string"] = sql_string
    return env


def _sql_dir() -> Path:
    """The templates ship as package data of modelmon.sql (the sql/ folder of the checkout)."""
    import modelmon.sql

    return Path(modelmon.sql.__file__).parent


@dataclass(frozen=True)
class RenderedJob:
    fingerprint: str  # of the statements: names the checkpoint folder a run may resume from
    settings: dict[str, str]
    setup: list[str]  # CREATE TABLE / CREATE TEMPORARY VIEW, in order
    inserts: list[str]  # run together as one STATEMENT SET

    def to_init_script(self) -> str:
        """Settings, tables and views without the inserts: the job's world, to explore in the SQL client."""
        parts = [f"SET '{key}' = '{sql_string(value)}';" for key, value in self.settings.items()]
        parts += [f"{statement};" for statement in self.setup]
        return "\n\n".join(parts) + "\n"

    def to_sql_script(self) -> str:
        """The whole job as one file for `sql-client.sh -f`: the init script, then one STATEMENT SET."""
        body = "\n\n".join(f"{statement};" for statement in self.inserts)
        return f"{self.to_init_script()}\nEXECUTE STATEMENT SET\nBEGIN\n\n{body}\n\nEND;\n"


# Settings that decide how checkpointed state maps onto the job's operators. They are part of the fingerprint,
# so a job never tries to restore state that was written under other operator ids.
STATE_SETTINGS = {
    # Operator uids from the plan's nodes, not hashes of the chained job graph: chaining changes with the
    # parallelism (an operator forced to parallelism 1 chains with its neighbours at -p 1, not at -p 2), so
    # without this a savepoint taken at one parallelism cannot be restored at another.
    "table.exec.uid.generation": "ALWAYS",
    # One plan for what several INSERTs share (the checking views, the join): Flink optimizes a view read by
    # several statements once when their plans have the same digest, instead of once per statement, where each
    # copy is pruned differently and runs as operators of its own (the join three times, each record parsed in
    # every copy).
    "table.optimizer.reuse-optimize-block-with-digest-enabled": "true",
}


def job_settings(cfg: Config, *, bounded: bool, fingerprint: str) -> dict[str, str]:
    """Flink configuration of the job; applied by the Python runner and rendered as SET for the SQL client."""
    return {
        **STATE_SETTINGS,
        "pipeline.name": cfg.job.name,
        # Chained operators hand records on without a defensive copy; Flink's SQL operators copy where they keep
        # one (state, buffers). Measured: the full job 18% faster.
        "pipeline.object-reuse": "true",
        "parallelism.default": str(cfg.job.parallelism),
        # Window bounds and ISO text are computed in UTC, whatever the machine's zone.
        "table.local-time-zone": "UTC",
        "execution.checkpointing.interval": f"{millis(cfg.job.checkpoint_interval)} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.dir": checkpoint_dir(cfg, bounded=bounded, fingerprint=fingerprint).as_uri(),
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "state.backend.type": cfg.job.backend(bounded=bounded),
        # RocksDB uploads only the files written since the last checkpoint (the heap backend ignores this).
        "execution.checkpointing.incremental": "true",
        # RocksDB's own log (one file per stateful operator and run) in the data directory, not beside the JVM's
        # log, which for a local run is inside the installed PyFlink package. RocksDB creates the folder, not its
        # parents: the data directory exists (the checkpoints are in it).
        "state.backend.rocksdb.log.dir": str(data_dir(cfg) / "rocksdb-logs"),
        # A local run's minicluster (its heap: job.heap, set on the JVM by the runner); a cluster's TaskManagers
        # keep the managed memory they started with.
        "taskmanager.memory.managed.size": cfg.job.managed_memory,
        # The only state without a time bound of its own: the record identities the checks have seen (a repeated
        # record is a dead letter, macros.sql.j2 repeat_check). Past the horizon a copy could not join anyway.
        # Derived from the horizon and skew, which the SQL holds, so the fingerprint follows it.
        "table.exec.state.ttl": f"{millis(cfg.join.label_horizon + cfg.join.max_label_skew)} ms",
        # The metrics sink upserts by window/model/segment; its inputs are append-only window rows, so
        # Flink 2.3's demand for an ON CONFLICT clause (which would add a state-heavy dedupe) is waived.
        "table.exec.sink.require-on-conflict": "false",
        "table.exec.sink.upsert-materialize": "NONE",
        # A bounded run ends with one more checkpoint, which commits the sinks' last Kafka transactions.
        "execution.checkpointing.checkpoints-after-tasks-finish": "true",
        # The window_metrics UDF runs in Python workers that must import modelmon: this interpreter's.
        "python.executable": str(cfg.job.python),
        "python.client.executable": str(cfg.job.python),
        # Flink's own metrics (throughput, watermarks, checkpoints, Kafka consumer lag) for Prometheus, at
        # http://127.0.0.1:9249/metrics (the reporter listens on every interface). Each further job on the
        # machine takes the next free port of the range; a clash never fails a job, it only goes unreported.
        # A local run puts the reporter jar on the classpath itself (flink_dist.prometheus_reporter_jar);
        # a cluster uses its own reporter settings (flink-conf/config.yaml) and plugins/.
        "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
        "metrics.reporter.prom.port": "9249-9259",
    }


def render_job(cfg: Config, *, bounded: bool = False, reveal_secrets: bool = False) -> RenderedJob:
    """The job's SQL. Secrets (the Kafka password) are written only with reveal_secrets, for running the
    job; otherwise a marker naming their source stands in, so printed SQL never holds them."""
    sources = SOURCES if bounded else SOURCES + STREAMING_SOURCES
    history = cfg.history.enabled
    return _render(
        cfg,
        bounded=bounded,
        setup=PARSING + sources + SINKS + (HISTORY_SINKS if history else ()) + VIEWS,
        inserts=INSERTS + (HISTORY_INSERTS if history else ()),
        reveal_secrets=reveal_secrets,
    )


def render_passthrough_job(cfg: Config, *, reveal_secrets: bool = False) -> RenderedJob:
    """The benchmark's baseline, bounded: the job's sources and JSON checks into blackhole sinks."""
    return _render(
        cfg,
        bounded=True,
        setup=(*PARSING, *SOURCES, "benchmarks/passthrough", "views/predictions_checked", "views/labels_checked"),
        inserts=("benchmarks/passthrough_inserts",),
        reveal_secrets=reveal_secrets,
    )


def render_templates(cfg: Config, names: Sequence[str], *, bounded: bool = True, watermarks: bool = True) -> list[str]:
    """The statements of some of the job's templates (secrets redacted), e.g. to try its checking views on
    input from elsewhere than Kafka; `watermarks=False` for input without them (a batch table), where no record
    can be late."""
    env, context = _environment(), _template_context(cfg, bounded, False, watermarks)
    return [stmt for name in names for stmt in split_statements(env.get_template(f"{name}.sql.j2").render(context))]


def _render(
    cfg: Config, *, bounded: bool, setup: tuple[str, ...], inserts: tuple[str, ...], reveal_secrets: bool
) -> RenderedJob:
    env = _environment()

    def render(names: tuple[str, ...], reveal: bool) -> list[str]:
        context = _template_context(cfg, bounded, reveal)
        return [stmt for name in names for stmt in split_statements(env.get_template(f"{name}.sql.j2").render(context))]

    statements, insert_statements = render(setup, reveal_secrets), render(inserts, reveal_secrets)
    # Of the SQL without secrets: a rotated password keeps the checkpoints a run resumes from.
    printable = statements + insert_statements if not reveal_secrets else render(setup + inserts, False)
    # A checkpoint is restored by the state backend that wrote it (RocksDB's incremental ones hold its files).
    state_layout = [f"{key}={value}" for key, value in STATE_SETTINGS.items()] + [
        f"state.backend.type={cfg.job.backend(bounded=bounded)}"
    ]
    fingerprint = hashlib.sha256("\n;\n".join(state_layout + printable).encode()).hexdigest()[:12]
    return RenderedJob(
        fingerprint=fingerprint,
        settings=job_settings(cfg, bounded=bounded, fingerprint=fingerprint),
        setup=statements,
        inserts=insert_statements,
    )


def write_sql(job: RenderedJob, out_dir: Path, *, private: bool = False) -> Path:
    """Write modelmon-job.sql; private: readable by this user only (the SQL holds a secret)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "modelmon-job.sql"
    if private:
        path.touch(mode=0o600)
        path.chmod(0o600)
    path.write_text(job.to_sql_script())
    return path
