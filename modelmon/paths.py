"""Where modelmon keeps its files: data under paths.data_dir, JVM jars under jvm/target."""

from __future__ import annotations

from pathlib import Path

from modelmon.config import Config
from modelmon.errors import ModelmonError

SOURCE_ROOT = Path(__file__).resolve().parent.parent


def data_dir(cfg: Config) -> Path:
    return cfg.paths.data_dir.resolve()


def checkpoint_root(cfg: Config, *, bounded: bool) -> Path:
    """Streaming and bounded runs plan different jobs, so they never resume from each other's state."""
    return data_dir(cfg) / "checkpoints" / cfg.job.name / ("bounded" if bounded else "streaming")


def checkpoint_dir(cfg: Config, *, bounded: bool, fingerprint: str) -> Path:
    """One folder per version of the job's SQL (`fingerprint`): a job only resumes from state that a job
    with the same SQL wrote, since Flink cannot map state across a changed plan."""
    return checkpoint_root(cfg, bounded=bounded) / fingerprint


def savepoint_dir(cfg: Config, fingerprint: str) -> Path:
    """Where `modelmon cluster stop-job` puts a streaming job's savepoints: beside its checkpoints."""
    return checkpoint_dir(cfg, bounded=False, fingerprint=fingerprint) / "savepoints"


def latest_checkpoint(cfg: Config, fingerprint: str) -> Path | None:
    """The newest complete checkpoint or savepoint a streaming run of the same SQL left behind (checkpoints
    are kept when a run is cancelled; a savepoint when it is stopped with one)."""
    folder = checkpoint_dir(cfg, bounded=False, fingerprint=fingerprint)
    complete = [
        metadata.parent
        for pattern in ("*/chk-*/_metadata", "savepoints/savepoint-*/_metadata")
        for metadata in folder.glob(pattern)
    ]
    return max(complete, key=lambda path: path.stat().st_mtime, default=None)


def has_other_checkpoints(cfg: Config, fingerprint: str) -> bool:
    """Whether streaming runs of a different SQL (an older config or modelmon version) left checkpoints."""
    root = checkpoint_root(cfg, bounded=False)
    return any(path.name != fingerprint for path in root.glob("*") if any(path.glob("*/chk-*/_metadata")))


def history_dir(cfg: Config) -> Path:
    """The history table's folder: Flink's Parquet files and the Delta log."""
    return (cfg.history.path or data_dir(cfg) / "history").resolve()


def kafka_dir(cfg: Config) -> Path:
    return data_dir(cfg) / "kafka"


def jars_dir(cfg: Config) -> Path:
    return (cfg.paths.jars_dir or SOURCE_ROOT / "jvm" / "target").resolve()


class MissingJarsError(ModelmonError):
    pass


def jars(cfg: Config, kind: str) -> list[Path]:
    """The jars of jvm/target/<kind> ('flink' or 'kafka'), fetched by `make jars`."""
    folder = jars_dir(cfg) / kind
    found = sorted(folder.glob("*.jar"))
    if not found:
        raise MissingJarsError(f"no jars in {folder}: run `make jars` (mvn -f jvm/pom.xml package) first")
    return found


def gateway_jar(cfg: Config) -> Path:
    """The SQL gateway jar, which the PyFlink bundle's sql-client.sh needs and lacks."""
    found = [jar for jar in jars(cfg, "flink") if "flink-sql-gateway" in jar.name]
    if not found:
        raise MissingJarsError(f"no flink-sql-gateway jar in {jars_dir(cfg) / 'flink'}: run `make jars`")
    return found[0]


def connector_jars(cfg: Config) -> list[Path]:
    """The jars the Flink job loads via pipeline.jars (the SQL gateway jar is for sql-client.sh only)."""
    return [jar for jar in jars(cfg, "flink") if "flink-sql-gateway" not in jar.name]
