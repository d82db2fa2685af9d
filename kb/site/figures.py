"""Figures as rendered files: training curves per run, claimed vs reproduced per paper.

Each figure is first described by a plain spec (JSON-able) built from the snapshot; its file name
carries a digest of the spec, so pages can name it without drawing it, a rebuild draws only new or
changed figures, and a browser never shows a stale one. Drawing writes SVG directly (see the
drawing section); text stays text, so Japanese renders in the browser's fonts. Every figure names the data its run used and says "synthetic" when it was
generated, and a synthetic run's bar is drawn as "not comparable", never as a reproduction.
"""

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb.site.claims import ClaimResult, claim_results
from kb.site.paths import safe_name
from kb.site.snapshot import PaperView, RunView, Snapshot

VERDICT_COLORS = {"reproduced": "#2e7d32", "not reproduced": "#c62828", "not comparable": "#9e9e9e"}
MAX_CLAIM_PANELS = 8
# Part of every figure's digest: bump it when the drawing changes, so built sites redraw.
DRAWING_VERSION = 4


@dataclass
class FigurePlan:
    """Figure file paths (relative to the site root) by run id and by paper slug, and their specs."""

    runs: dict[str, str] = field(default_factory=dict)
    papers: dict[str, str] = field(default_factory=dict)
    results: dict[str, str] = field(default_factory=dict)            # run id -> its own plots (``run.plot``)
    images: dict[str, list[tuple[str, str]]] = field(default_factory=dict)   # run id -> [(title, PNG path)]
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


