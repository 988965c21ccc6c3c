"""Plots of history rows (matplotlib, no display needed): metric trends and a reliability diagram."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# (column, title, Wilson interval columns or None)
TREND_METRICS = (
    ("accuracy", "accuracy", ("accuracy_ci_low", "accuracy_ci_high")),
    ("precision", "precision", ("precision_ci_low", "precision_ci_high")),
    ("recall", "recall", ("recall_ci_low", "recall_ci_high")),
    ("roc_auc", "ROC AUC", None),
)
PLOTS = ("trend", "calibration")


def _version_label(version: object) -> str:
    return "all versions" if version == "*" else str(version)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def plot_trend(frame: pd.DataFrame, out: Path, *, title: str) -> None:
    """Accuracy, precision, recall and ROC AUC per window, one line per model version, with the Wilson 95%
    intervals as bands."""
    plt = _pyplot()
    from matplotlib import dates

    figure, axes = plt.subplots(len(TREND_METRICS), 1, figsize=(10, 9), sharex=True, constrained_layout=True)
    for (column, name, interval), ax in zip(TREND_METRICS, axes, strict=True):
        for version, rows in frame.groupby("model_version", sort=True):
            x = rows["window_start"].dt.tz_convert(None)  # UTC wall clock on the axis
            (line,) = ax.plot(x, rows[column].astype(float), marker="o", markersize=3, label=_version_label(version))
            if interval is not None:
                low, high = (rows[c].astype(float) for c in interval)
                ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
        ax.set_ylabel(name)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    figure.legend(*axes[0].get_legend_handles_labels(), title="model version", loc="outside right upper")
    span = frame["window_start"].max() - frame["window_start"].min()
    axes[-1].xaxis.set_major_formatter(dates.DateFormatter("%H:%M" if span.days < 1 else "%m-%d %H:%M"))  # type: ignore[no-untyped-call]
    axes[-1].set_xlabel("window start (UTC)")
    figure.suptitle(title)
    figure.savefig(out, dpi=100)
    plt.close(figure)


def reliability_by_version(frame: pd.DataFrame) -> dict[str, list[tuple[int, int, float, float]]]:
    """Per model version the reliability bins of all rows added up: (bin, n, mean score, observed rate)."""
    sums: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0, 0.0]))
    for version, bins in zip(frame["model_version"], frame["reliability"], strict=True):
        for entry in bins if bins is not None else ():
            total = sums[str(version)][int(entry["bin"])]
            n = int(entry["n"])
            total[0] += n
            total[1] += n * float(entry["mean_score"])
            total[2] += n * float(entry["observed_rate"])
    return {
        version: [(b, int(n), score / n, observed / n) for b, (n, score, observed) in sorted(per_bin.items()) if n]
        for version, per_bin in sorted(sums.items())
    }


def plot_calibration(frame: pd.DataFrame, out: Path, *, title: str, n_bins: int) -> None:
    """Reliability diagram: observed fraud rate against mean predicted score per calibration bin, over all
    the selected windows, with the diagonal of perfect calibration and the number of labels per bin."""
    plt = _pyplot()
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(7, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1]}, constrained_layout=True
    )
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    width = 1.0 / n_bins
    versions = reliability_by_version(frame)
    for i, (version, bins) in enumerate(versions.items()):
        scores = [mean for _, _, mean, _ in bins]
        top.plot(scores, [observed for _, _, _, observed in bins], marker="o", label=_version_label(version))
        offset = (i - (len(versions) - 1) / 2) * width / max(len(versions), 1)
        bottom.bar(
            [(b + 0.5) * width + offset for b, _, _, _ in bins],
            [n for _, n, _, _ in bins],
            width=width / max(len(versions), 1),
            label=_version_label(version),
        )
    top.set_ylabel("observed fraud rate")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize="small")
    bottom.set_yscale("log")
    bottom.set_ylabel("labels per bin")
    bottom.set_xlabel("mean predicted score")
    figure.suptitle(title)
    figure.savefig(out, dpi=100)
    plt.close(figure)
