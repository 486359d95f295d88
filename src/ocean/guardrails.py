"""Guard rails that scale with the environment, around the procedures that destroy.

Where the environment says ``guard_rails.confirm_destructive`` (prod), a destructive
action needs ``--confirm-env <environment name>``: restore, ``down --purge``, a
rollback past the previous release, ``promote``, ``deploy --force`` and ``backup-prune``
(not its ``--dry-run``). A confirmation naming another environment is refused
everywhere: the operator believes they are somewhere else. Every action that passes
through here is audited (``ocean.audit``): ``refused`` before anything is touched, or
``started`` then ``succeeded``/``failed``. The promotion gate (``ocean.promotion``)
refuses here too.
Silences (``alerts silence`` / ``unsilence``) pass through here for the audit alone.

The front ends (tasks.py, the console) call these instead of the procedures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ocean import audit, promotion, statedir
from ocean.alerting.silences import SilenceRequest
from ocean.backup.retention import Policy
from ocean.errors import OceanError, Refused
from ocean.model import Step, StepStatus
from ocean.procedures import alerts as alert_procedures
from ocean.procedures import backup as backups
from ocean.procedures import deploy as deploys
from ocean.procedures import stack
from ocean.rollout.journal import Journal
from ocean.runtime.base import Runtime

CONFIRM_FLAG = "--confirm-env"


def confirmation_problem(
    env_name: str, action: str, why: str, required: bool, confirm_env: str
) -> str:
    """Why the confirmation is not good enough ("" when it is)."""
    if confirm_env and confirm_env != env_name:
        return (
            f"{CONFIRM_FLAG} {confirm_env} does not match this environment, {env_name} "
            f"(check --env / OCEAN_ENV): {action} not run"
        )
    if required and not confirm_env:
        return f"{action} in {env_name} needs {CONFIRM_FLAG} {env_name}: {why}"
    return ""


def guarded(
    runtime: Runtime,
    action: str,
    args: dict[str, Any],
    steps: Callable[[], Iterator[Step]],
    confirm_env: str = "",
    destructive: str = "",
    checks: tuple[Callable[[], Iterator[Step]], ...] = (),
    via: str = "cli",
) -> Iterator[Step]:
    """Run ``steps()`` under the guard rail; ``destructive`` says why this action needs
    the confirmation in an environment that asks for one ("" when it does not).
    ``checks`` run before anything starts; one raising Refused refuses the action."""
    settings = runtime.settings
    env = settings.env
    args = {**args, "env": env.name, "confirm_env": confirm_env}
    required = bool(destructive) and env.confirm_destructive
    problem = confirmation_problem(env.name, action, destructive, required, confirm_env)
    if problem:
        audit.record(settings, action, "refused", args, problem, via=via)
        raise Refused(problem)
    if destructive and confirm_env:  # say what the confirmation was for; silent otherwise
        yield Step("guard rail", detail=f"{destructive}: confirmed for {env.name}")
    for check in checks:
        try:
            yield from check()
        except Refused as exc:
            audit.record(settings, action, "refused", args, str(exc), via=via)
            raise
    started = audit.record(settings, action, "started", args, destructive, via=via)
    last: Step | None = None
    with audit.kept(settings):
        try:
            for step in steps():
                last = step
                yield step
        except BaseException as exc:  # OceanError, Ctrl-C, a consumer that stopped
            why = str(exc) or type(exc).__name__
            audit.record(settings, action, "failed", args, why, started["id"], via=via)
            raise
    failed = last is not None and last.status is StepStatus.FAILED
    outcome = "failed" if failed else "succeeded"
    detail = f"{last.name}: {last.detail}" if last else ""
    audit.record(settings, action, outcome, args, detail, started["id"], via=via)


# -- the guarded actions --------------------------------------------------------------------


def restore(runtime: Runtime, backup_id: str, yes: bool, confirm_env: str = "", via: str = "cli"):
    def run() -> Iterator[Step]:
        # No state dir, no stack: refused before the audit log would make one. (An
        # unknown set is audited as a failed restore: every attempt is recorded.)
        statedir.require(runtime.settings.state_dir)
        yield from guarded(
            runtime,
            "restore",
            {"id": backup_id, "yes": yes},
            lambda: backups.restore(runtime, backup_id, yes),
            confirm_env,
            destructive="restore replaces the shop's data",
            via=via,
        )

    return run()


def down(
    runtime: Runtime,
    purge: bool,
    yes: bool,
    confirm_env: str = "",
    via: str = "cli",
    force: bool = False,
):
    def run() -> Iterator[Step]:
        if purge and yes:
            # Refused before the audit log is written: a directory that is not a stack's
            # state dir gets nothing written into it either (ocean/statedir.py).
            settings = runtime.settings
            if problem := statedir.purge_problem(settings.state_dir, settings.repo_root):
                raise Refused(f"refusing to purge: {problem}")
        yield from guarded(
            runtime,
            "down --purge" if purge else "down",
            {"purge": purge, "yes": yes, "force": force},
            lambda: stack.down(runtime, purge=purge, yes=yes, force=force),
            confirm_env,
            destructive="--purge deletes the state dir and all its data" if purge else "",
            via=via,
        )

    return run()


def rollback(runtime: Runtime, confirm_env: str = "", via: str = "cli"):
    def run() -> Iterator[Step]:  # the history is read when the rollback runs
        statedir.require(runtime.settings.state_dir)  # no stack: nothing to audit either
        try:
            why = past_previous_release(runtime)
        except OceanError as exc:  # cannot tell what the rollback would do: do nothing
            args = {"env": runtime.settings.env_name, "confirm_env": confirm_env}
            audit.record(runtime.settings, "rollback", "refused", args, str(exc), via=via)
            raise
        yield from guarded(
            runtime, "rollback", {}, lambda: deploys.rollback(runtime), confirm_env, why, via=via
        )

    return run()


def promote(
    runtime: Runtime,
    analysis_window: float | None = None,
    scale_down_delay: float | None = None,
    confirm_env: str = "",
    via: str = "cli",
):
    """Promoting a paused deploy moves every request to the other color: where the
    environment asks for confirmations, it needs one, as a rollback past the previous
    release does."""

    def run() -> Iterator[Step]:
        # Bad input and no stack are refused before anything, the audit log included.
        deploys.check_promote_options(runtime, analysis_window, scale_down_delay)
        statedir.require(runtime.settings.state_dir)
        yield from guarded(
            runtime,
            "promote",
            {"analysis_window_s": analysis_window, "scale_down_delay_s": scale_down_delay},
            lambda: deploys.promote(runtime, analysis_window, scale_down_delay),
            confirm_env,
            destructive="promote moves all traffic to the waiting color",
            via=via,
        )

    return run()


def deploy(
    runtime: Runtime,
    opts: deploys.DeployOptions,
    confirm_env: str = "",
    require_staging_pass: bool = False,
    via: str = "cli",
):
    required = require_staging_pass or bool(runtime.settings.env["deploy.require_staging_pass"])
    checks = (lambda: promotion.gate(runtime.settings, opts.version),) if required else ()

    def run() -> Iterator[Step]:
        statedir.require(runtime.settings.state_dir)  # no stack: nothing to audit either
        yield from guarded(
            runtime,
            "deploy --force" if opts.force else "deploy",
            {
                "color": opts.color,
                "version": opts.version,
                "force": opts.force,
                "auto_promote": opts.auto_promote,
                "analysis_window_s": opts.analysis_window,
                "require_staging_pass": required,
            },
            lambda: deploys.deploy(runtime, opts),
            confirm_env,
            destructive="--force deploys over a deploy freeze" if opts.force else "",
            checks=checks,
            via=via,
        )

    return run()


def prune(runtime: Runtime, policy: Policy, dry_run: bool, confirm_env: str = "", via: str = "cli"):
    return guarded(
        runtime,
        "backup-prune",
        {
            "keep_last": policy.last,
            "keep_daily": policy.daily,
            "keep_weekly": policy.weekly,
            "keep_monthly": policy.monthly,
            "dry_run": dry_run,
        },
        lambda: backups.prune(runtime, policy, dry_run),
        confirm_env,
        destructive="" if dry_run else "backup-prune deletes backup sets",
        via=via,
    )


def silence(runtime: Runtime, request: SilenceRequest, via: str = "cli"):
    """A silence hides pages from whoever is on call: always audited, never confirmed."""
    return guarded(
        runtime,
        "alerts silence",
        {"alert": request.alert, "for_s": request.seconds, "reason": request.reason},
        lambda: alert_procedures.silence(runtime, request),
        via=via,
    )


def unsilence(runtime: Runtime, silence_id: str, via: str = "cli"):
    return guarded(
        runtime,
        "alerts unsilence",
        {"id": silence_id},
        lambda: alert_procedures.unsilence(runtime, silence_id),
        via=via,
    )


def past_previous_release(runtime: Runtime) -> str:
    """Why a rollback now would go past the previous release ("" when it would not).

    The previous release is what ran live before the last successful deploy of the live
    color (the deploy records it as ``from_build``); the rollback runs the other color's
    build. Abandoning a paused deploy moves no traffic. When the history cannot say what
    ran before, the rollback counts as going past it: a guard rail errs towards asking.
    """
    journal = Journal(runtime.settings.state_dir)
    record = journal.read()
    if record and record.get("paused"):
        return ""
    live = runtime.live_color()
    target = deploys.other(live)
    deployed = [
        e
        for e in journal.history(0)
        if e.get("outcome") == "success" and e.get("kind", "deploy") == "deploy"
    ]
    last = next((e for e in reversed(deployed) if e.get("color") == live), None)
    if last is None:
        return ""  # nothing to roll back to: the procedure refuses on its own
    build = runtime.color_build(target)
    previous = last.get("from_build")
    if previous is None:
        return f"the history does not say what ran before {last.get('label', 'the live release')}"
    if build.id != previous:
        return f"{target} holds {build.label} ({build.id}), not the previous release ({previous})"
    return ""
