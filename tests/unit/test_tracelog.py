"""`invoke logs --trace ID` without a stack: nginx's access log (and a rotation) and
the shops' lines gathered by id, in time order. The live test is in
tests/integration/test_dashboards_live.py."""

from __future__ import annotations

import json

import pytest

from ocean import tracelog
from ocean.errors import OceanError

ID = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER = "00f067aa0ba902b700f067aa0ba902b7"


def nginx(second: int, request_id: str, trace_id: str = "-") -> str:
    return (
        f'127.0.0.1 - - [06/Dec/2026:14:27:{second:02d} +0000] "GET /api/products HTTP/2.0" '
        f'200 240 "-" "k6" request_id={request_id} trace_id={trace_id} cache=MISS '
        "rt=0.003 urt=0.003"
    )


def shop(second: float, trace_id: str, message: str, color: str = "blue") -> str:
    return json.dumps(
        {
            "ts": f"2026-12-06T14:27:{second:06.3f}+00:00",
            "level": "INFO",
            "logger": "ocean_shop.access",
            "message": message,
            "color": color,
            "trace_id": trace_id,
        }
    )


def test_lines_of_one_request_in_time_order(tmp_path):
    (tmp_path / "nginx-access.log.1").write_text(nginx(1, OTHER, OTHER) + "\n")
    (tmp_path / "nginx-access.log").write_text(
        "\n".join([nginx(5, OTHER, OTHER), nginx(9, ID, ID), nginx(9, "f" * 32)]) + "\n"
    )
    shops = {
        "shop-blue": [shop(9.2, ID, "slow query"), shop(9.5, ID, "GET /api/products 200")],
        "shop-green": [shop(9.1, OTHER, "GET /x 200", "green"), shop(8.9, ID, "warm", "green")],
    }
    lines = tracelog.gather(ID.upper(), tmp_path, lambda name: shops[name])
    assert [(t.source, t.line.split('"message": ')[-1][:12]) for t in lines][:3] == [
        ("shop-green", '"warm", "col'),
        ("shop-blue", '"slow query"'),
        ("shop-blue", '"GET /api/pr'),
    ]
    assert lines[-1].source == "nginx" and f"request_id={ID}" in lines[-1].line
    assert len(lines) == 4
    assert tracelog.format_line(lines[-1]).startswith("nginx      127.0.0.1")


def test_a_traceparent_request_is_found_by_either_id(tmp_path):
    (tmp_path / "nginx-access.log").write_text(nginx(3, OTHER, ID) + "\n")
    assert [t.source for t in tracelog.gather(ID, tmp_path, lambda _: [])] == ["nginx"]
    assert [t.source for t in tracelog.gather(OTHER, tmp_path, lambda _: [])] == ["nginx"]


def test_ids_are_normalised_and_checked():
    uuid = "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"
    assert tracelog.normalise(uuid) == ID
    assert tracelog.is_trace_id(uuid) and tracelog.is_trace_id(ID)
    assert not tracelog.is_trace_id("GET /api")
    with pytest.raises(OceanError, match="32 hex digits"):
        tracelog.normalise("nope")


def test_an_unknown_id_names_it(tmp_path):
    class Runtime:
        class settings:  # the shape of Settings the function reads
            logs = tmp_path

        def log_lines(self, *args):
            raise OceanError("never ran")

    with pytest.raises(OceanError, match=f"no lines with trace id {ID}"):
        tracelog.trace(Runtime(), ID)
