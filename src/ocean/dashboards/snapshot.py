"""`invoke dashboards snapshot`: a dashboard's panels drawn into one PNG or SVG.

The same panels the console draws, from the same data (``query.fetch``), laid out on
Grafana's 24-column grid with matplotlib (Agg: no display needed): time series as
lines with their threshold lines, stat and gauge panels as their numbers colored by
the thresholds, tables as tables, text panels as text, rows as headings. A panel's
error is printed in it in red; a panel type not drawn here says "open in Grafana".
Every panel has its title and one axes (``Figure.axes`` is one per panel).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

from ocean.dashboards.model import Dashboard, Panel, Selection
from ocean.dashboards.query import PanelData, PromLike, fetch
from ocean.dashboards.units import format_value, hex_color, threshold_color
from ocean.errors import OceanError

PALETTE = ("#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9")
WIDTH_IN = 16.0  # the whole image; 24 grid columns across
UNIT_IN = 0.42  # one grid row (Grafana: 30 px)
DPI = 100
BACKGROUND, PANEL_BG, TEXT, GRID = "#111217", "#181b1f", "#ccccdc", "#2c3235"


def render(
    dashboard: Dashboard,
    data: dict[int, PanelData],
    out: Path,
    selection: Selection,
    now: float,
) -> dict:
    """Draw ``dashboard`` with ``data`` into ``out`` (.png or .svg); what was drawn."""
    suffix = check_out(out).suffix.lower()
    import matplotlib

    matplotlib.use("Agg")
    # SVG text stays text: titles can be searched and copied out of a report.
    matplotlib.rcParams["svg.fonttype"] = "none"
    matplotlib.rcParams["svg.hashsalt"] = "ocean"  # the same ids run after run
    from matplotlib import pyplot as plt
    from matplotlib.gridspec import GridSpec

    panels = [p for p in dashboard.panels if p.type != "row" or p.title]
    bottom = max((p.y + p.h for p in panels), default=1)
    header = 2  # grid rows for the dashboard's title line
    rows = bottom + header
    figure = plt.figure(figsize=(WIDTH_IN, rows * UNIT_IN), dpi=DPI, facecolor=BACKGROUND)
    grid = GridSpec(rows, 24, figure=figure, left=0.045, right=0.99, top=0.995, bottom=0.005)
    grid.update(wspace=3.2, hspace=2.6)
    when = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M UTC")
    chosen = ", ".join(f"{k}={'All' if v == '$__all' else v}" for k, v in selection.values.items())
    title = figure.add_subplot(grid[0:header, :])
    title.set_axis_off()
    title.text(
        0,
        0.5,
        f"{dashboard.title}   last {_span(selection.range_s)} to {when}"
        + (f"   ({chosen})" if chosen else ""),
        color=TEXT,
        fontsize=14,
        fontweight="bold",
        va="center",
    )
    drawn = []
    for panel in panels:
        top = panel.y + header
        axes = figure.add_subplot(grid[top : top + panel.h, panel.x : panel.x + panel.w])
        _draw(axes, panel, data.get(panel.id), selection)
        drawn.append({"id": panel.id, "type": panel.type, "title": panel.title})
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format=suffix[1:], facecolor=BACKGROUND)
    size = figure.get_size_inches() * DPI
    axes_count = len(figure.axes) - 1  # the title line is not a panel
    plt.close(figure)
    return {
        "dashboard": dashboard.name,
        "out": str(out),
        "width": round(float(size[0])),
        "height": round(float(size[1])),
        "panels": drawn,
        "axes": axes_count,
        "errors": {pid: d.error for pid, d in data.items() if d.error},
    }


def check_out(out: Path) -> Path:
    """``out`` when it names a .png or .svg file in a directory that exists or can be
    made (not below a file)."""
    if out.suffix.lower() not in (".png", ".svg"):
        raise OceanError(f"--out {str(out)!r}: a .png or .svg file")
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise OceanError(f"--out {out}: {parent} is not a directory")
            break
    if out.is_dir():
        raise OceanError(f"--out {out}: a directory")
    return out


def reachable(prom) -> None:
    """OceanError naming Prometheus when it does not answer (rather than an image of
    errors)."""
    from ocean.prom import PromError

    try:
        prom.query("vector(1)")
    except PromError as exc:
        raise OceanError(f"Prometheus did not answer: {exc}") from None


def _span(seconds: float) -> str:
    for size, suffix in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{suffix}"
    return f"{int(seconds)}s"


def _frame(axes, panel: Panel) -> None:
    axes.set_facecolor(PANEL_BG)
    for spine in axes.spines.values():
        spine.set_color(GRID)
    axes.set_title(panel.title, color=TEXT, fontsize=9, loc="left", pad=3)
    axes.tick_params(colors=TEXT, labelsize=7)


def _message(axes, text: str, color: str = TEXT, size: int = 9) -> None:
    axes.text(
        0.5,
        0.5,
        text,
        color=color,
        fontsize=size,
        ha="center",
        va="center",
        transform=axes.transAxes,
        wrap=True,
    )


def _draw(axes, panel: Panel, data: PanelData | None, selection: Selection) -> None:
    if panel.type == "row":
        axes.set_axis_off()
        axes.text(
            0,
            0.2,
            panel.title,
            color="#ff9830",
            fontsize=11,
            fontweight="bold",
            transform=axes.transAxes,
        )
        axes.set_title(panel.title, fontsize=0, alpha=0)  # a title per panel, rows too
        return
    _frame(axes, panel)
    if panel.type in ("timeseries", "graph"):
        _timeseries(axes, panel, data, selection)
    else:
        axes.set_xticks([])
        axes.set_yticks([])
        if panel.type in ("stat", "gauge", "bargauge"):
            _stat(axes, panel, data)
        elif panel.type == "table":
            _table(axes, panel, data)
        elif panel.type == "text":
            axes.text(
                0.01,
                0.95,
                panel.content,
                color=TEXT,
                fontsize=8,
                va="top",
                transform=axes.transAxes,
                wrap=True,
            )
        else:
            _message(axes, f"{panel.type} panel: open in Grafana")
    if data is not None and data.error:
        axes.text(
            0.01,
            0.02,
            data.error[:160],
            color="#f2495c",
            fontsize=7,
            transform=axes.transAxes,
            wrap=True,
        )


def _timeseries(axes, panel: Panel, data: PanelData | None, selection: Selection) -> None:
    series = [s for s in (data.series if data else []) if s.points]
    end = data.end if data else 0.0
    for index, item in enumerate(series):
        xs = [(t - end) / 60 for t, _ in item.points]
        ys = [v for _, v in item.points]
        label = f"{item.name or '-'}  {format_value(item.last, panel.unit, panel.decimals)}"
        axes.plot(xs, ys, color=PALETTE[index % len(PALETTE)], linewidth=1.2, label=label)
    values = [v for s in series for _, v in s.points if math.isfinite(v)]
    for step in panel.thresholds:
        if step.value is not None and values and min(values) <= step.value <= max(values) * 1.5:
            axes.axhline(step.value, color=hex_color(step.color), linestyle="--", linewidth=0.8)
    axes.set_xlim(-selection.range_s / 60, 0)
    if panel.minimum is not None or (values and min(values) >= 0):
        axes.set_ylim(bottom=panel.minimum if panel.minimum is not None else 0)
    if panel.maximum is not None:
        axes.set_ylim(top=panel.maximum)
    axes.grid(color=GRID, linewidth=0.5)
    axes.set_xlabel("minutes ago", color=TEXT, fontsize=7, labelpad=1)
    axes.yaxis.set_major_formatter(lambda value, _: format_value(value, panel.unit, panel.decimals))
    if series:
        axes.legend(
            loc="upper left",
            fontsize=6,
            facecolor=PANEL_BG,
            edgecolor=GRID,
            labelcolor=TEXT,
            ncol=2 if len(series) > 4 else 1,
            framealpha=0.7,
        )
    elif not (data and data.error):
        _message(axes, "No data", "#8e8e8e")


def _stat(axes, panel: Panel, data: PanelData | None) -> None:
    series = data.series if data else []
    if not series:
        if not (data and data.error):
            _message(axes, "No data", "#8e8e8e")
        return
    shown = series[:6]
    for index, item in enumerate(shown):
        value = item.reduce(panel.calc)
        color = hex_color(threshold_color(value, panel.thresholds) or "green")
        y = 1 - (index + 0.5) / len(shown)
        text = format_value(value, panel.unit, panel.decimals)
        if len(shown) > 1:
            text = f"{item.name}: {text}"
        size = 22 if len(shown) == 1 else max(8, 16 - 2 * len(shown))
        axes.text(
            0.5,
            y,
            text,
            color=color,
            fontsize=size,
            fontweight="bold",
            ha="center",
            va="center",
            transform=axes.transAxes,
        )


def _table(axes, panel: Panel, data: PanelData | None) -> None:
    if data is None or (not data.rows and not data.series):
        if not (data and data.error):
            _message(axes, "No data", "#8e8e8e")
        return
    if data.rows:
        keep = [i for i, c in enumerate(data.columns) if c != "Time"]
        columns = [data.columns[i] for i in keep]
        cells = [
            [format_value(r[i], panel.unit) if isinstance(r[i], float) else str(r[i]) for i in keep]
            for r in data.rows[:12]
        ]
    else:
        columns = ["series", "last"]
        cells = [[s.name, format_value(s.last, panel.unit)] for s in data.series[:12]]
    table = axes.table(cellText=cells, colLabels=columns, loc="upper center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    for cell in table.get_celld().values():
        cell.set_facecolor(PANEL_BG)
        cell.set_edgecolor(GRID)
        cell.get_text().set_color(TEXT)


def snapshot(
    prom: PromLike,
    dashboard: Dashboard,
    out: Path,
    selection: Selection,
    now: float,
) -> dict:
    """Fetch every panel of ``dashboard`` for ``selection`` and draw it into ``out``."""
    data = fetch(prom, dashboard, selection, now)
    return render(dashboard, data, out, selection, now)
