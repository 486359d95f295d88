"""The autoscaler's policy on series of samples (ocean/scaling.py, issue 22): steady
load holds, a sustained spike scales up in proportion, a flapping signal never moves the
count, an unreadable Prometheus changes nothing, and scaling down is slow and gradual."""

from __future__ import annotations

import pytest

from ocean.errors import OceanError
from ocean.scaling import Decision, Policy, Signals, decide

POLICY = Policy(min_workers=1, max_workers=6)
STEP_S = 10.0  # a sample every 10 s, as the loop polls


def series(*points: tuple[float | None, float | None, float | None], workers: int = 2):
    """Samples (cpu, in flight per worker, p99 ms), STEP_S apart, at a fixed count."""
    return [
        Signals(at=i * STEP_S, workers=workers, cpu=cpu, in_flight=inf, p99_ms=p99)
        for i, (cpu, inf, p99) in enumerate(points)
    ]


def run(policy: Policy, samples: list[Signals], last_change_at: float | None = None):
    """Every decision the loop would take, sample by sample, applying each change."""
    decisions: list[Decision] = []
    workers = samples[0].workers
    for i, sample in enumerate(samples):
        seen = [s.__class__(**{**s.__dict__, "workers": workers}) for s in samples[: i + 1]]
        decision = decide(policy, seen, last_change_at)
        if decision.workers != workers:
            workers, last_change_at = decision.workers, sample.at
        decisions.append(decision)
    return decisions


STEADY = (0.45, 4.0, 90.0)  # busy, but between every low and high mark
HOT = (0.95, 12.0, 170.0)
IDLE = (0.05, 0.2, 20.0)


def test_steady_load_holds_the_count():
    decisions = run(POLICY, series(*[STEADY] * 30))
    assert {d.change for d in decisions} == {"hold"}
    assert {d.workers for d in decisions} == {2}


def test_a_sustained_spike_scales_up_in_proportion_once_it_lasted_three_samples():
    decisions = run(POLICY, series(STEADY, STEADY, HOT, HOT, HOT, HOT))
    changes = [(i, d.workers) for i, d in enumerate(decisions) if d.change == "up"]
    # HOT's worst ratio is 12 / 8 in flight = 1.5: 2 workers become 3, on the 3rd hot sample.
    assert changes == [(4, 3)]
    assert "12.0 in flight per worker" in decisions[4].reason


def test_a_large_spike_is_met_in_one_step_but_never_above_the_maximum():
    storm = (1.0, 40.0, 900.0)  # p99 900 / 150 = 6x
    decisions = run(POLICY, series(*[storm] * 3))
    assert decisions[-1] == Decision(6, "up", decisions[-1].reason)
    assert run(POLICY, series(*[storm] * 3, workers=6))[-1].change == "hold"


def test_a_single_burst_is_noise():
    decisions = run(POLICY, series(STEADY, HOT, STEADY, STEADY, HOT, HOT, STEADY))
    assert {d.change for d in decisions} == {"hold"}


def test_a_flapping_signal_never_moves_the_count():
    decisions = run(POLICY, series(*[HOT, IDLE] * 20))
    assert {d.workers for d in decisions} == {2}
    assert {d.change for d in decisions} == {"hold"}


def test_pressure_right_after_a_change_waits_for_the_up_cooldown():
    decisions = run(POLICY, series(*[HOT] * 8), last_change_at=0.0)
    first_up = next(i for i, d in enumerate(decisions) if d.change == "up")
    assert first_up * STEP_S >= POLICY.up_cooldown_s
    assert decisions[first_up - 1].reason.endswith("cooling down")


def test_prometheus_unreachable_changes_nothing_even_under_pressure_before():
    unread = (None, None, None)
    decisions = run(POLICY, series(HOT, HOT, unread, unread, unread))
    assert [d.change for d in decisions[2:]] == ["hold"] * 3
    assert "no cpu, in_flight, p99_ms signal" in decisions[2].reason


def test_one_missing_signal_in_the_window_holds_until_the_window_is_whole_again():
    partial = (0.95, None, 170.0)
    decisions = run(POLICY, series(HOT, HOT, partial, HOT, HOT, HOT))
    assert [d.change for d in decisions] == ["hold"] * 5 + ["up"]


def test_idle_scales_down_one_worker_per_down_cooldown_to_the_minimum():
    samples = series(*[IDLE] * 120, workers=4)  # 20 minutes of idle
    decisions = run(POLICY, samples, last_change_at=0.0)
    downs = [(samples[i].at, d.workers) for i, d in enumerate(decisions) if d.change == "down"]
    assert [w for _, w in downs] == [3, 2, 1]
    gaps = [b - a for (a, _), (b, _) in zip([(0.0, 4), *downs[:-1]], downs, strict=True)]
    assert all(gap >= POLICY.down_cooldown_s for gap in gaps)
    assert decisions[-1].reason == "idle, at the minimum"


def test_slow_requests_alone_block_a_scale_down():
    quiet_but_slow = (0.05, 0.2, 100.0)  # p99 above the low mark: not idle
    decisions = run(POLICY, series(*[quiet_but_slow] * 40, workers=3))
    assert {d.change for d in decisions} == {"hold"}


def test_a_count_outside_the_bounds_is_brought_inside_whatever_the_signals():
    assert decide(POLICY, series(IDLE, workers=9), None) == Decision(6, "down", "9 is outside 1..6")
    tight = Policy(min_workers=3, max_workers=4)
    assert decide(tight, series(HOT, workers=1), None).workers == 3


@pytest.mark.parametrize(
    "bad",
    [
        {"min_workers": 0, "max_workers": 2},
        {"min_workers": 3, "max_workers": 2},
        {"min_workers": 1, "max_workers": 2, "cpu_low": 0.8, "cpu_high": 0.7},
        {"min_workers": 1, "max_workers": 2, "sustain": 0},
    ],
)
def test_a_policy_that_cannot_work_is_refused(bad):
    with pytest.raises(OceanError):
        Policy(**bad)


def test_no_sample_is_an_error_not_a_decision():
    with pytest.raises(OceanError):
        decide(POLICY, [], None)
