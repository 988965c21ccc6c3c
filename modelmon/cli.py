"""The `modelmon` command line: a thin click layer over the library.

Heavy imports (pyflink, kafka) stay inside command bodies so `--help` answers at once.
"""

from __future__ import annotations

import logging
import shlex
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from modelmon.config import Config, ConfigError, load_config
from modelmon.errors import ModelmonError, stop_on_sigterm
from modelmon.logs import configure_logging


def _config(ctx: click.Context) -> Config:
    cfg = ctx.obj
    assert isinstance(cfg, Config)
    return cfg


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "MODELMON"})
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="MODELMON_CONFIG",
    help="YAML config file; MODELMON__SECTION__KEY environment variables override it. [env: MODELMON_CONFIG]",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug output.")
@click.version_option(package_name="modelmon")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: bool) -> None:
    """Real-time model performance monitoring on Apache Flink.

    Reads predictions and their late labels from Kafka, joins them in a Flink SQL job and reports every
    window how each model version is really doing.
    """
    configure_logging(logging.DEBUG if verbose else logging.INFO)
    # kafka-python narrates every connection at INFO.
    logging.getLogger("kafka").setLevel(logging.DEBUG if verbose else logging.ERROR)
    stop_on_sigterm()
    try:
        ctx.obj = load_config(config_path)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


@cli.command("config")
@click.pass_context
def show_config(ctx: click.Context) -> None:
    """Print the effective configuration (defaults, file and environment merged) as YAML."""
    import yaml

    click.echo(yaml.safe_dump(_config(ctx).model_dump(mode="json"), sort_keys=False), nl=False)


@cli.group()
def kafka() -> None:
    """Run the local single-node Kafka broker (KRaft) from the project's jars."""


@kafka.command("start")
@click.pass_context
def kafka_start(ctx: click.Context) -> None:
    """Start the broker (formats storage on first start; waits until it answers; idempotent)."""
    from modelmon.kafka_local import LocalKafka
    from modelmon.topics import ensure_topics

    cfg = _config(ctx)
    click.echo(LocalKafka(cfg).start().describe())
    created = ensure_topics(cfg)
    if created:
        click.echo(f"created topics: {', '.join(created)}")


@kafka.command("stop")
@click.pass_context
def kafka_stop(ctx: click.Context) -> None:
    """Stop the broker cleanly."""
    from modelmon.kafka_local import LocalKafka

    click.echo(LocalKafka(_config(ctx)).stop().describe())


@kafka.command("status")
@click.pass_context
def kafka_status(ctx: click.Context) -> None:
    """Tell whether the broker runs (exit code 1 when it does not)."""
    from modelmon.kafka_local import LocalKafka

    status = LocalKafka(_config(ctx)).status()
    click.echo(status.describe())
    sys.exit(0 if status.running else 1)


@cli.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("rendered"),
    show_default=True,
    help="Folder to write modelmon-job.sql into.",
)
@click.option("--bounded", is_flag=True, help="Render the bounded (backfill) variant of the job.")
@click.option("--stdout", "to_stdout", is_flag=True, help="Print the SQL instead of writing a file.")
@click.option(
    "--reveal-secrets",
    is_flag=True,
    help="Write the Kafka password (kafka.security.password) into the SQL instead of a marker naming its "
    "source; the file is then readable by you only.",
)
@click.pass_context
def render(ctx: click.Context, out: Path, bounded: bool, to_stdout: bool, reveal_secrets: bool) -> None:
    """Write the whole job as SQL that runs unchanged in the Flink SQL client (sql-client.sh -f).

    Secrets are redacted unless --reveal-secrets: a redacted script runs only against a broker without SASL.
    """
    from modelmon.render import render_job, write_sql

    job = render_job(_config(ctx), bounded=bounded, reveal_secrets=reveal_secrets)
    if to_stdout:
        click.echo(job.to_sql_script(), nl=False)
    else:
        click.echo(f"wrote {write_sql(job, out, private=reveal_secrets)}")


