"""`invoke dashboards snapshot`'s images, drawn from the recorded Prometheus of the
console's tests (tests/tui/data/dashboards.json: a local stack under k6 load): each
dashboard readable — its size, one axes and one title per panel, data drawn."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from PIL import Image

from ocean.dashboards import model, query, snapshot
from ocean.errors import OceanError
from tests.tui.recorded import RecordedPrometheus

NAMES = ["system-overview", "database-performance", "slo", "deploys"]


@pytest.mark.parametrize("name", NAMES)
def test_each_dashboard_as_an_svg_has_an_axes_and_a_title_per_panel(tmp_path, name):
    prom = RecordedPrometheus()
    dashboard = model.find(name)
    out = tmp_path / f"{name}.svg"
    drawn = snapshot.snapshot(
        prom, dashboard, out, model.Selection.default(dashboard), prom.recorded_at
    )
    svg = out.read_text()
    panels = dashboard.panels
    assert drawn["axes"] == len(panels) == len(drawn["panels"])
    # matplotlib writes one <g id="axes_N"> per axes: the panels and the title line.
    assert len(re.findall(r'<g id="axes_\d+">', svg)) == len(panels) + 1
    for panel in panels:
        assert html.escape(panel.title, quote=False) in svg, panel.title
    assert drawn["width"] == 1600 and drawn["height"] >= 1400
    assert not drawn["errors"]
    assert svg.count("<path") > 100  # lines drawn, not only frames


def test_a_png_has_the_size_it_reports(tmp_path):
    prom = RecordedPrometheus()
    dashboard = model.find("deploys")
    out = tmp_path / "deploys.png"
    drawn = snapshot.snapshot(
        prom, dashboard, out, model.Selection.default(dashboard), prom.recorded_at
    )
    with Image.open(out) as image:
        assert image.size == (drawn["width"], drawn["height"])
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert len(colors) > 50  # a picture, not a blank canvas


def test_a_failing_query_is_printed_in_its_panel(tmp_path):
    prom = RecordedPrometheus()
    dashboard = model.find("deploys")
    selection = model.Selection.default(dashboard)
    for _, expr in query.expressions(dashboard, selection, prom.recorded_at):
        if expr.startswith("histogram_quantile"):
            prom.errors[expr] = "bad_data: parse error"
    out = tmp_path / "deploys.svg"
    drawn = snapshot.snapshot(prom, dashboard, out, selection, prom.recorded_at)
    assert drawn["errors"] == {7: "A: bad_data: parse error"}
    assert "A: bad_data: parse error" in out.read_text()


def test_selection_from_the_command_line():
    dashboard = model.find("system-overview")
    chosen = model.selection(dashboard, "15m", ["color=blue", "instance=All"])
    assert chosen.range_s == 900 and chosen.values == {"color": "blue", "instance": "$__all"}
    with pytest.raises(OceanError, match="color, instance"):
        model.selection(dashboard, "", ["colour=blue"])
    with pytest.raises(OceanError, match=r"\.png or \.svg"):
        snapshot.render(dashboard, {}, Path("x.jpg"), chosen, 0)


def test_out_is_checked_before_anything_is_drawn(tmp_path):
    assert snapshot.check_out(tmp_path / "a" / "b.svg") == tmp_path / "a" / "b.svg"
    with pytest.raises(OceanError, match="not a directory"):
        snapshot.check_out(Path("/dev/null/x.png"))
    with pytest.raises(OceanError, match="a directory"):
        snapshot.check_out(tmp_path / "d.png" if (tmp_path / "d.png").mkdir() is None else 0)
    with pytest.raises(OceanError, match="at most 400d"):
        model.parse_range("99999d")
