"""A self-contained HTML chart (inline SVG, no script, no network) of one run:
requests per second and latency over time, from the run's time series."""

from __future__ import annotations

import html
from typing import Any

W, H, PAD = 760, 220, 44
LINES = (  # key, label, colour, panel
    ("rps", "requests/s (k6)", "#1f77b4", "rps"),
    ("server_p99_ms", "server p99 ms (window)", "#d62728", "latency"),
    ("server_p95_ms", "server p95 ms (window)", "#ff7f0e", "latency"),
    ("client_p99_ms", "k6 p99 ms (since start)", "#9467bd", "latency"),
)


def _panel(series: list[dict[str, Any]], panel: str, title: str, marks: list[float]) -> str:
    lines = [line for line in LINES if line[3] == panel]
    xs = [p["t"] for p in series] or [0.0]
    ys = [p[k] for p in series for k, *_ in lines if p.get(k) is not None]
    x_max = max(max(xs), 1.0)
    y_max = max(max(ys, default=1.0), 1e-9) * 1.1

    def sx(x: float) -> float:
        return PAD + (W - 2 * PAD) * x / x_max

    def sy(y: float) -> float:
        return H - PAD + (-(H - 2 * PAD) * y / y_max)

    parts = [
        f'<svg width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{PAD}" y="16" font-size="13">{html.escape(title)}</text>',
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="#999"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="#999"/>',
        f'<text x="4" y="{PAD + 4}" font-size="10">{y_max:.4g}</text>',
        f'<text x="{W - PAD}" y="{H - PAD + 14}" font-size="10">{x_max:.0f} s</text>',
    ]
    for mark in marks:
        parts.append(
            f'<line x1="{sx(mark):.1f}" y1="{PAD}" x2="{sx(mark):.1f}" y2="{H - PAD}"'
            ' stroke="#c00" stroke-dasharray="4 3"/>'
        )
    for i, (key, label, colour, _) in enumerate(lines):
        points = " ".join(
            f"{sx(p['t']):.1f},{sy(p[key]):.1f}" for p in series if p.get(key) is not None
        )
        if points:
            parts.append(f'<polyline fill="none" stroke="{colour}" points="{points}"/>')
        parts.append(
            f'<text x="{PAD + 10 + 200 * i}" y="{H - 8}" font-size="11" fill="{colour}">'
            f"{html.escape(label)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def render(title: str, series: list[dict[str, Any]], breach_at: float | None = None) -> str:
    marks = [breach_at] if breach_at is not None else []
    return "\n".join(
        [
            "<!doctype html>",
            f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>",
            "<body style='font-family: sans-serif'>",
            f"<h3>{html.escape(title)}</h3>",
            _panel(series, "rps", "Requests per second", marks),
            _panel(series, "latency", "Latency (ms)", marks),
            "<p style='font-size: 11px'>Dashed red line: a guard stopped the run.</p>"
            if marks
            else "",
            "</body></html>",
            "",
        ]
    )
