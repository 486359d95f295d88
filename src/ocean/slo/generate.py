"""Every generated file at once: ``generate``, ``stale`` (`python -m ocean.slo
check`) and ``write`` (`python -m ocean.slo generate`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ocean.config import REPO_ROOT
from ocean.slo.dashboard import dashboard, k6_thresholds
from ocean.slo.model import HEADER, SLO_FILE, TESTS_DIR, SLOError, SLOs, load
from ocean.slo.rule_tests import tests
from ocean.slo.rules import rules, yaml_doc
from ocean.slo.runbooks import runbooks


def rule_files(slos: SLOs, docs: tuple[dict, dict] | None = None) -> dict[str, str]:
    """The generated Prometheus rule files: name in monitoring/rules → content."""
    shop, slo_doc = docs or rules(slos)
    comment = "Recording rules for the shop's SLIs (names published in monitoring/slo.yaml)."
    return {
        "shop.rules.yml": yaml_doc(shop, comment),
        "slo.rules.yml": yaml_doc(
            slo_doc, "SLI error ratios per window and the SLO alerts (runbooks: docs/runbooks/)."
        ),
    }


def generate(slos: SLOs) -> dict[str, str]:
    """Every generated file: repo-relative path → content."""
    docs = rules(slos)
    files = {
        **{f"monitoring/rules/{name}": text for name, text in rule_files(slos, docs).items()},
        "monitoring/dashboards/slo.json": json.dumps(dashboard(slos), indent=2) + "\n",
        "testing/k6/thresholds.json": json.dumps(k6_thresholds(slos), indent=2) + "\n",
    }
    for rel, doc in tests(slos, docs).items():
        files[rel] = yaml_doc(doc, f"promtool test rules {rel} (paths relative to its directory).")
    files.update(runbooks(slos, docs))
    return files


def _orphans(root: Path, files: dict[str, str]) -> list[str]:
    """Runbooks and promtool test files generated earlier for alerts that no longer exist."""
    found = []
    candidates = [*(root / "docs/runbooks").glob("*.md"), *(root / TESTS_DIR).glob("*.yml")]
    for path in sorted(candidates):
        rel = path.relative_to(root).as_posix()
        if rel not in files and HEADER in path.read_text():
            found.append(rel)
    return found


def stale(root: Path = REPO_ROOT, slos: SLOs | None = None) -> list[str]:
    """Generated files that differ from what slo.yaml generates now (with the reason)."""
    files = generate(slos or load(root=root))
    out = []
    for rel, text in files.items():
        path = root / rel
        if not path.exists():
            out.append(f"{rel} (missing)")
        elif path.read_text() != text:
            out.append(f"{rel} (out of date)")
    out += [f"{rel} (no longer generated: delete it)" for rel in _orphans(root, files)]
    return out


def write(root: Path = REPO_ROOT, slos: SLOs | None = None) -> list[str]:
    """Write every generated file; return the ones that changed."""
    files = generate(slos or load(root=root))
    changed = []
    for rel, text in files.items():
        path = root / rel
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(rel)
    return changed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in (["generate"], ["check"]):
        print("usage: python -m ocean.slo generate|check", file=sys.stderr)
        return 2
    try:
        if args == ["generate"]:
            for rel in write():
                print(f"wrote {rel}")
            return 0
        problems = stale()
    except SLOError as exc:
        print(exc, file=sys.stderr)
        return 1
    for rel in problems:
        print(f"stale: {rel}", file=sys.stderr)
    if problems:
        print("run: python -m ocean.slo generate", file=sys.stderr)
        return 1
    print(f"generated files are up to date with {SLO_FILE}")
    return 0
