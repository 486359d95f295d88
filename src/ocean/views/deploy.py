"""Deploy status as `invoke deploy-status` and the console's Deploy screen show it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ocean.model import Step
from ocean.procedures import deploy as deploys
from ocean.runtime.base import Runtime


@dataclass(frozen=True)
class ColorRow:
    color: str
    live: bool
    ready: bool
    version: str  # the build's label
    build: str


@dataclass(frozen=True)
class HistoryRow:
    ended: str  # local time, month-day and clock
    kind: str
    color: str
    version: str
    outcome: str
    succeeded: bool
    took: str
    reason: str


@dataclass(frozen=True)
class DeployStatus:
    report: dict[str, Any]  # deploys.status()'s: what --json prints
    recovered: list[Step]  # what settling a dead deploy did first
    live: str
    colors: list[ColorRow]
    # A deploy running now, one the stack being down left unsettled: said as a warning.
    notices: list[str]
    open_deploy: str | None  # "open deploy of green: awaits promotion" (or: at STEP)
    history: list[HistoryRow] = field(default_factory=list)  # newest first

    def as_dict(self) -> dict[str, Any]:
        return {**self.report, "recovered": [s.as_dict() for s in self.recovered]}


def status(runtime: Runtime, history: int = 10) -> DeployStatus:
    """The live color, both colors, the open deploy and the last ``history`` deploys (a
    dead deploy is settled first: deploys.status)."""
    report, recovered = deploys.status(runtime, history)
    return render(report, recovered)


def render(report: dict[str, Any], recovered: Sequence[Step] = ()) -> DeployStatus:
    colors = [
        ColorRow(color, bool(info["live"]), bool(info["ready"]), info["label"], info["build"])
        for color, info in report["colors"].items()
    ]
    notices = [report[key] for key in ("running", "unsettled") if report.get(key)]
    open_deploy = None
    if record := report.get("open"):
        state = "awaits promotion" if record.get("paused") else f"at {record.get('step')}"
        open_deploy = f"open deploy of {record['color']}: {state}"
    return DeployStatus(
        report=report,
        recovered=list(recovered),
        live=report["live"],
        colors=colors,
        notices=notices,
        open_deploy=open_deploy,
        history=[_history_row(entry) for entry in reversed(report["history"])],
    )


def _history_row(entry: dict[str, Any]) -> HistoryRow:
    outcome = entry.get("outcome", "")
    return HistoryRow(
        ended=time.strftime("%m-%d %H:%M:%S", time.localtime(entry.get("ended", 0))),
        kind=entry.get("kind", ""),
        color=entry.get("color", ""),
        version=entry.get("label") or entry.get("version", ""),
        outcome=outcome,
        succeeded=outcome == "success",
        took=f"{entry.get('duration_s', 0):.1f}s",
        reason=entry.get("reason", ""),
    )
