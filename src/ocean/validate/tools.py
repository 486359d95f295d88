"""What the monitoring checks share: running a checker (promtool, amtool) bounded in
time, the findings for a missing tool or broken YAML, rule line numbers, and rendering
a template with the stack spec's context into a temp dir."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import yaml

from ocean.model import Finding
from ocean.render import render
from ocean.validate import yaml_nodes
from ocean.validate.core import missing_tool, scaled
from ocean.validate.rendering import local_context

TOOL_TIMEOUT = 60

# ---------------------------------------------------------------------------------------
# Small helpers


def rel_path(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def missing_package(name: str, check_name: str, kind: str, package: str) -> list[Finding]:
    return [missing_tool(check_name, kind, name, f"apt-get install -y {package}")]


def run_tool(
    args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **env} if env else None,
        timeout=scaled(TOOL_TIMEOUT),
        check=False,
    )


# `promtool test rules` allocates for every evaluation: a lazier Go GC (GOGC=400) saves
# ≈ 20 % of its CPU for ≤ 210 MB RSS a file, and one thread each (GOMAXPROCS=1) suits
# files that already run in parallel, one process a core.
PROMTOOL_TEST_ENV = {"GOGC": "400", "GOMAXPROCS": "1"}


def yaml_error(check_name: str, kind: str, root: Path, path: Path, exc: Exception) -> Finding:
    mark = getattr(exc, "problem_mark", None)
    return Finding(
        check_name,
        kind,
        "error",
        rel_path(root, path),
        mark.line + 1 if mark else None,
        f"invalid YAML: {exc}".splitlines()[0],
        "fix the YAML syntax",
    )


def rule_lines(path: Path) -> dict[tuple[int, int], int]:
    """(group index, rule index) → the 1-based line of that rule (yaml node marks)."""
    out: dict[tuple[int, int], int] = {}
    node = yaml_nodes.compose(path.read_text())
    if not isinstance(node, yaml.MappingNode):
        return out
    for key, value in node.value:
        if key.value != "groups" or not isinstance(value, yaml.SequenceNode):
            continue
        for g, group in enumerate(value.value):
            if not isinstance(group, yaml.MappingNode):
                continue
            for gkey, gvalue in group.value:
                if gkey.value == "rules" and isinstance(gvalue, yaml.SequenceNode):
                    for r, rule in enumerate(gvalue.value):
                        out[(g, r)] = rule.start_mark.line + 1
    return out


# ---------------------------------------------------------------------------------------
# Rendering with the local runtime's Jinja context, into a temp dir


def render_template(root: Path, template: str, context: dict[str, Any]) -> str:
    return render(template, context, root=root)


def render_into(
    root: Path, state: Path, template: str, out_name: str, check_name: str, kind: str
) -> tuple[Path | None, list[Finding]]:
    try:
        text = render_template(root, template, local_context(root, state))
    except jinja2.TemplateError as exc:
        line = getattr(exc, "lineno", None)
        return None, [
            Finding(
                check_name,
                kind,
                "error",
                template,
                line,
                f"template does not render: {exc}",
                "fix the Jinja template",
            )
        ]
    out = state / out_name
    out.write_text(text)
    return out, []


def line_of(path: Path, needle: str) -> int | None:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number
    return None
