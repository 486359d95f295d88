"""Ocean Ops tasks: every procedure of the Ocean Shopping Center stack.

Run them as ``./ocean TASK`` (or ``invoke TASK`` inside the venv). Each task builds the
runtime (``OCEAN_RUNTIME``, default ``local``), runs a procedure from ``ocean`` and
prints its steps. Logic lives in ``ocean/``, never here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator

from invoke import Exit, task
from rich.console import Console
from rich.table import Table

from ocean.errors import OceanError
from ocean.model import Step, StepStatus
from ocean.procedures import stack
from ocean.procedures.seed import seed as seed_data
from ocean.runtime import make_runtime

console = Console(stderr=True, highlight=False)
STYLE = {
    StepStatus.OK: "[green]✓[/]",
    StepStatus.SKIPPED: "[dim]·[/]",
    StepStatus.INFO: "[cyan]…[/]",
    StepStatus.FAILED: "[red]✗[/]",
}


def _run(steps: Iterator[Step], as_json: bool = False) -> list[Step]:
    """Print each step as it comes (or collect them for --json); errors → one line, exit 1."""
    done: list[Step] = []
    try:
        for step in steps:
            done.append(step)
            if not as_json:
                took = f" [dim]{step.seconds:.2f}s[/]" if step.seconds is not None else ""
                console.print(f"{STYLE[step.status]} {step.name} [dim]{step.detail}[/]{took}")
    except OceanError as exc:
        if as_json:
            print(
                json.dumps(
                    {"ok": False, "error": str(exc), "steps": [s.as_dict() for s in done]}, indent=2
                )
            )
        raise Exit(f"error: {exc}", code=1) from None
    if as_json:
        print(json.dumps({"ok": True, "steps": [s.as_dict() for s in done]}, indent=2))
    return done


def _guard(call):
    try:
        return call()
    except OceanError as exc:
        raise Exit(f"error: {exc}", code=1) from None


@task(
    help={
        "services": "comma-separated services to start (default: the whole stack); "
        "dependencies come along",
        "install": "install missing Debian packages when run as root (default on)",
        "wait-targets": "wait until Prometheus scrapes every target (default on)",
        "json": "print the steps as JSON instead of a progress log",
    }
)
def up(c, services="", install=True, wait_targets=True, json=False):
    """Bring the stack up (installing what it needs) and wait until it is healthy."""
    runtime = _guard(make_runtime)
    steps = _run(stack.up(runtime, services or None, install, wait_targets), json)
    if not json and steps:
        table = Table("service", "listens on", box=None)
        for name, url in steps[-1].data.items():
            table.add_row(name, url)
        console.print(table)


@task(
    help={
        "purge": "also delete the state dir (all data, logs and configs); needs --yes",
        "yes": "confirm --purge",
        "json": "print the steps as JSON",
    }
)
def down(c, purge=False, yes=False, json=False):
    """Stop every service (data is kept unless --purge --yes)."""
    runtime = _guard(make_runtime)
    _run(stack.down(runtime, purge=purge, yes=yes), json)


@task(help={"json": "print machine-readable JSON (secrets are never included)"})
def status(c, json=False):
    """Show each service's state, pid, port, health, restarts and uptime; exit 1 if unhealthy."""
    runtime = _guard(make_runtime)
    report = _guard(lambda: stack.status(runtime))
    if json:
        print(_json_dumps(report))
    else:
        _print_status(report)
    if not report["healthy"]:
        raise Exit(code=1)


@task(
    help={
        "service": "the service whose log to show (see `status` for names)",
        "follow": "keep printing new lines until Ctrl-C",
        "lines": "how many of the last lines to show first (default 50)",
    }
)
def logs(c, service, follow=False, lines=50):
    """Show a service's log (the last lines, then new ones with --follow)."""
    runtime = _guard(make_runtime)
    try:
        for line in _guard(lambda: stack.log_lines(runtime, service, int(lines), follow)):
            print(line, flush=follow)
    except KeyboardInterrupt:
        pass
    except OceanError as exc:
        raise Exit(f"error: {exc}", code=1) from None


@task(help={"service": "the service to restart", "json": "print the steps as JSON"})
def restart(c, service, json=False):
    """Restart one service and wait until it is healthy again."""
    runtime = _guard(make_runtime)
    _run(stack.restart(runtime, service), json)


