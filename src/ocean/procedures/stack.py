"""Bring-up, shutdown, restart and status of the whole stack, for any runtime.

Each procedure is a generator of Steps: the caller prints or posts them as they come.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from ocean import limits, statedir
from ocean.errors import OceanError
from ocean.model import Step, TargetHealth
from ocean.procedures import interlock
from ocean.prom import PromError, Prometheus
from ocean.runtime.base import Runtime
from ocean.services import get, select

TARGETS_TIMEOUT = 60.0


def up(
    runtime: Runtime,
    services: str | None = None,
    install: bool = True,
    wait_targets: bool = True,
) -> Iterator[Step]:
    """Start ``services`` (default: the whole stack) and wait until they are healthy.

    When the whole stack comes up, also wait until Prometheus scrapes every target.
    A failure stops what this call started, so nothing is left half-started.
    """
    # The whole stack comes back on the color the deploy journal says is live (a deploy
    # interrupted by `down` may have left nginx's upstream naming another).
    live = runtime.live_color() if services else interlock.live_for_up(runtime)
    # Names first: which services the stack skips is read from its secrets, which a
    # first read creates, and a bad --services must leave the state dir as it was.
    select(services, live=live)
    chosen = select(services, live=live, skipped=runtime.skipped_services())
    started = time.monotonic()
    yield from runtime.check(chosen, install=install)
    yield from runtime.prepare(chosen)
    before = runtime.running()
    try:
        yield from runtime.start(chosen)
        if not services:
            yield from interlock.settle_after_up(runtime, live)
        # Targets are only all up when everything they point at runs: the whole stack.
        if wait_targets and not services:
            yield from wait_for_targets(runtime)
    except BaseException:
        # Leave the machine as we found it: stop only what this call started.
        if not before:
            list(runtime.stop_all())
        else:
            for service in chosen:
                if service.name not in before:
                    list(runtime.stop(service))
        raise
    yield Step(
        "stack up",
        detail=f"{len(chosen)} services",
        seconds=time.monotonic() - started,
        data={s.name: runtime.url(s.name) for s in chosen},
    )


def wait_for_targets(runtime: Runtime, timeout: float = TARGETS_TIMEOUT) -> Iterator[Step]:
    started = time.monotonic()
    deadline = started + timeout
    targets: list[TargetHealth] = []
    with Prometheus.of(runtime) as prom:
        while time.monotonic() < deadline:
            try:
                targets = prom.targets()
            except PromError:
                targets = []
            if targets and all(t.health == "up" for t in targets):
                yield Step(
                    "prometheus targets up",
                    detail=f"{len(targets)} targets",
                    seconds=time.monotonic() - started,
                )
                return
            time.sleep(0.2)
    down = [
        f"{t.job}/{t.instance} ({t.health}: {t.last_error})" for t in targets if t.health != "up"
    ]
    raise OceanError(
        f"Prometheus targets not up after {timeout:.0f}s: {'; '.join(down) or 'none found'}"
    )


def down(
    runtime: Runtime, purge: bool = False, yes: bool = False, force: bool = False
) -> Iterator[Step]:
    """Stop every service; with ``purge`` (and ``yes``) delete all state too.

    Refused while a deploy runs; ``force`` interrupts it first (it rolls back). The
    deploy lock is held until the stack is stopped, so none starts meanwhile.
    """
    if purge and not yes:
        raise OceanError(
            f"--purge deletes {runtime.settings.state_dir} and all its data: add --yes to confirm"
        )
    if purge:  # before anything stops: a directory that is not a stack's stays as it is
        statedir.check_purge(runtime.settings.state_dir, runtime.settings.repo_root)
    held = yield from interlock.hold_off_deploys(runtime, force)
    with held:
        yield from interlock.let_prometheus_forget(runtime)
        yield from runtime.stop_all()
        if purge:
            yield from runtime.purge()


def restart(runtime: Runtime, name: str) -> Iterator[Step]:
    yield from runtime.restart(get(name))


def status(runtime: Runtime) -> dict[str, Any]:
    """Services with health, plus Prometheus' view of its targets when it runs."""
    services = runtime.status()
    targets: list[TargetHealth] = []
    prom_error = ""
    if any(s.name == "prometheus" and s.state == "running" for s in services):
        try:
            with Prometheus.of(runtime) as prom:
                targets = prom.targets()
        except PromError as exc:
            prom_error = str(exc)
    healthy = bool(services) and all(s.healthy for s in services)
    return {
        "env": runtime.settings.env_name,
        "runtime": runtime.name,
        "state_dir": str(runtime.settings.state_dir),
        "live_color": runtime.live_color(),
        "healthy": healthy and all(t.health == "up" for t in targets),
        "services": [s.as_dict() for s in services],
        "targets": [t.as_dict() for t in targets],
        "prometheus_error": prom_error,
    }


def log_lines(
    runtime: Runtime,
    name: str,
    lines: int = 50,
    follow: bool = False,
    poll: float = 0.2,
    stop: Callable[[], bool] | None = None,
) -> Iterator[str]:
    """The last ``lines`` lines of a service's log, then (with ``follow``) new ones
    until ``stop()`` says so (the console's tail is cancelled that way)."""
    lines = limits.count(lines, "lines", 0, limits.MAX_LOG_LINES)
    yield from runtime.log_lines(get(name), lines, follow, poll, stop or (lambda: False))