@cli.command()
@click.option(
    "--bounded",
    is_flag=True,
    help="Read both topics up to their offsets at start, fire every window and exit (backfills, tests).",
)
@click.option(
    "--fresh", is_flag=True, help="Do not resume from the last streaming run's checkpoint (offsets, join state)."
)
@click.pass_context
def run(ctx: click.Context, bounded: bool, fresh: bool) -> None:
    """Run the job on a local Flink minicluster.

    A streaming run resumes where the previous one stopped (its newest checkpoint under paths.data_dir).
    """
    from modelmon.pipelines.job import run as run_job
    from modelmon.topics import ensure_topics

    cfg = _config(ctx)
    ensure_topics(cfg)
    click.echo(f"running the modelmon job ({'bounded' if bounded else 'streaming'}) on a local minicluster", err=True)
    try:
        run_job(cfg, bounded=bounded, resume=not fresh)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@cli.group()
def cluster() -> None:
    """Run a standalone Flink cluster on this machine (a JobManager and one TaskManager with cluster.slots
    slots, from the PyFlink distribution and flink-conf/) and manage the job on it.

    \b
    modelmon cluster start
    modelmon submit                 # the streaming job, detached, at parallelism cluster.slots
    modelmon cluster status
    modelmon cluster stop-job       # stop with a savepoint; the next submit resumes from it
    modelmon cluster stop
    """


@cluster.command("start")
@click.pass_context
def cluster_start(ctx: click.Context) -> None:
    """Start the JobManager and a TaskManager; waits until the TaskManager has registered."""
    from modelmon.cluster import start

    click.echo(f"Flink cluster running; web UI and REST API at {start(_config(ctx))}")


@cluster.command("stop")
@click.pass_context
def cluster_stop(ctx: click.Context) -> None:
    """Stop the cluster's processes (a running job stops with them; its checkpoints stay)."""
    from modelmon.cluster import stop

    stop(_config(ctx))
    click.echo("Flink cluster stopped")


@cluster.command("status")
@click.pass_context
def cluster_status(ctx: click.Context) -> None:
    """Show the cluster's TaskManagers, free slots and jobs (exit code 1 when no cluster answers)."""
    from modelmon.cluster import status
    from modelmon.flink_dist import ClusterError

    try:
        click.echo(status(_config(ctx)).describe())
    except ClusterError as exc:
        click.echo(str(exc))
        sys.exit(1)


@cluster.command("stop-job")
@click.option("--job-id", default=None, help="The job to stop. [default: the running job named job.name]")
@click.pass_context
def cluster_stop_job(ctx: click.Context, job_id: str | None) -> None:
    """Stop the streaming job with a savepoint; the next `modelmon submit` resumes from it, at any parallelism."""
    from modelmon.cluster import stop_job

    click.echo(f"stopped; savepoint at {stop_job(_config(ctx), job_id)}")


@cli.command()
@click.option("--bounded", is_flag=True, help="Read both topics to their current end, then finish (waits for it).")
@click.option(
    "-p",
    "--parallelism",
    type=click.IntRange(min=1),
    default=None,
    help="Parallelism of the job. [default: cluster.slots]",
)
@click.option("--fresh", is_flag=True, help="Do not resume from the newest savepoint or checkpoint.")
@click.pass_context
def submit(ctx: click.Context, bounded: bool, parallelism: int | None, fresh: bool) -> None:
    """Submit the job to the cluster with `flink run`, as on any Flink 2.x cluster.

    A streaming job is submitted detached and resumes from the newest savepoint or checkpoint of the same SQL;
    a bounded job is waited for.
    """
    from modelmon.cluster import rest_url, restored_from
    from modelmon.cluster import submit as submit_job

    cfg = _config(ctx)
    parallelism = parallelism or cfg.cluster.slots
    kind = "bounded" if bounded else "streaming"
    click.echo(f"submitting the {kind} job at parallelism {parallelism} to {rest_url(cfg)}", err=True)
    job_id = submit_job(cfg, bounded=bounded, parallelism=parallelism, fresh=fresh)
    if not bounded:
        # Wait for the job to run (and its first checkpoint), so a state that cannot be restored shows here.
        restored = restored_from(cfg, job_id)
        click.echo(f"resumed from {restored}" if restored else "started without state", err=True)
    click.echo(f"job {job_id} {'finished' if bounded else 'running'} (web UI: {rest_url(cfg)})")


