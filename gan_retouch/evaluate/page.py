"""The HTML comparison page: summary table, one sortable row per image, before/after sliders, 100% zoom.

The page is one self-contained ``index.html`` (its CSS and JavaScript are inlined from ``templates/``; no CDN,
no network) that refers to images by relative paths, so a results folder can be opened from disk, copied or
zipped. ``gan-retouch test`` writes it for a test set and the training engine for its validation samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class MetricInfo:
    """How a metric is shown: its column title, decimals, and whether higher values are better."""

    title: str
    decimals: int
    higher_is_better: bool = True


METRICS: dict[str, MetricInfo] = {
    "psnr": MetricInfo("PSNR dB", 2),
    "psnr_y": MetricInfo("PSNR-Y dB", 2),
    "ssim": MetricInfo("SSIM", 4),
    "ms_ssim": MetricInfo("MS-SSIM", 4),
    "lpips": MetricInfo("LPIPS", 4, higher_is_better=False),
    "rmse": MetricInfo("RMSE /255", 2, higher_is_better=False),
    "score": MetricInfo("Score", 4),
    "psnr_mask": MetricInfo("PSNR in mask", 2),
    "psnr_clean": MetricInfo("PSNR outside mask", 2),
}


def metric_info(name: str) -> MetricInfo:
    """Display settings of a metric; unknown metrics show their name with 4 decimals."""
    return METRICS.get(name, MetricInfo(name, 4))


@dataclass
class PageRow:
    """One image of the page. Paths are relative to the page's folder (e.g. ``images/0001_input.png``).

    ``outputs`` and ``diffs`` map a model label to its output image and its |output - target| heatmap;
    ``metrics`` maps a model label (the identity baseline included) to that image's metric values.
    """

    name: str
    input: str
    target: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    diffs: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)


def format_value(name: str, value: float | None) -> str:
    """A metric value as shown on the page ('–' for a missing or undefined value)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{metric_info(name).decimals}f}"


def _best_models(summary: dict[str, dict[str, float]], metrics: list[str]) -> dict[str, str]:
    """Metric -> the model label with the best mean value (for highlighting)."""
    best = {}
    for name in metrics:
        values = {m: v[name] for m, v in summary.items() if v.get(name) is not None and not math.isnan(v[name])}
        if values:
            pick = max if metric_info(name).higher_is_better else min
            best[name] = pick(values, key=values.get)
    return best


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["metric"] = lambda value, name: format_value(name, value)
    environment.globals["metric_info"] = metric_info
    return environment


def write_page(
    folder: str | Path,
    rows: list[PageRow],
    summary: dict[str, dict[str, float]] | None = None,
    title: str = "gan-retouch results",
    details: dict[str, str] | None = None,
    notes: list[str] | None = None,
    page_size: int = 50,
) -> Path:
    """Write ``folder/index.html`` for ``rows`` and return its path.

    ``summary`` maps model label -> metric -> mean (the identity baseline first, by convention); ``details``
    are key/value facts shown under the title (checkpoints, split, data); ``notes`` explain missing columns
    (e.g. why LPIPS is absent). ``page_size`` rows are shown per page; images load lazily.
    """
    folder = Path(folder)
    summary = summary or {}
    models = list(dict.fromkeys([*summary, *(m for row in rows for m in row.metrics)]))
    metrics = list(dict.fromkeys(name for values in [*summary.values(), *(
        v for row in rows for v in row.metrics.values())] for name in values))
    output_labels = list(dict.fromkeys(label for row in rows for label in row.outputs))
    diff_labels = list(dict.fromkeys(label for row in rows for label in row.diffs))
    html = _environment().get_template("page.html").render(
        title=title,
        details=details or {},
        notes=notes or [],
        summary=summary,
        models=models,
        metrics=metrics,
        best=_best_models(summary, metrics),
        rows=rows,
        output_labels=output_labels,
        diff_labels=diff_labels,
        has_target=any(row.target for row in rows),
        page_size=max(1, page_size),
        style=(TEMPLATES / "page.css").read_text(encoding="utf-8"),
        script=(TEMPLATES / "page.js").read_text(encoding="utf-8"),
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "index.html"
    path.write_text(html, encoding="utf-8")
    return path
