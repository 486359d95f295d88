"""Validation of Alertmanager's config: `amtool check-config` on the rendered file, and
its meaning (receivers, routes, inhibitions) that amtool accepts but that would not
work (``alertmanager_problems``, also used by the live alerting tests)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from ocean.model import Finding
from ocean.validate import yaml_nodes
from ocean.validate.alertmanager_shape import shape_problems
from ocean.validate.amtool_output import amtool_reason, reason_line
from ocean.validate.core import check, program
from ocean.validate.template_lines import TemplateLines, node_line
from ocean.validate.tools import line_of, missing_package, render_into, run_tool, yaml_error

ALERTMANAGER_TEMPLATE = "monitoring/alertmanager/alertmanager.yml"


def routes(route: dict) -> Iterator[dict]:
    yield route
    for child in route.get("routes") or []:
        yield from routes(child)


def alertmanager_problems(config: dict) -> list[tuple[str, str, str]]:
    """Semantic problems of a parsed Alertmanager config: (what, message, hint)."""
    out = []
    receivers = {r.get("name") for r in config.get("receivers") or []}
    used = [r["receiver"] for r in routes(config.get("route") or {}) if "receiver" in r]
    for name in used:
        if name not in receivers:
            out.append(
                (
                    f"receiver: {name}",
                    f"a route names receiver {name!r}, which is not defined",
                    "add it under receivers: or fix the route",
                )
            )
    for name in sorted(receivers - set(used), key=str):
        out.append(
            (
                f"name: {name}",
                f"receiver {name!r} is used by no route",
                "route something to it or delete it",
            )
        )
    for index, rule in enumerate(config.get("inhibit_rules") or []):
        if not rule.get("equal"):
            out.append(
                (
                    "inhibit_rules",
                    f"inhibit rule #{index + 1} has no `equal`: it would "
                    "inhibit across every instance",
                    "name the labels in equal: [...]",
                )
            )
    return out


@check(kind="alertmanager", name="alertmanager-config", inputs=(ALERTMANAGER_TEMPLATE,))
def alertmanager_config(root: Path) -> list[Finding]:
    """Render alertmanager.yml, `amtool check-config` it, then the routing semantics."""
    amtool = program("amtool")
    with tempfile.TemporaryDirectory(prefix="ocean-validate-") as tmp:
        path, found = render_into(
            root,
            Path(tmp),
            ALERTMANAGER_TEMPLATE,
            "alertmanager.yml",
            "alertmanager-config",
            "alertmanager",
        )
        if path is None:
            return found
        out = []
        amtool_refused = False
        if amtool is None:
            out += missing_package(
                "amtool", "alertmanager-config", "alertmanager", "prometheus-alertmanager"
            )
        else:
            result = run_tool([amtool, "check-config", str(path)])
            if result.returncode != 0:
                out.append(_amtool_finding(root, path, result.stdout + result.stderr, tmp))
                amtool_refused = True
        rendered_text = path.read_text()
        try:
            config = yaml_nodes.load(rendered_text)
        except yaml.YAMLError as exc:
            return [
                *out,
                yaml_error(
                    "alertmanager-config", "alertmanager", root, root / ALERTMANAGER_TEMPLATE, exc
                ),
            ]
    template = root / ALERTMANAGER_TEMPLATE
    # A list, a scalar, `routes: 5` … parse as YAML: findings, never a crash. amtool's
    # reason (when it ran) already says what is wrong first; these say where each is.
    shape = shape_problems(config)
    if shape:
        if amtool_refused:
            return out
        lines = TemplateLines(template.read_text(), rendered_text)
        return out + [
            Finding(
                "alertmanager-config",
                "alertmanager",
                "error",
                ALERTMANAGER_TEMPLATE,
                lines.line(node_line(rendered_text, problem.path)),
                problem.message,
                problem.hint,
            )
            for problem in shape
        ]
    for needle, message, hint in alertmanager_problems(config):
        out.append(
            Finding(
                "alertmanager-routes",
                "alertmanager",
                "error",
                ALERTMANAGER_TEMPLATE,
                line_of(template, needle),
                message,
                hint,
            )
        )
    return out


def _amtool_finding(root: Path, rendered: Path, output: str, tmp: str) -> Finding:
    """amtool's reason verbatim (ocean.validate.amtool_output), at the template's line."""
    output = output.replace(tmp + "/", "")
    reason = amtool_reason(output)
    template = root / ALERTMANAGER_TEMPLATE
    text = rendered.read_text()
    line = reason_line(reason, text, TemplateLines(template.read_text(), text)) if reason else None
    return Finding(
        "alertmanager-config",
        "alertmanager",
        "error",
        ALERTMANAGER_TEMPLATE,
        line,
        f"amtool check-config: {reason}"[:500]
        if reason
        else output.strip()[:500] or "amtool check-config refused it, saying nothing",
        "fix what amtool names; `./ocean validate --only alertmanager` checks again",
    )
