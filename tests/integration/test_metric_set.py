"""The complete metric set of the three views, from a bounded run, against scikit-learn on the same rows."""

from __future__ import annotations

import bisect
import csv
import io
import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from deltalake import DeltaTable
from modelmon.exporter.server import Exporter
from modelmon.history.plot import reliability_by_version
from modelmon.history.query import HistoryQuery, read_history
from modelmon.history.query import rows as plain_rows
from modelmon.producers.simulator import iso_utc
from prometheus_client.parser import text_string_to_metric_families
from scipy.stats import ks_2samp

from modelmon.config import Config, SimulatorConfig
from modelmon.kafka_local import LocalKafka
from modelmon.paths import history_dir
from modelmon.reference import write_simulated_reference
from modelmon.topics import METRICS_KEY, latest_metrics, read_topic
from tests.datasets import out_of_order_dataset
from tests.kafka_helpers import fresh_config, json_records, produce, run_cli, write_config
from tests.oracle import (
    SCORE_BINS,
    bin_of,
    group_rows,
    join_labels,
    labelled_metrics,
    prediction_metrics,
    unmatched_labels,
)

pytestmark = pytest.mark.integration

START = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
# Fewer top values than the simulator draws, so 'other' segments appear.
SEGMENTS = {"country": ("US", "GB"), "merchant_category": ("grocery", "travel", "electronics")}
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
COUNT_FIELDS = ("n_labelled", "tp", "fp", "tn", "fn")
RATE_FIELDS = ("accuracy", "precision", "recall", "f1", "specificity")


# Records the job must reject, each with the reason it must give.
BAD_PREDICTIONS: list[tuple[bytes, str]] = [
    (b"{truncated", "not a JSON object"),
    (b"[1, 2]", "not a JSON object"),
    (
        json.dumps(
            {
                "model_version": "v1",
                "predicted_fraud_score": 0.2,
                "predicted_fraud": 0,
                "event_time": "2026-02-02T08:00:10Z",
            }
        ).encode(),
        "missing transaction_id",
    ),
    (
        json.dumps(
            {
                "transaction_id": "bad-1",
                "model_version": "v1",
                "predicted_fraud_score": 1.5,
                "predicted_fraud": 1,
                "event_time": "2026-02-02T08:00:10Z",
            }
        ).encode(),
        "predicted_fraud_score outside [0, 1]",
    ),
    (
        json.dumps(
            {
                "transaction_id": "bad-2",
                "model_version": "v1",
                "predicted_fraud_score": "high",
                "predicted_fraud": 1,
                "event_time": "2026-02-02T08:00:10Z",
            }
        ).encode(),
        "predicted_fraud_score missing or not a number",
    ),
    (
        json.dumps(
            {
                "transaction_id": "bad-3",
                "model_version": "v1",
                "predicted_fraud_score": 0.4,
                "predicted_fraud": 0,
                "event_time": "yesterday",
            }
        ).encode(),
        "event_time missing or not ISO-8601 UTC",
    ),
]
BAD_LABELS: list[tuple[bytes, str]] = [
    (
        json.dumps({"transaction_id": "bad-4", "actual_fraud": 2, "label_time": "2026-02-02T08:01:00Z"}).encode(),
        "actual_fraud missing or not 0|1",
    ),
]


def _prediction(**fields: Any) -> bytes:
    """A valid prediction's JSON with some fields replaced (a value of None drops the field)."""
    record = {
        "transaction_id": "bad-x",
        "model_version": "v1",
        "predicted_fraud_score": 0.3,
        "predicted_fraud": 0,
        "event_time": "2026-02-02T08:00:20Z",
    } | fields
    return json.dumps({key: value for key, value in record.items() if value is not None}).encode()


def _label(**fields: Any) -> bytes:
    record = {"transaction_id": "bad-y", "actual_fraud": 1, "label_time": "2026-02-02T08:01:10Z"} | fields
    return json.dumps({key: value for key, value in record.items() if value is not None}).encode()


