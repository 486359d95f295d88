"""Dependency audit (issue 25, Medium 13): pip-audit of the toolkit's environment, the
shop's requirements and the shop image's requirement set, failing loudly when the
vulnerability service could not check a package.

pip-audit alone lies on a machine that cannot reach its service: every package comes
back as a "skipped" dependency and it still prints "No known vulnerabilities found" and
exits 0. Here any package not checked makes the audit *inconclusive* (exit 2, one line);
a known vulnerability fails it (exit 1, one line per vulnerability); only a run where
the service answered for every package passes.

    python -m ocean.depaudit [--target toolkit,shop,shop-image] [--pip-audit PATH]
                             [--cache-dir DIR] [--json]

CI with network runs it as `nox -s audit` (docs/security.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHOP_PYPROJECT = REPO_ROOT / "stack" / "shop" / "pyproject.toml"

# Our own distributions: not on PyPI, so the service cannot know them; audited by bandit.
FIRST_PARTY = frozenset({"ocean-ops", "ocean-shop", "ocean-inbox"})

# What stack/shop/Dockerfile's build stage adds to the shop's dependencies in /opt/shop,
# which the runtime stage copies whole: `python -m venv` seeds it from the image
# Python's ensurepip (CPython 3.11.x bundles setuptools 65.5.0; pip is upgraded), then
# `pip install --upgrade pip`.
IMAGE_EXTRAS = ("pip", "setuptools==65.5.0")

TARGETS = ("toolkit", "shop", "shop-image")
TIMEOUT_S = 900


@dataclass
class Vuln:
    package: str
    version: str
    id: str
    fix_versions: list[str]


@dataclass
class Report:
    """One pip-audit run, parsed."""

    target: str
    checked: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    vulns: list[Vuln] = field(default_factory=list)
    expected: int = 0  # packages asked for (pinned targets), checked or not
    error: str = ""  # pip-audit produced no report: why

    @property
    def total(self) -> int:
        return max(len(self.checked) + len(self.skipped), self.expected)

    @property
    def unchecked(self) -> int:
        """Skipped, or missing from pip-audit's report although asked for."""
        return self.total - len(self.checked)


def parse(target: str, text: str) -> Report:
    """pip-audit's `-f json` output: {"dependencies": [{"name", "version", "vulns"} or
    {"name", "skip_reason"}], "fixes": [...]}. Raises ValueError on anything else."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        raise ValueError("not pip-audit JSON: no 'dependencies' list")
    report = Report(target)
    for dep in data["dependencies"]:
        name = str(dep["name"])
        if "skip_reason" in dep:
            report.skipped.append((name, str(dep["skip_reason"])))
            continue
        report.checked.append(name)
        for vuln in dep.get("vulns", []):
            report.vulns.append(
                Vuln(name, str(dep["version"]), str(vuln["id"]), list(vuln["fix_versions"]))
            )
    return report


def toolkit_requirements() -> list[str]:
    """The toolkit's environment (this interpreter's), pinned, without our own packages."""
    pins = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").strip()
        key = name.lower().replace("_", "-").replace(".", "-")
        if name and key not in FIRST_PARTY:
            pins[key] = f"{name}=={dist.version}"
    return [pins[key] for key in sorted(pins)]


def shop_requirements() -> list[str]:
    """The shop's dependencies, as its Dockerfile installs them: pyproject's list."""
    with SHOP_PYPROJECT.open("rb") as fh:
        return list(tomllib.load(fh)["project"]["dependencies"])


def requirements(target: str) -> tuple[list[str], list[str]]:
    """(requirement lines, extra pip-audit arguments) for a target."""
    if target == "toolkit":
        # Pinned: checked as they are, no resolution (pip-audit needs no pip for them).
        return toolkit_requirements(), ["--no-deps", "--disable-pip"]
    if target == "shop":
        return shop_requirements(), []  # resolved by pip-audit as a fresh install would
    if target == "shop-image":
        return shop_requirements() + list(IMAGE_EXTRAS), []
    raise ValueError(f"unknown target {target!r} (known: {', '.join(TARGETS)})")


def find_pip_audit(explicit: str | None = None) -> str | None:
    """--pip-audit, else $OCEAN_PIP_AUDIT, else the one beside this Python, else PATH's."""
    if explicit or os.environ.get("OCEAN_PIP_AUDIT"):
        return explicit or os.environ["OCEAN_PIP_AUDIT"]
    beside = Path(sys.executable).parent / "pip-audit"
    return str(beside) if beside.exists() else shutil.which("pip-audit")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:240] if lines else "no output"


