"""A Grafana dashboard read without Grafana: its panels' queries run against a plain Prometheus, and the
dashboard drawn to a PNG with matplotlib (Agg), laid out by each panel's gridPos.

What a plain Prometheus cannot expand is substituted first: `$__rate_interval` by a given window, and the
dashboard's own variables by their "All" value (`.*`, which the queries match with `=~`). The picture is
a readable likeness, not Grafana's: timeseries as lines with a legend, stat and gauge panels as big
numbers, bar gauges and pies as horizontal bars, tables as rows of label values.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

from tests.support.prometheus import query_range
from tests.support.stack import REPO

DASHBOARD = REPO / "deploy" / "grafana" / "workspace-controller.json"
GRID_COLUMNS = 24
DATASOURCE = "${datasource}"
Panel = dict[str, Any]  # a panel of the dashboard's JSON model, rows included

# --- reading the dashboard ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One query of one panel."""

    panel_id: int
    title: str
    ref_id: str
    expr: str
    legend: str
    instant: bool  # the panel shows the state now (a series gone before the end is not shown)

    @property
    def key(self) -> tuple[int, str]:
        return self.panel_id, self.ref_id

    def __str__(self) -> str:
        return f"{self.title!r} {self.ref_id}: {self.expr}"


def load(path: Path = DASHBOARD) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def panels(dashboard: Mapping[str, Any]) -> list[Panel]:
    """Every panel, rows included, in order; a collapsed row's panels follow it."""
    found: list[Panel] = []
    for panel in dashboard.get("panels") or []:
        found.append(panel)
        found.extend(panel.get("panels") or [])
    return found


def targets(dashboard: Mapping[str, Any]) -> list[Target]:
    return [
        Target(
            panel_id=int(panel["id"]),
            title=str(panel.get("title", "")),
            ref_id=str(target["refId"]),
            expr=str(target["expr"]),
            legend=str(target.get("legendFormat") or ""),
            instant=is_instant(target),
        )
        for panel in panels(dashboard)
        for target in panel.get("targets") or []
    ]


def is_instant(target: Mapping[str, Any]) -> bool:
    """Whether a target asks for the state now (Grafana's instant query) rather than a range."""
    return bool(target.get("instant")) and not target.get("range")


_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def substitute(expr: str, *, rate_interval: str, variables: Mapping[str, str] | None = None) -> str:
    """The query as Grafana would send it: `$__rate_interval` is `rate_interval`, every other variable
    its value in `variables` (default: `namespace` is `.*`, as "All" is). An unknown variable fails."""
    values = {"__rate_interval": rate_interval, **(variables or {"namespace": ".*"})}

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise ValueError(f"{expr}: no value for ${name}")
        return values[name]

    return _VARIABLE.sub(value, expr)


# --- querying -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    labels: Mapping[str, str]
    times: tuple[float, ...]
    values: tuple[float, ...]

    @property
    def finite(self) -> bool:
        return any(math.isfinite(v) for v in self.values)

    def last(self) -> float:
        """The last finite value (NaN if there is none)."""
        return next((v for v in reversed(self.values) if math.isfinite(v)), math.nan)


Results = Mapping[tuple[int, str], Sequence[Series]]
"""Each target's series, by (panel id, refId)."""


def fetch(
    url: str,
    dashboard: Mapping[str, Any],
    *,
    start: float,
    end: float,
    step: float,
    rate_interval: str,
) -> dict[tuple[int, str], list[Series]]:
    """Every target of the dashboard as a query_range over [start, end] against the Prometheus at `url`."""
    results: dict[tuple[int, str], list[Series]] = {}
    for target in targets(dashboard):
        answer = query_range(url, substitute(target.expr, rate_interval=rate_interval), start, end, step)
        results[target.key] = [
            Series(
                labels=dict(item["metric"]),
                times=tuple(float(t) for t, _ in item["values"]),
                values=tuple(float(v) for _, v in item["values"]),  # "NaN" and "+Inf" parse too
            )
            for item in answer
        ]
    return results