# More of what real producers send, each with the reason the job must give.
BAD_PREDICTIONS += [
    (b"", "not a JSON object"),
    (b'{"transaction_id": "bad-5", "predicted_fraud_score": NaN}', "not a JSON object"),  # NaN is not JSON
    (_prediction(predicted_fraud_score="NaN"), "predicted_fraud_score missing or not a number"),
    (_prediction(predicted_fraud_score="Infinity"), "predicted_fraud_score missing or not a number"),
    (_prediction(predicted_fraud_score="0.5d"), "predicted_fraud_score missing or not a number"),
    (_prediction(predicted_fraud_score=1e300 * 10), "predicted_fraud_score outside [0, 1]"),
    (_prediction(predicted_fraud_score=-0.01), "predicted_fraud_score outside [0, 1]"),
    (_prediction(predicted_fraud_score=None), "predicted_fraud_score missing or not a number"),
    (_prediction(predicted_fraud_score=[0.5]), "predicted_fraud_score missing or not a number"),
    (_prediction(predicted_fraud=2), "predicted_fraud missing or not 0|1"),
    (_prediction(predicted_fraud="yes"), "predicted_fraud missing or not 0|1"),
    (_prediction(predicted_fraud=1.0), "predicted_fraud missing or not 0|1"),  # found by test_input_fuzz
    (_prediction(transaction_id={"id": 1}), "missing transaction_id"),
    (_prediction(transaction_id="   "), "missing transaction_id"),
    (_prediction(transaction_id="x" * 100_000), "transaction_id longer than 256 characters"),
    (_prediction(model_version=None), "missing model_version"),
    (_prediction(model_version="v" * 300), "model_version longer than 256 characters"),
    (_prediction(event_time="2026-02-02T10:00:20+02:00"), "event_time missing or not ISO-8601 UTC"),
    (_prediction(event_time=1770019220000), "event_time missing or not ISO-8601 UTC"),
    (_prediction(event_time=None), "event_time missing or not ISO-8601 UTC"),
    # Produced with the data's start as Kafka timestamp (see the fixture), a day and a year off.
    (_prediction(event_time="2026-02-03T08:00:20Z"), "event_time more than 10min from the record's Kafka timestamp"),
    (_prediction(event_time="2025-02-02T08:00:20Z"), "event_time more than 10min from the record's Kafka timestamp"),
]
BAD_LABELS += [
    (b"null", "not a JSON object"),
    (_label(actual_fraud="maybe"), "actual_fraud missing or not 0|1"),
    (_label(actual_fraud=None), "actual_fraud missing or not 0|1"),
    (_label(transaction_id=None), "missing transaction_id"),
    (_label(transaction_id="y" * 257), "transaction_id longer than 256 characters"),
    (_label(label_time="2026-02-02 08:01:10 UTC"), "label_time missing or not ISO-8601 UTC"),
    (_label(label_time="2026-02-30T08:01:10Z"), "label_time missing or not ISO-8601 UTC"),  # found by the fuzz test
    (_label(label_time="2026-02-09T08:01:10Z"), "label_time more than 10min from the record's Kafka timestamp"),
    (_label(label_time="2025-12-02T08:01:10Z"), "label_time more than 10min from the record's Kafka timestamp"),
]


