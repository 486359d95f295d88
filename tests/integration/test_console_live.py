"""The console against a real local stack: every target up, then a stopped service
seen down within two refreshes."""

from __future__ import annotations

import time

import pytest

from ocean.prom import Prometheus
from ocean.runtime.local import LocalRuntime
from ocean.services import get
from tui.app import OceanConsole
from tui.widgets.health import TargetsTable

pytestmark = pytest.mark.anyio
REFRESH = 2.0
STOPPED = "redis-exporter"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_console_sees_a_stopped_service_go_down(stack: LocalRuntime):
    prom = Prometheus.of(stack)
    app = OceanConsole(stack, prom, refresh=REFRESH)
    exporter = f"127.0.0.1:{stack.settings.ports[STOPPED]}"
    try:
        async with app.run_test(size=(140, 44)) as pilot:
            while app.polls < 1:
                await pilot.pause(0.05)
            await pilot.pause(0.1)
            states = app.screen.query_one(TargetsTable).states()
            assert states and set(states.values()) == {"up"}, states
            list(stack.stop(get(STOPPED)))
            stopped_at, polls_at_stop = time.monotonic(), app.polls
            key = f"redis_exporter/{exporter}"
            while app.polls < polls_at_stop + 2:
                await pilot.pause(0.05)
                if app.screen.query_one(TargetsTable).states().get(key) == "down":
                    break
            assert app.screen.query_one(TargetsTable).states().get(key) == "down"
            assert time.monotonic() - stopped_at <= 2 * REFRESH + 1
    finally:
        list(stack.start([get(STOPPED)]))
        prom.close()
