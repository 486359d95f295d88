"""A Grafana panel in the terminal, one widget per panel type.

Each widget is given its ``ocean.dashboards`` Panel once and a PanelData on every
refresh (``show``); drawing is a pure function of the two. A query's error shows in
its panel; a panel type the console cannot draw shows its title and "open in Grafana".
"""

from __future__ import annotations

import math

from rich.markdown import Markdown
from rich.segment import Segment
from rich.text import Text
from textual.app import ComposeResult
from textual.strip import Strip
from textual.visual import Visual, visualize
from textual.widget import Widget
from textual.widgets import DataTable, Static

from ocean.dashboards.model import Panel
from ocean.dashboards.query import PanelData
from ocean.dashboards.units import format_value, hex_color, threshold_color
from tui.widgets.braille import Axes, Line
from tui.widgets.braille import draw as draw_plot

# Series colors in Grafana's classic palette order.
PALETTE = ("#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9")
MAX_LEGEND = 8  # series named under a plot; more are drawn but summed up as "+N more"


class PanelWidget(Widget):
    """A panel's frame (its title in the border) and, inside it, its error line over its
    body. One widget per panel: the error line and the body are drawn here, not by
    child widgets, because restyling ≈ 200 small widgets was most of the screen's first
    paint (docs/benchmarks.md, the Dashboards screen)."""

    ERROR_LINES = 3  # an error wraps to at most 3 lines

    def __init__(self, panel: Panel) -> None:
        # No id: panel ids repeat across dashboards, and the old ones leave the DOM
        # only after the new ones are mounted.
        super().__init__(classes=f"dash-panel dash-{panel.type}")
        self.panel = panel
        self.border_title = panel.title
        self.data: PanelData | None = None
        self._drawn: tuple[int, int] | None = None  # the size the lines were drawn for
        self._lines: list[Strip] = []

    @property
    def error(self) -> str:
        return self.data.error if self.data is not None else ""

    def show(self, data: PanelData) -> None:
        self.data = data
        self.draw(data)
        self._drawn = None
        self.refresh()

    def draw(self, data: PanelData) -> None:
        """Take what the body shows from ``data`` (drawn at the next repaint)."""

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if self._drawn != (width, height):
            self._lines = self.render_error(width) if self.data is not None else []
            self._lines += self.render_body(width, max(height - len(self._lines), 0))
            self._drawn = (width, height)
        if y < len(self._lines):
            return self._lines[y]
        return Strip.blank(width, self.visual_style.rich_style)

    def render_error(self, width: int) -> list[Strip]:
        if not self.error:
            return []
        return self.strips(Text(self.error, style="bold red"), width)[: self.ERROR_LINES]

    def render_body(self, width: int, height: int) -> list[Strip]:
        return []

    def strips(self, content: object, width: int, height: int | None = None) -> list[Strip]:
        """``content`` (Text, a Rich renderable) in lines of ``width``, as a Static
        of this width would show it."""
        return Visual.to_strips(self, visualize(self, content), width, height, self.visual_style)


class TimeSeriesPanel(PanelWidget):
    """The plot in braille, with its legend (at most 2 lines) under it."""

    LEGEND_LINES = 2

    def __init__(self, panel: Panel) -> None:
        super().__init__(panel)
        self._plot: tuple[list[Line], Axes] | None = None
        self._legend = Text("")
        self.draws = 0  # how often the plot was drawn (tests check the cache)

    def draw(self, data: PanelData) -> None:
        span_min = (data.end - data.start) / 60
        series = [s for s in data.series if s.points]
        low, high = _bounds(self.panel, series)
        lines = [
            Line(
                [((t - data.end) / 60, v) for t, v in item.points],
                PALETTE[index % len(PALETTE)],
            )
            for index, item in enumerate(series)
        ]
        axes = Axes(
            x_min=-span_min,
            x_max=0.0,
            y_min=low,
            y_max=high,
            y_label=lambda v: format_value(v, self.panel.unit, self.panel.decimals),
            x_labels=[
                (-span_min + span_min * i / 4, _ago(-span_min + span_min * i / 4)) for i in range(5)
            ],
            rules=[
                (step.value, hex_color(step.color))
                for step in self.panel.thresholds
                if step.value is not None
            ],
        )
        self._plot = (lines, axes)
        legend = _legend(self.panel, series)
        if not series and not data.error:
            legend = Text("No data", style="dim")
        self._legend = legend

    def render_body(self, width: int, height: int) -> list[Strip]:
        legend = self.strips(self._legend, width)[: self.LEGEND_LINES]
        plot_height = max(height - len(legend), 0)
        if self._plot is None or not plot_height:
            plot = [Strip.blank(width, self.visual_style.rich_style)] * plot_height
        else:
            self.draws += 1
            plot = [
                Strip([Segment(text, style) for text, style in runs])
                for runs in draw_plot(self._plot[0], width, plot_height, self._plot[1])
            ]
        return plot + legend


def _bounds(panel: Panel, series: list) -> tuple[float, float]:
    values = [v for s in series for _, v in s.points if math.isfinite(v)]
    low = panel.minimum if panel.minimum is not None else min(values, default=0.0)
    high = panel.maximum if panel.maximum is not None else max(values, default=1.0)
    if panel.minimum is None and low > 0:
        low = 0.0  # Grafana starts a positive axis at zero
    if high <= low:
        high = low + (abs(low) or 1.0)
    return low, high