def results_spec(run: RunView) -> dict[str, Any] | None:
    """The run's own figures (``run.plot``: a loss against the optimizee's step, an accuracy against a
    shared weight), one panel each, on the x axis each names; None when it drew none."""
    panels = []
    for plot in run.plots:
        series = [[str(label), list(xs), list(ys)] for label, xs, ys in plot["series"] if xs]
        if not series:
            continue
        log = plot.get("log")
        title = str(plot.get("title", "")) + (f" · {plot['ylabel']}" if plot.get("ylabel") else "")
        panels.append({"title": title, "xlabel": str(plot.get("xlabel", "")), "series": series,
                       "log": wants_log([y for _, _, ys in series for y in ys]) if log is None else bool(log)})
    if not panels:
        return None
    return {"kind": "curves", "title": f"{run.id} · {run.runner} {run.preset} · results",
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


def _path(folder: str, name: str, spec: dict[str, Any], suffix: str = ".svg") -> str:
    identity = json.dumps([DRAWING_VERSION, spec], sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha1(identity.encode()).hexdigest()[:10]
    return f"figures/{folder}/{name}-{digest}{suffix}"


_last_plan: tuple[Snapshot, FigurePlan] | None = None


def plan(snapshot: Snapshot) -> FigurePlan:
    """Which figures the site has, and where (not to be changed by the caller).

    The plan of the last snapshot asked for is kept and given again for the same snapshot: a build asks
    twice (the pages name the figures, the build draws them), and a snapshot never changes."""
    global _last_plan
    if _last_plan is None or _last_plan[0] is not snapshot:
        _last_plan = snapshot, _plan(snapshot)
    return _last_plan[1]


def _plan(snapshot: Snapshot) -> FigurePlan:
    figures = FigurePlan()
    for run in snapshot.runs:
        spec = curves_spec(run)
        if spec is not None:
            path = _path("runs", safe_name(run.id), spec)
            figures.runs[run.id], figures.specs[path] = path, spec
        spec = results_spec(run)
        if spec is not None:
            path = _path("runs", safe_name(run.id) + "-results", spec)
            figures.results[run.id], figures.specs[path] = path, spec
        for number, image in enumerate(run.images):
            spec = {"kind": "png", "png": image["png"]}
            path = _path("runs", f"{safe_name(run.id)}-image{number}", spec, ".png")
            figures.images.setdefault(run.id, []).append((str(image.get("title", "")), path))
            figures.specs[path] = spec
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
#
# Plain SVG written here, not matplotlib: a site of 1,000 papers has hundreds of figures, and
# matplotlib's SVG backend took ~90 ms of CPU for each (most of a cold build); these take ~1 ms.
# Text stays text (the browser's fonts, CJK included); the layout is in pixels of an 800-wide
# viewBox that the page scales to its width.

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
WIDTH = 800
PANEL_HEIGHT = 270
HEADER = 46                                   # title and subtitle
MARGIN = {"left": 58, "right": 14, "top": 56, "bottom": 40}    # inside a panel: title and two legend rows above
FONT = 'font-family="system-ui, sans-serif"'


def _escape(value: Any) -> str:
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _text(x: float, y: float, value: Any, *, size: int = 11, anchor: str = "start", weight: str = "normal",
          fill: str = "#222") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
            f'fill="{fill}">{_escape(value)}</text>')


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round ticks (1, 2 or 5 times a power of ten apart) covering ``low``..``high``."""
    if high <= low:
        return [low]
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((high - first) / step + 1e-9) + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten between ``low`` and ``high``, with 2 and 5 times them when there are fewer than three."""
    ticks = [10.0 ** e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)]
    inside = [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
    if len(inside) < 3:
        inside = sorted(t * m for t in ticks for m in (1, 2, 5) if low * (1 - 1e-9) <= t * m <= high * (1 + 1e-9))
    return inside


def _label(value: float) -> str:
    return f"{value:g}"


def _panel(panel: dict[str, Any], left: float, top: float, width: float) -> list[str]:
    """One curve panel: axes with ticks, one polyline per series, a legend, a title."""
    plot_left, plot_top = left + MARGIN["left"], top + MARGIN["top"]
    plot_width = width - MARGIN["left"] - MARGIN["right"]
    plot_height = PANEL_HEIGHT - MARGIN["top"] - MARGIN["bottom"]
    xs = [x for _, values, _ in panel["series"] for x in values]
    ys = [y for _, _, values in panel["series"] for y in values if math.isfinite(y)]
    if not ys:
        ys = [0.0]
    x_low, x_high = min(xs), max(xs)
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    log = panel["log"]
    if log:
        y_low, y_high = math.log10(min(ys)), math.log10(max(ys))
    else:
        y_low, y_high = min(ys), max(ys)
        pad = (y_high - y_low) * 0.05 or abs(y_high) * 0.05 or 1.0
        y_low, y_high = y_low - pad, y_high + pad

    def px(x: float) -> float:
        return plot_left + (x - x_low) / (x_high - x_low) * plot_width

    def py(y: float) -> float:
        value = math.log10(y) if log else y
        span = (y_high - y_low) or 1.0
        return plot_top + plot_height - (value - y_low) / span * plot_height

    out = [_text(plot_left, top + 16, panel["title"] + (" (log scale)" if log else ""), size=12, weight="bold"),
           f'<rect x="{plot_left:.1f}" y="{plot_top:.1f}" width="{plot_width:.1f}" height="{plot_height:.1f}" '
           'fill="none" stroke="#999" stroke-width="0.8"/>']
    y_ticks = log_ticks(10 ** y_low, 10 ** y_high) if log else nice_ticks(y_low, y_high)
    for tick in y_ticks:
        y = py(tick)
        out.append(f'<line x1="{plot_left:.1f}" x2="{plot_left + plot_width:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                   'stroke="#e4e4e4" stroke-width="0.8"/>')
        out.append(_text(plot_left - 5, y + 4, _label(tick), size=10, anchor="end", fill="#555"))
    for tick in nice_ticks(x_low, x_high, 6):
        x = px(tick)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{plot_top + plot_height:.1f}" '
                   f'y2="{plot_top + plot_height + 4:.1f}" stroke="#999" stroke-width="0.8"/>')
        out.append(_text(x, plot_top + plot_height + 16, _label(tick), size=10, anchor="middle", fill="#555"))
    out.append(_text(plot_left + plot_width / 2, top + PANEL_HEIGHT - 6, panel["xlabel"], size=10, anchor="middle",
                     fill="#555"))
    legend_x, legend_y = plot_left, top + 34        # the legend flows under the title, clear of the curves
    for number, (name, series_x, series_y) in enumerate(panel["series"]):
        color = PALETTE[number % len(PALETTE)]
        points = [(px(x), py(y)) for x, y in zip(series_x, series_y) if math.isfinite(y) and (y > 0 or not log)]
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.4" '
                   'stroke-linejoin="round"/>')
        if len(points) <= 30:
            out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.4" fill="{color}"/>' for x, y in points]
        entry = 24 + 6.2 * len(name)
        if legend_x + entry > plot_left + plot_width and legend_x > plot_left:
            legend_x, legend_y = plot_left, legend_y + 14
        out.append(f'<line x1="{legend_x:.1f}" x2="{legend_x + 16:.1f}" y1="{legend_y - 4:.1f}" y2="{legend_y - 4:.1f}" '
                   f'stroke="{color}" stroke-width="2"/>')
        out.append(_text(legend_x + 20, legend_y, name, size=10))
        legend_x += entry + 10
    return out


