"""The metric catalog's file and comparisons (ocean.validate.catalog), offline: what a
/metrics page contributes, how absent labels read, and what makes a catalog stale."""

from __future__ import annotations

import pytest

from ocean.config import REPO_ROOT
from ocean.validate import catalog
from ocean.validate.catalog import Catalog, Family, differences, parse_exposition
from tests.task_runner import run_task

PAGE = """\
# HELP shop_http_requests_total HTTP requests.
# TYPE shop_http_requests_total counter
shop_http_requests_total{route="/api/products",status="2xx"} 3
shop_http_requests_created{route="/api/products",status="2xx"} 1.7e9
# HELP shop_payment_failures_total Payments refused.
# TYPE shop_payment_failures_total counter
# HELP shop_lock_wait_seconds Lock waits.
# TYPE shop_lock_wait_seconds histogram
# HELP go_goroutines Goroutines.
# TYPE go_goroutines gauge
go_goroutines 12
"""


def test_a_family_declared_without_samples_is_kept_by_its_series_names():
    families = {f.name: f for f in parse_exposition(PAGE)}
    assert families["shop_payment_failures_total"].series_names() == ["shop_payment_failures_total"]
    assert families["shop_lock_wait_seconds"].series_names() == [
        "shop_lock_wait_seconds_bucket",
        "shop_lock_wait_seconds_sum",
        "shop_lock_wait_seconds_count",
        "shop_lock_wait_seconds_created",
    ]
    sampled = families["shop_http_requests_total"]
    assert sampled.series_names() == ["shop_http_requests_created", "shop_http_requests_total"]
    assert sampled.samples[0][1] == {"route": "/api/products", "status": "2xx"}


def test_a_label_some_series_lack_holds_the_empty_value():
    family = Family()
    family.add_series({"job": "redis", "role": "master"})
    family.add_series({"job": "shop"})
    family.add_series({"job": "node", "color": "blue"})
    labels = family.as_json()["labels"]
    assert labels == {
        "color": ["", "blue"],
        "job": ["node", "redis", "shop"],
        "role": ["", "master"],
    }


def test_open_labels_keep_their_name_only():
    family = Family()
    family.add_series({"instance": "127.0.0.1:1", "job": "node"})
    assert family.as_json()["labels"] == {"instance": None, "job": ["node"]}


def entry(labels, **extra):
    return {"type": "counter", "origin": "scrape", "jobs": ["shop"], "labels": labels, **extra}


def test_differences_name_what_is_stale():
    committed = Catalog(
        {
            "a_total": entry({"status": ["2xx"], "job": ["shop"]}),
            "gone_total": entry(None, declared=True),
            "quiet_total": entry(None),  # not declared: may be absent on a live stack
        },
        {"node_exporter": "1.5.0"},
    )
    live = Catalog(
        {
            "a_total": entry({"status": ["2xx", "5xx"], "job": ["shop"], "color": ["blue"]}),
            "new_total": entry({"job": ["shop"]}),
        },
        {"node_exporter": "1.6.0"},
    )
    assert differences(committed, live) == [
        "version of node_exporter: catalog 1.5.0, live 1.6.0",
        "a_total: label color live, not in the catalog",
        "a_total{status}: values ['5xx'] live, not in the catalog",
        "new_total (shop): live, not in the catalog",
        "gone_total (shop): in the catalog, no longer exported",
    ]
    assert differences(committed, committed) == []


def test_the_committed_catalog_loads_and_names_its_versions():
    loaded = catalog.load(REPO_ROOT)
    assert loaded is not None
    assert {"prometheus", "node_exporter", "postgres_exporter", "redis_exporter"} <= set(
        loaded.versions
    )
    # the closed sets the rules rely on are there
    labels = loaded.labels("shop_http_requests_total")
    assert {"blue", "green"} <= set(labels["color"])
    assert "5xx" in labels["status"]
    assert "postgres" in loaded.labels("up")["job"]


@pytest.mark.parametrize("made", [False, True], ids=["no state dir", "no stack running"])
def test_refresh_without_a_stack_is_one_line_and_keeps_the_catalog(tmp_path, made):
    state = tmp_path / "state"
    if made:
        state.mkdir()
    before = (REPO_ROOT / catalog.CATALOG_PATH).read_bytes()
    outcome = run_task(
        "validate",
        "--refresh-catalog",
        env={"OCEAN_STATE_DIR": str(state), "OCEAN_PORT_BASE": "32700"},
    )
    assert outcome.code == 1 and outcome.traceback == ""
    assert outcome.stderr.startswith("error: ") and outcome.stderr.count("\n") == 1, outcome.stderr
    assert ("does not exist" in outcome.stderr) != made
    assert "does not answer" in outcome.stderr or not made
    assert (REPO_ROOT / catalog.CATALOG_PATH).read_bytes() == before
    assert state.exists() == made  # nothing created for a stack that is not there
