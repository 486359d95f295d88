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

import pytest

from ocean.config import REPO_ROOT
from ocean.runtime.local import LocalRuntime
from ocean.validate import catalog
from ocean.validate.catalog_capture import capture
from tests.integration.test_monitoring_live import wait_for_first_scrapes

pytestmark = pytest.mark.integration


def test_the_committed_catalog_matches_the_live_stack(stack: LocalRuntime):
    wait_for_first_scrapes(stack.http("prometheus", timeout=5))
    committed = catalog.load(REPO_ROOT)
    assert committed is not None, f"no {catalog.CATALOG_PATH}: invoke validate --refresh-catalog"
    stale = catalog.differences(committed, capture(stack))
    assert stale == [], (
        "the metric catalog is stale (invoke validate --refresh-catalog with the stack up, "
        "then commit monitoring/catalog.json):\n" + "\n".join(stale)
    )
