"""The deploy procedure's parts that need no stack: analysis maths, the journal and its
lock, durations, version resolution."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ocean import slo
from ocean.config import REPO_ROOT
from ocean.durations import parse_duration
from ocean.errors import OceanError
from ocean.procedures.deploy import check_color, other
from ocean.rollout import samples, warmup
from ocean.rollout.analysis import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Measurement,
    Snapshot,
    Thresholds,
    binomial_tail,
    errors_significant,
    judge,
)
from ocean.rollout.journal import DeployLocked, Journal
from ocean.rollout.probe import Sample
from ocean.rollout.verdicts import FAILURE_LIMIT, INTERVAL_S, Analyst, compare
from ocean.runtime import builds

THRESHOLDS = Thresholds(max_error_ratio=0.001, max_p99_seconds=0.2, min_requests=20)


def snapshot(requests: float, errors: float, buckets: dict[float, float]) -> Snapshot:
    return Snapshot(requests, errors, buckets)


# -- analysis ---------------------------------------------------------------------------


def test_thresholds_come_from_slo_yaml():
    slos = slo.load()
    t = Thresholds.from_slo(slos)
    assert t.max_error_ratio == pytest.approx(1 - slos.availability.objective / 100)
    assert t.max_p99_seconds == slos.latency.threshold_ms / 1000


def test_quantile_interpolates_inside_the_bucket_like_prometheus():
    # 100 requests: 50 under 10 ms, 40 more under 50 ms, 10 more under 200 ms.
    s = snapshot(100, 0, {0.01: 50, 0.05: 90, 0.2: 100, math.inf: 100})
    assert s.quantile(0.5) == pytest.approx(0.01)
    assert s.quantile(0.9) == pytest.approx(0.05)
    assert s.quantile(0.99) == pytest.approx(0.05 + 0.15 * 9 / 10)
    assert snapshot(0, 0, {}).quantile(0.99) is None


def test_slower_than_counts_past_a_bucket_bound_only():
    s = snapshot(100, 0, {0.01: 50, 0.05: 90, 0.2: 97, math.inf: 100})
    assert s.slower_than(0.2) == 3 and s.slower_than(0.01) == 50
    assert s.slower_than(0.15) is None  # not a bound: no count to give
    assert snapshot(0, 0, {}).slower_than(0.2) is None


def test_quantile_in_the_inf_bucket_is_the_last_finite_bound():
    s = snapshot(10, 0, {0.1: 5, 0.2: 5, math.inf: 10})
    assert s.quantile(0.99) == 0.2


def test_difference_of_snapshots_counts_series_born_in_between():
    before = snapshot(100, 0, {0.1: 100, math.inf: 100})
    # 50 more requests, 10 of them errors: a 5xx series that did not exist before.
    after = snapshot(150, 10, {0.1: 140, math.inf: 150})
    window = after.minus(before)
    assert (window.requests, window.errors) == (50, 10)
    assert window.buckets == {0.1: 40, math.inf: 50}
    assert not after.reset_since(before)
    assert snapshot(3, 0, {}).reset_since(before)


def test_judge_fails_an_error_ratio_breach_with_the_numbers():
    m = judge(
        Measurement.of("green", 30, snapshot(1000, 200, {0.05: 1000, math.inf: 1000})), THRESHOLDS
    )
    assert m.verdict == FAIL
    assert m.reasons == ["error ratio 20.00% > 0.10% (200 of 1000 requests)"]


def test_judge_fails_a_p99_breach_only_with_enough_requests():
    slow = {0.1: 0, 0.3: 1000, math.inf: 1000}
    assert judge(Measurement.of("g", 30, snapshot(1000, 0, slow)), THRESHOLDS).verdict == FAIL
    few = {0.1: 0, 0.3: 5, math.inf: 5}
    m = judge(Measurement.of("g", 30, snapshot(5, 0, few)), THRESHOLDS)
    assert m.verdict == INCONCLUSIVE and "only 5 requests" in m.reasons[0]


def test_judge_weighs_errors_by_the_number_of_requests():
    ok = judge(Measurement.of("g", 30, snapshot(5000, 1, {0.05: 5000, math.inf: 5000})), THRESHOLDS)
    assert ok.verdict == PASS  # 0.02% errors is within 0.1%
    # One error in 62 requests happens to a 99.9% color 6% of the time: no evidence.
    one = judge(Measurement.of("g", 3, snapshot(62, 1, {0.05: 62, math.inf: 62})), THRESHOLDS)
    assert one.verdict == PASS
    # Three in 62: a 99.9% color shows that once in ~28,000 windows.
    three = judge(Measurement.of("g", 3, snapshot(62, 3, {0.05: 62, math.inf: 62})), THRESHOLDS)
    assert three.verdict == FAIL and "3 of 62 requests" in three.reasons[0]
    # A fifth failing is significant within its first couple of dozen requests.
    fifth = judge(Measurement.of("g", 1, snapshot(25, 5, {0.05: 25, math.inf: 25})), THRESHOLDS)
    assert fifth.verdict == FAIL


def test_binomial_tail_matches_the_closed_form():
    # P(X >= 1) = 1 - (1 - p)^n; P(X >= n) = p^n
    assert binomial_tail(1, 62, 0.001) == pytest.approx(1 - 0.999**62)
    assert binomial_tail(4, 4, 0.1) == pytest.approx(1e-4)
    assert binomial_tail(0, 10, 0.1) == 1.0 and binomial_tail(11, 10, 0.1) == 0.0
    assert errors_significant(1, 10, 0.0)  # a 100% objective: any error
    assert not errors_significant(0, 10**6, 0.001)


# -- the post-switch verdict: sustained, relative ------------------------------------------


def probes(color: str, seconds: float, n: int = 40, status: int = 200) -> list[Sample]:
    return [Sample(at=float(i), color=color, seconds=seconds, status=status) for i in range(n)]


def traffic(per_second: int, seconds: int, p99_bucket: float, errors_per_second: int = 0):
    """Cumulative snapshots, one per second: ``per_second`` requests all in the
    ``p99_bucket`` bucket (0.05: fast, 0.5: slow)."""
    total = errors = 0
    for _ in range(seconds):
        total += per_second
        errors += errors_per_second
        buckets = {0.05: total if p99_bucket <= 0.05 else 0, 0.5: total, math.inf: total}
        yield snapshot(total, errors, buckets)


def run(analyst: Analyst, snapshots, comparison, final_at: int | None = None):
    verdicts = []
    for second, current in enumerate(snapshots, start=1):
        verdict = analyst.observe(float(second), current, comparison, final=second == final_at)
        verdicts.append(verdict)
        if verdict.verdict == FAIL:
            break
    return verdicts


SAME = compare(probes("new", 0.02), probes("old", 0.02), margin_s=0.1)
SLOWER = compare(probes("new", 0.33), probes("old", 0.03), margin_s=0.1)
NO_OLD = compare(probes("new", 0.33), [], margin_s=0.1)


# The old color's live traffic in the 30 s before the switch: all of it in the 0.5 s
# bucket (a loaded machine), or in the 50 ms bucket (a quiet one).
OLD_LIVE_SLOW = snapshot(3000, 0, {0.05: 0, 0.5: 3000, math.inf: 3000})
OLD_LIVE_FAST = snapshot(3000, 0, {0.05: 3000, 0.5: 3000, math.inf: 3000})


def test_compare_names_a_regression_only_beyond_the_margin():
    assert SAME.verdict == PASS
    assert SLOWER.verdict == FAIL and "330 ms new vs 30 ms old" in SLOWER.summary()
    assert NO_OLD.verdict == INCONCLUSIVE
    # Some routes slow only: the median holds, the 90th percentile shows it.
    mixed = probes("new", 0.02, 30) + probes("new", 0.5, 10)
    assert compare(mixed, probes("old", 0.02), margin_s=0.1).verdict == FAIL
    # Failed probes (no answer) are not latencies.
    silent = probes("old", 5.0, status=0)
    assert compare(probes("new", 0.02), silent, margin_s=0.1).verdict == INCONCLUSIVE


def test_one_slow_second_is_no_rollback():
    analyst = Analyst("green", THRESHOLDS, snapshot(0, 0, {}))
    fast = list(traffic(100, 10, 0.05))
    # Second 4 is slow: its 100 requests land above 200 ms.
    slow_second = [
        s if i < 3 else snapshot(s.requests, 0, {0.05: s.requests - 100, 0.5: s.requests,
                                                 math.inf: s.requests})
        for i, s in enumerate(fast)
    ]  # fmt: skip
    verdicts = run(analyst, slow_second[:8], SLOWER, final_at=8)
    assert all(v.verdict != FAIL for v in verdicts), [v.reasons for v in verdicts]


def test_sustained_slowness_of_the_new_color_alone_rolls_back():
    analyst = Analyst("green", THRESHOLDS, snapshot(0, 0, {}))
    verdicts = run(analyst, traffic(100, 10, 0.5), SLOWER)
    assert verdicts[-1].verdict == FAIL
    # Decided once FAILURE_LIMIT intervals of INTERVAL_S seconds breached in a row.
    assert len(verdicts) == FAILURE_LIMIT * INTERVAL_S
    assert "3 intervals in a row" in verdicts[-1].reasons[0]
    assert "330 ms new vs 30 ms old" in verdicts[-1].reasons[0]
    assert verdicts[-1].relative["verdict"] == FAIL


def test_slowness_the_old_color_shares_is_the_machine_not_the_release():
    analyst = Analyst("green", THRESHOLDS, snapshot(0, 0, {}))
    verdicts = run(analyst, traffic(100, 10, 0.5), SAME, final_at=10)
    assert [v.verdict for v in verdicts][-1] == PASS
    assert "machine-wide" in verdicts[-1].reasons[0]


def test_without_a_relative_baseline_the_absolute_breach_decides():
    analyst = Analyst("green", THRESHOLDS, snapshot(0, 0, {}))
    verdicts = run(analyst, traffic(100, 10, 0.5), NO_OLD)
    assert verdicts[-1].verdict == FAIL and "no relative baseline" in verdicts[-1].reasons[0]


def test_a_short_slow_window_without_a_baseline_is_inconclusive_not_a_rollback():
    analyst = Analyst("green", THRESHOLDS, snapshot(0, 0, {}))
    verdicts = run(analyst, traffic(100, 3, 0.5), NO_OLD, final_at=3)
    assert (
        verdicts[-1].verdict == INCONCLUSIVE and "no relative baseline" in verdicts[-1].reasons[0]
    )


def test_a_loaded_machine_is_not_the_release_even_when_the_probes_are_biased():
    """After the switch only the new color carries the live load, so its probes queue
    and look slower than the idle old color's; the old color's own live p99 before
    the switch, on the same machine, was as high: no rollback."""
    analyst = Analyst("green", THRESHOLDS, snapshot(0, 0, {}), old_live=OLD_LIVE_SLOW)
    verdicts = run(analyst, traffic(100, 10, 0.5), SLOWER, final_at=10)
    assert verdicts[-1].verdict == PASS
    assert (
        "machine-wide" in verdicts[-1].reasons[0] and "before the switch" in verdicts[-1].reasons[0]
    )
    assert verdicts[-1].relative["old_live_p50_ms"] == pytest.approx(275.0)


def test_a_slow_release_is_confirmed_by_both_baselines():
    analyst = Analyst("green", THRESHOLDS, snapshot(0, 0, {}), old_live=OLD_LIVE_FAST)
    verdicts = run(analyst, traffic(100, 10, 0.5), SLOWER)
    assert verdicts[-1].verdict == FAIL
    assert "330 ms new vs 30 ms old" in verdicts[-1].reasons[0]
    assert "before the switch" in verdicts[-1].reasons[0]


def test_a_slow_release_on_a_loaded_machine_shows_in_the_median_not_the_p99():
    """Measured in the verdict benchmark: with CPU hogs the old color's p99 before the
    switch was 441 ms and the +300 ms release's 498 ms, both in the same 250-500 ms
    bucket; their medians were worlds apart."""
    tail_only = snapshot(3000, 0, {0.05: 2900, 0.5: 3000, math.inf: 3000})
    analyst = Analyst("green", THRESHOLDS, snapshot(0, 0, {}), old_live=tail_only)
    verdicts = run(analyst, traffic(100, 10, 0.5), SLOWER)
    assert verdicts[-1].verdict == FAIL
    assert "live median 275 ms now vs 26 ms" in verdicts[-1].reasons[0]


def test_an_old_color_without_live_traffic_is_no_baseline():
    idle = snapshot(3, 0, {0.05: 3, 0.5: 3, math.inf: 3})
    analyst = Analyst("green", THRESHOLDS, snapshot(0, 0, {}), old_live=idle)
    assert analyst.old_live_p50 is None


def test_a_window_ending_inside_a_breach_is_inconclusive_not_a_rollback():
    """3 s cannot hold 3 intervals of 2 s: the breach is not sustained yet, so the
    deploy procedure judges on (extends the window) instead of rolling back."""
    analyst = Analyst("green", THRESHOLDS, snapshot(0, 0, {}))
    verdicts = run(analyst, traffic(100, 3, 0.5), SLOWER, final_at=3)
    assert verdicts[-1].verdict == INCONCLUSIVE
    assert "in 1 of 3 intervals needed" in verdicts[-1].reasons[0]
    # ... and once the old color shows the same slowness, it is the machine: a pass.
    analyst = Analyst("green", THRESHOLDS, snapshot(0, 0, {}), old_live=OLD_LIVE_SLOW)
    verdicts = run(analyst, traffic(100, 3, 0.5), NO_OLD, final_at=3)
    assert verdicts[-1].verdict == PASS and "machine-wide" in verdicts[-1].reasons[0]


def test_errors_fail_at_once_whatever_the_old_color_does():
    analyst = Analyst("green", THRESHOLDS, snapshot(0, 0, {}))
    verdicts = run(analyst, traffic(100, 10, 0.05, errors_per_second=20), SAME)
    assert len(verdicts) == 1 and verdicts[0].verdict == FAIL
    assert "error ratio 20.00%" in verdicts[0].reasons[0]


def test_too_few_requests_is_inconclusive_at_the_end():
    analyst = Analyst("green", THRESHOLDS, snapshot(0, 0, {}))
    verdicts = run(analyst, traffic(2, 5, 0.05), SAME, final_at=5)
    assert verdicts[-1].verdict == INCONCLUSIVE and "only 10 requests" in verdicts[-1].reasons[0]


# -- journal and lock -----------------------------------------------------------------------


def test_journal_steps_close_into_the_history(tmp_path: Path):
    journal = Journal(tmp_path)
    record = journal.open({"kind": "deploy", "color": "green", "from": "blue", "version": "HEAD"})
    journal.step(record, "preflight")
    journal.step(record, "build")
    assert journal.read()["step"] == "build"
    entry = journal.close(record, "failed", "boom")
    assert journal.read() is None
    assert journal.history() == [entry]
    assert entry["steps"] == ["preflight", "build"] and entry["reason"] == "boom"


def test_a_torn_history_line_does_not_hide_the_others(tmp_path: Path):
    journal = Journal(tmp_path)
    for outcome in ("success", "rolled_back"):
        journal.close(journal.open({"kind": "deploy", "color": "green", "from": "blue"}), outcome)
    with journal.history_path.open("a") as handle:
        handle.write('{"kind": "deploy", "col')  # a crash mid-append
    assert [e["outcome"] for e in journal.history()] == ["success", "rolled_back"]


def test_lock_refuses_a_second_holder_and_names_the_first(tmp_path: Path):
    journal = Journal(tmp_path)
    with journal.lock("deploy green v2"):
        # Another process, as a second `invoke deploy` would be.
        code = textwrap.dedent(
            f"""
            from pathlib import Path
            from ocean.rollout.journal import Journal, DeployLocked
            try:
                with Journal(Path({str(tmp_path)!r})).lock("deploy blue"):
                    print("acquired")
            except DeployLocked as exc:
                print(exc)
            """
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "another deploy is running (deploy green v2, pid" in out
    with journal.lock("after"):  # released on exit
        pass


def test_lock_of_a_killed_holder_is_free(tmp_path: Path):
    code = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from ocean.rollout.journal import Journal
        with Journal(Path({str(tmp_path)!r})).lock("deploy green"):
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == -9
    with Journal(tmp_path).lock("next"):
        pass


def test_lock_in_process_is_exclusive_too(tmp_path: Path):
    journal = Journal(tmp_path)
    with journal.lock("first"), pytest.raises(DeployLocked), journal.lock("second"):
        pass


# -- input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("60s", 60), ("2m", 120), ("45", 45), ("1.5", 1.5), ("500ms", 0.5)]
)
def test_durations(text, seconds):
    assert parse_duration(text, "analysis-window") == seconds


@pytest.mark.parametrize("text", ["soon", "-5s", "1d", ""])
def test_bad_durations_name_the_option(text):
    with pytest.raises(OceanError, match="--analysis-window"):
        parse_duration(text, "analysis-window")


def test_colors():
    assert other("blue") == "green" and other("green") == "blue"
    with pytest.raises(OceanError, match="unknown color 'red': choose blue or green"):
        check_color("red")


def test_versions_resolve_to_content_ids():
    build_id, label, source = builds.resolve(REPO_ROOT, "HEAD")
    sha = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout
    assert build_id.startswith("git-") and label == f"HEAD@{sha[:8]}" and source is None
    dir_id, dir_label, dir_source = builds.resolve(REPO_ROOT, str(REPO_ROOT))
    assert dir_id.startswith("dir-") and dir_label.startswith(f"{REPO_ROOT.name}-")
    assert dir_source == REPO_ROOT / "stack" / "shop"
    assert builds.resolve(REPO_ROOT, str(REPO_ROOT / "stack" / "shop"))[0] == dir_id


def test_unknown_versions_are_refused(tmp_path: Path):
    with pytest.raises(OceanError, match="unknown version 'no-such-ref'"):
        builds.resolve(REPO_ROOT, "no-such-ref")
    with pytest.raises(OceanError, match="not a build of the shop"):
        builds.resolve(REPO_ROOT, str(tmp_path))


def test_every_warm_up_round_covers_every_route_class() -> None:
    tasks = warmup.plan([5, 6], ["Fins", "Masks"], warmup.ROUND_REQUESTS)
    calls = [call for task in tasks for call in task]
    assert len(calls) == warmup.ROUND_REQUESTS
    assert {call.route_class for call in calls} == set(warmup.ROUTE_CLASSES)
    paths = {(call.method, call.path.split("?")[0]) for call in calls}
    for expected in [
        ("GET", "/api/products/5"),
        ("GET", "/api/products"),
        ("GET", "/api/categories"),
        ("GET", "/api/search"),
        ("POST", "/api/checkout"),
        ("GET", "/"),
        ("GET", "/products/6"),
        ("GET", "/categories/Fins"),
        ("GET", "/search"),
        ("GET", "/cart"),
    ]:
        assert expected in paths, expected
    # Only the checkout goes to the admin listener (the shop's dry run needs its token).
    assert [call.path for call in calls if call.admin] == ["/api/checkout"] * 2
    odd = [c.path for t in warmup.plan([1], ["Fins & Masks/2?"], 25) for c in t]
    assert "/categories/Fins%20%26%20Masks%2F2%3F" in odd  # a name is one path segment
    # Even a small round (the budget split in two) has every class.
    small = [c for task in warmup.plan([5], ["Fins"], 25) for c in task]
    assert {call.route_class for call in small} == set(warmup.ROUTE_CLASSES)


def test_a_warm_up_cart_is_a_throwaway_round_trip() -> None:
    carts = [task for task in warmup.plan([7], [], 100) if task[0].route_class == "cart"]
    assert carts
    for put, get, delete in carts:
        cart = put.path.split("/")[3]
        assert cart.startswith("warm-up-")
        assert (put.method, put.path, put.body) == (
            "PUT",
            f"/api/carts/{cart}/items/7",
            {"quantity": 1},
        )
        assert (get.method, get.path) == ("GET", f"/api/carts/{cart}")
        assert (delete.method, delete.path) == ("DELETE", put.path)  # the line goes: empty
    assert len({task[0].path for task in carts}) == len(carts)  # a fresh cart each time


def test_warm_up_plan_leaves_out_what_it_cannot_send() -> None:
    calls = [c for task in warmup.plan([], [], 40, checkout=False) for c in task]
    assert len(calls) == 40
    assert {c.route_class for c in calls} == {"catalogue", "search", "pages"}
    assert not any("/products/" in c.path or "/categories/" in c.path for c in calls)
    assert not any(c.admin for c in calls)


@pytest.mark.parametrize(
    ("p90s_ms", "settled"),
    [
        ([], False),
        ([5], False),  # one round never settles: it paid the connects
        ([300, 60], False),  # still falling fast: warming
        ([300, 60, 55], True),  # within 25% of the previous round
        ([300, 60, 74], True),  # a little slower is still within 25%
        ([300, 60, 90], False),  # a busy machine's jump: one more round
        ([300, 20], True),  # under the 25 ms floor: warm
        ([40, 24], True),
        ([300, 60, 90, 85], True),
    ],
)
def test_warm_up_settles_when_a_rounds_p90_stops_moving(p90s_ms, settled) -> None:
    assert warmup.settled([ms / 1000 for ms in p90s_ms]) is settled


def test_sample_quantiles_are_nearest_rank() -> None:
    # One definition for warm-up rounds and paired probes: a figure is a latency seen.
    latencies = [i / 1000 for i in range(1, 51)]  # 1..50 ms, shuffled order is irrelevant
    assert samples.quantile(list(reversed(latencies)), 0.9) == 0.045
    assert samples.quantile(latencies, 0.5) == 0.025
    assert samples.quantile([0.3], 0.9) == 0.3
    assert samples.quantile([], 0.9) is None


def test_warm_up_summary_names_classes_rounds_and_the_settled_latency() -> None:
    rounds = (warmup.Round(50, 0.040, 0.210, 1.0), warmup.Round(50, 0.006, 0.014, 0.2))
    done = warmup.WarmUp(
        requests=102,
        api_requests=80,
        concurrency=10,
        seconds=1.4,
        rounds=rounds,
        settled=True,
        stopped="settled",
        classes={"catalogue": 40, "search": 12, "cart": 18, "checkout": 4, "pages": 28},
    )
    assert done.summary() == (
        "settled at p90 14 ms (p50 6 ms) after 2 rounds: 102 requests (catalogue 40, "
        "search 12, cart 18, checkout 4, pages 28), 10 at a time, in 1.4s; "
        "p50/p90 ms per round: 40/210, 6/14"
    )
    assert done.as_dict() == {
        "settled": True,
        "stopped": "settled",
        "requests": 102,
        "seconds": 1.4,
        "classes": done.classes,
        "rounds_p50_p90_ms": [[40.0, 210.0], [6.0, 14.0]],
    }
    cold = warmup.WarmUp(102, 80, 10, 30.5, rounds, False, "time limit", {})
    assert cold.summary().startswith("NOT settled (time limit), last p90 14 ms after 2 rounds")