def dataset() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two versions scoring each transaction; predictions and labels out of order; labels 5 s to 4 min late,
    15% never; with a 3 min horizon, some labels come too late."""
    sim = SimulatorConfig(
        rate=20,
        fraud_rate=0.15,
        model_versions=("v1", "v2"),
        label_rate=0.85,
        label_delay_min=timedelta(seconds=5),
        label_delay_max=timedelta(minutes=4),
        seed=11,
    )
    predictions, labels = out_of_order_dataset(sim, START, 4000, shuffle_seed=5, shuffle_predictions=True)
    # Valid labels no prediction matches, for the dead-letter topic: an unknown transaction, a label 30 s
    # before its prediction (the skew allows 10 s) and one an hour after it (the horizon is 3 min).
    first = predictions[50]
    event = datetime.fromisoformat(first["event_time"])

    def label(transaction_id: str, actual_fraud: int, after: timedelta) -> dict[str, Any]:
        return {"transaction_id": transaction_id, "actual_fraud": actual_fraud, "label_time": iso_utc(event + after)}

    unmatched = [
        label("ghost-1", 1, timedelta(minutes=2)),
        label(first["transaction_id"], 0, -timedelta(seconds=30)),
        label(first["transaction_id"], 1, timedelta(hours=1)),
    ]
    for extra in unmatched:  # at its place in time, keeping the neighbours' shuffled order
        bisect.insort(labels, extra, key=lambda row: row["label_time"])
    return predictions, labels


def with_latency(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for pair in pairs:
        delta = datetime.fromisoformat(pair["label_time"]) - datetime.fromisoformat(pair["event_time"])
        pair["label_latency_s"] = int(delta.total_seconds())  # TIMESTAMPDIFF truncates toward zero
    return pairs


@pytest.fixture(scope="module")
def run(kafka_broker: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One bounded run, shared by the checks below; returns config, inputs and the metrics topic."""
    tmp = tmp_path_factory.mktemp("metric-set")
    data_dir = tmp / "modelmon"
    reference = tmp / "reference-scores.txt"
    write_simulated_reference(SimulatorConfig(seed=99, fraud_rate=0.15), reference, n_transactions=3000)
    cfg: Config = fresh_config(
        data_dir,
        {
            "join": {"label_horizon": "3min", "max_label_skew": "10s"},
            "segments": [{"name": name, "values": list(values)} for name, values in SEGMENTS.items()],
            "drift": {"reference_file": str(reference)},
        },
    )
    predictions, labels = dataset()
    produce(cfg, cfg.topics.predictions, json_records(predictions, "event_time"))
    produce(cfg, cfg.topics.labels, json_records(labels, "label_time"))
    # Bad records are stamped with the data's start: a time without a valid one of its own (the row time then).
    start_ms = int(START.timestamp() * 1000)
    produce(cfg, cfg.topics.predictions, ((None, value, start_ms) for value, _ in BAD_PREDICTIONS))
    produce(cfg, cfg.topics.labels, ((None, value, start_ms) for value, _ in BAD_LABELS))
    # Valid records again, as a producer's retry sends them: after the originals, in their partitions (same key).
    # Dead letters, whichever spelling; the metrics must not count them twice.
    repeated_predictions = [
        predictions[10],
        predictions[2000] | {"event_time": predictions[2000]["event_time"].replace("Z", "+00:00")},
    ]
    repeated_labels = [labels[100]]
    produce(cfg, cfg.topics.predictions, json_records(repeated_predictions, "event_time"))
    produce(cfg, cfg.topics.labels, json_records(repeated_labels, "label_time"))
    repeats = [
        (
            cfg.topics.predictions,
            json.dumps(row),
            "repeats an earlier prediction (same transaction_id, model_version, event_time)",
        )
        for row in repeated_predictions
    ] + [
        (cfg.topics.labels, json.dumps(row), "repeats an earlier label (same transaction_id, label_time)")
        for row in repeated_labels
    ]
    result = run_cli(write_config(cfg, tmp / "modelmon.yaml"), "run", "--bounded")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(read_topic(cfg, cfg.topics.metrics))
    pairs = with_latency(join_labels(predictions, labels, horizon=cfg.join.label_horizon, skew=cfg.join.max_label_skew))
    assert len(pairs) < len(labels) * 2, "the horizon must cut some labels for this test to mean anything"
    reference_scores = np.loadtxt(reference)
    return {
        "cfg": cfg,
        "config_file": tmp / "modelmon.yaml",
        "predictions": predictions,
        "labels": labels,
        "pairs": pairs,
        "rows": rows,
        "reference": reference_scores,
        "repeats": repeats,
    }


def view_rows(run: dict[str, Any], view: str) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    return {key[1:]: row for key, row in latest_metrics(iter(run["rows"])).items() if key[0] == view}


