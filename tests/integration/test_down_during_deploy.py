"""Issue 25, High 3: `down` during a deploy, on a real stack of its own, through the CLI
as an operator would run it from a second shell.

What broke: the deploy died with a SupervisorUnavailable traceback; `up` started the
color nginx's upstream named while Prometheus' target list named the other, waited
60 s for targets and stopped everything, twice; `deploy-status` tracebacked while the
stack was down; and the next healthy deploy was rolled back for "counters reset" a
color that never restarted (an earlier process's counters, which Prometheus never
marked stale because `down` had stopped it first, read in place of a failed scrape).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from ocean import slo
from ocean.config import HIGHEST_OFFSET, REPO_ROOT, PortPlan, Settings
from ocean.procedures import deploy as deploys
from ocean.procedures import stack as stack_procedures
from ocean.prom import PromError, Prometheus
from ocean.rollout.analysis import Snapshot
from ocean.rollout.journal import Journal
from ocean.runtime.local import LocalRuntime
from tests.helpers import _free, cli

# The range this test's stacks may use (parallel runs of other suites take others).
PORT_BASES = range(25100, 26000 - HIGHEST_OFFSET, 100)
# A first deploy builds the shop's venv: minutes on a busy machine.
REACH_ANALYSIS_S = 600.0


def port_base() -> int:
    for base in PORT_BASES:
        if all(_free(base + offset) for offset in range(HIGHEST_OFFSET + 1)):
            return base
    raise RuntimeError(f"no free port base in {PORT_BASES}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    state_dir = tmp_path_factory.mktemp("downdeploy")
    settings = Settings(state_dir=state_dir, ports=PortPlan(port_base()))
    runtime = LocalRuntime(settings)
    runtime.start_timeout = 120.0  # a busy machine: this fixture is not what is tested
    try:
        list(stack_procedures.up(runtime))
        yield runtime
    finally:
        list(stack_procedures.down(runtime))


def start_cli(runtime: LocalRuntime, *args: str, **env: str) -> subprocess.Popen:
    """A task running in the background, as in an operator's second shell."""
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "OCEAN_STATE_DIR": str(runtime.settings.state_dir),
            "OCEAN_PORT_BASE": str(runtime.settings.ports.base),
            **env,
        },
    )


def wait_for_step(runtime: LocalRuntime, deploy: subprocess.Popen, step: str) -> None:
    journal = Journal(runtime.settings.state_dir)
    deadline = time.monotonic() + REACH_ANALYSIS_S
    while (journal.read() or {}).get("step") != step:
        if deploy.poll() is not None:
            _, err = deploy.communicate()
            raise AssertionError(f"the deploy ended before {step}: {err[-2000:]}")
        assert time.monotonic() < deadline, f"the deploy did not reach {step}"
        time.sleep(0.2)


def one_line_error(result, *, code: int | None = None) -> str:
    """No traceback anywhere; the last stderr line is the error; returns it."""
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream, stream[-3000:]
    if code is not None:
        assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    return result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""


def served_color(runtime: LocalRuntime) -> str:
    with runtime.http("nginx", timeout=5) as front:
        return front.get("/version").json()["color"]


def assert_healthy_on(runtime: LocalRuntime, color: str) -> None:
    """The whole stack healthy, every Prometheus target up, nginx serving ``color``
    alone, no deploy open.

    Polled a while: right after a deploy's scale-down, Prometheus lists the stopped
    color (down) until it has read its target file again.
    """
    deadline = time.monotonic() + 30
    while True:
        status = cli(runtime, "status", "--json")
        report = json.loads(status.stdout)
        if status.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    unhealthy = [s["name"] for s in report["services"] if not s["healthy"]]
    down = [f"{t['job']}/{t['instance']} {t['health']}" for t in report["targets"]]
    assert status.returncode == 0, (unhealthy, [t for t in down if not t.endswith(" up")])
    assert report["live_color"] == color
    assert report["targets"] and all(t["health"] == "up" for t in report["targets"])
    assert served_color(runtime) == color
    assert f"shop-{deploys.other(color)}" not in runtime.running()
    assert Journal(runtime.settings.state_dir).read() is None


def deploy_succeeds(runtime: LocalRuntime, color: str) -> None:
    """The next healthy deploy is promoted: no false freeze, no false "counters reset"."""
    result = cli(
        runtime, "deploy", f"--color={color}", "--analysis-window=5s", "--scale-down-delay=0s",
        timeout=600,
    )  # fmt: skip
    one_line_error(result)
    assert result.returncode == 0, result.stderr[-3000:]
    entry = Journal(runtime.settings.state_dir).history(1)[-1]
    assert entry["outcome"] == "success", entry
    assert_healthy_on(runtime, color)