@cli.command()
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: run until Ctrl-C).")
@click.option(
    "--transactions",
    type=int,
    default=None,
    help="Write this many transactions as fast as possible, then stop (no real-time pacing).",
)
@click.option(
    "--rate",
    type=float,
    default=None,
    help="Transactions per second, each scored by every model version (overrides simulator.rate).",
)
@click.option(
    "--start",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"]),
    default=None,
    help="Event time of the first transaction, UTC (default: now); with the seed it fixes every record.",
)
@click.pass_context
def simulate(
    ctx: click.Context, duration: float | None, transactions: int | None, rate: float | None, start: datetime | None
) -> None:
    """Produce seeded predictions now and their labels later, as a fraud model and its investigators would.

    A live run (without --transactions) also obeys rollbacks that alert rules publish to topics.control:
    version X's traffic is then scored by version Y's model, and a line says from which event time on.
    simulator.degradation makes one version score worse for a while, to see the alerts fire and resolve.
    """
    from modelmon.producers.simulator import ControlListener, run_simulator
    from modelmon.topics import ensure_topics

    cfg = _config(ctx)
    if rate is not None:
        cfg = cfg.model_copy(update={"simulator": cfg.simulator.model_copy(update={"rate": rate})})
    ensure_topics(cfg)
    live = transactions is None
    run_simulator(
        cfg,
        duration_s=duration,
        live=live,
        start=start.replace(tzinfo=UTC) if start else None,
        progress=lambda line: click.echo(line, err=True),
        n_transactions=transactions,
        control=ControlListener.connect(cfg.kafka, cfg.topics.control) if live else None,
    )


@cli.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write the scores to, one per line (overwritten; missing folders are created).",
)
@click.option(
    "--transactions",
    type=click.IntRange(min=1),
    default=20_000,
    show_default=True,
    help="Number of simulated transactions; each is scored by every model version in simulator.model_versions.",
)
@click.pass_context
def reference(ctx: click.Context, out: Path, transactions: int) -> None:
    """Write reference scores for prediction drift (PSI, KS), as the simulated model gives them.

    Simulates --transactions seeded transactions (config section `simulator`), scores each with every
    model version and writes the scores, one per line: the model's "validation set". Set
    drift.reference_file to the file and the job compares each window's score distribution with it;
    without a reference the drift columns are null.

    \b
    Example:
      modelmon reference --out reference.txt
      MODELMON__DRIFT__REFERENCE_FILE=reference.txt modelmon run
    """
    import yaml

    from modelmon.reference import write_simulated_reference

    cfg = _config(ctx)
    written = write_simulated_reference(cfg.simulator, out, transactions)
    path = out.resolve()
    versions = ", ".join(cfg.simulator.model_versions)
    click.echo(f"wrote {written} scores ({transactions} transactions x model versions {versions}) to {path}")
    snippet = yaml.safe_dump({"drift": {"reference_file": str(path)}}, default_flow_style=False)
    click.echo("to measure prediction drift against them, set drift.reference_file in the config file:")
    click.echo(textwrap.indent(snippet, "  "), nl=False)
    click.echo(f"or in the environment:\n  MODELMON__DRIFT__REFERENCE_FILE={shlex.quote(str(path))}")


@cli.command("sql-client")
@click.option(
    "--file",
    "sql_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Run this SQL file (e.g. one written by `modelmon render`) and exit, instead of an interactive shell.",
)
@click.option("--bounded", is_flag=True, help="Define the tables of the bounded (backfill) variant.")
@click.pass_context
def sql_client(ctx: click.Context, sql_file: Path | None, bounded: bool) -> None:
    """Open the Flink SQL client with the job's tables and views already defined, to explore them.

    Try `SELECT * FROM live_metrics;` or `SELECT reason, COUNT(*) FROM predictions_checked GROUP BY reason;`.
    Queries run on a local minicluster inside the client, against the configured Kafka topics.
    """
    from modelmon.flink_dist import open_sql_client, run_sql_script
    from modelmon.kafka_security import scrub

    if sql_file is None:
        sys.exit(open_sql_client(_config(ctx), bounded=bounded))
    click.echo(f"running {sql_file} in the Flink SQL client on a local minicluster", err=True)
    cfg = _config(ctx)
    # The client echoes each statement it runs: a script rendered with --reveal-secrets holds the password.
    click.echo(scrub(run_sql_script(cfg, sql_file).stdout, cfg.kafka))