@task(
    help={
        "products": "products to add (default 0: orders use the products already there)",
        "customers": "customers to add (default 10000; 0: orders use existing customers)",
        "orders": "orders to add, each with 1-3 items, an event and (if paid) a payment "
        "(default 100000)",
        "seed": "same seed, same rows on the same starting database (default 1)",
        "json": "print the steps and the summary (rows per table, seconds) as JSON",
    }
)
def seed(c, products=0, customers=10_000, orders=100_000, seed=1, json=False):
    """Add bulk data to the shop's database (COPY; repeatable with --seed). Stack must be up."""
    runtime = _guard(make_runtime)
    _run(seed_data(runtime, int(products), int(customers), int(orders), int(seed)), json)


@task(
    help={
        "json": "print the findings as JSON ({ok, seconds, findings: [...]})",
        "only": "comma-separated check kinds to run (default: all), e.g. rules,dashboards; "
        "an unknown kind lists the known ones",
        "strict": "also exit 1 on warnings (default: errors only)",
    }
)
def validate(c, json=False, only="", strict=False):
    """Check the stack's configs offline: Prometheus, rules and their tests, Alertmanager,
    dashboards, runbooks, generated SLO files (and whatever else registers a check).

    Exit 1 on any error (or warning with --strict). Needs no running service. Passing
    promtool unit tests are remembered by content in ~/.cache/ocean/validate
    (OCEAN_VALIDATE_CACHE: another directory, or 0 for none).
    """
    import time

    from ocean.config import REPO_ROOT
    from ocean.validate import run as run_checks

    kinds = {k.strip() for k in only.split(",") if k.strip()} or None
    started = time.monotonic()
    try:
        findings = run_checks(REPO_ROOT, kinds)
    except ValueError as exc:
        raise Exit(f"error: {exc}", code=1) from None
    took = time.monotonic() - started
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    failed = errors > 0 or (strict and warnings > 0)
    if json:
        print(
            _json_dumps(
                {
                    "ok": not failed,
                    "errors": errors,
                    "warnings": warnings,
                    "seconds": round(took, 2),
                    "findings": [f.as_dict() for f in findings],
                }
            )
        )
    else:
        _print_findings(findings, took)
    if failed:
        raise Exit(code=1)


def _print_findings(findings: list, took: float) -> None:
    if findings:
        table = Table(show_lines=False)
        table.add_column("check", no_wrap=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("file:line", overflow="fold")
        table.add_column("message", ratio=3, overflow="fold")
        table.add_column("hint", ratio=2, overflow="fold")
        for f in findings:
            colour = "red" if f.severity == "error" else "yellow"
            table.add_row(f.check, f"[{colour}]{f.severity}[/]", f.where, f.message, f.hint)
        Console(highlight=False).print(table)
    errors = sum(f.severity == "error" for f in findings)
    summary = f"{errors} error(s), {len(findings) - errors} warning(s) in {took:.1f}s"
    console.print(f"[{'red' if errors else 'green'}]{summary}[/]")


@task(help={"sessions": "nox sessions to run (default: lint,tests)"})
def test(c, sessions="lint,tests"):
    """Run the test suite through nox (the command CI runs)."""
    names = [s for s in sessions.split(",") if s]
    c.run(f"{sys.executable} -m nox -s {' '.join(names)}", pty=False)


def _json_dumps(data: object) -> str:
    return json.dumps(data, indent=2, default=str)


def _print_status(report: dict) -> None:
    table = Table("service", "state", "pid", "port", "health", "restarts", "uptime", box=None)
    for s in report["services"]:
        health = "[green]healthy[/]" if s["healthy"] else f"[red]{s['health_detail']}[/]"
        uptime = f"{s['uptime_seconds']:.0f}s" if s["uptime_seconds"] is not None else "-"
        table.add_row(
            s["name"],
            s["state"],
            str(s["pid"] or "-"),
            str(s["port"]),
            health,
            str(s["restarts"]),
            uptime,
        )
    console.print(table)
    _print_targets(report["targets"])
    if report["prometheus_error"]:
        console.print(f"[red]prometheus: {report['prometheus_error']}[/]")


def _print_targets(targets: Iterable[dict]) -> None:
    targets = list(targets)
    if not targets:
        return
    up_count = sum(t["health"] == "up" for t in targets)
    console.print(f"Prometheus targets: {up_count}/{len(targets)} up")
    for t in targets:
        if t["health"] != "up":
            console.print(f"  [red]{t['job']} {t['instance']}: {t['health']} {t['last_error']}[/]")
