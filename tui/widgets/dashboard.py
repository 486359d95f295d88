"""A Grafana panel in the terminal, one widget per panel type.

Each widget is given its ``ocean.dashboards`` Panel once and a PanelData on every
refresh (``show``); drawing is a pure function of the two. A query's error shows in
its panel; a panel type the console cannot draw shows its title and "open in Grafana".
"""

from __future__ import annotations

import math

from rich.markdown import Markdown
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from ocean.dashboards.model import Panel
from ocean.dashboards.query import PanelData
from ocean.dashboards.units import format_value, hex_color, threshold_color
from tui.widgets.braille import Axes, BraillePlot, Line

# Series colors in Grafana's classic palette order.
PALETTE = ("#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9")
MAX_LEGEND = 8  # series named under a plot; more are drawn but summed up as "+N more"


class PanelWidget(Vertical):
    """A panel's frame: its title, its error line, its body."""

    def __init__(self, panel: Panel) -> None:
        # No id: panel ids repeat across dashboards, and the old ones leave the DOM
        # only after the new ones are mounted.
        super().__init__(classes=f"dash-panel dash-{panel.type}")
        self.panel = panel
        self.border_title = panel.title
        self.data: PanelData | None = None

    def compose(self) -> ComposeResult:
        yield Static("", classes="panel-error")
        yield from self.compose_body()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def show(self, data: PanelData) -> None:
        self.data = data
        if self.is_mounted:  # a panel below the fold is mounted after the first paint
            self._paint(data)

    def on_mount(self) -> None:
        if self.data is not None:
            self._paint(self.data)

    def _paint(self, data: PanelData) -> None:
        error = self.query_one(".panel-error", Static)
        error.update(Text(data.error, style="bold red"))
        error.display = bool(data.error)
        self.draw(data)

    def draw(self, data: PanelData) -> None:
        pass


class TimeSeriesPanel(PanelWidget):
    def compose_body(self) -> ComposeResult:
        yield BraillePlot(classes="panel-plot")
        yield Static("", classes="panel-legend")

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
        self.query_one(BraillePlot).plot(lines, axes)
        legend = _legend(self.panel, series)
        if not series and not data.error:
            legend = Text("No data", style="dim")
        self.query_one(".panel-legend", Static).update(legend)


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
    (a gauge adds a bar from min to max)."""

    def compose_body(self) -> ComposeResult:
        yield Static("", classes="panel-stat")

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
        self.query_one(".panel-stat", Static).update(text)


def _bar(panel: Panel, value: float, width: int = 20) -> str:
    low = panel.minimum if panel.minimum is not None else 0.0
    default_high = 1.0 if panel.unit == "percentunit" else 100.0
    high = panel.maximum if panel.maximum is not None else default_high
    share = 0.0 if high <= low else min(max((value - low) / (high - low), 0.0), 1.0)
    filled = round(share * width)
    return "█" * filled + "░" * (width - filled)


class TablePanel(PanelWidget):
    def compose_body(self) -> ComposeResult:
        yield DataTable(classes="panel-table", show_cursor=False, zebra_stripes=True)

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
    def compose_body(self) -> ComposeResult:
        yield Static(Markdown(self.panel.content), classes="panel-text")


class UnsupportedPanel(PanelWidget):
    def compose_body(self) -> ComposeResult:
        yield Static(
            Text.assemble(
                (f"{self.panel.type} panel: ", "dim"),
                ("open in Grafana", "bold"),
            ),
            classes="panel-unsupported",
        )


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
