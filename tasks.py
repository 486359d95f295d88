"""Ocean Ops tasks: every procedure of the Ocean Shopping Center stack.

Run them as ``./ocean TASK`` (or ``invoke TASK`` inside the venv). Each task takes
``--env`` (default ``OCEAN_ENV``, else ``dev``), builds the settings and runtime of that
environment (``_runtime``: ``ocean.config.Settings.from_env``), runs a procedure from
``ocean`` (the destructive ones through ``ocean.guardrails``) and prints its steps.
Logic lives in ``ocean/``, never here.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from invoke import Collection, Exit, Task, task
from invoke.exceptions import ParseError
from invoke.parser import Argument
from invoke.parser.parser import ParseMachine
from rich.console import Console
from rich.table import Table

from ocean import environments, environments_apply, guardrails, interrupts, limits, noise, tracelog
from ocean.config import Settings
from ocean.durations import age, parse_duration, span
from ocean.errors import OceanError
from ocean.fsys import os_error_line
from ocean.model import Step, StepStatus
from ocean.procedures import backup as backups
from ocean.procedures import deploy as deploys
from ocean.procedures import stack
from ocean.procedures.seed import seed as seed_data
from ocean.runtime import make_runtime

console = Console(stderr=True, highlight=False)
STYLE = {
    StepStatus.OK: "[green]✓[/]",
    StepStatus.SKIPPED: "[dim]·[/]",
    StepStatus.INFO: "[cyan]…[/]",
    StepStatus.FAILED: "[red]✗[/]",
    StepStatus.INCONCLUSIVE: "[yellow]?[/]",
}
# How the tasks colour a view's tone (ocean/views: the console picks its own).
TONE = {"good": "green", "bad": "red", "warn": "yellow", "muted": "dim"}
# `invoke loadtest`: the run is inconclusive (the load generator was the bottleneck),
# neither passed (0) nor failed (1): CI can tell "rerun on a quieter runner" apart.
INCONCLUSIVE_EXIT = 3
INTERRUPTED_EXIT = 130  # 128 + SIGINT
# Ctrl-C interrupts every task, even one a script started in the background (ocean/interrupts.py).
interrupts.restore_ctrl_c()


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
    except OSError as exc:  # a file-system surprise no procedure foresaw: still one line
        raise Exit(f"error: {os_error_line(exc)}", code=1) from None
    except KeyboardInterrupt:
        # The procedure's own cleanup (a child process terminated, a lock released) ran
        # as the interrupt left it; say so in one line, exit as a shell does on SIGINT.
        # An interrupt that landed here, between two steps, never reached the procedure:
        # close it now, so its cleanup (a deploy's rollback) runs before the exit, not
        # whenever the garbage collector gets to it.
        close = getattr(steps, "close", None)
        if close is not None:
            # The interrupt is the story; a failed cleanup is the journal's to tell.
            with contextlib.suppress(OceanError, OSError, KeyboardInterrupt):
                close()
        raise Exit("error: interrupted", code=INTERRUPTED_EXIT) from None
    if as_json:
        print(json.dumps({"ok": True, "steps": [s.as_dict() for s in done]}, indent=2))
    return done


def _number_or_parse_error(set_value):
    """invoke casts a numeric flag's value with int() or float() and lets a ValueError
    escape as a traceback; a ParseError is what it prints as one line, exit 1."""

    def checked(argument: Argument, value, cast: bool = True) -> None:
        try:
            set_value(argument, value, cast)
        except ValueError:
            wanted = "a whole number" if argument.kind is int else "a number"
            flag = f"--{argument.name.replace('_', '-')}"
            raise ParseError(f"{flag}: {value!r} is not {wanted}") from None

    return checked


Argument.set_value = _number_or_parse_error(Argument.set_value)

# Positional arguments a task may go without (invoke fills a positional only while its
# value is None, then insists on it): `invoke logs --trace ID` names no service, and
# `invoke dashboards list` no dashboard. Left out, they are "".
OPTIONAL_POSITIONALS = {"logs": {"service"}, "dashboards": {"name"}}


def _optional_positionals(complete_context):
    def completed(machine: ParseMachine) -> None:
        context = machine.context
        for argument in context.missing_positional_args if context else ():
            if argument.name in OPTIONAL_POSITIONALS.get(context.name, ()):
                argument.value = ""
        complete_context(machine)

    return completed


ParseMachine.complete_context = _optional_positionals(ParseMachine.complete_context)


def _guard(call):
    try:
        return call()
    except OceanError as exc:
        raise Exit(f"error: {exc}", code=1) from None
    except OSError as exc:  # e.g. a state dir that is a file: one line, not a traceback
        raise Exit(f"error: {os_error_line(exc)}", code=1) from None


ENV_HELP = (
    "the environment: dev, staging, prod … (stack/environments/; default OCEAN_ENV, else dev)"
)
CONFIRM_HELP = (
    "name the environment to confirm a destructive action where it asks for it "
    "(prod: --confirm-env prod); audited in <state>/audit.jsonl"
)


def _settings(env: str) -> Settings:
    """The one place a task turns --env (or OCEAN_ENV) into settings."""
    return _guard(lambda: Settings.from_env(env_name=env))


def _runtime(env: str, name: str | None = None):
    settings = _settings(env)
    return _guard(lambda: make_runtime(name, settings))


@task(
    help={
        "env": ENV_HELP,
        "services": "comma-separated services to start (default: the whole stack); "
        "dependencies come along",
        "install": "install missing Debian packages when run as root (default on)",
        "wait-targets": "wait until Prometheus scrapes every target (default on)",
        "json": "print the steps as JSON instead of a progress log",
    }
)
def up(c, services="", install=True, wait_targets=True, json=False, env=""):
    """Bring the stack up (installing what it needs) and wait until it is healthy."""
    runtime = _runtime(env)
    steps = _run(stack.up(runtime, services or None, install, wait_targets), json)
    if not json and steps:
        table = Table("service", "listens on", box=None)
        for name, url in steps[-1].data.items():
            table.add_row(name, url)
        console.print(table)


@task(
    help={
        "env": ENV_HELP,
        "purge": "also delete the state dir (all data, logs and configs but the audit log); "
        "needs --yes",
        "yes": "confirm --purge",
        "force": "interrupt a running deploy first, as Ctrl-C where it runs would: it "
        "rolls back to the old color and closes its journal; without it, `down` refuses "
        "while a deploy runs",
        "confirm-env": CONFIRM_HELP,
        "json": "print the steps as JSON",
    }
)
def down(c, purge=False, yes=False, force=False, json=False, env="", confirm_env=""):
    """Stop every service (data is kept unless --purge --yes); refused while a deploy
    runs, unless --force."""
    runtime = _runtime(env)
    _run(guardrails.down(runtime, purge, yes, confirm_env, force=force), json)


@task(help={"env": ENV_HELP, "json": "print machine-readable JSON (secrets are never included)"})
def status(c, json=False, env=""):
    """Show each service's state, pid, port, health, restarts and uptime; exit 1 if unhealthy."""
    runtime = _runtime(env)
    report = _guard(lambda: stack.status(runtime))
    if json:
        print(_json_dumps(report))
    else:
        _print_status(report)
    if not report["healthy"]:
        raise Exit(code=1)