def empty(dashboard: Mapping[str, Any], results: Results) -> list[Target]:
    """The targets without a single finite value."""
    return [t for t in targets(dashboard) if not any(s.finite for s in results.get(t.key, ()))]


def legend_name(legend: str, labels: Mapping[str, str]) -> str:
    """A series' name as Grafana shows it: the legendFormat's {{label}}s filled in, else its labels."""
    if legend and legend != "__auto":
        name = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), legend)
        return name.strip() or "(empty)"
    shown = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{labels.get('__name__', '')}{{{shown}}}"


# --- drawing ------------------------------------------------------------------------------------------

BACKGROUND = "#111217"
PANEL = "#181b1f"
BORDER = "#2c3235"
TEXT = "#ccccdc"
MUTED = "#8e8ea0"
UNFILLED = "#25282d"
NAMED_COLORS = {
    "green": "#73bf69",
    "red": "#f2495c",
    "yellow": "#fade2a",
    "orange": "#ff9830",
    "blue": "#5794f2",
    "purple": "#b877d9",
    "text": TEXT,
}
# Grafana's classic palette, its darkest four swapped for lighter ones that show on the dark background.
PALETTE = (
    "#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0",
    "#508642", "#cca300", "#447ebc", "#c15c17", "#f29191", "#82b5d8", "#e5a8e2", "#aea2e0",
)  # fmt: skip

COLUMN_PX = 76  # one of the grid's 24 columns
ROW_PX = 34  # one grid unit of height
GAP_PX = 8
HEADER_PX = 56
TITLE_PX = 26
DPI = 100


def points(px: float) -> float:
    return px * 72 / DPI


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels from the picture's top left."""

    x: float
    y: float
    w: float
    h: float

    def inset(self, left: float = 0, top: float = 0, right: float = 0, bottom: float = 0) -> Box:
        return Box(self.x + left, self.y + top, max(self.w - left - right, 1), max(self.h - top - bottom, 1))


@dataclass(frozen=True)
class Canvas:
    figure: Figure
    width: float
    height: float

    def axes(self, box: Box, *, background: str | None = None) -> Axes:
        rect = (
            box.x / self.width,
            1 - (box.y + box.h) / self.height,
            box.w / self.width,
            box.h / self.height,
        )
        ax = self.figure.add_axes(rect)
        if background is None:
            ax.set_axis_off()
        else:
            ax.set_facecolor(background)
            for spine in ax.spines.values():
                spine.set_color(BORDER)
        return ax

    def text(self, x: float, y: float, text: str, *, size: float, **style: Any) -> None:
        style.setdefault("color", TEXT)
        self.figure.text(x / self.width, 1 - y / self.height, text, fontsize=points(size), **style)


def color_of(name: str) -> str:
    return NAMED_COLORS.get(name, name)


def format_value(value: float, unit: str = "short", decimals: int | None = None) -> str:
    """A value with its unit, as a panel shows it."""
    if not math.isfinite(value):
        return "No data" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    if unit == "s":
        if value == 0:
            return "0 s"
        for scale, suffix in ((1e-6, "µs"), (1e-3, "ms"), (1.0, "s")):
            if abs(value) < scale * 1000 or suffix == "s":
                return f"{_number(value / scale, decimals)} {suffix}"
    suffix = {"ops": " ops/s", "reqps": " req/s", "percentunit": "%"}.get(unit, "")
    if unit == "percentunit":
        value *= 100
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{_number(value / scale, decimals)}{prefix}{suffix}"
    return f"{_number(value, decimals)}{suffix}"


def _number(value: float, decimals: int | None) -> str:
    if decimals is not None:
        return f"{value:.{decimals}f}"
    if value == int(value):
        return str(int(value))
    return f"{value:.3g}"


@dataclass(frozen=True)
class Shown:
    """One series of a panel as drawn: its name, color and values."""

    name: str
    color: str
    series: Series