def check_labelled(got: dict[str, Any], want: dict[str, Any], latency_edges: list[float], key: object) -> None:
    for name in COUNT_FIELDS:
        assert got[name] == want[name], (key, name)
    for name in RATE_FIELDS:
        assert got[name] == pytest.approx(want[name], abs=1e-12), (key, name)
    for name in ("brier", "log_loss", "ece", "mce"):
        assert got[name] == pytest.approx(want[name], abs=1e-9), (key, name)
    if want["roc_auc"] is None:
        assert got["roc_auc"] is None, key
    else:
        assert abs(got["roc_auc"] - want["roc_auc"]) <= got["roc_auc_error_bound"] + 1e-12, key
    if want["pr_auc_binned"] is None:
        assert got["pr_auc"] is None, key
    else:
        assert got["pr_auc"] == pytest.approx(want["pr_auc_binned"], abs=1e-9), key
    prob_true, prob_pred, counts = want["reliability"]
    assert [b["n"] for b in got["reliability"]] == counts.tolist(), key
    assert [b["observed_rate"] for b in got["reliability"]] == pytest.approx(prob_true.tolist(), abs=1e-12)
    assert [b["mean_score"] for b in got["reliability"]] == pytest.approx(prob_pred.tolist(), abs=1e-9)
    for q, name in ((50, "label_latency_p50_s"), (95, "label_latency_p95_s")):
        # The estimate lies in the bucket of numpy's inverted-CDF percentile (buckets closed above).
        true = float(np.percentile(want["latency"], q, method="inverted_cdf"))
        bounds = [0.0, *latency_edges, float("inf")]
        i = max(int(np.searchsorted(bounds, max(true, 0.0), side="left")), 1)
        assert bounds[i - 1] <= got[name] <= bounds[i], (key, name, got[name], true)
    for rate, low, high in (("accuracy", "accuracy_ci_low", "accuracy_ci_high"),):
        assert got[low] <= got[rate] <= got[high], key


def check_drift(got: dict[str, Any], scores: np.ndarray, reference: np.ndarray, key: object) -> None:
    ref = np.bincount(bin_of(reference, SCORE_BINS), minlength=SCORE_BINS) / len(reference)
    cur = np.bincount(bin_of(scores, SCORE_BINS), minlength=SCORE_BINS) / len(scores)
    ref, cur = np.where(ref == 0, 1e-4, ref), np.where(cur == 0, 1e-4, cur)
    assert got["psi"] == pytest.approx(float(np.sum((cur - ref) * np.log(cur / ref))), abs=1e-9), key
    # KS of the binned scores: scipy on scores snapped to their bin, exactly; its p-value asymptotically.
    ks = ks_2samp(bin_of(reference, SCORE_BINS), bin_of(scores, SCORE_BINS), method="asymp")
    assert got["ks_statistic"] == pytest.approx(float(ks.statistic), abs=1e-12), key
    if len(scores) >= 20:
        assert got["ks_pvalue"] == pytest.approx(float(ks.pvalue), abs=0.05), key


def test_live_view_equals_sklearn(run: dict[str, Any]) -> None:
    cfg: Config = run["cfg"]
    edges = [e.total_seconds() for e in cfg.metrics.latency_buckets]
    expected = group_rows(run["pairs"], "label_time", cfg.windows.size, SEGMENTS)
    actual = view_rows(run, "live")
    assert set(actual) == set(expected)
    worst = 0.0
    for key, rows in expected.items():
        want = labelled_metrics(rows)
        got = actual[key]
        assert got["is_final"] is True and got["n_predictions"] == len(rows), key
        check_labelled(got, want, edges, key)
        if key[1:] == ("*", "*", "*") and want["roc_auc"] is not None:
            worst = max(worst, abs(got["roc_auc"] - want["roc_auc"]))
    print(f"live: {len(actual)} rows; largest |AUC - sklearn| over whole windows {worst:.5f}")
    assert worst <= 0.002