@task(
    positional=["service"],
    help={
        "env": ENV_HELP,
        "service": "the service whose log to show (see `status` for names)",
        "follow": "keep printing new lines until Ctrl-C",
        "lines": "how many of the last lines to show first (default 50, at most 100,000)",
        "trace": "instead: every line of one request, in time order: nginx's access line "
        "and the shop's lines (both colors) with this trace id (a response's X-Request-ID)",
        "json": "with --trace: the lines as JSON (time, source, line)",
    },
)
def logs(c, service=None, follow=False, lines=50, trace="", json=False, env=""):
    """Show a service's log (the last lines, then new ones with --follow), or follow one
    request through nginx and the shop with --trace ID."""
    runtime = _runtime(env)
    if trace:
        found = _guard(lambda: tracelog.trace(runtime, trace))
        if json:
            print(_json_dumps([line.as_dict() for line in found]))
        for line in () if json else found:
            print(tracelog.format_line(line))
        return
    if not service:
        raise Exit("error: name a service (see `status`), or --trace ID", code=1)
    try:
        for line in _guard(lambda: stack.log_lines(runtime, service, int(lines), follow)):
            print(line, flush=follow)
    except KeyboardInterrupt:
        pass
    except OceanError as exc:
        raise Exit(f"error: {exc}", code=1) from None
    except OSError as exc:
        raise Exit(f"error: {os_error_line(exc)}", code=1) from None


@task(
    positional=["action", "name"],
    iterable=["var"],
    help={
        "env": ENV_HELP,
        "action": "list, or snapshot NAME",
        "name": "snapshot: the dashboard (file name, uid or title; see `dashboards list`)",
        "from": "snapshot: how far back, e.g. 15m, 1h, 6h, 7d (default: the dashboard's)",
        "out": "snapshot: the image to write, FILE.png or FILE.svg",
        "var": "snapshot: a template variable, NAME=VALUE (repeatable; default All)",
        "json": "print what was drawn (or the list) as JSON",
    },
)
def dashboards(c, action, name=None, from_="", out="", var=None, json=False, env=""):
    """The Grafana dashboards of monitoring/dashboards/: `list` them, or `snapshot NAME
    --out FILE.png|.svg` draws one from Prometheus (the console's key 8 shows them live)."""
    from ocean.dashboards import model
    from ocean.dashboards import snapshot as snapshots
    from ocean.prom import Prometheus

    if action == "list":
        found = _guard(model.load_all)
        rows = [
            {"name": d.name, "title": d.title, "panels": len(d.panels), "range": d.time_from}
            for d in found
        ]
        if json:
            print(_json_dumps(rows))
        for row in () if json else rows:
            print(f"{row['name']:<22} {row['title']:<40} {row['panels']:>3} panels")
        return
    if action != "snapshot":
        raise Exit(f"error: {action!r}: list or snapshot", code=1)
    if not name or not out:
        raise Exit("error: dashboards snapshot NAME --out FILE.png|.svg", code=1)
    # Every input checked before the stack is asked anything.
    dashboard = _guard(lambda: model.find(name))
    chosen = _guard(lambda: model.selection(dashboard, from_, var or []))
    target = _guard(lambda: snapshots.check_out(Path(out)))
    runtime = _runtime(env)
    with Prometheus.of(runtime, timeout=10) as prom:
        _guard(lambda: snapshots.reachable(prom))
        drawn = _guard(lambda: snapshots.snapshot(prom, dashboard, target, chosen, time.time()))
    if json:
        print(_json_dumps(drawn))
        return
    console.print(
        f"[green]✓[/] {drawn['out']}: {dashboard.title}, {len(drawn['panels'])} panels, "
        f"{drawn['width']}×{drawn['height']} px"
    )
    for panel_id, error in drawn["errors"].items():
        console.print(f"[yellow]![/] panel {panel_id}: {error}")


