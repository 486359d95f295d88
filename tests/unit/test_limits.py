"""Every count and duration a task takes has a maximum (issue 25, Medium 7): beyond it,
one line on stderr naming the flag and its bound, exit 1, before anything starts.

Before: `seed --orders 99999999999999999999` was accepted (and grew PostgreSQL by 14 GB),
`deploy --ready-timeout 0s` and `--version ""` were accepted, and so on (no stack here:
each call must fail on its input, not on the missing stack).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocean import limits
from ocean.durations import parse_duration
from ocean.errors import OceanError
from tests.task_runner import run_task

PORT_BASE = "32200"  # hand-picked; nothing here listens or connects

HUGE = "99999999999999999999"
CASES = [
    (("seed", f"--orders={HUGE}"), "--orders must be at most 10,000,000"),
    (("seed", "--customers=10000001"), "--customers must be at most 10,000,000"),
    (("seed", "--products=1000001"), "--products must be at most 1,000,000"),
    (("seed", "--seed=-1"), "--seed must be 0 or more"),
    (("seed", "--orders=-5"), "--orders must be 0 or more, not -5"),
    (("logs", "nginx", "--lines=100001"), "--lines must be at most 100,000"),
    (("deploy", "--color=green", "--analysis-window=99999999999999h"), "longer than the maximum"),
    (("deploy", "--color=green", "--ready-timeout=0s"), "--ready-timeout must be more than 0s"),
    (("deploy", "--color=green", "--ready-timeout=2h"), "--ready-timeout must be at most 600s"),
    (("deploy", "--color=green", "--scale-down-delay=2h"), "--scale-down-delay must be at most"),
    (("deploy", "--color=green", "--warmup=100001"), "--warmup must be at most 100,000"),
    (("deploy", "--color=green", "--version="), "--version is empty"),
    (("deploy", "--color=green", "--version= "), "--version is empty"),
    (("promote", "--scale-down-delay=99999h"), "--scale-down-delay must be at most"),
    (("promote", "--analysis-window=2h"), "longer than the maximum"),
    (("deploy-status", "--history=10001"), "--history must be at most 10,000"),
    (("deploy-status", "--history=-1"), "--history must be 0 or more"),
    (("backup-prune", "--keep-last=1001"), "--keep-last must be at most 1,000"),
    (("backup-prune", "--keep-monthly=-1"), "--keep-monthly must be 0 or more"),
    (("loadtest-report", "--tolerance=nan"), "--tolerance must be 0..10"),
    (("loadtest-report", "--tolerance=1e9"), "--tolerance must be 0..10"),
    (("loadtest", "--scenario=smoke", "--vus=20001"), "--vus must be 1..20,000"),
    (("loadtest", "--scenario=smoke", "--duration=2h"), "--duration must be 1s..3600s"),
    (("test", "--cpu-hogs=17"), "--cpu-hogs 17: choose 0..16"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_beyond_the_maximum_is_one_line_naming_the_flag(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    state = tmp_path / "state"
    outcome = run_task(
        *args, env={"OCEAN_STATE_DIR": str(state), "OCEAN_PORT_BASE": PORT_BASE, "OCEAN_ENV": None}
    )
    assert not outcome.traceback, outcome.traceback
    assert outcome.code == 1, outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], outcome.stderr
    assert not state.exists()  # refused before anything was written (not even the audit log)


def test_the_bounds_themselves() -> None:
    assert limits.count("10000000", "orders", 0, limits.MAX_SEED_ORDERS) == 10_000_000
    assert limits.seconds("600s", "ready-timeout", limits.MAX_READY_TIMEOUT_S, True) == 600
    with pytest.raises(OceanError, match="more than 0s"):
        limits.seconds("0", "ready-timeout", limits.MAX_READY_TIMEOUT_S, positive=True)
    assert limits.seconds("0s", "scale-down-delay", limits.MAX_SCALE_DOWN_DELAY_S) == 0


def test_a_duration_with_thousands_of_digits_is_one_short_line() -> None:
    with pytest.raises(OceanError) as caught:
        parse_duration("9" * 5000 + "h1m", "analysis-window")
    assert len(str(caught.value)) < 120
