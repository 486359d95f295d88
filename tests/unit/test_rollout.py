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
from ocean.rollout import warmup
from ocean.rollout.analysis import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Measurement,
    Snapshot,
    Thresholds,
    judge,
)
from ocean.rollout.journal import DeployLocked, Journal
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


def test_judge_passes_a_healthy_color_and_fails_even_one_error_of_few():
    ok = judge(Measurement.of("g", 30, snapshot(5000, 1, {0.05: 5000, math.inf: 5000})), THRESHOLDS)
    assert ok.verdict == PASS  # 0.02% errors is within 0.1%
    one_of_three = judge(Measurement.of("g", 3, snapshot(3, 1, {0.05: 3, math.inf: 3})), THRESHOLDS)
    assert one_of_three.verdict == FAIL


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


def test_warm_up_quantiles_are_nearest_rank() -> None:
    latencies = [i / 1000 for i in range(1, 51)]  # 1..50 ms, shuffled order is irrelevant
    assert warmup.quantile(list(reversed(latencies)), 0.9) == 0.045
    assert warmup.quantile(latencies, 0.5) == 0.025
    assert warmup.quantile([0.3], 0.9) == 0.3
    assert warmup.quantile([], 0.9) == 0.0


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