@task(
    help={"env": ENV_HELP, "service": "the service to restart", "json": "print the steps as JSON"}
)
def restart(c, service, json=False, env=""):
    """Restart one service and wait until it is healthy again."""
    runtime = _runtime(env)
    _run(stack.restart(runtime, service), json)


@task(
    help={
        "env": ENV_HELP,
        "products": "products to add (default 0: orders use the products already there; "
        "at most 1,000,000)",
        "customers": "customers to add (default 10000; 0: orders use existing customers; "
        "at most 10,000,000)",
        "orders": "orders to add, each with 1-3 items, an event and (if paid) a payment "
        "(default 100000, at most 10,000,000)",
        "seed": "same seed, same rows on the same starting database (default 1; 0..2^31-1)",
        "json": "print the steps and the summary (rows per table, seconds) as JSON",
    }
)
def seed(c, products=0, customers=10_000, orders=100_000, seed=1, json=False, env=""):
    """Add bulk data to the shop's database (COPY; repeatable with --seed). Stack must be up."""
    runtime = _runtime(env)
    _run(seed_data(runtime, int(products), int(customers), int(orders), int(seed)), json)


@task(
    help={
        "env": ENV_HELP,
        "json": "print the findings as JSON ({ok, errors, warnings, seconds, findings: "
        "[{check, kind, severity, file, line, message, hint}]})",
        "only": "comma-separated check kinds to run (default: all), e.g. rules,dashboards; "
        "an unknown kind lists the known ones",
        "strict": "also exit 1 on warnings (default: errors only)",
        "install": "first install missing checkers (promtool, amtool, nginx, postgres, "
        "redis-server) from Debian when run as root (CI does)",
        "refresh-catalog": "instead of checking: rewrite monitoring/catalog.json (the metric "
        "catalog the `series` checks read) from the running stack of --env; it first drives "
        "traffic (reads, the warm-up, one injected 5xx per color, 3 s k6 smoke and "
        "websocket runs) so series that need traffic are captured too",
    }
)
def validate(c, json=False, only="", strict=False, install=False, env="", refresh_catalog=False):
    """Check every config the stack ships, offline; exit 1 on an error.

    Prometheus, rules and their tests, Alertmanager, dashboards, runbooks, generated
    SLO files, PostgreSQL, Redis, nginx, Compose files, YAML hygiene, and every
    environment's definition (stack/environments/), whatever --env says.

    Beyond syntax, the meaning: prometheus.yml has a scrape job, rule files and an
    Alertmanager; every scrape target reaches a service; promtool's lint (a duplicate
    rule is an error). Style (yamllint: indentation, spacing) is a warning.

    Exit 1 on any error (or warning with --strict). Needs no running service. --json:
    each finding has check, kind, severity, file, line, message and hint. Passing
    promtool unit tests are remembered by the test file and the rule files it loads in
    ~/.cache/ocean/validate (OCEAN_VALIDATE_CACHE: another directory, or 0 for none).
    Details: docs/validation.md.

    The `series` checks hold every query (rules, dashboards, k6 thresholds, deploy
    analysis, console) against monitoring/catalog.json; --refresh-catalog rewrites it
    from a live stack (commit it with the change that needs it).
    """
    if refresh_catalog:
        from ocean.config import REPO_ROOT
        from ocean.procedures.catalog import refresh

        _run(refresh(_runtime(env), REPO_ROOT), json)
        return

    from ocean.config import REPO_ROOT
    from ocean.validate.core import ensure_checkers
    from ocean.views import validation

    if env:  # the checks cover every environment; a misspelt --env is still an error
        _guard(lambda: environments.require_defined(env, REPO_ROOT))
    if install:
        _guard(lambda: ensure_checkers(install=True))
    kinds = {k.strip() for k in only.split(",") if k.strip()} or None
    try:
        report = validation.run(REPO_ROOT, kinds)
    except ValueError as exc:
        raise Exit(f"error: {exc}", code=1) from None
    if json:
        print(_json_dumps(report.as_dict(strict)))
    else:
        _print_findings(report)
    if report.failed(strict):
        raise Exit(code=1)


@task(
    help={
        "env": ENV_HELP,
        "diff": "another environment: show only the keys whose values differ",
        "json": "print machine-readable JSON",
    }
)
def config(c, env="", diff="", json=False):
    """Show an environment's effective configuration (secrets masked), or a diff.

    Base definition + the environment's overlay + OCEAN_* variables; each value with
    where it came from. Secrets are never shown: <secret> or ••••."""
    from ocean import environments_view

    name = _settings(env).env_name
    view = _guard(
        lambda: environments_view.diff(name, diff) if diff else environments_view.effective(name)
    )
    if json:
        print(_json_dumps(view))
        return
    out = Console(highlight=False, width=None if console.is_terminal else 160)
    if diff:
        table = Table("key", name, diff, "from", box=None)
        for row in view["differences"]:
            table.add_row(
                row["key"], _shown(row[name]), _shown(row[diff]), " / ".join(row["sources"])
            )
        out.print(table)
        console.print(f"{len(view['differences'])} difference(s) between {name} and {diff}")
        return
    table = Table("key", "value", "from", box=None)
    for key, value in view["config"].items():
        table.add_row(key, _shown(value), view["sources"].get(key, ""))
    out.print(table)
    console.print(f"environment {name}: {', '.join(view['files'])}")


