"""Every view of a streaming run is exact whatever order the job reads its input in.

A monitor is deployed over topics that already hold hours of data, stopped for an upgrade while traffic goes
on, and falls behind when traffic rises above what it can process; each time it reads a backlog in bursts, one
topic ahead of the other. Each case below feeds the streaming job such a backlog on a real broker and
compares every window the watermarks have closed (live, unlabelled, final cohort, comparison; every segment)
with scikit-learn on the same records. One short case runs in CI; the others with `make test-slow`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from modelmon.producers.simulator import Dataset, TimedRecord, epoch_millis, generate, is_label, is_prediction

from modelmon.config import Config, SimulatorConfig
from modelmon.kafka_local import LocalKafka
from modelmon.topics import latest_metrics, read_topic
from tests.kafka_helpers import fresh_config, produce, write_config
from tests.oracle import group_rows, join_labels

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
# Labels 5 s to 5 min late, 12% never; two versions scoring every transaction.
SIM = SimulatorConfig(
    rate=4,
    fraud_rate=0.1,
    model_versions=("v1", "v2"),
    label_rate=0.88,
    label_delay_min=timedelta(seconds=5),
    label_delay_max=timedelta(minutes=5),
    seed=16,
)
# A horizon the backlogs span several times over, so that final cohort rows come out during the run.
HORIZON = timedelta(minutes=10)

Key = tuple[str, str, str, str, str]  # view, window_start, model_version, segment_key, segment_value


class Scenario:
    """One streaming job's config, its input (seeded) and the job as a user runs it, started and stopped."""

    def __init__(
        self,
        data_dir: Path,
        tmp_path: Path,
        minutes: int,
        *,
        sim: SimulatorConfig = SIM,
        horizon: timedelta = HORIZON,
    ) -> None:
        self.cfg: Config = fresh_config(
            data_dir,
            {
                "join": {"label_horizon": f"{int(horizon.total_seconds())}s", "max_label_skew": "10s"},
                "job": {"checkpoint_interval": "3s"},
                "comparisons": [{"champion": "v1", "challenger": "v2"}],
            },
        )
        self.config_file = write_config(self.cfg, tmp_path / "modelmon.yaml")
        self.log = tmp_path / "job.log"
        self.data: Dataset = generate(sim, START, n_transactions=int(minutes * 60 * sim.rate))
        self.produced: list[TimedRecord] = []
        self.job: subprocess.Popen[bytes] | None = None

    def records(
        self, since: timedelta, until: timedelta = timedelta.max, kind: Callable[[TimedRecord], bool] = lambda r: True
    ) -> list[TimedRecord]:
        """Records (of one kind) due in [START + since, START + until)."""
        return [r for r in self.data.records if kind(r) and since <= r.due_time - START < until]

    def produce(self, records: Iterable[TimedRecord]) -> None:
        chosen = list(records)
        for topic, kind in ((self.cfg.topics.predictions, is_prediction), (self.cfg.topics.labels, is_label)):
            rows = ((r.key.encode(), json.dumps(r.value).encode(), epoch_millis(r.due_time)) for r in chosen if kind(r))
            produce(self.cfg, topic, rows)
        self.produced += chosen

    def produce_with_live_tail(self, records: Iterable[TimedRecord]) -> None:
        """The records at once but their last two minutes, which follow as live traffic would: five seconds at a
        time. A window can close only once rows after it carry the inputs' progress; at the end of a burst that
        progress lags what was read, so without traffic after it the last windows would wait."""
        chosen = sorted(records, key=lambda r: r.due_time)
        tail_start = chosen[-1].due_time - timedelta(minutes=2)
        self.produce(r for r in chosen if r.due_time < tail_start)
        while tail_start <= chosen[-1].due_time:
            time.sleep(2)
            self.produce(r for r in chosen if tail_start <= r.due_time < tail_start + timedelta(seconds=5))
            tail_start += timedelta(seconds=5)

    def finish(self, records: Iterable[TimedRecord], timeout_s: float) -> tuple[dict[Key, Any], dict[Key, Any]]:
        """The last records, ending in live traffic; then the oracle's rows and, once they are all there (or at
        the timeout), the job's."""
        self.produce_with_live_tail(records)
        expected = expected_rows(self)
        return expected, self.wait_for(set(expected), timeout_s)

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.job = subprocess.Popen(
                [sys.executable, "-m", "modelmon.cli", "--config", str(self.config_file), "run"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        """As a user stops it (SIGTERM); the next start resumes from the checkpoint."""
        assert self.job is not None
        self.job.terminate()
        self.job.wait(timeout=120)
        self.job = None

    def wait_for(self, expected: set[Key], timeout_s: float) -> dict[Key, dict[str, Any]]:
        """The metrics topic's latest rows once every expected key is there (cohort: its final row)."""
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.job is not None and self.job.poll() is None, self.log.read_text()[-3000:]
            rows = metric_rows(self.cfg)
            missing = {k for k in expected if k not in rows or not rows[k]["is_final"]}
            if not missing or time.monotonic() > deadline:
                return rows
            time.sleep(5)


def metric_rows(cfg: Config) -> dict[Key, dict[str, Any]]:
    return latest_metrics(read_topic(cfg, cfg.topics.metrics, idle_timeout_s=2))  # type: ignore[return-value]


def expected_rows(scenario: Scenario) -> dict[Key, dict[str, int]]:
    """Counts by scikit-learn's rules (a plain join and groupings), for the windows the input's watermarks
    have closed: a window's end, plus the lateness the job allows and one window of margin, is before the
    last time of each input the window depends on."""
    cfg = scenario.cfg
    predictions = [r.value for r in scenario.produced if is_prediction(r)]
    labels = [r.value for r in scenario.produced if is_label(r)]
    pairs = join_labels(predictions, labels, horizon=cfg.join.label_horizon, skew=cfg.join.max_label_skew)
    segments = {s.name: tuple(s.values) for s in cfg.segments}
    last_event = max(datetime.fromisoformat(p["event_time"]) for p in predictions)
    # No labels at all: an idle topic, which must hold no window back.
    last_label = max((datetime.fromisoformat(label["label_time"]) for label in labels), default=last_event)
    margin = cfg.windows.size + cfg.windows.out_of_orderness + cfg.join.max_label_skew
    closed = {
        "unlabelled": last_event - margin,
        "live": min(last_event, last_label) - margin,
        "comparison": min(last_event, last_label) - margin,
        "cohort": min(last_event - cfg.join.label_horizon, last_label - cfg.join.label_horizon) - margin,
    }

    def is_closed(view: str, window_start: str) -> bool:
        return datetime.fromisoformat(window_start) + cfg.windows.size <= closed[view]

    expected: dict[Key, dict[str, int]] = {}
    for key, rows in group_rows(predictions, "event_time", cfg.windows.size, segments).items():
        if is_closed("unlabelled", key[0]):
            expected[("unlabelled", *key)] = {"n_predictions": len(rows)}
        if is_closed("cohort", key[0]):
            expected[("cohort", *key)] = {"n_predictions": len(rows), **confusion([])}
    for key, rows in group_rows(pairs, "event_time", cfg.windows.size, segments).items():
        if is_closed("cohort", key[0]):
            expected[("cohort", *key)] |= confusion(rows)
    for key, rows in group_rows(pairs, "label_time", cfg.windows.size, segments).items():
        if is_closed("live", key[0]):
            expected[("live", *key)] = {"n_predictions": len(rows), **confusion(rows)}
    for key, rows in group_rows(paired(pairs), "label_time", cfg.windows.size, segments).items():
        if key[1] == "v2" and is_closed("comparison", key[0]):
            expected[("comparison", *key)] = {"n_predictions": len(rows), **confusion(rows), **mcnemar(rows)}
    return expected


def confusion(rows: list[dict[str, Any]]) -> dict[str, int]:
    from sklearn.metrics import confusion_matrix

    if not rows:
        return {"n_labelled": 0, "tp": 0, "fp": 0, "tn": 0, "fn": 0}
    y = [r["actual_fraud"] for r in rows]
    tn, fp, fn, tp = confusion_matrix(y, [r["predicted_fraud"] for r in rows], labels=[0, 1]).ravel()
    return {"n_labelled": len(rows), "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)}


def paired(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """v2's pairs whose transaction v1 scored too, with v1's decision beside them."""
    champion = {p["transaction_id"]: p for p in pairs if p["model_version"] == "v1"}
    return [
        {**p, "champion_predicted": champion[p["transaction_id"]]["predicted_fraud"]}
        for p in pairs
        if p["model_version"] == "v2" and p["transaction_id"] in champion
    ]


def mcnemar(rows: list[dict[str, Any]]) -> dict[str, int]:
    b = sum(r["champion_predicted"] == r["actual_fraud"] != r["predicted_fraud"] for r in rows)
    c = sum(r["champion_predicted"] != r["actual_fraud"] == r["predicted_fraud"] for r in rows)
    return {"mcnemar_b": b, "mcnemar_c": c}


def assert_exact(
    expected: dict[Key, dict[str, int]],
    rows: dict[Key, dict[str, Any]],
    expected_views: frozenset[str] = frozenset({"live", "unlabelled", "cohort", "comparison"}),
) -> None:
    """Every expected row is there, final, with exactly the oracle's counts; a summary per view is printed."""
    wrong: dict[str, list[str]] = {}
    for key, want in sorted(expected.items()):
        got = rows.get(key)
        seen = None if got is None else {name: got[name] for name in want}
        if got is None or not got["is_final"] or seen != want:
            wrong.setdefault(key[0], []).append(f"{key}: {seen} != {want}")
    views = sorted({key[0] for key in expected})
    for view in views:
        keys = [k for k in expected if k[0] == view]
        windows = {k[1] for k in keys}
        # Whole windows: every version's (the comparison's rows are the challenger's).
        whole = [k for k in keys if k[3:] == ("*", "*") and (k[2] == "*" or view == "comparison")]
        counted = sum(expected[k]["n_labelled" if view != "unlabelled" else "n_predictions"] for k in whole)
        print(
            f"{view}: {len(windows)} windows closed, {len(keys)} rows (every version and segment), "
            f"{len(keys) - len(wrong.get(view, []))} equal scikit-learn; {counted} records in the whole-window rows"
        )
    assert set(views) == expected_views
    assert not wrong, "\n".join(line for lines in wrong.values() for line in lines[:10])


def test_fresh_job_over_a_backlog(kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path) -> None:
    """Deployed over topics that already hold 32 minutes of traffic."""
    scenario = Scenario(data_dir, tmp_path, minutes=32)
    scenario.produce(scenario.records(timedelta(0), timedelta(minutes=30)))
    scenario.start()
    try:
        # Live traffic follows once the job has read the backlog (its unlabelled windows are out): sent while the
        # job starts, the live tail would be read as part of the backlog, in one burst.
        scenario.wait_for({key for key in expected_rows(scenario) if key[0] == "unlabelled"}, timeout_s=240)
        expected, rows = scenario.finish(scenario.records(timedelta(minutes=30)), timeout_s=300)
    finally:
        scenario.stop()
    assert_exact(expected, rows)


@pytest.mark.slow
def test_restart_after_downtime(kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path) -> None:
    """Stopped while 12 minutes of traffic arrive, then resumed from its checkpoint."""
    scenario = Scenario(data_dir, tmp_path, minutes=30)
    before, downtime = timedelta(minutes=8), timedelta(minutes=12)
    scenario.produce(scenario.records(timedelta(0), before))
    scenario.start()
    try:
        scenario.wait_for(set(expected_rows(scenario)), timeout_s=240)
    finally:
        scenario.stop()
    scenario.produce(scenario.records(before, before + downtime))
    scenario.start()
    try:
        time.sleep(30)
        expected, rows = scenario.finish(scenario.records(before + downtime), timeout_s=300)
    finally:
        scenario.stop()
    assert "resuming from checkpoint" in scenario.log.read_text()
    assert_exact(expected, rows)


@pytest.mark.slow
def test_labels_read_far_ahead_of_predictions(kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path) -> None:
    """Every label of 30 minutes is there at the start; the predictions come in three later bursts."""
    scenario = Scenario(data_dir, tmp_path, minutes=30)
    scenario.produce(scenario.records(timedelta(0), kind=is_label))
    scenario.produce(scenario.records(timedelta(0), timedelta(minutes=2), is_prediction))
    scenario.start()
    try:
        for since, until in ((2, 12), (12, 22)):
            time.sleep(20)
            scenario.produce(scenario.records(timedelta(minutes=since), timedelta(minutes=until), is_prediction))
        time.sleep(20)
        expected, rows = scenario.finish(scenario.records(timedelta(minutes=22), kind=is_prediction), timeout_s=300)
    finally:
        scenario.stop()
    assert_exact(expected, rows)


@pytest.mark.slow
def test_traffic_above_capacity(kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path) -> None:
    """Traffic the job keeps up with, then 15 minutes of traffic at once (about 380,000 events, minutes of
    backpressure), then traffic it keeps up with again."""
    scenario = Scenario(data_dir, tmp_path, minutes=19, sim=SIM.model_copy(update={"rate": 150}))
    scenario.start()
    try:
        for since in (0, 1):  # normal: a minute of event time every 20 s
            scenario.produce(scenario.records(timedelta(minutes=since), timedelta(minutes=since + 1)))
            time.sleep(20)
        burst = time.monotonic()
        scenario.produce(scenario.records(timedelta(minutes=2), timedelta(minutes=17)))
        print(f"15 minutes of traffic produced in {time.monotonic() - burst:.0f} s")
        time.sleep(20)  # normal again
        expected, rows = scenario.finish(scenario.records(timedelta(minutes=17)), timeout_s=600)
        print(f"every closed window out {time.monotonic() - burst:.0f} s after the burst began")
    finally:
        scenario.stop()
    assert_exact(expected, rows)


@pytest.mark.slow
def test_an_idle_labels_topic_holds_no_window_back(kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path) -> None:
    """Predictions only: the labels topic stays silent, and the unlabelled and final cohort windows still close,
    the latter once the labels' idle timeout (the horizon, 2 minutes here) has passed."""
    scenario = Scenario(data_dir, tmp_path, minutes=8, horizon=timedelta(minutes=2))
    scenario.produce(scenario.records(timedelta(0), kind=is_prediction))
    expected = expected_rows(scenario)
    scenario.start()
    try:
        rows = scenario.wait_for(set(expected), timeout_s=300)
    finally:
        scenario.stop()
    assert_exact(expected, rows, expected_views=frozenset({"unlabelled", "cohort"}))
