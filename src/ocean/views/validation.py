"""A validation run as `invoke validate` and the console's Validate screen show it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocean import validate
from ocean.model import Finding


@dataclass(frozen=True)
class Validation:
    findings: list[Finding]  # errors first (validate.run's order)
    seconds: float  # how long the checks took

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return len(self.findings) - self.errors

    def failed(self, strict: bool = False) -> bool:
        """An error; or, ``strict``, a warning too (`validate --strict`)."""
        return self.errors > 0 or (strict and self.warnings > 0)

    def summary(self) -> str:
        return f"{self.errors} error(s), {self.warnings} warning(s) in {self.seconds:.1f}s"

    def as_dict(self, strict: bool = False) -> dict[str, Any]:
        """What `validate --json` prints."""
        return {
            "ok": not self.failed(strict),
            "errors": self.errors,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 2),
            "findings": [f.as_dict() for f in self.findings],
        }


def run(root: Path, kinds: set[str] | None = None) -> Validation:
    """Every check of ``kinds`` (all when None) against ``root``, timed; an unknown kind
    is validate.run's ValueError."""
    started = time.monotonic()
    findings = validate.run(root, kinds)
    return Validation(findings, time.monotonic() - started)


def tone(finding: Finding) -> str:
    return "bad" if finding.severity == "error" else "warn"