def test_unlabelled_view_counts_drift_and_estimates(run: dict[str, Any]) -> None:
    cfg: Config = run["cfg"]
    expected = group_rows(run["predictions"], "event_time", cfg.windows.size, SEGMENTS)
    actual = view_rows(run, "unlabelled")
    assert set(actual) == set(expected)
    for key, rows in expected.items():
        want = prediction_metrics(rows, cfg.windows.size)
        got = actual[key]
        assert got["n_predictions"] == want["n_predictions"] and got["n_labelled"] == 0, key
        assert got["accuracy"] is None and got["roc_auc"] is None and got["label_coverage"] == 0.0, key
        for name in ("throughput_per_s", "mean_score", "predicted_positive_rate", "estimated_accuracy",
                     "estimated_precision", "estimated_recall"):  # fmt: skip
            assert got[name] == pytest.approx(want[name], abs=1e-9), (key, name)
        check_drift(got, want["scores"], run["reference"], key)


def test_final_cohort_equals_batch_recomputation(run: dict[str, Any]) -> None:
    cfg: Config = run["cfg"]
    edges = [e.total_seconds() for e in cfg.metrics.latency_buckets]
    predicted = group_rows(run["predictions"], "event_time", cfg.windows.size, SEGMENTS)
    labelled = group_rows(run["pairs"], "event_time", cfg.windows.size, SEGMENTS)
    actual = view_rows(run, "cohort")
    assert set(actual) == set(predicted)
    coverage = []
    for key, rows in predicted.items():
        got = actual[key]
        assert got["is_final"] is True, key
        assert got["n_predictions"] == len(rows), key
        # Labels that never came (or came after the horizon) leave predictions unlabelled, not negative.
        assert got["label_coverage"] == pytest.approx(len(labelled.get(key, [])) / len(rows), abs=1e-12), key
        if key in labelled:
            check_labelled(got, labelled_metrics(labelled[key]), edges, key)
        else:
            assert got["n_labelled"] == 0 and got["accuracy"] is None, key
        check_drift(got, prediction_metrics(rows, cfg.windows.size)["scores"], run["reference"], key)
        coverage.append(got["label_coverage"])
    print(f"cohort: {len(actual)} final rows, label coverage {min(coverage):.3f}..{max(coverage):.3f}")
    assert min(coverage) > 0.5 and max(coverage) < 1.0


def test_cohort_revisions_grow_to_the_final_row(run: dict[str, Any]) -> None:
    revisions: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in run["rows"]:
        if row["view"] == "cohort":
            key = (row["window_start"], row["model_version"], row["segment_key"], row["segment_value"])
            revisions.setdefault(key, []).append(row)
    assert revisions
    several = 0
    for key, rows in revisions.items():
        provisional = sorted((r for r in rows if not r["is_final"]), key=lambda r: r["revision"])
        final = [r for r in rows if r["is_final"]]
        assert len(final) == 1, key
        assert provisional, key
        numbers = [r["revision"] for r in provisional]
        assert numbers == sorted(set(numbers)) and numbers[-1] < final[0]["revision"], key
        labelled = [r["n_labelled"] for r in provisional]
        assert labelled == sorted(labelled), key  # labels only ever add up
        # In a bounded run every label has arrived: the last provisional revision is the final one's data.
        for name in ("n_predictions", *COUNT_FIELDS):
            assert provisional[-1][name] == final[0][name], (key, name)
        # The histograms too (the revisions merge the predictions' and the labels' separately).
        for name in ("mean_score", "roc_auc", "pr_auc", "brier", "log_loss", "ece", "psi", "ks_statistic"):
            assert provisional[-1][name] == pytest.approx(final[0][name], rel=1e-9, abs=1e-12), (key, name)
        several += len(provisional) > 1
    print(f"cohort: {several} of {len(revisions)} series revised more than once")
    assert several > len(revisions) // 2