def test_down_refuses_during_a_deploy_and_force_aborts_it_cleanly(stack: LocalRuntime):
    """`down` while a deploy is in its analysis: refused in one line, nothing stopped.
    `down --force`: the deploy gets a Ctrl-C, rolls back to the old color and ends
    with one line; then the stack stops. `deploy-status` while down, `up`, and the
    next deploy are all clean."""
    runtime = stack
    old = runtime.live_color()
    new = deploys.other(old)
    deploy = start_cli(
        runtime, "deploy", f"--color={new}", "--analysis-window=10m", "--scale-down-delay=0s"
    )
    try:
        wait_for_step(runtime, deploy, "analysis")
        refused = cli(runtime, "down")
        line = one_line_error(refused, code=1)
        assert "a deploy is running" in line and "--force" in line, line
        assert deploy.poll() is None, "the refused down touched the deploy"
        assert {"nginx", f"shop-{old}", f"shop-{new}"} <= runtime.running()

        forced = cli(runtime, "down", "--force", timeout=300)
        one_line_error(forced, code=0)
        out, err = deploy.communicate(timeout=60)
    finally:
        if deploy.poll() is None:
            deploy.kill()
            deploy.communicate()
    assert "Traceback" not in out + err, err[-3000:]
    assert deploy.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == "error: interrupted"
    journal = Journal(runtime.settings.state_dir)
    assert journal.read() is None  # settled by the deploy itself, before the stop
    entry = journal.history(1)[-1]
    assert entry["outcome"] == "rolled_back" and "interrupted" in entry["reason"], entry
    assert not runtime.running()

    status = cli(runtime, "deploy-status")  # the stack is down: still a plain answer
    one_line_error(status, code=0)

    up = cli(runtime, "up", timeout=600)
    one_line_error(up, code=0)
    assert_healthy_on(runtime, old)
    deploy_succeeds(runtime, new)


def test_up_after_a_deploy_died_and_the_stack_went_down(stack: LocalRuntime):
    """The deploy is killed (kill -9) during its analysis, traffic already on the new
    color, then `down`: the journal says the old color is live (nothing was decided).
    `deploy-status` says so without settling; `up` brings the old color back, settles
    the journal, and every Prometheus target is up at its first try."""
    runtime = stack
    old = runtime.live_color()
    new = deploys.other(old)
    killed = cli(
        runtime, "deploy", f"--color={new}", "--analysis-window=60s", timeout=600,
        OCEAN_DEPLOY_FAILPOINT="analysis",
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert runtime.live_color() == new  # nginx's upstream names the new color

    down = cli(runtime, "down")  # nobody holds the lock: nothing to refuse
    one_line_error(down, code=0)
    status = cli(runtime, "deploy-status", "--json")
    one_line_error(status, code=0)
    report = json.loads(status.stdout)
    assert report["open"]["step"] == "analysis"
    assert f"brings {old} back" in report["unsettled"], report["unsettled"]

    up = cli(runtime, "up", timeout=600)
    one_line_error(up, code=0)
    assert "recovered" in up.stderr and f"{old} live" in up.stderr, up.stderr[-2000:]
    assert_healthy_on(runtime, old)
    entry = Journal(runtime.settings.state_dir).history(1)[-1]
    assert entry["outcome"] == "rolled_back" and "interrupted at analysis" in entry["reason"]
    deploy_succeeds(runtime, new)


def test_a_failed_scrape_never_reads_an_earlier_process_counters(stack: LocalRuntime):
    """The cause of the false "counters reset". A color that served requests is stopped
    while Prometheus is down (as `down` did to a deploy's colors): Prometheus never marks
    its series stale, and keeps them for five minutes after it comes back. Then a scrape
    of that color fails (here: listed, not running; in the report, a scrape slower than
    its timeout on a busy machine): the analysis' snapshot must find nothing, a missing
    poll, not the earlier process's totals."""
    runtime = stack
    live = runtime.live_color()
    idle = deploys.other(live)
    api = slo.load().api_selector
    paused = cli(runtime, "deploy", f"--color={idle}", "--no-auto-promote", timeout=600)
    assert paused.returncode == 0, paused.stderr[-2000:]
    with httpx.Client(base_url=runtime.url(f"shop-{idle}")) as direct:
        for _ in range(30):
            assert direct.get("/api/products", params={"limit": 5}).status_code == 200
    with Prometheus.of(runtime) as prom:
        sent = time.time()
        deadline = time.monotonic() + 30
        while (Snapshot.last_scraped(prom, idle, api) or 0) <= sent + 0.5:
            assert time.monotonic() < deadline, f"Prometheus did not scrape {idle}"
            time.sleep(0.2)
    runtime.supervisor.stop("prometheus")
    try:
        abandoned = cli(runtime, "rollback")  # stops the idle color, Prometheus away
        assert abandoned.returncode == 0, abandoned.stderr[-2000:]
    finally:
        runtime.supervisor.start("prometheus")
    try:
        runtime.colors.write_targets({live, idle})  # listed again, not running: scrapes fail
        with Prometheus.of(runtime) as prom:
            deadline = time.monotonic() + 60
            while True:
                assert time.monotonic() < deadline, f"no failed scrape of {idle}"
                try:  # it ran when Prometheus stopped: a 0 is a failed scrape since
                    if prom.query(f'up{{job="shop",color="{idle}"}} == 0'):
                        break
                except PromError:  # Prometheus still starting
                    pass
                time.sleep(0.2)
            earlier = prom.query(f'sum(shop_http_requests_total{{color="{idle}",{api}}})')
            assert earlier and float(earlier[0]["value"][1]) >= 30, earlier  # still there
            seen = Snapshot.take(prom, idle, api)
    finally:
        runtime.colors.write_targets({live})
    assert seen.requests == 0 and not seen.buckets, seen