class PanelView:
    """A panel with its results: what its series are called, which color each gets, its unit."""

    def __init__(self, panel: Panel, results: Results) -> None:
        self.panel = panel
        defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
        self.unit = str(defaults.get("unit") or "short")
        self.decimals: int | None = defaults.get("decimals")
        self.custom: Mapping[str, Any] = defaults.get("custom") or {}
        self.options: Mapping[str, Any] = panel.get("options") or {}
        color = defaults.get("color") or {}
        self.by_thresholds = color.get("mode") == "thresholds"
        steps = (defaults.get("thresholds") or {}).get("steps") or [{"color": "green", "value": None}]
        self.steps = [(s["value"], color_of(s["color"])) for s in steps]
        self.fixed = {
            str(o["matcher"]["options"]): color_of(p["value"]["fixedColor"])
            for o in (panel.get("fieldConfig") or {}).get("overrides") or []
            if o["matcher"]["id"] == "byName"
            for p in o["properties"]
            if p["id"] == "color" and p["value"].get("mode") == "fixed"
        }
        self.shown = list(self._shown(results))

    def _shown(self, results: Results) -> Iterator[Shown]:
        index = 0
        for target in self.panel.get("targets") or []:
            found = results.get((int(self.panel["id"]), str(target["refId"])), [])
            if is_instant(target):
                found = current(found)
            named = sorted(
                ((legend_name(str(target.get("legendFormat") or ""), s.labels), s) for s in found),
                key=lambda pair: pair[0],
            )
            for name, series in named:
                if not series.finite:
                    continue
                color = self.fixed.get(name)
                if color is None:
                    color = (
                        self.threshold_color(series.last())
                        if self.by_thresholds
                        else PALETTE[index % len(PALETTE)]
                    )
                index += 1
                yield Shown(name, color, series)

    def threshold_color(self, value: float) -> str:
        chosen = self.steps[0][1]
        for floor, color in self.steps:
            if floor is None or (math.isfinite(value) and value >= floor):
                chosen = color
        return chosen

    def format(self, value: float) -> str:
        return format_value(value, self.unit, self.decimals)


def current(found: Sequence[Series]) -> list[Series]:
    """The series that still have a sample at the latest time any of them has (an instant query's)."""
    latest = max((s.times[-1] for s in found if s.times), default=None)
    return [s for s in found if s.times and s.times[-1] == latest]


def render(
    dashboard: Mapping[str, Any],
    results: Results,
    path: Path,
    *,
    start: float,
    end: float,
    subtitle: str = "",
) -> Path:
    """Draw the dashboard with these results to a PNG at `path`."""
    laid_out = [p for p in panels(dashboard) if "gridPos" in p]
    rows = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in laid_out), default=1)
    width, height = GRID_COLUMNS * COLUMN_PX + GAP_PX, HEADER_PX + rows * ROW_PX + GAP_PX
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor=BACKGROUND)
    canvas = Canvas(figure, width, height)
    canvas.text(GAP_PX + 4, 14, str(dashboard.get("title", "")), size=22, weight="bold", va="top")
    span = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start))
        + " to "
        + time.strftime("%H:%M:%S UTC", time.gmtime(end))
    )
    canvas.text(
        width - GAP_PX - 4, 18, f"{subtitle}   {span}".strip(), size=13, color=MUTED, ha="right", va="top"
    )
    for panel in laid_out:
        grid = panel["gridPos"]
        box = Box(
            GAP_PX + grid["x"] * COLUMN_PX,
            HEADER_PX + grid["y"] * ROW_PX,
            grid["w"] * COLUMN_PX - GAP_PX,
            grid["h"] * ROW_PX - GAP_PX,
        )
        if panel.get("type") == "row":
            _row(canvas, panel, box)
            continue
        canvas.axes(box, background=PANEL).set(xticks=[], yticks=[])
        canvas.text(box.x + 10, box.y + 8, str(panel.get("title", "")), size=13, weight="bold", va="top")
        draw = _DRAWERS.get(str(panel.get("type")), _unknown)
        draw(canvas, PanelView(panel, results), box.inset(10, TITLE_PX + 4, 10, 8), (start, end))
    FigureCanvasAgg(figure)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, facecolor=BACKGROUND)
    return path


