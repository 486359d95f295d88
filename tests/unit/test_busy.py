"""Budgets that stretch with the machine's load (ocean/busy.py)."""

from __future__ import annotations

import os

import pytest

from ocean import busy


@pytest.mark.parametrize(
    ("load", "cap", "expected"),
    [(0.3, None, 1.0), (5.0, None, 2.5), (36.0, None, 18.0), (36.0, 4.0, 4.0), (1.0, 4.0, 1.0)],
)
def test_the_factor_is_the_load_per_core_at_least_one_at_most_the_cap(
    monkeypatch: pytest.MonkeyPatch, load: float, cap: float | None, expected: float
) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (load, 0.0, 0.0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    assert busy.factor(cap) == expected


def test_without_a_load_average_nothing_stretches(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable() -> tuple[float, float, float]:
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", unavailable)
    assert busy.factor() == 1.0 and busy.load_per_core() is None


def test_a_stretch_is_named_only_when_there_was_one() -> None:
    assert busy.describe(1.0) == ""
    assert busy.describe(2.46) == ", stretched 2.5x for a busy machine"