def _svg(width: float, height: float, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
            f'height="{height:.0f}" {FONT}>\n<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(body) + "\n</svg>\n")


def _draw_curves(spec: dict[str, Any]) -> str:
    """Panels ``COLUMNS`` to a row under the run's title and the data it used."""
    count = len(spec["panels"])
    columns = min(count, COLUMNS)
    width = WIDTH / columns
    body = [_text(8, 18, spec["title"], size=13, weight="bold"), _text(8, 36, spec["subtitle"], size=11)]
    for number, panel in enumerate(spec["panels"]):
        body += _panel(panel, (number % columns) * width, HEADER + (number // columns) * PANEL_HEIGHT, width)
    return _svg(WIDTH, HEADER + -(-count // columns) * PANEL_HEIGHT, body)


def _draw_claims(spec: dict[str, Any]) -> str:
    """One panel per claim: the paper's bar and ours, coloured by the verdict; "not comparable" is hatched."""
    count = len(spec["panels"])
    width = max(180.0, min(WIDTH / count, 240.0))
    height, top, bottom = 300.0, 60.0, 230.0
    body = [_text(8, 18, spec["title"], size=13, weight="bold"),
            '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><rect width="6" height="6" fill="#9e9e9e"/>'
            '<line x1="0" y1="0" x2="0" y2="6" stroke="white" stroke-width="2"/></pattern></defs>']
    for number, panel in enumerate(spec["panels"]):
        left = number * width
        values = [v for v in (panel["claimed"], panel["ours"]) if v is not None]
        high = max(max(values), 0.0) * 1.15 or 1.0
        low = min(min(values), 0.0) * 1.15

        def py(value: float, low: float = low, high: float = high) -> float:
            return bottom - (value - low) / (high - low) * (bottom - top)

        body.append(_text(left + 14, 44, panel["metric"], size=12, weight="bold"))
        body.append(f'<line x1="{left + 14:.1f}" x2="{left + width - 14:.1f}" y1="{py(0):.1f}" y2="{py(0):.1f}" '
                    'stroke="#999" stroke-width="0.8"/>')
        bars = [("paper", panel["claimed"], "#455a64")]
        if panel["ours"] is not None:
            verdict = panel["verdict"]
            bars.append(("ours", panel["ours"], "url(#hatch)" if verdict == "not comparable"
                         else VERDICT_COLORS.get(verdict, "#9e9e9e")))
        for slot, (name, value, fill) in enumerate(bars):
            x = left + 24 + slot * (width - 48) / 2
            bar_width = (width - 48) / 2 - 12
            y0, y1 = sorted((py(0), py(value)))
            body.append(f'<rect x="{x:.1f}" y="{y0:.1f}" width="{bar_width:.1f}" height="{max(y1 - y0, 0.5):.1f}" '
                        f'fill="{fill}"/>')
            body.append(_text(x + bar_width / 2, y0 - 4, f"{value:.4g}", size=10, anchor="middle"))
            body.append(_text(x + bar_width / 2, bottom + 14, name, size=10, anchor="middle", fill="#555"))
        for line, words in enumerate((f"claim on {panel['claim_data']}", f"run on {panel['run_data']}",
                                      panel["verdict"])):
            body.append(_text(left + width / 2, bottom + 34 + 14 * line, words, size=10, anchor="middle"))
    return _svg(max(WIDTH, width * count), height, body)


def draw(spec: dict[str, Any], target: Path) -> None:
    """Render one spec to ``target`` (SVG, or the PNG a run recorded) through a temporary file, so no
    half-written figure remains."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    if spec["kind"] == "png":
        import base64

        partial.write_bytes(base64.b64decode(spec["png"]))
    else:
        partial.write_text(_draw_curves(spec) if spec["kind"] == "curves" else _draw_claims(spec), encoding="utf-8")
    partial.replace(target)


def render(specs: dict[str, dict[str, Any]], root: Path) -> int:
    """Draw every spec whose file is not under ``root`` yet; returns how many were drawn."""
    todo = [path for path in specs if not (root / path).exists()]
    for path in todo:
        draw(specs[path], root / path)
    return len(todo)
