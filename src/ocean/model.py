"""Plain data shared by procedures, runtimes and both front ends."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class StepStatus(StrEnum):
    OK = "ok"
    SKIPPED = "skipped"
    FAILED = "failed"
    INFO = "info"
    # Neither passed nor failed: what was measured cannot be judged (a load test whose
    # load generator was the bottleneck: ocean/loadtest/generator.py).
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Step:
    """One thing a procedure did (or found), as it happened.

    Procedures yield these; ``tasks.py`` prints them and the console posts them.
    """

    name: str
    status: StepStatus = StepStatus.OK
    detail: str = ""
    seconds: float | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        return out


@dataclass(frozen=True)
class ServiceStatus:
    """What the runtime knows about one service right now."""

    name: str
    state: str  # running, stopped, starting, backoff, fatal, absent
    pid: int | None
    port: int | None
    healthy: bool
    health_detail: str
    restarts: int
    uptime_seconds: float | None
    url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TargetHealth:
    """One Prometheus scrape target, as /api/v1/targets reports it."""

    job: str
    instance: str
    health: str  # up, down, unknown
    last_scrape: str
    last_error: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Finding:
    """One problem a validation check found (``ocean.validate``).

    ``file`` is relative to the checked repository root ("" when none applies);
    ``line`` is 1-based, None when unknown. ``severity`` is ``error`` or ``warning``.
    """

    check: str
    kind: str
    severity: str
    file: str
    line: int | None
    message: str
    hint: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def where(self) -> str:
        if not self.file:
            return "-"
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Build:
    """One build of the shop: what to run for a color."""

    id: str
    version: str  # what the user asked for (a ref, a path), shown in status and history
    label: str  # the version the shop reports: SHOP_VERSION, the build_info metric
    python: str  # the build's interpreter ("" for the checkout's own, the toolkit venv)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)
