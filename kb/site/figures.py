"""Figures as rendered files: training curves per run, claimed vs reproduced per paper.

Each figure is first described by a plain spec (JSON-able) built from the snapshot; its file name
carries a digest of the spec, so pages can name it without drawing it, a rebuild draws only new or
changed figures, and a browser never shows a stale one. Drawing uses matplotlib's ``Figure`` with
the SVG canvas (no display, no pyplot state); text stays text, so Japanese renders in the
browser's fonts. Every figure names the data its run used and says "synthetic" when it was
generated, and a synthetic run's bar is drawn as "not comparable", never as a reproduction.
"""

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from kb.site.claims import ClaimResult, claim_results
from kb.site.paths import safe_name
from kb.site.snapshot import PaperView, RunView, Snapshot

VERDICT_COLORS = {"reproduced": "#2e7d32", "not reproduced": "#c62828", "not comparable": "#9e9e9e"}
MAX_CLAIM_PANELS = 8
# Part of every figure's digest: bump it when the drawing changes, so built sites redraw.
DRAWING_VERSION = 2


@dataclass
class FigurePlan:
    """Figure file paths (relative to the site root) by run id and by paper slug, and their specs."""

    runs: dict[str, str] = field(default_factory=dict)
    papers: dict[str, str] = field(default_factory=dict)
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)


def data_label(run: RunView) -> str:
    return f"{run.dataset or 'unknown data'}{' (synthetic)' if run.dataset_synthetic else ''}"


# Metric families, one panel each, in this order; a metric is in the first family whose test its name passes.
FAMILIES = (
    ("losses", lambda name: "loss" in name),
    ("learning rate", lambda name: name in ("lr", "learning_rate") or name.startswith("lr_")),
    ("gradient norm", lambda name: "grad" in name and "norm" in name),
    ("evaluation (accuracy, mAP, error, ...)", lambda name: True),
)
PANEL_ORDER = ("losses", "evaluation (accuracy, mAP, error, ...)", "learning rate", "gradient norm")
LOG_DECADES = 1.5       # a panel whose positive values span more than this many decades gets a log axis
COLUMNS = 2             # panels side by side: each stays readable at the page's width


def family(name: str) -> str:
    lower = name.lower()
    return next(title for title, test in FAMILIES if test(lower))


def wants_log(values: list[float]) -> bool:
    """A log axis when every value is positive and they span more than ``LOG_DECADES`` decades (a loss
    falling from 100 to 0.5 is a flat line at the bottom of a linear axis)."""
    return bool(values) and min(values) > 0 and max(values) / min(values) > 10 ** LOG_DECADES


def curves_spec(run: RunView) -> dict[str, Any] | None:
    """One panel per metric family (``FAMILIES``) on one x axis: the step when the run logged steps (its
    epoch metrics sit at the step they were logged at), else the epoch. None when it logged nothing."""
    on_steps = any(c.kind == "step" for c in run.curves)
    grouped: dict[tuple[str, str], list[list]] = {}
    for curve in run.curves:
        xs = [p[0] for p in curve.points]
        axis = curve.kind
        if curve.kind == "epoch" and on_steps and curve.steps and max(curve.steps) > 0:
            xs, axis = list(curve.steps), "step"
        grouped.setdefault((family(curve.name), axis), []).append([curve.name, xs, [p[1] for p in curve.points]])
    if not grouped:
        return None
    panels = [{"title": title, "xlabel": axis, "series": series,
               "log": wants_log([y for _, _, ys in series for y in ys])}
              for (title, axis), series in sorted(grouped.items(), key=lambda item: (PANEL_ORDER.index(item[0][0]),
                                                                                     item[0][1]))]
    return {"kind": "curves", "title": f"{run.id} · {run.runner} {run.preset}",
            "subtitle": f"data: {data_label(run)}", "panels": panels}


def claims_spec(paper: PaperView, results: list[ClaimResult]) -> dict[str, Any] | None:
    """One panel per claim (claimed bar, our bar); None until some run has answered a claim."""
    if not any(r.run is not None for r in results):
        return None
    panels = []
    for result in results[:MAX_CLAIM_PANELS]:
        claim = result.claim
        ours = result.verdict.get("ours") if result.verdict else None
        panels.append({
            "metric": f"{claim['metric']}{' (' + claim['unit'] + ')' if claim.get('unit') else ''}",
            "claim_data": claim["dataset"], "run_data": result.data_used or "no run yet",
            "claimed": float(claim["value"]), "ours": None if ours is None else float(ours), "verdict": result.label,
        })
    return {"kind": "claims", "title": f"Claimed vs reproduced: {paper.slug}", "panels": panels}


