"""The console against a real local stack: every target up, then a stopped service
seen down within two refreshes."""

from __future__ import annotations

import pytest

from ocean.procedures import stack as stack_procedures
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
    # The console shows Prometheus' view: wait until it scrapes every target (a test
    # before this one may have restarted Prometheus, which then lists none for a moment).
    list(stack_procedures.wait_for_targets(stack))
    prom = Prometheus.of(stack)
    app = OceanConsole(stack, prom, refresh=REFRESH)
    exporter = f"127.0.0.1:{stack.settings.ports[STOPPED]}"
    try:
        async with app.run_test(size=(140, 44)) as pilot:
            while app.polls < 1:
                await pilot.pause(0.05)
            await pilot.pause(0.1)
            states = app.screen.query_one(TargetsTable).states()
            # Up or flapping (a busy machine's startup scrapes may have timed out), none down.
            assert states and set(states.values()) <= {"up", "flapping"}, states
            list(stack.stop(get(STOPPED)))
            polls_at_stop = app.polls
            key = f"redis_exporter/{exporter}"
            # Counted in polls, not seconds (a busy machine stretches both): Prometheus
            # scrapes every second here, so the next poll or the one after sees it down;
            # a third allows for a scrape that timed out on a busy machine.
            while app.polls < polls_at_stop + 3:
                await pilot.pause(0.05)
                if app.screen.query_one(TargetsTable).states().get(key) == "down":
                    break
            assert app.screen.query_one(TargetsTable).states().get(key) == "down"
    finally:
        list(stack.start([get(STOPPED)]))
        prom.close()