def test_champion_challenger_on_shared_transactions(run: dict[str, Any]) -> None:
    from scipy.stats import binomtest
    from sklearn.metrics import accuracy_score, brier_score_loss, recall_score

    cfg: Config = run["cfg"]
    by_version: dict[str, dict[str, dict[str, Any]]] = {"v1": {}, "v2": {}}
    for pair in run["pairs"]:
        by_version[pair["model_version"]][pair["transaction_id"]] = pair
    paired = [
        {**champion, "model_version": "v2", "challenger": by_version["v2"][tx]}
        for tx, champion in by_version["v1"].items()
        if tx in by_version["v2"]
    ]
    expected = {
        k: rows for k, rows in group_rows(paired, "label_time", cfg.windows.size, SEGMENTS).items() if k[1] == "v2"
    }
    actual = view_rows(run, "comparison")
    assert set(actual) == set(expected)
    significant = 0
    for key, rows in expected.items():
        got = actual[key]
        y = [r["actual_fraud"] for r in rows]
        champ = [r["predicted_fraud"] for r in rows]
        chall = [r["challenger"]["predicted_fraud"] for r in rows]
        b = sum(c == t and h != t for c, h, t in zip(champ, chall, y, strict=True))
        c = sum(c != t and h == t for c, h, t in zip(champ, chall, y, strict=True))
        assert (got["compared_to"], got["n_labelled"], got["mcnemar_b"], got["mcnemar_c"]) == ("v1", len(rows), b, c)
        assert got["accuracy_diff"] == pytest.approx(accuracy_score(y, chall) - accuracy_score(y, champ), abs=1e-12)
        if sum(y) > 0:
            want = recall_score(y, chall) - recall_score(y, champ)
            assert got["recall_diff"] == pytest.approx(want, abs=1e-12), key
        brier = brier_score_loss(y, [r["challenger"]["predicted_fraud_score"] for r in rows]) - brier_score_loss(
            y, [r["predicted_fraud_score"] for r in rows]
        )
        assert got["brier_diff"] == pytest.approx(brier, abs=1e-9), key
        if b + c == 0:
            assert got["mcnemar_pvalue"] is None and got["significant"] is False, key
        else:
            assert got["mcnemar_pvalue"] == pytest.approx(binomtest(b, b + c).pvalue, rel=1e-9), key
            assert got["significant"] == (got["mcnemar_pvalue"] < 0.05), key
        significant += got["significant"]
    print(f"comparison: {len(actual)} rows, {significant} with a significant difference")


def test_live_page_shows_the_runs_metrics_in_a_browser(run: dict[str, Any]) -> None:
    """The exporter's live page over this run's metrics topic, as `modelmon exporter` serves it (alert engine
    included), in headless Chromium (Debian's, driven by Playwright): the numbers shown are the topic's, and
    a screenshot is kept in build/test-artifacts/live-page.png."""
    from pathlib import Path

    from modelmon.alerting.engine import AlertEngine
    from modelmon.exporter.web.app import mount_live_page
    from playwright.sync_api import sync_playwright

    chromium = Path("/usr/bin/chromium")
    screenshot = ARTIFACTS / "live-page.png"
    assert chromium.exists(), f"{chromium} is missing: `make setup` installs Debian's chromium"

    def shown_as(value: Any) -> str:
        """As the page must show a topic's value: counts with thousands separators, rates to 3 decimals, null
        as not applicable (every window here has labels)."""
        if value is None:
            return "n/a"
        return f"{value:,}" if isinstance(value, int) else f"{value:.3f}"

    cfg: Config = run["cfg"]
    live, comparison = view_rows(run, "live"), view_rows(run, "comparison")
    newest = {version: max(k[0] for k in live if k[1:] == (version, "*", "*")) for version in ("v1", "v2")}
    exporter, engine, caught_up = Exporter(cfg, port=0), AlertEngine(cfg), threading.Event()
    exporter.add_listener(engine)
    exporter.on_caught_up(engine.flush)
    exporter.on_caught_up(caught_up.set)
    mount_live_page(exporter, alerts=engine.firing)
    errors: list[str] = []
    with exporter, sync_playwright() as playwright:
        assert caught_up.wait(60), "the exporter did not read the metrics topic"
        browser = playwright.chromium.launch(executable_path=str(chromium))
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(exporter.url.removesuffix("metrics"))
        page.wait_for_selector("body[data-loaded]", timeout=15_000)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        firing = engine.firing()
        for version, start in newest.items():
            card, row = page.locator(f'article[data-model="{version}"]'), live[(start, version, "*", "*")]
            for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "n_labelled"):
                shown = card.locator(f'.tile[data-field="{name}"] .value').inner_text()
                assert shown == shown_as(row[name]), (version, name, shown, row[name])
            assert f"[{row['accuracy_ci_low']:.3f}, {row['accuracy_ci_high']:.3f}]" in card.inner_text()
            assert card.locator("figure.calibration circle").count() == len(row["reliability"] or ())
            segments = {k[2:]: r for k, r in live.items() if k[:2] == (start, version) and k[2] != "*"}
            assert card.locator("table.segments tbody tr").count() == len(segments)
            for (key, value), segment in segments.items():
                cells = card.locator(f'tr[data-segment="{key}={value}"]')
                for name in ("n_labelled", "accuracy", "recall"):
                    assert cells.locator(f'td[data-field="{name}"]').inner_text() == shown_as(segment[name])
            critical = any(event.model_version == version and event.severity == "critical" for event in firing)
            headline = page.locator(f'.pill[data-model="{version}"] .headline').inner_text()
            assert headline == ("degraded" if critical else "healthy"), (version, [e.message for e in firing])
        start = max(k[0] for k in comparison if k[1:] == ("v2", "*", "*"))
        for name in ("n_labelled", "mcnemar_b", "mcnemar_c"):
            shown = page.locator(f'tr[data-challenger="v2"] td[data-field="{name}"]').inner_text()
            assert shown == shown_as(comparison[(start, "v2", "*", "*")][name]), name
        summary = f"{len(firing)} alert{'s' * (len(firing) != 1)} firing" if firing else "no alerts firing"
        assert page.locator("#alerts-summary").inner_text() == summary
        browser.close()
    engine.close()
    assert errors == []
    print(f"live page: {len(firing)} alerts firing; screenshot {screenshot}")