def _path(folder: str, name: str, spec: dict[str, Any]) -> str:
    identity = json.dumps([DRAWING_VERSION, spec], sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha1(identity.encode()).hexdigest()[:10]
    return f"figures/{folder}/{name}-{digest}.svg"


def plan(snapshot: Snapshot) -> FigurePlan:
    """Which figures the site has, and where."""
    figures = FigurePlan()
    for run in snapshot.runs:
        spec = curves_spec(run)
        if spec is not None:
            path = _path("runs", safe_name(run.id), spec)
            figures.runs[run.id], figures.specs[path] = path, spec
    runs_by_paper: dict[str, list[RunView]] = {}
    for run in snapshot.runs:
        runs_by_paper.setdefault(run.paper_key, []).append(run)
    for paper in snapshot.papers:
        spec = claims_spec(paper, claim_results(paper.claims, runs_by_paper.get(paper.key, [])))
        if spec is not None:
            path = _path("papers", paper.slug, spec)
            figures.papers[paper.slug], figures.specs[path] = path, spec
    return figures


# -- drawing --------------------------------------------------------------------------------


def _style() -> None:
    import matplotlib

    matplotlib.rcParams.update({
        "svg.fonttype": "none",            # text as <text>: the browser's fonts (CJK included)
        "svg.hashsalt": "kb",              # stable element ids, so a rebuild writes the same bytes
        "text.parse_math": False,          # a "$" in a run id or a dataset name is a dollar sign
        "font.size": 8, "axes.titlesize": 9, "axes.titley": 1.0, "axes.titlelocation": "left",
        "axes.spines.top": False, "axes.spines.right": False,
    })


@lru_cache(maxsize=8)
def _curves_canvas(count: int):
    """A figure with ``count`` curve panels, ``COLUMNS`` to a row, made once per process and redrawn
    for every run: creating axes and their ticks is most of the time matplotlib takes for a figure."""
    from matplotlib.figure import Figure

    columns, rows = min(count, COLUMNS), -(-count // COLUMNS)
    header = 0.8                                      # inches for the title, subtitle and first panel titles
    fig = Figure(figsize=(8.0, header + 2.6 * rows))
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.5 / fig.get_figheight(),
                        top=1 - header / fig.get_figheight(), wspace=0.22, hspace=0.55)
    title = fig.text(0.01, 1 - 0.08 / fig.get_figheight(), "", va="top", fontsize=9, fontweight="bold")
    subtitle = fig.text(0.01, 1 - 0.3 / fig.get_figheight(), "", va="top", fontsize=8)
    axes = list(fig.subplots(rows, columns, squeeze=False).flat)
    for extra in axes[count:]:
        extra.set_visible(False)
    return fig, title, subtitle, axes[:count]


def _plain_number(value: float, _position: int) -> str:
    """Tick labels as plain numbers ("0.01", "100"): math text is off (kb/site/figures.py ``_style``)."""
    return f"{value:g}"


def _draw_curves(spec: dict[str, Any]):
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    fig, title, subtitle, axes = _curves_canvas(len(spec["panels"]))
    title.set_text(spec["title"])
    subtitle.set_text(spec["subtitle"])
    for ax, panel in zip(axes, spec["panels"]):
        for line in list(ax.lines):
            line.remove()
        ax.set_prop_cycle(None)                 # the same colours whatever was drawn before
        ax.set_yscale("log" if panel["log"] else "linear")
        ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
        if panel["log"]:
            ax.yaxis.set_major_formatter(FuncFormatter(_plain_number))
            ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            ax.yaxis.set_major_locator(MaxNLocator(5))
        for name, xs, ys in panel["series"]:
            ax.plot(xs, ys, label=name, linewidth=1.2, marker="o" if len(xs) <= 30 else None, markersize=3)
        ax.relim()
        ax.autoscale_view()
        ax.set_title(panel["title"] + (" (log scale)" if panel["log"] else ""))
        ax.set_xlabel(panel["xlabel"])
        ax.legend(frameon=False, fontsize=7, ncols=2 if len(panel["series"]) > 3 else 1)
    return fig


def _draw_claims(spec: dict[str, Any]):
    from matplotlib.figure import Figure

    count = len(spec["panels"])
    fig = Figure(figsize=(max(3.6, 2.3 * count), 3.2))
    fig.subplots_adjust(left=0.12 / min(count, 3), right=0.98, bottom=0.26, top=0.8, wspace=0.45)
    fig.text(0.01, 0.97, spec["title"], va="top", fontsize=9, fontweight="bold")
    for ax, panel in zip(fig.subplots(1, count, squeeze=False)[0], spec["panels"]):
        ax.bar([0], [panel["claimed"]], color="#455a64", width=0.6)
        ax.annotate(f"{panel['claimed']:g}", (0, panel["claimed"]), ha="center", va="bottom", fontsize=7)
        if panel["ours"] is not None:
            synthetic_or_other = panel["verdict"] == "not comparable"
            ax.bar([1], [panel["ours"]], width=0.6, color=VERDICT_COLORS.get(panel["verdict"], "#9e9e9e"),
                   hatch="//" if synthetic_or_other else None, edgecolor="white" if synthetic_or_other else None)
            ax.annotate(f"{panel['ours']:g}", (1, panel["ours"]), ha="center", va="bottom", fontsize=7)
        ax.set_xlim(-0.6, 1.6)
        ax.set_xticks([0, 1], ["paper", "ours"])
        ax.set_title(panel["metric"])
        ax.set_xlabel(f"claim on {panel['claim_data']}\nrun on {panel['run_data']}\n{panel['verdict']}", fontsize=7)
    return fig


def draw(spec: dict[str, Any], target: Path) -> None:
    """Render one spec to ``target`` (SVG) through a temporary file, so no half-written figure remains."""
    _style()
    fig = _draw_curves(spec) if spec["kind"] == "curves" else _draw_claims(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    fig.savefig(partial, format="svg", metadata={"Date": None})
    partial.replace(target)


def _draw_batch(batch: list[tuple[dict[str, Any], str]]) -> None:
    for spec, target in batch:
        draw(spec, Path(target))


def render(specs: dict[str, dict[str, Any]], root: Path, *, workers: int | None = None) -> int:
    """Draw every spec whose file is not under ``root`` yet; returns how many were drawn.

    Many figures are drawn by a pool of processes (one per core): matplotlib holds the GIL.
    """
    todo = [(spec, str(root / path)) for path, spec in specs.items() if not (root / path).exists()]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = min(workers or cores, max(1, len(todo) // 8))
    if workers <= 1:
        _draw_batch(todo)
        return len(todo)
    from concurrent.futures import ProcessPoolExecutor

    batches = [todo[i::workers * 4] for i in range(workers * 4)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_draw_batch, batches))
    return len(todo)
