import os
import re
from datetime import timedelta
from pathlib import Path

import pytest

from modelmon.config import Config
from modelmon.render import RenderedJob, render_job, sql_interval

GOLDEN = Path(__file__).parent / "golden"


def _config() -> Config:
    # A fixed absolute data dir keeps the rendered checkpoint path independent of the working directory.
    # So is a fixed interpreter path (the default is the running one).
    return Config.model_validate({"paths": {"data_dir": "/var/lib/modelmon"}, "job": {"python": "/usr/bin/python3"}})


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (timedelta(hours=6), "INTERVAL '0 06:00:00.000' DAY TO SECOND(3)"),
        (timedelta(seconds=5), "INTERVAL '0 00:00:05.000' DAY TO SECOND(3)"),
        (timedelta(days=3, milliseconds=250), "INTERVAL '3 00:00:00.250' DAY TO SECOND(3)"),
    ],
)
def test_sql_interval(value: timedelta, literal: str) -> None:
    assert sql_interval(value) == literal


@pytest.mark.parametrize("bounded", [False, True])
def test_rendered_job_matches_golden_file(bounded: bool) -> None:
    """A template change shows up as a readable diff; UPDATE_GOLDEN=1 rewrites the files."""
    sql = render_job(_config(), bounded=bounded).to_sql_script()
    golden = GOLDEN / f"modelmon-job{'-bounded' if bounded else ''}.sql"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(sql)
    assert sql == golden.read_text()


def test_config_values_reach_the_sql() -> None:
    cfg = Config.model_validate(
        {
            "topics": {"metrics": "mm-1", "predictions": "pp-1"},
            "join": {"label_horizon": "90min"},
            "kafka": {"bootstrap_servers": "broker-a:9092,broker-b:9093"},
        }
    )
    sql = render_job(cfg).to_sql_script()
    assert "'topic' = 'mm-1'" in sql and "'topic' = 'pp-1'" in sql
    assert "p.event_time + INTERVAL '0 01:30:00.000' DAY TO SECOND(3)" in sql
    assert "'properties.bootstrap.servers' = 'broker-a:9092,broker-b:9093'" in sql


def test_bounded_and_streaming_differ_only_in_reading() -> None:
    streaming = render_job(_config()).to_sql_script()
    bounded = render_job(_config(), bounded=True).to_sql_script()
    assert "'scan.bounded.mode' = 'latest-offset'" in bounded and "scan.bounded.mode" not in streaming
    replay = "CREATE TABLE labelled_predictions_replay"
    assert replay in streaming and replay not in bounded
    assert "'scan.startup.mode' = 'group-offsets'" in streaming


def test_one_statement_set_and_no_template_leftovers() -> None:
    job = render_job(_config())
    sql = job.to_sql_script()
    assert sql.count("EXECUTE STATEMENT SET") == 1
    assert all(insert.lstrip().startswith(("--", "INSERT")) for insert in job.inserts)
    assert not re.search(r"{{|}}|{%|%}", sql)


def test_checkpoints_are_kept_per_version_of_the_sql() -> None:
    """A run resumes only from state its own SQL wrote: the folder is named by a fingerprint of the SQL."""
    base = render_job(_config())
    same = render_job(_config().model_copy(update={"job": _config().job.model_copy(update={"python": "/opt/py"})}))
    other = render_job(Config.model_validate({**_config().model_dump(), "join": {"label_horizon": "2h"}}))
    assert base.fingerprint == same.fingerprint  # settings are not part of the plan's state
    assert base.fingerprint != other.fingerprint
    assert base.settings["execution.checkpointing.dir"].endswith(f"/streaming/{base.fingerprint}")


def test_a_checkpoint_is_restored_by_the_state_backend_that_wrote_it() -> None:
    def backend(job: RenderedJob) -> str:
        return job.settings["state.backend.type"]

    streaming, bounded = render_job(_config()), render_job(_config(), bounded=True)
    heap = render_job(
        _config().model_copy(update={"job": _config().job.model_copy(update={"state_backend": "hashmap"})})
    )
    assert (backend(streaming), backend(bounded), backend(heap)) == ("rocksdb", "hashmap", "hashmap")
    assert streaming.fingerprint != heap.fingerprint
    # Incremental checkpoints, and managed memory for RocksDB sized by the config, not a minicluster's default.
    assert streaming.settings["execution.checkpointing.incremental"] == "true"
    assert streaming.settings["taskmanager.memory.managed.size"] == _config().job.managed_memory


def test_a_hostile_history_path_stays_inside_its_string_literal() -> None:
    hostile = "/tmp/it's', 'format' = 'csv'); DROP TABLE metrics_sink; --"
    cfg = Config.model_validate({"history": {"path": hostile}})
    (sink,) = [s for s in render_job(cfg).setup if "CREATE TABLE history_sink" in s]
    (literal,) = re.findall(r"'path' = '((?:[^']|'')*)'", sink)
    assert literal.replace("''", "'") == Path(hostile).resolve().as_uri()  # the whole value, one literal
    assert "'format' = 'parquet'" in sink and "DROP TABLE" not in sink.replace(literal, "")


def test_no_history_table_when_disabled() -> None:
    job = render_job(Config.model_validate({"history": {"enabled": False}}))
    assert not any("history_sink" in statement for statement in job.setup + job.inserts)
    assert any("metrics_sink" in statement for statement in job.inserts)


def test_late_records_get_the_reason_the_exporter_counts() -> None:
    from modelmon.exporter.collector import LATE_REASON

    sql = render_job(_config()).to_sql_script()
    # Predictions whose unlabelled window has closed; joined rows too late for the live view (streaming only).
    reasons = re.findall(r"<= CURRENT_WATERMARK\(event_time\)\s+THEN '([^']*)'", sql)
    replayed = re.findall(r"SELECT 'labelled-predictions',\s+'((?:[^']|'')*)'", sql)
    assert len(reasons) == 1 and len(replayed) == 1
    assert reasons[0].startswith(LATE_REASON) and replayed[0].startswith(LATE_REASON)
    assert "SELECT 'labelled-predictions'" not in render_job(_config(), bounded=True).to_sql_script()


def test_the_replay_watermark_is_the_joins_progress_and_each_partition_has_one_writer() -> None:
    sql = render_job(_config()).to_sql_script()
    # The join holds its watermark back by its widest bound (the 6 h horizon); the sink adds it back.
    assert "CURRENT_WATERMARK(label_time) + INTERVAL '0 06:00:00.000' DAY TO SECOND(3)" in sql
    assert "WATERMARK FOR label_ts AS UTC_TIMESTAMP(join_watermark) - " in sql
    assert "'sink.partitioner' = 'fixed'" in sql