def _ago(minutes: float) -> str:
    if minutes >= 0:
        return "now"
    if -minutes >= 120:
        return f"-{-minutes / 60:.0f}h"
    return f"-{-minutes:.0f}m"


def _legend(panel: Panel, series: list) -> Text:
    text = Text(no_wrap=False, overflow="ellipsis")
    for index, item in enumerate(series[:MAX_LEGEND]):
        text.append("■ ", style=PALETTE[index % len(PALETTE)])
        text.append(f"{item.name or '-'} ")
        text.append(format_value(item.last, panel.unit, panel.decimals), style="bold")
        text.append("   ")
    if len(series) > MAX_LEGEND:
        text.append(f"+{len(series) - MAX_LEGEND} more", style="dim")
    return text


class StatPanel(PanelWidget):
    """Stat and gauge: each series reduced to one number, colored by the thresholds
    (a gauge adds a bar from min to max), in the middle of the panel."""

    def __init__(self, panel: Panel) -> None:
        super().__init__(panel)
        self._text = Text("")

    def draw(self, data: PanelData) -> None:
        text = Text(justify="center")
        if not data.series and not data.error:
            text.append("No data", style="dim")
        for index, item in enumerate(data.series):
            value = item.reduce(self.panel.calc)
            color = threshold_color(value, self.panel.thresholds)
            style = f"bold {hex_color(color)}" if color else "bold"
            if index:
                text.append("\n")
            if len(data.series) > 1 or (item.name and self.panel.type == "gauge"):
                text.append(f"{item.name}  ", style="dim")
            text.append(format_value(value, self.panel.unit, self.panel.decimals), style=style)
            if self.panel.type in ("gauge", "bargauge") and value is not None:
                text.append("\n" + _bar(self.panel, value), style=style)
        self._text = text

    @property
    def text(self) -> Text:
        """What the panel shows (tests read it)."""
        return self._text

    def render_body(self, width: int, height: int) -> list[Strip]:
        return _middle(self, self.strips(self._text, width), width, height)


def _middle(widget: Widget, lines: list[Strip], width: int, height: int) -> list[Strip]:
    """``lines`` in the middle of ``width`` × ``height`` (content-align: center middle)."""
    style = widget.visual_style.rich_style
    return list(Strip.align(lines[:height], style, width, height, "center", "middle"))


def _bar(panel: Panel, value: float, width: int = 20) -> str:
    low = panel.minimum if panel.minimum is not None else 0.0
    default_high = 1.0 if panel.unit == "percentunit" else 100.0
    high = panel.maximum if panel.maximum is not None else default_high
    share = 0.0 if high <= low else min(max((value - low) / (high - low), 0.0), 1.0)
    filled = round(share * width)
    return "█" * filled + "░" * (width - filled)


class TablePanel(PanelWidget):
    """A DataTable under the error line; the error line is a child widget here, made
    only when the panel has an error."""

    DEFAULT_CSS = """
    TablePanel {
        layout: vertical;
    }
    """

    def compose(self) -> ComposeResult:
        yield DataTable(classes="panel-table", show_cursor=False, zebra_stripes=True)

    def show(self, data: PanelData) -> None:
        self.data = data
        if self.is_mounted:  # else on_mount draws it
            self._paint(data)

    def on_mount(self) -> None:
        if self.data is not None:
            self._paint(self.data)

    def _paint(self, data: PanelData) -> None:
        errors = self.query(".panel-error")
        if data.error and not errors:
            self.mount(Static(Text(data.error, style="bold red"), classes="panel-error"), before=0)
        for error in errors:
            error.update(Text(data.error, style="bold red"))
            error.display = bool(data.error)
        self.draw(data)

    def render_line(self, y: int) -> Strip:
        return Strip.blank(self.size.width, self.visual_style.rich_style)

    def draw(self, data: PanelData) -> None:
        table = self.query_one(DataTable)
        table.clear(columns=True)
        if data.columns:
            keep = [i for i, c in enumerate(data.columns) if c != "Time"]
            table.add_columns(*(data.columns[i] for i in keep))
            for row in data.rows:
                cells = []
                for i in keep:
                    cell = row[i]
                    if isinstance(cell, float):
                        cell = format_value(cell, self.panel.unit, self.panel.decimals)
                    cells.append(cell)
                table.add_rows([cells])
        elif data.series:  # a table of time series: each series' last value
            table.add_columns("series", "last")
            for item in data.series:
                table.add_row(item.name, format_value(item.last, self.panel.unit))
        else:
            table.add_columns("No data")


class TextPanel(PanelWidget):
    def render_body(self, width: int, height: int) -> list[Strip]:
        return self.strips(Markdown(self.panel.content), width, height)[:height]


class UnsupportedPanel(PanelWidget):
    def render_body(self, width: int, height: int) -> list[Strip]:
        text = Text.assemble((f"{self.panel.type} panel: ", "dim"), ("open in Grafana", "bold"))
        return _middle(self, self.strips(text, width), width, height)


class RowTitle(Static):
    def __init__(self, panel: Panel) -> None:
        super().__init__(Text(f"▾ {panel.title}", style="bold"), classes="dash-row")
        self.panel = panel


def panel_widget(panel: Panel) -> PanelWidget | RowTitle:
    match panel.type:
        case "row":
            return RowTitle(panel)
        case "timeseries" | "graph":
            return TimeSeriesPanel(panel)
        case "stat" | "gauge" | "bargauge":
            return StatPanel(panel)
        case "table":
            return TablePanel(panel)
        case "text":
            return TextPanel(panel)
        case _:
            return UnsupportedPanel(panel)
