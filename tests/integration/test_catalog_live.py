"""The committed metric catalog (monitoring/catalog.json) is not stale: captured from the
session stack now, the same way `invoke validate --refresh-catalog` captures it, every
series name, label name and closed-set label value the stack exports is in the
catalog, every family the shop and the alert inbox declare is still exported, and the
services' versions are those the catalog came from.

The session stack has only had what other tests did to it, so the comparison goes one
way for series that need traffic or events: what is live must be catalogued, not the
other way round (the refresh drives traffic the stack may not have seen).
"""

from __future__ import annotations

import copy

import pytest

from ocean.config import REPO_ROOT
from ocean.prom import Prometheus
from ocean.runtime.local import LocalRuntime
from ocean.validate import catalog
from ocean.validate.catalog_capture import capture
from tests.integration.test_monitoring_live import wait_for_first_scrapes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live(stack: LocalRuntime) -> catalog.Catalog:
    wait_for_first_scrapes(stack.http("prometheus", timeout=5))
    return capture(stack)


@pytest.fixture(scope="module")
def committed() -> catalog.Catalog:
    loaded = catalog.load(REPO_ROOT)
    assert loaded is not None, f"no {catalog.CATALOG_PATH}: invoke validate --refresh-catalog"
    return loaded


def test_the_committed_catalog_matches_the_live_stack(committed, live):
    stale = catalog.differences(committed, live)
    assert stale == [], (
        "the metric catalog is stale (invoke validate --refresh-catalog with the stack up, "
        "then commit monitoring/catalog.json):\n" + "\n".join(stale)
    )


def test_a_doctored_catalog_is_found_stale_by_name(committed, live):
    # what the test above would say after an exporter upgrade, a new metric or label
    doctored = catalog.Catalog(copy.deepcopy(committed.metrics), dict(committed.versions))
    del doctored.metrics["pg_up"]
    doctored.metrics["up"]["labels"]["job"].remove("redis")
    doctored.metrics["shop_payment_failures_total"]["labels"].pop("reason")
    doctored.metrics["shop_gone_total"] = {"origin": "scrape", "jobs": ["shop"], "declared": True}
    doctored.versions["node_exporter"] = "0.0.1"
    stale = catalog.differences(doctored, live)
    assert (
        f"version of node_exporter: catalog 0.0.1, live {live.versions['node_exporter']}" in stale
    )
    assert "pg_up (postgres): live, not in the catalog" in stale
    assert "up{job}: values ['redis'] live, not in the catalog" in stale
    assert "shop_payment_failures_total: label reason live, not in the catalog" in stale
    assert "shop_gone_total (shop): in the catalog, no longer exported" in stale
    assert len(stale) == 5, stale


def test_the_refresh_waits_by_the_scrape_interval_prometheus_runs_with(stack: LocalRuntime):
    # The refresh sleeps three of them before capturing: read from Prometheus' own
    # configuration (the rendered prometheus.yml), not guessed from the runtime's name.
    rendered = (stack.settings.etc / "prometheus.yml").read_text()
    assert "scrape_interval: 1s" in rendered
    with Prometheus.of(stack) as prom:
        assert prom.scrape_interval_s() == 1.0
