"""Prometheus' running configuration read by the client (ocean/prom.py): the scrape
interval the catalog refresh waits by, and a configuration that does not read as a
PromError (one line through the tasks), not a traceback."""

from __future__ import annotations

import pytest

from ocean.errors import OceanError
from ocean.prom import PromError, Prometheus


def served(monkeypatch, text: str) -> Prometheus:
    prom = Prometheus("http://127.0.0.1:9")
    monkeypatch.setattr(prom, "_get", lambda path, **params: {"yaml": text})
    return prom


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("global:\n  scrape_interval: 1s\n", 1.0),
        ("global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n", 15.0),
        ("global: {}\n", 60.0),  # Prometheus' own default
        ("scrape_configs: []\n", 60.0),
    ],
)
def test_the_scrape_interval_of_the_running_configuration(monkeypatch, text, seconds):
    with served(monkeypatch, text) as prom:
        assert prom.scrape_interval_s() == seconds


@pytest.mark.parametrize("text", ["global: [1, 2\n", "- a list\n", "global: 5\n"])
def test_a_configuration_that_does_not_read_is_a_prom_error(monkeypatch, text):
    with served(monkeypatch, text) as prom, pytest.raises(PromError, match="does not read"):
        prom.scrape_interval_s()


def test_an_interval_that_is_no_duration_is_a_one_line_error(monkeypatch):
    prom = served(monkeypatch, "global:\n  scrape_interval: soon\n")
    with prom, pytest.raises(OceanError, match="soon"):
        prom.scrape_interval_s()