def _shown(value: object) -> str:
    return (
        "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    )


def _print_findings(report) -> None:
    from ocean.views import validation

    if report.findings:
        table = Table(show_lines=False)
        table.add_column("check", no_wrap=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("file:line", overflow="fold")
        table.add_column("message", ratio=3, overflow="fold")
        table.add_column("hint", ratio=2, overflow="fold")
        for f in report.findings:
            colour = TONE[validation.tone(f)]
            table.add_row(f.check, f"[{colour}]{f.severity}[/]", f.where, f.message, f.hint)
        Console(highlight=False).print(table)
    console.print(f"[{'red' if report.errors else 'green'}]{report.summary()}[/]")


@task(
    help={
        "env": ENV_HELP,
        "color": "the idle color to deploy to: blue or green (deploying to the live color "
        "is refused)",
        "version": "what to run: a git ref of this repo (default HEAD) or a directory "
        "holding the shop (its pyproject.toml, or a checkout with stack/shop)",
        "auto-promote": "switch traffic once the preview passes (default on); "
        "--no-auto-promote stops before the switch: then `promote` or `rollback`",
        "analysis-window": "how long the new color is judged on live traffic after the "
        "switch, e.g. 60s or 2m (default: the environment's deploy.analysis_window; at "
        "least the 1s scrape interval, at most 1h); significant errors or a p99 breach "
        "sustained for 3 intervals and confirmed against the old color roll back at once "
        "(docs/deploy.md, Judging under noise)",
        "scale-down-delay": "how long after the switch the old color keeps running "
        "(default: the environment's deploy.scale_down_delay; at most 1h)",
        "ready-timeout": "how long the new color may take to answer /readyz "
        "(default: the environment's deploy.ready_timeout; more than 0s, at most 10m)",
        "warmup": "at most this many requests sent straight to the new color, 10 at a "
        "time, right before the switch, in rounds over every route class (a dry-run "
        "checkout included) until its latency settles, so that live traffic finds it warm "
        "(default 600; 0: none; at most 100,000); any failed request ends the deploy "
        "before traffic moves",
        "force": "deploy despite a deploy freeze: customer-facing alerts firing, as the "
        "environment's deploy.freeze says (recorded in the history; prod: needs "
        "--confirm-env prod)",
        "require-staging-pass": "refuse unless this build passed a load test on staging "
        "(always on where the environment sets deploy.require_staging_pass: prod)",
        "confirm-env": CONFIRM_HELP,
        "json": "print the steps as JSON instead of a progress log",
    }
)
def deploy(
    c,
    color,
    version="HEAD",
    auto_promote=True,
    analysis_window="",
    scale_down_delay="",
    ready_timeout="",
    warmup=600,
    force=False,
    json=False,
    env="",
    require_staging_pass=False,
    confirm_env="",
):
    """Blue-green deploy to the idle color, gated on metrics, with automatic rollback.

    Start VERSION on the idle color, smoke-test and analyse it, warm it up,
    switch nginx to it, watch its error ratio and p99 against slo.yaml, and roll back
    at once on a breach. Exit 1 when it does not end live."""
    runtime = _runtime(env)
    opts = _guard(  # checked before the guard rail audits anything
        lambda: deploys.check_options(
            runtime,
            deploys.DeployOptions(
                color=deploys.check_color(color),
                version=version,
                auto_promote=auto_promote,
                force=force,
                warmup_requests=int(warmup),
                **environments_apply.deploy_settings(
                    runtime.settings.env, analysis_window, scale_down_delay, ready_timeout
                ),
            ),
        )
    )
    _run(guardrails.deploy(runtime, opts, confirm_env, require_staging_pass), json)


@task(
    help={
        "env": ENV_HELP,
        "analysis-window": "override the deploy's analysis window, e.g. 60s (at most 1h)",
        "scale-down-delay": "override the deploy's scale-down delay, e.g. 30s (at most 1h)",
        "json": "print the steps as JSON",
        "confirm-env": CONFIRM_HELP,
    }
)
def promote(c, analysis_window="", scale_down_delay="", json=False, env="", confirm_env=""):
    """Promote the deploy waiting after `deploy --no-auto-promote`.

    Switch, analyse,
    scale down (or roll back on a breach)."""
    runtime = _runtime(env)
    window = _guard(
        lambda: parse_duration(analysis_window, "analysis-window") if analysis_window else None
    )
    delay = _guard(
        lambda: parse_duration(scale_down_delay, "scale-down-delay") if scale_down_delay else None
    )
    _run(guardrails.promote(runtime, window, delay, confirm_env), json)


@task(help={"env": ENV_HELP, "json": "print the steps as JSON", "confirm-env": CONFIRM_HELP})
def rollback(c, json=False, env="", confirm_env=""):
    """Send traffic back to the previous color, or abandon a waiting deploy.

    The other color is the previous release (one nginx reload when
    it still runs), or abandon a deploy waiting for promotion."""
    runtime = _runtime(env)
    _run(guardrails.rollback(runtime, confirm_env), json)


@task(
    name="deploy-status",
    help={
        "env": ENV_HELP,
        "history": "how many past deploys to show (default 10, at most 10,000)",
        "json": "print machine-readable JSON",
    },
)
def deploy_status(c, history=10, json=False, env=""):
    """Show the live color, versions, a deploy in progress and the deploy history.

    Per color: version and readiness; per past deploy: outcome and reason. A deploy
    whose process died is finished or undone first.
    """
    from ocean.views import deploy as views

    runtime = _runtime(env)
    count = _guard(lambda: limits.count(history, "history", 0, limits.MAX_HISTORY))
    view = _guard(lambda: views.status(runtime, count))
    if json:
        print(_json_dumps(view.as_dict()))
        return
    for step in view.recovered:
        console.print(f"{STYLE[step.status]} {step.name} [dim]{step.detail}[/]")
    _print_deploy_status(view)


def _print_deploy_status(view) -> None:
    table = Table("color", "live", "ready", "version", "build", box=None)
    for row in view.colors:
        table.add_row(
            row.color,
            "[green]live[/]" if row.live else "",
            "[green]yes[/]" if row.ready else "[dim]no[/]",
            row.version,
            row.build,
        )
    console.print(table)
    for notice in view.notices:
        console.print(f"[yellow]{notice}[/]")
    if view.open_deploy:
        console.print(view.open_deploy)
    if view.history:
        history = Table(box=None)
        for column in ("ended", "kind", "color", "version", "outcome", "took"):
            history.add_column(column, no_wrap=True)
        history.add_column("reason", no_wrap=True, overflow="ellipsis", max_width=48)
        for entry in view.history:
            colour = "green" if entry.succeeded else "red"
            history.add_row(
                entry.ended,
                entry.kind,
                entry.color,
                entry.version,
                f"[{colour}]{entry.outcome}[/]",
                entry.took,
                entry.reason,
            )
        console.print(history)


# -- backup and restore (docs/backup.md) ------------------------------------------------


@task(
    help={
        "env": ENV_HELP,
        "label": "a name for the set, appended to its id (e.g. before-migration)",
        "encrypt": "encrypt with GPG to the backup key (default on); --no-encrypt keeps "
        "the files plain (still checksummed and HMAC-signed)",
        "json": "print the steps as JSON",
    }
)
def backup(c, label="", encrypt=True, json=False, env=""):
    """Take an encrypted, checksummed backup set of PostgreSQL, Redis and the configs.

    PostgreSQL (pg_dump -Fc), Redis (BGSAVE) and the configs go into one
    encrypted, checksummed set under OCEAN_BACKUP_DIR (default <state>/backups)."""
    runtime = _runtime(env)
    _run(backups.backup(runtime, label, encrypt), json)


@task(name="backups", help={"env": ENV_HELP, "json": "print the sets as JSON"})
def list_backups(c, json=False, env=""):
    """List the backup sets: age, size, encryption and the last verification.

    A set whose manifest is missing or unreadable is listed as damaged, not hidden."""
    runtime = _runtime(env)
    rows = _guard(lambda: backups.list_backups(runtime))
    if json:
        print(_json_dumps({"backups": rows}))
        return
    table = Table("id", "age", "size", "encrypted", "orders", "verified", box=None)
    for row in rows:
        if "problem" in row:
            table.add_row(row["id"], "", "", "", "", f"[red]{row['problem']}[/]")
            continue
        verified = row["verified"]
        colour = {"ok": "green", "failed": "red"}.get(verified["status"], "dim")
        table.add_row(
            row["id"],
            age(row["age_s"]),
            f"{row['size'] / 2**20:.1f} MiB",
            "gpg" if row["encrypted"] else "[yellow]no[/]",
            f"{row['orders'] or 0:,}",
            f"[{colour}]{verified['status']}[/]",
        )
    console.print(table if rows else "no backups yet: `./ocean backup`")


@task(
    name="backup-verify",
    help={
        "env": ENV_HELP,
        "id": "the backup set to verify (see `backups`)",
        "json": "print the steps as JSON",
    },
)
def backup_verify(c, id, json=False, env=""):
    """Prove a backup set by restoring it into scratch instances and comparing.

    Restore a set into a scratch PostgreSQL and Redis on free ports, compare row
    counts, table checksums and keys with its manifest, publish the result as a metric."""
    runtime = _runtime(env)
    _run(backups.verify(runtime, id), json)


@task(
    help={
        "env": ENV_HELP,
        "id": "the backup set to restore (see `backups`)",
        "yes": "confirm: the shop's data is replaced (a safety backup is taken first)",
        "confirm-env": CONFIRM_HELP,
        "json": "print the steps as JSON",
    }
)
def restore(c, id, yes=False, json=False, env="", confirm_env=""):
    """Restore a backup set into the stack (a safety backup is taken first).

    Safety backup, stop the shop, restore PostgreSQL, Redis and configs,
    check them against the manifest, start the shop, health check. On failure the
    safety backup is put back."""
    runtime = _runtime(env)
    _run(guardrails.restore(runtime, id, yes, confirm_env), json)


@task(
    name="backup-prune",
    auto_shortflags=False,  # four --keep-* options: generated short flags would collide
    help={
        "env": ENV_HELP,
        "keep-last": "keep the N newest sets (any --keep-* replaces the environment's "
        "backup.retention as a whole; none given: the environment's; each at most 1000)",
        "keep-daily": "keep the newest set of each of the last N days",
        "keep-weekly": "keep the newest set of each of the last N ISO weeks",
        "keep-monthly": "keep the newest set of each of the last N months",
        "dry-run": "only say what would be removed",
        "confirm-env": CONFIRM_HELP,
        "json": "print the steps as JSON",
    },
)
def backup_prune(
    c,
    keep_last=0,
    keep_daily=0,
    keep_weekly=0,
    keep_monthly=0,
    dry_run=False,
    json=False,
    env="",
    confirm_env="",
):
    """Remove the backup sets no keep rule keeps (a set kept by any rule stays).

    The rules are the --keep-* flags, else the environment's backup.retention. They
    count only sets that may restore (a failed verification fills no rule), the newest
    verified set is always kept, and damaged sets (no manifest) are named and removed."""
    runtime = _runtime(env)
    try:
        policy = environments_apply.prune_policy(
            runtime.settings.env,
            int(keep_last),
            int(keep_daily),
            int(keep_weekly),
            int(keep_monthly),
        )
    except (ValueError, OceanError) as exc:
        raise Exit(f"error: {exc}", code=1) from None
    _run(guardrails.prune(runtime, policy, dry_run, confirm_env), json)


# -- load tests (testing/k6/README.md) ---------------------------------------------------


@task(
    iterable=["guard"],
    help={
        "env": ENV_HELP,
        "scenario": "smoke, browsing, shopping, stress, cache, database, websocket or "
        "performance (testing/k6/<scenario>.js)",
        "vus": "virtual users (arrival-rate scenarios: the most k6 may use); default per "
        "scenario, at most 20,000",
        "rate": "stress: the top arrival rate (iterations/s) it steps up to; performance: "
        "the steady rate; default per scenario",
        "duration": "how long, e.g. 30s or 2m (default per scenario, at most 1h)",
        "target": "base URL to load (default: this stack's nginx); loopback only",
        "guard": "override a server-side guard, NAME=VALUE or NAME=off (repeatable): "
        "error_ratio, client_error_ratio, db_p95_ms, cache_hit_ratio, redis_memory_ratio",
        "browser": "also walk the storefront in Chromium meanwhile and judge the page_load "
        "SLO (always on for the performance scenario)",
        "json": "print the result as JSON instead of live progress",
    },
)
def loadtest(
    c,
    scenario,
    vus=0,
    rate=0,
    duration="",
    target="",
    guard=None,
    browser=False,
    json=False,
    env="",
):
    """Run a k6 load test, guarded by server-side SLO checks, with live progress.

    Run a k6 scenario against the stack with live progress; stop it when a
    server-side guard (from slo.yaml) breaches; judge every SLO. Results go to
    <state>/loadtests/<id>/. Exit 1 when a verdict fails or a guard stopped the run;
    exit 3 when the run is inconclusive: the load generator (k6) was saturated, starved of
    CPU or dropped iterations, and only client-side timings failed; or other processes
    kept the machine busy, and only timings failed (errors still exit 1). The output
    names the side that limited the run, with the figures."""
    from ocean.procedures import loadtest as loadtests

    runtime = _runtime(env)
    opts = _guard(
        lambda: loadtests.options(
            runtime, scenario, vus, duration, rate, guard or [], browser, target
        )
    )
    done = _run_live(loadtests.loadtest(runtime, opts), json)
    if done and done[-1].status is StepStatus.FAILED:
        raise Exit(code=1)
    if done and done[-1].status is StepStatus.INCONCLUSIVE:
        raise Exit(code=INCONCLUSIVE_EXIT)


def _run_live(steps: Iterator[Step], as_json: bool) -> list[Step]:
    """_run for long procedures: ``progress`` steps update one live line (every 5th is
    printed when stderr is not a terminal); --json prints the last step's data."""
    from rich.live import Live

    done: list[Step] = []
    live = Live(console=console, transient=True) if console.is_terminal and not as_json else None
    try:
        if live:
            live.start()
        for step in steps:
            if step.name == "progress":
                if live:
                    live.update(f"[cyan]…[/] {step.detail}")
                elif not as_json and int(step.data.get("t", 0)) % 5 == 0:
                    console.print(f"[cyan]…[/] {step.detail}")
                continue
            if live:
                live.update("")
            done.append(step)
            if not as_json:
                took = f" [dim]{step.seconds:.1f}s[/]" if step.seconds is not None else ""
                console.print(f"{STYLE[step.status]} {step.name} [dim]{step.detail}[/]{took}")
    except OceanError as exc:
        if as_json:
            print(_json_dumps({"ok": False, "error": str(exc)}))
        raise Exit(f"error: {exc}", code=1) from None
    except OSError as exc:
        raise Exit(f"error: {os_error_line(exc)}", code=1) from None
    finally:
        if live:
            live.stop()
    if as_json and done:
        ok = done[-1].status not in (StepStatus.FAILED, StepStatus.INCONCLUSIVE)
        print(_json_dumps({"ok": ok, **done[-1].data}))
    return done


@task(
    name="loadtest-report",
    help={
        "env": ENV_HELP,
        "id": "the run to show (default: the newest; ids are the directories of "
        "<state>/loadtests/; invoke has no optional positionals, hence --id)",
        "compare": "a baseline run: print both side by side and flag regressions",
        "tolerance": "how much worse than the baseline counts as a regression, as a "
        "fraction (default 0.2 = 20%; 0..10)",
        "json": "print machine-readable JSON",
    },
)
def loadtest_report(c, id="", compare="", tolerance=0.2, json=False, env=""):
    """Show a saved load test, or compare it with another and flag regressions.

    Verdicts, figures, capacity; or a comparison with a
    baseline run. Exit 1 when --compare finds a regression."""
    from ocean.procedures import loadtest as loadtests

    runtime = _runtime(env)
    try:
        tol = float(tolerance)
    except ValueError:
        raise Exit(f"error: --tolerance {tolerance!r} is not a number", code=1) from None
    if not 0 <= tol <= limits.MAX_TOLERANCE:  # NaN too
        raise Exit(f"error: --tolerance must be 0..{limits.MAX_TOLERANCE:g}, not {tol:g}", code=1)
    report = _guard(lambda: loadtests.report(runtime, id or None, compare or None, tol))
    if json:
        print(_json_dumps(report))
    else:
        _print_loadtest(report)
    if report.get("regressions"):
        raise Exit(code=1)


def _print_loadtest(report: dict) -> None:
    from ocean.views import loadtest as views

    run = report["run"]
    # B105: not a password: the 'pass' outcome
    colour = {"pass": "green", "fail": "red", "inconclusive": "yellow"}[run["outcome"]]  # nosec B105
    verdict = f"[{colour}]{run['headline']}[/]"
    console.print(
        f"{run['id']} ({run['scenario']}, {run['params'].get('vus')} VUs, "
        f"{run['duration_s']:.0f}s, {run['stopped_by']}): {verdict}"
    )
    if run.get("breach"):
        console.print(f"[red]{run['breach']['detail']}[/]")
    if run.get("limit_detail"):  # runs saved before issue 19 have none
        console.print(f"limited by {run['limited_by'] or 'nothing'}: {run['limit_detail']}")
    table = Table("slo", "source", "measured", "limit", "verdict", box=None)
    for v in views.verdict_rows(run["verdicts"]):
        word = f"[{TONE[v.tone]}]{v.word}[/]"
        if v.excused:
            word += f" [dim]({v.excused})[/]"
        table.add_row(v.slo, v.source, v.measured, v.limit, word)
    console.print(table)
    if run.get("levels"):
        levels = Table("level", "target/s", "done/s", "p99 ms", "failed", "held", box=None)
        for row in run["levels"]:
            levels.add_row(
                str(row["level"]),
                str(row["target_rate"]),
                f"{row['rps']:.0f}",
                str(row["p99_ms"]),
                f"{row['failed_rate']:.3%}",
                "[green]yes[/]" if row["held"] else "[red]no[/]",
            )
        console.print(levels)
        best = run.get("breaking_point")
        console.print(f"capacity: {best['rps']:.0f} requests/s held" if best else "no level held")
    if "rows" in report:
        shown = views.comparison(report)
        for note in shown.notes:
            console.print(f"[yellow]{note}[/]")
        table = Table("metric", report["base"]["id"], run["id"], "change", "", box=None)
        for row in shown.rows:
            flag = "[red]regression[/]" if row.regression else ""
            table.add_row(row.metric, row.base, row.run, row.change, flag)
        console.print(table)
        console.print(f"[{'red' if shown.regressions else 'green'}]{shown.summary}[/]")
    console.print(f"chart: {report['chart']}")


MAX_CPU_HOGS = 16


@task(
    help={
        "env": ENV_HELP,
        "sessions": "nox sessions to run (default: lint,validate,tests)",
        "cpu-hogs": "run the suite beside N busy loops at nice -10, each up to one core "
        "(default 0): every verdict must hold on a busy machine; prints the cores they took",
    }
)
def test(c, sessions="lint,validate,tests", env="", cpu_hogs=0):
    """Run the test suite through nox (the command CI runs).

    The tests make their own stacks: --env is only checked to name an environment.
    `--cpu-hogs 2` is the busy-machine run (about one core busy; README)."""
    _settings(env)
    hogs_wanted = int(cpu_hogs)
    if not 0 <= hogs_wanted <= MAX_CPU_HOGS:
        raise Exit(f"error: --cpu-hogs {hogs_wanted}: choose 0..{MAX_CPU_HOGS}", code=1)
    names = [s for s in sessions.split(",") if s]
    # Bounded by the CI hard limit: the loops end by themselves if this process dies.
    # At nice -10 (root): at 0 one loop got only 0.75 of a core beside the suite's stacks.
    hogs = noise.CpuHogs(hogs_wanted, seconds=5400, nice=-10) if hogs_wanted else None
    try:
        result = c.run(f"{sys.executable} -m nox -s {' '.join(names)}", pty=False, warn=True)
    finally:
        if hogs:
            print(f"{hogs_wanted} CPU hog(s) took {hogs.stop():.2f} cores on average")
    if result.exited:
        raise SystemExit(result.exited)


@task(
    help={
        "env": ENV_HELP,
        "install": "apt-get install docker.io and debootstrap when missing (root)",
        "start": "start the engine (bridge none, host networking only, own data-root)",
        "build": "build the local images: debootstrap base, stack, python, shop",
        "stop": "remove every container of the engine, stop it, unmount what it left",
        "purge": "stop it and delete its root (OCEAN_DOCKER_ROOT) with every image",
        "json": "print the steps as JSON",
    }
)
def engine(c, install=False, start=False, build=False, stop=False, purge=False, json=False, env=""):
    """The local Docker engine behind the compose runtime (docs/architecture.md).

    One engine per machine, whatever --env (it names the state dir it reports on)."""
    runtime = _runtime(env, "compose")
    _run(runtime.engine_steps(install, start, build, stop, purge), json)


# -- alerts (issue 20; docs/runbooks/Watchdog.md) ---------------------------------------
# A collection: `alerts` lists (its default task), `alerts.silence`, `alerts.unsilence`
# and `alerts.drill` act; `./ocean alerts silence …` is rewritten to the dotted form by
# the ./ocean script. The bodies are plain functions, made tasks in `_alerts_tasks()`
# only: module-level Task objects would also land in the root namespace.


def _alerts_list(c, json=False, env=""):
    """List firing and pending alerts with their routes and receivers, then silences.

    Each alert with its severity, since when, the route and receivers it reaches, and
    whether a silence or an inhibit rule mutes it (and which); then the active silences.

    Prometheus gives pending and firing alerts, Alertmanager where each went and what
    mutes it; routes and inhibit rules are computed from the stack's rendered
    Alertmanager config, so a pending alert shows where it will go. Exit 1 when
    Prometheus or Alertmanager cannot be asked (what the other knows is still listed)."""
    from ocean.procedures import alerts

    runtime = _runtime(env)
    report = _guard(lambda: alerts.listing(runtime))
    if json:
        print(_json_dumps(report))
    else:
        _print_alerts(report)
    if not report["ok"]:
        raise Exit(code=1)


def _alerts_silence(c, alert, for_="", reason="", json=False, env=""):
    """Silence an alert for a while, with a reason (audited).

    Every alert named ALERT (one an alerting rule defines) is silenced in Alertmanager
    from now for --for; the reason is the silence's comment. Bad input changes nothing:
    an unknown alert (close names suggested), a duration that is not positive, an empty
    reason. Recorded in <state>/audit.jsonl."""
    from ocean.alerting import silences
    from ocean.procedures import alerts

    runtime = _runtime(env)
    request = _guard(lambda: silences.check(alert, for_, reason, alerts.alert_rules(runtime)))
    _run(guardrails.silence(runtime, request), json)


def _alerts_unsilence(c, id, json=False, env=""):
    """End a silence now (its id from `alerts`; audited)."""
    runtime = _runtime(env)
    _run(guardrails.unsilence(runtime, id), json)


def _alerts_drill(c, route="", timeout="", json=False, env=""):
    """Prove every receiver delivers: a synthetic alert per route, delivery timed.

    For each receiver of the routing tree (or --route NAME), post an `OceanAlertDrill`
    alert (a unique drill_id; labels the routing tree sends to that receiver) to
    Alertmanager, wait until the receiver has it (the local alert inbox; Alertmanager's
    notification counters for a real external receiver), print the delivery latency
    per channel, then resolve the alerts. Exit 1 naming each route that did not
    deliver. Drill alerts never reach Prometheus, so they never freeze a deploy."""
    from ocean.procedures import alerts

    runtime = _runtime(env)
    wait = _guard(lambda: parse_duration(timeout, "timeout") if timeout else None)
    steps = alerts.drill(runtime, route or None, wait)
    done = _run_live(_progress_on_stderr(steps) if json else steps, json)
    if done and done[-1].status is StepStatus.FAILED:
        raise Exit(code=1)


def _progress_on_stderr(steps: Iterator[Step]) -> Iterator[Step]:
    """With --json, stdout carries the result alone: say on stderr what is awaited."""
    for step in steps:
        if step.name == "progress":
            console.print(f"[cyan]…[/] {step.detail}")
        yield step


def _alerts_tasks() -> Collection:
    json_help = "print machine-readable JSON"
    return Collection(
        "alerts",
        Task(_alerts_list, name="list", default=True, help={"env": ENV_HELP, "json": json_help}),
        Task(
            _alerts_silence,
            name="silence",
            positional=["alert"],
            help={
                "env": ENV_HELP,
                "alert": "the alert's name (alertname), as an alerting rule in "
                "monitoring/rules defines it",
                "for": "how long, e.g. 30m, 2h, 1h30m (positive)",
                "reason": "why: the silence's comment, shown to whoever is on call (required)",
                "json": "print the steps as JSON",
            },
        ),
        Task(
            _alerts_unsilence,
            name="unsilence",
            help={
                "env": ENV_HELP,
                "id": "the silence's id (listed by `alerts`)",
                "json": "print the steps as JSON",
            },
        ),
        Task(
            _alerts_drill,
            name="drill",
            help={
                "env": ENV_HELP,
                "route": "drill one route only, by its receiver's name (deadman, pager, email, "
                "chat …) or the alert its route pins (watchdog); default: every receiver",
                "timeout": "how long to wait for delivery (default: the longest group_wait "
                "of the drilled routes + 10s)",
                "json": "print the result as JSON on stdout (progress stays on stderr)",
            },
        ),
    )


def _print_alerts(report: dict) -> None:
    for problem in report["problems"]:
        console.print(f"[red]{problem}[/]")
    rows = report["alerts"]
    table = Table("alert", "state", "severity", "for", "route", "receivers", "muted", box=None)
    for row in rows:
        colour = "red" if row["state"] == "firing" else "yellow"
        muted = [f"silenced ({', '.join(row['silenced_by'])})"] if row["silenced_by"] else []
        if row["silenced_when_it_fires"]:
            muted.append(f"silenced once it fires ({', '.join(row['silenced_when_it_fires'])})")
        muted += [
            f"inhibited by {i['alert']}"
            + (f" (rule #{i['rule']})" if i["rule"] else "")
            + (" once it fires" if i.get("when_it_fires") else "")
            for i in row["inhibited_by"]
        ]
        name = row["name"] + (" [dim](drill)[/]" if row["drill"] else "")
        table.add_row(
            name,
            f"[{colour}]{row['state']}[/]",
            row["severity"],
            span(row["for_s"]),
            ", ".join(row["routes"]),
            ", ".join(row["receivers"]),
            "; ".join(muted),
        )
    counts = report["counts"]
    if rows:
        console.print(table)
    console.print(
        f"{counts['firing']} firing, {counts['pending']} pending, "
        f"{counts['silenced']} silenced, {counts['inhibited']} inhibited"
    )
    silences = report["silences"]
    if not silences:
        console.print("no active silence")
        return
    table = Table("silence", "state", "matchers", "ends in", "by", "reason", "silences", box=None)
    for s in silences:
        table.add_row(
            s["id"],
            s["state"],
            s["matchers"],
            span(s["ends_in_s"]),
            s["created_by"],
            s["comment"],
            ", ".join(s["silences"]),
        )
    console.print(table)


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
    console.print(
        f"environment {report['env']} ({report['runtime']} runtime, {report['state_dir']}); "
        f"live color: {report['live_color']} (`deploy-status` for versions and history)"
    )
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


# The root namespace: every task above, plus the `alerts` collection.
ns = Collection.from_module(sys.modules[__name__])
ns.add_collection(_alerts_tasks())
