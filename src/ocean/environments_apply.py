"""How an environment's definition fills in what a task's flags left unsaid.

A flag the user typed always wins; an empty one (the tasks' default) takes the
environment's value. Kept apart from ``ocean.environments`` (which only loads and
checks definitions) so that the procedures' modules need not know about files.
"""

from __future__ import annotations

import dataclasses

from ocean import limits, slo
from ocean.backup.retention import Policy
from ocean.durations import parse_duration
from ocean.environments import Environment


def duration(flag: str, env: Environment, key: str, option: str) -> float:
    """Seconds from ``flag`` when given (``--option``), else from the environment."""
    return parse_duration(flag, option) if flag not in ("", None) else env.seconds(key)


def deploy_settings(
    env: Environment, analysis_window: str = "", scale_down_delay: str = "", ready_timeout: str = ""
) -> dict[str, float | str]:
    """The DeployOptions the environment sets: its ``deploy.*`` timings (a flag wins)
    and what an analysis still inconclusive after its extension does."""
    return {
        "on_inconclusive": env["deploy.on_inconclusive"],
        "analysis_window": duration(
            analysis_window, env, "deploy.analysis_window", "analysis-window"
        ),
        "scale_down_delay": duration(
            scale_down_delay, env, "deploy.scale_down_delay", "scale-down-delay"
        ),
        "ready_timeout": duration(ready_timeout, env, "deploy.ready_timeout", "ready-timeout"),
    }


def prune_policy(env: Environment, last: int, daily: int, weekly: int, monthly: int) -> Policy:
    """The --keep-* flags when any is given (they replace the policy as a whole, so a
    single --keep-last 1 means exactly that), else the environment's backup.retention."""
    flags = {"keep-last": last, "keep-daily": daily, "keep-weekly": weekly, "keep-monthly": monthly}
    counts = [limits.count(value, flag, 0, limits.MAX_KEEP) for flag, value in flags.items()]
    if any(counts):
        return Policy(*counts)
    keep = env["backup.retention"]
    return Policy(keep["keep_last"], keep["keep_daily"], keep["keep_weekly"], keep["keep_monthly"])


def slos(base: slo.SLOs, env: Environment) -> slo.SLOs:
    """slo.yaml's SLOs with the environment's overrides: what deploy analysis and load
    test verdicts judge, and what the stack's SLO alerts fire on (``rule_files``)."""
    objective = env["slo.availability_objective"]
    threshold = env["slo.latency_threshold_ms"]
    out = base
    if objective is not None:
        out = dataclasses.replace(
            out, availability=dataclasses.replace(out.availability, objective=float(objective))
        )
    if threshold is not None:
        out = dataclasses.replace(
            out, latency=dataclasses.replace(out.latency, threshold_ms=float(threshold))
        )
    return out