@cli.command()
@click.option("--from-beginning", is_flag=True, help="Also show rows already on the topic.")
@click.option(
    "--view",
    "views",
    multiple=True,
    type=click.Choice(["live", "unlabelled", "cohort", "comparison"]),
    help="Show only this view; repeat for several. [default: all four]",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="VERSION",
    help="Show only rows of this model version ('*' = the rows over all versions); repeat for several. "
    "A comparison row is shown when its challenger or its champion is chosen. [default: all, '*' included]",
)
@click.option(
    "--segments",
    is_flag=True,
    help="Also show the rows of single segments (e.g. country=US), with a segment column. "
    "[default: only the rows over all segments]",
)
@click.pass_context
def watch(
    ctx: click.Context, from_beginning: bool, views: tuple[str, ...], models: tuple[str, ...], segments: bool
) -> None:
    """Print the model's health as metrics rows arrive on the metrics topic (Ctrl-C stops).

    Each view has its own columns under a header line; '-' is a value that is undefined (e.g. precision
    without predicted positives, drift without drift.reference_file). Windows are shown by their start,
    in UTC; the header gives the date.

    \b
    live        by label arrival: labelled, accuracy, precision, recall, f1, roc_auc, ece,
                median label latency
    unlabelled  by prediction time, before any label: predictions, throughput per second,
                mean score, drift (psi, ks_pvalue), estimated accuracy/precision/recall (CBPE)
    cohort      by prediction time, as its labels arrive: revision (or 'final'), predictions,
                label coverage, accuracy, precision, recall, roc_auc
    comparison  challenger vs champion on the transactions both scored: paired, accuracy/recall/f1
                differences (challenger - champion), McNemar p-value, '*' when significant

    The cohort view rewrites each window every cohort.revision_interval until its label horizon. Of these
    provisional rows, one is shown per cohort (window, model, segment) only when its revision reaches a
    new multiple of windows.size / cohort.revision_interval (e.g. 1min / 10s = 6: revisions 6, 12, 18, ...
    or the first one past each; by default 1min / 1min = 1, every one), i.e. about once per window of label
    time; the final row (after
    join.label_horizon) is always shown. Rows older than one already shown for the
    same key are skipped, as readers of the topic must.
    """
    from modelmon.watch import watch_metrics

    watch_metrics(
        _config(ctx),
        from_beginning=from_beginning,
        echo=click.echo,
        views=views,
        models=models,
        segments=segments,
    )