def test_bad_records_are_dead_lettered_with_their_reason_and_every_pair_is_kept(run: dict[str, Any]) -> None:
    cfg: Config = run["cfg"]
    dead = list(read_topic(cfg, cfg.topics.dead_letter))
    # Valid labels without a pair, as the oracle's join finds them: the three made so, and those the simulator
    # delivered after the horizon.
    unmatched = unmatched_labels(run["labels"], run["pairs"])
    assert {"ghost-1"} < {label["transaction_id"] for label in unmatched} and len(unmatched) > 3
    no_pair = "no prediction of this transaction_id made between 3min before and 10s after label_time"
    predictions, labels = cfg.topics.predictions, cfg.topics.labels
    expected = [(predictions, value.decode(), reason) for value, reason in BAD_PREDICTIONS]
    expected += [(labels, value.decode(), reason) for value, reason in BAD_LABELS]
    expected += [(labels, json.dumps(label), no_pair) for label in unmatched]
    expected += run["repeats"]
    assert sorted((row["source_topic"], row["payload"], row["reason"]) for row in dead) == sorted(expected)
    joined = list(read_topic(cfg, cfg.topics.labelled_predictions))
    assert len(joined) == len(run["pairs"])
    assert any(pair["transaction_id"].endswith("-early") for pair in run["pairs"])  # the early label counted

    # The exporter counts them by source topic and reason.
    exporter, caught_up = Exporter(cfg, port=0), threading.Event()
    exporter.on_caught_up(caught_up.set)
    with exporter:
        assert caught_up.wait(60), "the exporter did not read the topics"
        scraped = text_string_to_metric_families(requests.get(exporter.url, timeout=10).text)
        counted = {
            (sample.labels["source_topic"], sample.labels["reason"]): sample.value
            for family in scraped
            if family.name == "modelmon_dead_letters"
            for sample in family.samples
            if sample.name == "modelmon_dead_letters_total"
        }
    assert counted == Counter((source, reason) for source, _, reason in expected)


# ---------------------------------------------------------------------------------------------------------
# The history table of the same run.


