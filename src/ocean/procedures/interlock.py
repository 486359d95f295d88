"""Stopping and starting the stack around a deploy (issue 25, High 3).

A deploy owns its colors, the nginx upstream and Prometheus' shop targets from its
first journaled step to its last, under the deploy lock (ocean.rollout.journal).
`down` pulling the stack from under it left a deploy that died with a traceback, an
upstream naming one color, a target list naming another, and an open journal that
`up` ignored. So:

- ``hold_off_deploys``: `down` takes the deploy lock for as long as it stops the
  stack (no deploy starts half-way through). A running deploy makes it refuse, unless
  ``force``: then the deploy gets a Ctrl-C (SIGINT), rolls back as on any interrupt
  (its old color still runs until the promotion is decided), closes its journal and
  ends with one line; `down` waits for that, then stops everything.
- ``let_prometheus_forget``: before `down` stops Prometheus, it waits until Prometheus
  has marked a color that no longer runs (the one a rollback has just stopped) stale.
  Stopped first, Prometheus keeps that color's last ``up == 0`` and its counters as
  if current for five minutes after the next `up`: ShopInstanceDown fired for a
  color nobody runs and froze the next deploy.
- ``live_for_up`` / ``settle_after_up``: `up` starts the color the journal says is
  live (a deploy killed before its promotion leaves the old one live, even though
  nginx's upstream may already name the new one), then settles the journal exactly as
  `deploy-status` would, and stops scraping a color that does not run.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Generator, Iterator
from contextlib import ExitStack, suppress
from typing import Any

from ocean.errors import OceanError
from ocean.model import Step, StepStatus
from ocean.procedures import deploy as deploys
from ocean.prom import PromError, Prometheus
from ocean.rollout.journal import DeployLocked, Journal, live_after
from ocean.runtime.base import Runtime
from ocean.services import COLORS

# How long `down --force` waits for an interrupted deploy to roll back: a switch back
# (one nginx reload) and stopping the new color take seconds; restarting an old color
# that died takes up to the 60 s readiness wait of recover(). Bounded all the same.
ABORT_WAIT_S = 120.0
# How long `down` gives Prometheus to drop a color that has just stopped: it marks a
# target's series stale one scrape interval after the target leaves its file (and
# reads the file at once, or within 5 s at worst).
FORGET_WAIT_S = 10.0


class DeployRunning(OceanError):
    """`down` refused: a deploy holds the lock."""


def hold_off_deploys(
    runtime: Runtime, force: bool, abort_wait: float = ABORT_WAIT_S
) -> Generator[Step, None, ExitStack]:
    """Take the deploy lock for `down`; returns an ExitStack that holds it (close it
    once the stack is stopped). Refuses (DeployRunning) while a deploy runs, or with
    ``force`` interrupts it and waits until it has let go of the lock."""
    journal = Journal(runtime.settings.state_dir)
    held = ExitStack()
    if not journal.lock_path.exists():  # no deploy ever ran here; and create nothing
        return held
    try:
        held.enter_context(journal.lock("down", wait=deploys.LOCK_WAIT_S))
        return held
    except DeployLocked:
        pass
    what, pid = journal.holder() or ("holder unknown", None)
    if not force:
        raise DeployRunning(
            f"a deploy is running ({what}): stopping the stack now would pull its colors "
            "from under it. Wait for it (`invoke deploy-status`), or `invoke down --force` "
            "to interrupt it (it rolls back to the old color) and then stop the stack"
        )
    if pid is None or pid == os.getpid():
        raise DeployRunning(
            f"a deploy is running ({what}) and cannot be interrupted from here: "
            "stop it first (Ctrl-C where it runs), then `invoke down`"
        )
    started = time.monotonic()
    # What Ctrl-C does where it runs: its cleanup rolls back and closes the journal.
    # (No such process: it has just ended, and the lock is about to be free.)
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    yield Step(
        "interrupt deploy",
        StepStatus.INFO,
        f"Ctrl-C sent to {what}; waiting up to {abort_wait:.0f}s for it to roll back",
    )
    try:
        held.enter_context(journal.lock("down", wait=abort_wait))
    except DeployLocked:
        raise DeployRunning(
            f"the deploy ({what}) still runs {abort_wait:.0f}s after Ctrl-C: the stack is "
            "left running. See `invoke deploy-status`, then retry"
        ) from None
    record = journal.read()
    if record is None:
        last = journal.history(1)
        detail = f"{last[-1]['outcome']}: {last[-1]['reason']}" if last else "journal closed"
    else:  # it died without its cleanup: `up` settles the journal
        detail = f"its journal stays open at {record.get('step')}; `up` settles it"
    yield Step("deploy interrupted", detail=detail, seconds=time.monotonic() - started)
    return held


def unsettled(runtime: Runtime) -> dict[str, Any] | None:
    """The open journal of a deploy (or rollback) whose process is gone, or None.

    None too while a deploy runs (it owns its journal) and for a deploy paused before
    promotion (open on purpose: `promote` or `rollback` ends it).
    """
    journal = Journal(runtime.settings.state_dir)
    try:
        record = journal.read()
        if record is None or record.get("paused") or journal.holder() is not None:
            return None
    except OSError:  # no usable state dir: up's checks say so in their own words
        return None
    return record


def live_for_up(runtime: Runtime) -> str:
    """The color the whole stack's `up` starts: the journal's when a deploy died
    unsettled, else the one nginx's upstream names."""
    record = unsettled(runtime)
    return live_after(record) if record else runtime.live_color()


def settle_after_up(runtime: Runtime, live: str) -> Iterator[Step]:
    """Once the whole stack runs: settle an interrupted deploy (traffic to the color
    ``live_for_up`` named, the other stopped, the journal closed into the history), and
    make sure nothing scrapes the idle color when it does not run: Prometheus would
    wait for its target forever (a target list left naming both colors by `down`)."""
    if unsettled(runtime) is not None:
        journal = Journal(runtime.settings.state_dir)
        try:
            with journal.lock("up", wait=deploys.LOCK_WAIT_S):
                yield from deploys.recover(runtime, journal, refuse_paused=False)
        except DeployLocked as exc:  # a deploy started meanwhile: it settles the journal
            yield Step("settle deploy", StepStatus.SKIPPED, str(exc))
    idle = deploys.other(live)
    if f"shop-{idle}" not in runtime.running():
        for _ in runtime.stop_color(idle):
            pass  # nothing to stop: this only takes it out of the scrape targets


def let_prometheus_forget(runtime: Runtime, wait: float = FORGET_WAIT_S) -> Iterator[Step]:
    """Until Prometheus has no current ``up`` of a shop color that does not run (it
    has marked the stopped target stale), at most ``wait`` seconds; a step says so
    when it had to give up. Nothing to do when Prometheus or no color is stopped."""
    running = runtime.running()
    gone = {c for c in COLORS if f"shop-{c}" not in running}
    if "prometheus" not in running or not gone:
        return
    deadline = time.monotonic() + wait
    ghosts: set[str] = set()
    try:
        with Prometheus.of(runtime) as prom:
            while True:
                rows = prom.query('up{job="shop"}')
                ghosts = {r["metric"].get("color", "") for r in rows} & gone
                if not ghosts or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
    except PromError:
        return  # it is going anyway; its data is what it is
    if ghosts:
        yield Step(
            "prometheus",
            StepStatus.INFO,
            f"still scrapes {', '.join(sorted(ghosts))} after {wait:.0f}s: its alerts may "
            "name it for five minutes after the next `up`",
        )