def _time_option(value: str | None) -> datetime | None:
    """ISO-8601 (UTC unless it says otherwise) or a duration before now ('6h', '2d')."""
    if value is None:
        return None
    from modelmon.config import parse_duration

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            return datetime.now(UTC) - parse_duration(value)
        except ValueError:
            raise click.BadParameter(f"expected an ISO-8601 time or a duration such as '6h', got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _segment_option(value: str) -> tuple[str, str | None] | None:
    if value == "all":
        return None
    if value == "*":
        return ("*", "*")
    key, sep, segment_value = value.partition("=")
    return (key, segment_value if sep else None)


@cli.group(invoke_without_command=True)
@click.option(
    "--view",
    "views",
    multiple=True,
    type=click.Choice(["live", "unlabelled", "cohort", "comparison"]),
    help="Only this view; repeat for several. [default: all; live for --plot]",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="VERSION",
    help="Only this model version ('*' = the rows over all versions); repeat for several. [default: all]",
)
@click.option(
    "--segment",
    default="*",
    show_default=True,
    metavar="KEY[=VALUE]",
    help="'*' = the rows over all segments; KEY = every value of that segment; KEY=VALUE one of them; "
    "'all' = every row.",
)
@click.option("--since", metavar="TIME", help="Windows starting at or after TIME: ISO-8601 (UTC) or a duration ago.")
@click.option("--until", metavar="TIME", help="Windows starting before TIME: ISO-8601 (UTC) or a duration ago.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--plot", type=click.Choice(["trend", "calibration"]), help="Draw the rows instead of printing them.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="The plot's file (PNG, SVG or PDF).")
@click.option("--no-sync", is_flag=True, help="Do not first add the files the job committed since the last sync.")
@click.pass_context
def history(
    ctx: click.Context,
    views: tuple[str, ...],
    models: tuple[str, ...],
    segment: str,
    since: str | None,
    until: str | None,
    fmt: str,
    plot: str | None,
    out: Path | None,
    no_sync: bool,
) -> None:
    """Query the history table: the final metrics rows of every window, kept on disk.

    The job writes them as Parquet files under history.path (default <paths.data_dir>/history), registered
    in a Delta Lake log, so any Delta reader can open it too (e.g. deltalake.DeltaTable(path).to_pandas()).

    \b
    modelmon history --view live --model v2 --since 6h
    modelmon history --segment country --format csv > by-country.csv
    modelmon history --plot trend --out trend.png
    modelmon history --plot calibration --model v1 --model v2 --out calibration.png
    modelmon history compact      # merge small files, apply history.retention
    """
    if ctx.invoked_subcommand is not None:
        return
    from modelmon.history.plot import plot_calibration, plot_trend
    from modelmon.history.query import HistoryQuery, read_history
    from modelmon.history.report import write_rows
    from modelmon.history.sync import sync
    from modelmon.paths import history_dir

    cfg = _config(ctx)
    if plot is not None and out is None:
        raise click.UsageError("--plot needs --out FILE")
    if plot is not None and len(views) > 1:
        raise click.UsageError("--plot draws one view; give --view once")
    if not no_sync:
        sync(cfg)
    query = HistoryQuery(
        views=views or (("live",) if plot else ()),
        model_versions=models,
        segment=_segment_option(segment),
        since=_time_option(since),
        until=_time_option(until),
    )
    frame = read_history(history_dir(cfg), query)
    if plot is None:
        count = write_rows(frame, fmt, sys.stdout, segments=segment != "*", echo=click.echo)
        click.echo(f"{count} rows", err=True)
        return
    if frame.empty:
        raise click.ClickException("no rows match; nothing to plot")
    assert out is not None
    title = (
        f"{query.views[0]} view, segment {segment}, {frame['window_start'].min():%Y-%m-%d %H:%M} to "
        f"{frame['window_start'].max():%Y-%m-%d %H:%M} UTC"
    )
    if plot == "trend":
        plot_trend(frame, out, title=title)
    else:
        plot_calibration(frame, out, title=title, n_bins=cfg.metrics.calibration_bins)
    click.echo(f"{plot} of {len(frame)} rows written to {out}", err=True)


@history.command("sync")
@click.pass_context
def history_sync(ctx: click.Context) -> None:
    """Add the files the job committed to the table's Delta log (`modelmon run` does it every
    history.sync_interval; a job submitted with `flink run` needs this, or any history command)."""
    from modelmon.history.sync import sync

    result = sync(_config(ctx))
    click.echo(f"added {result.added_files} files ({result.added_rows} rows); table version {result.table_version}")


@history.command("compact")
@click.pass_context
def history_compact(ctx: click.Context) -> None:
    """Merge small files, delete days older than history.retention, vacuum replaced files
    (`modelmon run` does it every history.compact_interval)."""
    from modelmon.history.maintenance import maintain

    result = maintain(_config(ctx))
    click.echo(
        f"added {result.synced.added_files} files; compacted {result.files_compacted} files into "
        f"{result.files_written}; expired {result.rows_expired} rows; vacuumed {result.files_vacuumed} files"
    )


@cli.command()
@click.option(
    "--host",
    metavar="ADDRESS",
    default=None,
    help="Address to listen on (overrides exporter.host, default 127.0.0.1; 0.0.0.0 exposes it to the network).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to listen on (overrides exporter.port, default 9108; 0 picks a free one, shown in the log).",
)
@click.option(
    "--alerts/--no-alerts",
    default=True,
    show_default=True,
    help="Evaluate the alert rules (alerts.*) on every row and notify the configured channels.",
)
@click.pass_context
def exporter(ctx: click.Context, host: str | None, port: int | None, alerts: bool) -> None:
    """Serve the metrics topic as Prometheus metrics on http://HOST:PORT/metrics and as a live page on
    http://HOST:PORT/ (Ctrl-C stops).

    Reads the metrics topic from the beginning at every start (so a restart rebuilds its state) and
    exports, per series (view, model_version, segment_key, segment_value), the newest window with its
    highest revision: one gauge modelmon_<column> per numeric column, e.g. modelmon_accuracy or
    modelmon_psi; null values are left out. Series whose newest window is older than exporter.staleness
    (relative to the newest window of their view) are dropped, and at most exporter.max_series are
    exported; modelmon_exporter_* metrics count rows read and series dropped.

    \b
    Example:
      modelmon exporter --port 9108
      curl -s http://127.0.0.1:9108/metrics | grep '^modelmon_accuracy'
    """
    from modelmon.exporter.server import Exporter

    cfg = _config(ctx)
    server = Exporter(cfg, host=host, port=port)
    engine = None
    if alerts:
        from modelmon.alerting.engine import AlertEngine

        engine = AlertEngine(cfg)
        server.add_listener(engine)
        # Rows held back to evaluate each series in window order are released once the backlog is read.
        server.on_caught_up(engine.flush)
        channels = ", ".join(engine.dispatcher.stats) or "none configured"
        logging.getLogger("modelmon.exporter").info(
            "alerting: %d rules; channels: %s; every event also goes to topic %s",
            len(cfg.alerts.rules),
            channels,
            cfg.topics.alerts,
        )
    from modelmon.exporter.web.app import mount_live_page

    mount_live_page(server, alerts=None if engine is None else engine.firing)
    try:
        server.run()
    finally:
        if engine is not None:
            engine.close()
    click.echo("exporter stopped", err=True)


@cli.command()
@click.option(
    "--horizon",
    metavar="DURATION",
    default="12min",
    show_default=True,
    help="join.label_horizon for the demo only (e.g. 12min, 1h): how long a prediction waits for its label, "
    "so final cohort rows appear about this plus one window after their window.",
)
@click.pass_context
def demo(ctx: click.Context, horizon: str) -> None:
    """Start Kafka, the job and the simulator together and show the metrics as they come (Ctrl-C stops).

    Unless drift.reference_file is set, the demo writes simulated reference scores under paths.data_dir
    and measures drift against them.
    """
    from modelmon.demo import parse_horizon, run_demo

    try:
        label_horizon = parse_horizon(horizon)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--horizon'") from None
    run_demo(_config(ctx), echo=click.echo, horizon=label_horizon)


def _count(value: str) -> int:
    """'4M', '500k' or '2000000'."""
    text = value.strip().lower().replace("_", "").replace(",", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    try:
        return int(float(text[:-1] if scale > 1 else text) * scale)
    except ValueError:
        raise click.BadParameter(f"expected a count such as 4M, 500k or 2000000, got {value!r}") from None


@cli.command()
@click.option(
    "--full",
    is_flag=True,
    help="The long sweep: 4M events at parallelism 1 and 2, sizes 1M,2M,4M, 10M predictions waiting (about "
    "an hour and a half); the options below override it.",
)
@click.option("--events", help="Events (predictions and labels) of the main run.  [default: 1M; --full: 4M]")
@click.option("--sizes", help="Input sizes, comma-separated, for how cost grows.  [default: 1M,2M; --full: 1M,2M,4M]")
@click.option("--parallelism", "parallelisms", help="Parallelisms of the main run.  [default: 1; --full: 1,2]")
@click.option("--latency/--no-latency", default=True, show_default=True, help="Measure label-to-metric latency.")
@click.option(
    "--state/--no-state",
    default=True,
    show_default=True,
    help="Measure a streaming run as its state grows: reading rate, checkpoint durations, state size.",
)
@click.option(
    "--state-predictions", help="Predictions waiting for labels in the state run.  [default: 2M; --full: 10M]"
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("build/bench"),
    show_default=True,
    help="Results (results.json, results.md), the broker's data, the input cache and the log.",
)
def bench(
    full: bool,
    events: str | None,
    sizes: str | None,
    parallelisms: str | None,
    latency: bool,
    state: bool,
    state_predictions: str | None,
    out: Path,
) -> None:
    """Measure throughput (against a passthrough baseline), latency, memory and state; print a table.

    Runs on a Kafka broker of its own (127.0.0.1:29092) and local Flink miniclusters, with nothing else on the
    machine: every other process takes CPU from the job. The default run takes about 20 minutes on two
    cores (the first one longer: it generates the input once, see --out).
    """
    from modelmon.benchmarks.bench import FULL, BenchOptions, run_benchmarks
    from modelmon.benchmarks.report import as_markdown

    chosen: dict[str, Any] = dict(FULL) if full else {}
    if events is not None:
        chosen["events"] = _count(events)
    if sizes is not None:
        chosen["sizes"] = tuple(_count(size) for size in sizes.split(",") if size.strip())
    if parallelisms is not None:
        chosen["parallelisms"] = tuple(int(p) for p in parallelisms.split(",") if p.strip())
    if state_predictions is not None:
        chosen["state_predictions"] = _count(state_predictions)
    opts = BenchOptions(out_dir=out.resolve(), latency=latency, state=state, **chosen)
    result = run_benchmarks(opts, echo=lambda line: click.echo(line, err=True))
    click.echo(as_markdown(result))


def main() -> None:
    try:
        cli(prog_name="modelmon", standalone_mode=True)
    except ModelmonError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