def history_rows(cfg: Config) -> list[dict[str, Any]]:
    """The Delta table as any Delta reader sees it, rows converted to the topic's JSON form."""
    frame = DeltaTable(str(history_dir(cfg))).to_pandas()
    assert (frame["date"] == frame["window_start"].dt.strftime("%Y-%m-%d")).all()
    return list(plain_rows(frame))


def test_history_table_holds_exactly_the_final_rows_of_the_topic(run: dict[str, Any]) -> None:
    table = history_rows(run["cfg"])
    keys = [tuple(row[field] for field in METRICS_KEY) for row in table]
    assert len(keys) == len(set(keys)), "a final row was written twice"
    finals = {key: row for key, row in latest_metrics(iter(run["rows"])).items() if row["is_final"]}
    assert set(keys) == set(finals)
    assert {key[0] for key in keys} == {"live", "unlabelled", "cohort", "comparison"}
    for key, row in zip(keys, table, strict=True):
        assert row == finals[key], key  # every column, exactly: the same doubles as the topic's JSON


def test_history_command_prints_csv_json_and_a_table(run: dict[str, Any]) -> None:
    finals = [row for row in latest_metrics(iter(run["rows"])).values() if row["is_final"]]
    live_v2 = sorted(
        (r for r in finals if (r["view"], r["model_version"], r["segment_key"]) == ("live", "v2", "*")),
        key=lambda r: r["window_start"],
    )
    result = run_cli(run["config_file"], "history", "--view", "live", "--model", "v2", "--format", "csv")
    assert result.returncode == 0, result.stderr[-2000:]
    got = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["window_start"] for r in got] == [r["window_start"] for r in live_v2]
    assert [float(r["accuracy"]) for r in got] == [r["accuracy"] for r in live_v2]
    assert [json.loads(r["reliability"]) for r in got] == [r["reliability"] for r in live_v2]

    since, until = live_v2[1]["window_start"], live_v2[3]["window_start"]
    result = run_cli(
        run["config_file"],
        "history",
        "--view",
        "cohort",
        "--segment",
        "country",
        "--since",
        since,
        "--until",
        until,
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    expected = [
        r
        for r in finals
        if (r["view"], r["segment_key"]) == ("cohort", "country") and since <= r["window_start"] < until
    ]
    assert sorted(json.dumps(r, sort_keys=True) for r in json.loads(result.stdout)) == sorted(
        json.dumps(r, sort_keys=True) for r in expected
    )

    result = run_cli(run["config_file"], "history", "--view", "live", "--model", "v2")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("live") and "UTC 2026-02-02" in lines[0]
    assert len(lines) == 1 + len(live_v2) and f"{len(live_v2)} rows" in result.stderr


def test_history_plots_trend_and_calibration(run: dict[str, Any]) -> None:
    """The plots are drawn from the history (kept in build/test-artifacts to look at), and the calibration
    plot's points are exactly scikit-learn's calibration_curve over every labelled pair of each version."""
    from matplotlib.image import imread
    from sklearn.calibration import calibration_curve

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for plot in ("trend", "calibration"):
        out = ARTIFACTS / f"history-{plot}.png"
        out.unlink(missing_ok=True)
        result = run_cli(run["config_file"], "history", "--plot", plot, "--out", str(out))
        assert result.returncode == 0, result.stderr[-2000:]
        height, width, _ = imread(out).shape
        assert (width, height) == ((1000, 900) if plot == "trend" else (700, 800))

    frame = read_history(history_dir(run["cfg"]), HistoryQuery(views=("live",)))
    points = reliability_by_version(frame)
    for version in ("v1", "v2"):
        pairs = [p for p in run["pairs"] if p["model_version"] == version]
        y = np.array([p["actual_fraud"] for p in pairs])
        prob_true, prob_pred = calibration_curve(y, np.array([p["predicted_fraud_score"] for p in pairs]), n_bins=10)
        assert np.allclose([observed for *_, observed in points[version]], prob_true, atol=1e-12)
        assert np.allclose([score for _, _, score, _ in points[version]], prob_pred, atol=1e-12)
        assert sum(n for _, n, _, _ in points[version]) == len(pairs)
