"""A line plot in braille dots (2 × 4 per cell), drawn once per data and size.

textual-plotext rebuilt its figure through ANSI text on every repaint (≈ 45 ms a plot
here), and a screen repaints on every health poll; a time-series panel
(tui/widgets/dashboard.py) draws its lines into Strips only when its data or size
changes, and a repaint reuses them. ``draw`` is a pure function from (series, size,
axes) to rows of (text, style) runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from rich.style import Style

# Braille dot bits by (column, row) inside a cell.
_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
AXIS = Style(color="grey50")
LABEL = Style(color="grey70")


@dataclass(frozen=True)
class Line:
    points: Sequence[tuple[float, float]]
    color: str


@dataclass(frozen=True)
class Axes:
    x_min: float
    x_max: float
    y_min: float
    y_max: float
    y_label: Callable[[float], str]
    x_labels: Sequence[tuple[float, str]]  # (x, text): ticks under the plot
    rules: Sequence[tuple[float, str]] = ()  # (y, color): threshold lines


def _gap(points: Sequence[tuple[float, float]]) -> float:
    """Consecutive points further apart than this are not joined (a scrape gap)."""
    steps = sorted(b[0] - a[0] for a, b in pairwise(points))
    return 3 * steps[len(steps) // 2] if steps else 0.0


def draw(lines: Sequence[Line], width: int, height: int, axes: Axes) -> list[list[tuple]]:
    """Rows of (text, Style) runs: y labels, the plot, a row of x labels."""
    if width < 8 or height < 3:
        return [[(" " * max(width, 0), None)] for _ in range(max(height, 0))]
    rows_y = height - 1
    labels = {0: axes.y_max, rows_y - 1: axes.y_min}
    if rows_y >= 5:
        labels[(rows_y - 1) // 2] = axes.y_min + (axes.y_max - axes.y_min) / 2
    texts = {row: axes.y_label(value) for row, value in labels.items()}
    left = min(max((len(t) for t in texts.values()), default=0), width // 3) + 1
    cols = width - left
    dots_x, dots_y = cols * 2, rows_y * 4
    bits = [[0] * cols for _ in range(rows_y)]
    color: list[list[str | None]] = [[None] * cols for _ in range(rows_y)]
    span_x = (axes.x_max - axes.x_min) or 1.0
    span_y = (axes.y_max - axes.y_min) or 1.0

    def dot(px: int, py: int, paint: str) -> None:
        if 0 <= px < dots_x and 0 <= py < dots_y:
            cx, cy = px >> 1, py >> 2
            bits[cy][cx] |= _BITS[px & 1][py & 3]
            color[cy][cx] = paint

    def to_dots(x: float, y: float) -> tuple[int, int]:
        px = round((x - axes.x_min) / span_x * (dots_x - 1))
        py = round((axes.y_max - y) / span_y * (dots_y - 1))
        return px, py

    for y, paint in axes.rules:
        if axes.y_min <= y <= axes.y_max:
            _, py = to_dots(axes.x_min, y)
            for px in range(0, dots_x, 2):
                dot(px, py, paint)
    for line in lines:
        gap = _gap(line.points)
        previous = None
        for x, y in line.points:
            here = to_dots(x, min(max(y, axes.y_min), axes.y_max))
            if previous is not None and x - previous[0] <= gap:
                _segment(previous[1], here, line.color, dot)
            else:
                dot(*here, line.color)
            previous = (x, here)
    out = []
    for row in range(rows_y):
        label = texts.get(row, "")[: left - 1].rjust(left - 1)
        runs: list[tuple] = [(label, LABEL), ("┤" if row in texts else "│", AXIS)]
        current, style = [], None
        for cx in range(cols):
            paint = color[row][cx]
            cell_style = Style(color=paint) if paint else None
            if cell_style != style and current:
                runs.append(("".join(current), style))
                current = []
            style = cell_style
            current.append(chr(0x2800 + bits[row][cx]) if bits[row][cx] else " ")
        if current:
            runs.append(("".join(current), style))
        out.append(runs)
    ticks = [" "] * cols
    for x, text in axes.x_labels:
        start = round((x - axes.x_min) / span_x * (cols - 1)) - len(text) // 2
        start = min(max(start, 0), max(cols - len(text), 0))
        for i, char in enumerate(text[: cols - start]):
            ticks[start + i] = char
    out.append([(" " * (left - 1) + "└", AXIS), ("".join(ticks), LABEL)])
    return out


def _segment(a: tuple[int, int], b: tuple[int, int], paint: str, dot) -> None:
    """Bresenham from dot ``a`` to dot ``b``."""
    (x0, y0), (x1, y1) = a, b
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err = dx + dy
    while True:
        dot(x0, y0, paint)
        if x0 == x1 and y0 == y1:
            return
        twice = 2 * err
        if twice >= dy:
            err += dy
            x0 += sx
        if twice <= dx:
            err += dx
            y0 += sy