def run(target: str, pip_audit: str, cache_dir: str | None = None) -> Report:
    reqs, extra = requirements(target)
    with tempfile.TemporaryDirectory(prefix="ocean-depaudit-") as tmp:
        req_file = Path(tmp) / "requirements.txt"
        req_file.write_text("\n".join(reqs) + "\n")
        argv = [pip_audit, "-r", str(req_file), *extra, "-f", "json"]
        argv += ["--progress-spinner", "off", "--timeout", "15"]
        argv += ["--cache-dir", cache_dir] if cache_dir else []
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Report(target, expected=len(reqs), error=str(exc))
    try:
        report = parse(target, proc.stdout)
    except (ValueError, KeyError, TypeError):
        # No report at all: pip-audit failed before it checked anything (a traceback
        # when the service or the index cannot be reached).
        return Report(target, expected=len(reqs), error=_last_line(proc.stderr))
    report.expected = len(reqs) if target == "toolkit" else 0
    return report


def verdict(reports: list[Report]) -> tuple[int, list[str]]:
    """(exit code, lines): 1 on a known vulnerability, 2 when inconclusive, else 0."""
    lines = []
    vulns = [v for r in reports for v in r.vulns]
    for v in vulns:
        fix = ", ".join(v.fix_versions) or "no fix released"
        lines.append(f"vulnerable: {v.package} {v.version}: {v.id} (fixed in: {fix})")
    total = sum(r.total for r in reports)
    unchecked = sum(r.unchecked for r in reports)
    if unchecked:
        reasons = [r.error for r in reports if r.error]
        reasons += [reason for r in reports for _, reason in r.skipped]
        reason = reasons[0] if reasons else "pip-audit's report left them out"
        lines.append(
            f"dependency audit inconclusive: {unchecked} of {total} packages could not be"
            f" checked (vulnerability service unreachable: {reason})"
        )
    if vulns:
        lines.append(f"dependency audit failed: {len(vulns)} known vulnerabilities")
        return 1, lines
    if unchecked:
        return 2, lines
    lines.append(f"dependency audit: {total} packages checked, no known vulnerabilities")
    return 0, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocean.depaudit", description=__doc__)
    parser.add_argument("--target", default=",".join(TARGETS), help="comma-separated")
    parser.add_argument("--pip-audit", help="the pip-audit executable")
    parser.add_argument("--cache-dir", help="pip-audit's cache (default: pip's)")
    parser.add_argument("--json", action="store_true", help="the reports as JSON")
    args = parser.parse_args(argv)
    targets = [t for t in args.target.split(",") if t]
    unknown = [t for t in targets if t not in TARGETS]
    if not targets or unknown:
        print(f"error: --target: unknown {unknown} (known: {', '.join(TARGETS)})", file=sys.stderr)
        return 2
    pip_audit = find_pip_audit(args.pip_audit)
    if not pip_audit:
        print("error: pip-audit is not installed (pip install pip-audit)", file=sys.stderr)
        return 2
    reports = [run(t, pip_audit, args.cache_dir) for t in targets]
    code, lines = verdict(reports)
    if args.json:
        out = {"exit": code, "lines": lines, "reports": [r.__dict__ for r in reports]}
        print(json.dumps(out, default=lambda o: o.__dict__, indent=2))
    for line in lines:
        print(line, file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
