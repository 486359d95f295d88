"""`alerts.drill` where a receiver is real and external: its delivery cannot be read back,
so the drill reads Alertmanager's own notification counters instead.

A real Alertmanager (one light process, the stack's command line) with the pager
configured to a URL outside the stack's inbox (OCEAN_PAGER_WEBHOOK_URL): the "outside"
is a plain HTTP server of this test on another free port (the inbox stand-in's code),
then closed (connection refused: Alertmanager counts failed requests). The other
receivers keep delivering to the inbox (tests/alerting_support.py).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from tests.alerting_support import StubInbox, rendered_runtime, with_inbox
from tests.helpers import cli

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus-alertmanager") is None, reason="prometheus-alertmanager missing"
)


@pytest.fixture(scope="module")
def external(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    pager = StubInbox()  # on a free port: records every POST, answers 200
    runtime = rendered_runtime(
        tmp_path_factory.mktemp("external"), {"OCEAN_PAGER_WEBHOOK_URL": f"{pager.url}/page"}
    )
    try:
        with with_inbox(runtime):
            yield runtime, pager
    finally:
        pager.close()


def test_an_external_pager_is_proven_by_alertmanagers_counters(external):
    runtime, pager = external
    result = cli(runtime, "alerts.drill", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {r["route"]: r for r in json.loads(result.stdout)["routes"]}
    assert rows["pager"]["via"] == "counters" and rows["pager"]["delivered"]
    assert rows["pager"]["kind"] == "webhook"
    assert {rows[r]["via"] for r in ("deadman", "email", "chat")} == {"inbox"}
    # The counters did not lie: the external pager really got the drill alert.
    assert rows["pager"]["drill_id"] in json.dumps(pager.messages)


def test_an_external_pager_that_fails_is_named(external):
    runtime, pager = external
    pager.close()  # the pager URL in the running config now refuses connections
    result = cli(runtime, "alerts.drill", "--route", "pager", "--timeout", "8s", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["failed"] == ["pager"]
    problem = report["routes"][0]["problem"]
    assert "alertmanager_notification_requests_failed_total rose for webhook" in problem, problem