def _row(canvas: Canvas, panel: Panel, box: Box) -> None:
    canvas.text(
        box.x + 2, box.y + box.h / 2 + 2, str(panel.get("title", "")), size=17, weight="bold", va="center"
    )
    line = canvas.axes(Box(box.x, box.y + box.h + 1, box.w, 1))
    line.axhline(0.5, color=BORDER, linewidth=1)


def _no_data(canvas: Canvas, box: Box, text: str = "No data") -> None:
    canvas.text(box.x + box.w / 2, box.y + box.h / 2, text, size=16, color=MUTED, ha="center", va="center")


def _unknown(canvas: Canvas, view: PanelView, box: Box, span: tuple[float, float]) -> None:
    _no_data(canvas, box, f"({view.panel.get('type')} panel: not drawn)")


def _clock(x: float, _position: float | None) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(x))


def _timeseries(canvas: Canvas, view: PanelView, box: Box, span: tuple[float, float]) -> None:
    if not view.shown:
        _no_data(canvas, box)
        return
    columns = max(1, int(box.w // 170))
    legend_rows = math.ceil(len(view.shown) / columns)
    legend_px = legend_rows * 15 + 4
    ax = canvas.axes(box.inset(left=50, bottom=legend_px + 18), background=PANEL)
    fill = float(view.custom.get("fillOpacity") or 0) / 100
    width = float(view.custom.get("lineWidth") or 1) + 0.5
    for shown in view.shown:
        ax.plot(shown.series.times, shown.series.values, color=shown.color, linewidth=width)
        if fill:
            ax.fill_between(
                shown.series.times, shown.series.values, color=shown.color, alpha=fill, linewidth=0
            )
    ax.set_xlim(*span)
    low = (view.panel.get("fieldConfig") or {}).get("defaults", {}).get("min")
    if low is not None:
        ax.set_ylim(bottom=float(low))
    top = max(max((v for v in s.series.values if math.isfinite(v)), default=0) for s in view.shown)
    if top <= (low or 0):
        ax.set_ylim(top=(low or 0) + 1)
    ticks = MaxNLocator(nbins=max(2, int(box.w // 110))).tick_values(*span)
    margin = (span[1] - span[0]) * 0.06  # none under the y axis's labels
    ax.xaxis.set_major_locator(FixedLocator([t for t in ticks if span[0] + margin <= t <= span[1]]))
    ax.xaxis.set_major_formatter(FuncFormatter(_clock))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=view.decimals == 0))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: format_value(v, view.unit)))
    ax.tick_params(colors=MUTED, labelsize=points(11), length=0, pad=4)
    ax.grid(color=BORDER, linewidth=0.6)
    for spine in ax.spines.values():
        spine.set_visible(False)
    legend = canvas.axes(Box(box.x, box.y + box.h - legend_px, box.w, legend_px))
    legend.legend(
        [Line2D([], [], color=s.color, linewidth=3) for s in view.shown],
        [_shorten(s.name, 26) for s in view.shown],
        loc="upper left",
        ncol=columns,
        frameon=False,
        fontsize=points(11),
        labelcolor=TEXT,
        handlelength=1.2,
        borderaxespad=0,
        columnspacing=1.2,
        borderpad=0,
    )


def _shorten(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _stat(canvas: Canvas, view: PanelView, box: Box, span: tuple[float, float]) -> None:
    if not view.shown:
        _no_data(canvas, box)
        return
    share = box.w / len(view.shown)
    for i, shown in enumerate(view.shown):
        part = Box(box.x + i * share, box.y, share, box.h)
        color = view.threshold_color(shown.series.last()) if view.by_thresholds else shown.color
        if view.options.get("graphMode") == "area":
            ax = canvas.axes(part.inset(top=part.h * 0.55))
            ax.fill_between(shown.series.times, shown.series.values, color=color, alpha=0.18, linewidth=0)
            ax.plot(shown.series.times, shown.series.values, color=color, linewidth=1, alpha=0.6)
            ax.set_xlim(*span)
            ax.set_ylim(bottom=0)
        text = view.format(shown.series.last())
        size = min(part.h * 0.5, part.w / max(len(text), 1) * 1.5, 56)
        canvas.text(
            part.x + part.w / 2,
            part.y + part.h * 0.4,
            text,
            size=size,
            color=color,
            weight="bold",
            ha="center",
            va="center",
        )


def _bars(canvas: Canvas, view: PanelView, box: Box, span: tuple[float, float]) -> None:
    if not view.shown:
        _no_data(canvas, box)
        return
    names = [_shorten(s.name, 22) for s in view.shown]
    values = [s.series.last() for s in view.shown]
    label_px = min(box.w * 0.4, 12 + 7.5 * max(len(n) for n in names))
    ax = canvas.axes(box.inset(left=label_px, right=64))
    slots = max(len(values), box.h / 30)
    top = max([*values, 1.0])
    positions = list(range(len(values)))
    ax.barh(positions, [top] * len(values), height=0.72, color=UNFILLED)
    ax.barh(positions, values, height=0.72, color=[s.color for s in view.shown])
    ax.set_xlim(0, top)
    ax.set_ylim(slots - 0.5, -0.5)
    for position, name, value, shown in zip(positions, names, values, view.shown, strict=True):
        ax.text(
            -0.02,
            position,
            name,
            transform=ax.get_yaxis_transform(),
            ha="right",
            va="center",
            color=TEXT,
            fontsize=points(12),
        )
        ax.text(
            1.03,
            position,
            view.format(value),
            transform=ax.get_yaxis_transform(),
            ha="left",
            va="center",
            color=shown.color,
            fontsize=points(15),
            weight="bold",
        )


def _table(canvas: Canvas, view: PanelView, box: Box, span: tuple[float, float]) -> None:
    hidden: set[str] = set()
    order: dict[str, int] = {}
    for transformation in view.panel.get("transformations") or []:
        if transformation.get("id") == "organize":
            options = transformation.get("options") or {}
            hidden |= {k for k, v in (options.get("excludeByName") or {}).items() if v}
            order |= options.get("indexByName") or {}
    rows = [dict(s.series.labels) for s in view.shown]
    columns = sorted(
        {k for row in rows for k in row} - hidden, key=lambda name: (order.get(name, len(order)), name)
    )
    if not rows or not columns:
        _no_data(canvas, box)
        return
    column_px = box.w / len(columns)
    line_px = 22
    for c, name in enumerate(columns):
        canvas.text(box.x + c * column_px + 4, box.y, name, size=12, color=MUTED, weight="bold", va="top")
    rule = canvas.axes(Box(box.x, box.y + line_px - 4, box.w, 1))
    rule.axhline(0.5, color=BORDER, linewidth=1)
    shown_rows = int((box.h - line_px) // line_px)
    for r, row in enumerate(sorted(rows, key=lambda row: [row.get(c, "") for c in columns])[:shown_rows]):
        for c, name in enumerate(columns):
            canvas.text(
                box.x + c * column_px + 4,
                box.y + (r + 1) * line_px + 2,
                _shorten(row.get(name, ""), 28),
                size=12,
                va="top",
            )


_DRAWERS: dict[str, Callable[[Canvas, PanelView, Box, tuple[float, float]], None]] = {
    "timeseries": _timeseries,
    "graph": _timeseries,
    "stat": _stat,
    "gauge": _stat,
    "singlestat": _stat,
    "bargauge": _bars,
    "piechart": _bars,
    "table": _table,
}
