"""Prometheus' config by meaning (issue 21): what `promtool check config` accepts but
leaves the stack blind. Both checks read monitoring/prometheus/prometheus.yml rendered
as the local runtime renders it (``rendering.local_context``):

- prometheus-sections  a scrape job, a rule file pattern that matches rule files, and
                       an Alertmanager with a target; an empty (null) entry in one of
                       those lists (a ``-`` with nothing after it) is a finding of its own.
- scrape-jobs          every target of every job reaches a service of
                       src/ocean/services.py by its port-plan port: static targets,
                       file_sd targets, and the exporter a relabel writes into
                       ``__address__``. One bad target is a finding even when its job has
                       a good one (a job's other target would otherwise hide it).

The checks walk the YAML node tree (``yaml.compose``), not parsed dicts: every value
keeps its line, and a document of any shape (a list, a null entry, a number where a list
belongs) is something to report, never an AttributeError. Findings name the template
and its line, mapped back from the rendered file by ``template_lines.TemplateLines``.
"""

from __future__ import annotations

import glob
import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from ocean.model import Finding
from ocean.render import render
from ocean.validate import yaml_nodes
from ocean.validate.core import check, program
from ocean.validate.rendering import local_context
from ocean.validate.template_lines import TemplateLines
from ocean.validate.tools import missing_package, render_into, render_template, run_tool
from ocean.validate.yaml_nodes import entries, get, is_null, line_of, text, value

PROMETHEUS_TEMPLATE = "monitoring/prometheus/prometheus.yml"
SERVICES_FILE = "src/ocean/services.py"
_PORT = re.compile(r":(\d+)(?:/|$)")
# A scrape job's lists whose empty entries are findings of scrape-jobs.
JOB_LISTS = ("static_configs", "file_sd_configs", "relabel_configs", "metric_relabel_configs")


@dataclass(frozen=True)
class Problem:
    line: int | None  # 1-based, in the rendered file
    message: str
    hint: str


# ---------------------------------------------------------------------------------------
# Rendering, and rendered lines back to template lines


@dataclass
class RenderedConfig:
    node: yaml.Node | None  # the document's node tree (None: empty document)
    lines: TemplateLines  # rendered line → template line

    def template_line(self, rendered_line: int | None) -> int | None:
        return self.lines.line_or_rendered(rendered_line)


def _finding(name: str, kind: str, line: int | None, message: str, hint: str) -> Finding:
    return Finding(name, kind, "error", PROMETHEUS_TEMPLATE, line, message, hint)


def load_rendered(root: Path, state: Path, name: str, kind: str) -> RenderedConfig | Finding:
    """prometheus.yml rendered into ``state`` and composed, or the finding saying why not.

    Any exception of the rendering is the template's (a Jinja error, a filter given the
    wrong type): it becomes a finding. yaml's errors likewise (prometheus-config names
    them too, with promtool's words).
    """
    template = (root / PROMETHEUS_TEMPLATE).read_text(errors="replace")
    try:
        text = render(PROMETHEUS_TEMPLATE, local_context(root, state), root=root)
    except Exception as exc:  # the template's error, whatever Jinja raised
        line = getattr(exc, "lineno", None)
        return _finding(
            name,
            kind,
            line if isinstance(line, int) else None,
            f"template does not render: {type(exc).__name__}: {exc}"[:500],
            "fix the Jinja template",
        )
    lines = TemplateLines(template, text)
    try:
        node = yaml_nodes.compose(text)
    except (yaml.YAMLError, RecursionError) as exc:
        mark = getattr(exc, "problem_mark", None)
        rendered_line = mark.line + 1 if mark is not None else None
        return _finding(
            name,
            kind,
            lines.line_or_rendered(rendered_line),
            f"invalid YAML: {exc}".splitlines()[0][:500],
            "fix the YAML syntax",
        )
    return RenderedConfig(node, lines)


# ---------------------------------------------------------------------------------------
# prometheus-sections


def _list_section(
    doc: yaml.MappingNode, path: tuple[str, ...], what: str, missing: str, hint: str
) -> tuple[list[yaml.Node], list[Problem]]:
    """The non-null entries of the list at ``path``, and the problems of its shape."""
    parent: yaml.Node | None = doc
    for key in path[:-1]:
        parent = value(parent, key)
    found = get(parent, path[-1])
    name = ".".join(path)
    if found is None or is_null(found[1]):
        line = line_of(found[0]) if found else None
        return [], [Problem(line, f"no {name}: {missing}", hint)]
    key_node, node = found
    if not isinstance(node, yaml.SequenceNode):
        return [], [Problem(line_of(key_node), f"{name} is not a list", f"{name}: [ … ]")]
    good, problems = [], []
    for index, entry in enumerate(node.value, 1):
        if is_null(entry):
            problems.append(
                Problem(
                    line_of(entry),
                    f"{name} entry #{index} is empty (null): a `-` with nothing after it",
                    f"complete the {what} or delete the empty `-`",
                )
            )
        else:
            good.append(entry)
    if not good and not problems:
        problems.append(Problem(line_of(key_node), f"no {name}: {missing}", hint))
    return good, problems


def section_problems(node: yaml.Node | None) -> list[Problem]:
    """What prometheus.yml lacks: a scrape job, a rule file pattern, an Alertmanager with
    a target (the patterns' files are ``rule_pattern_problems``'s)."""
    if is_null(node):
        return [Problem(1, "prometheus.yml is empty", "restore the shipped prometheus.yml")]
    if not isinstance(node, yaml.MappingNode):
        return [
            Problem(
                line_of(node),
                "prometheus.yml is not a mapping of sections (global, rule_files, "
                "alerting, scrape_configs)",
                "restore the shipped prometheus.yml",
            )
        ]
    problems: list[Problem] = []
    jobs, found = _list_section(
        node,
        ("scrape_configs",),
        "scrape job",
        "Prometheus scrapes nothing: every metric, alert and dashboard is empty",
        "add a job per service (job_name, static_configs.targets)",
    )
    problems += found
    for index, job in enumerate(jobs, 1):
        if not isinstance(job, yaml.MappingNode):
            problems.append(
                Problem(
                    line_of(job),
                    f"scrape_configs entry #{index} is not a mapping",
                    "a job is job_name: …, static_configs: [{targets: […]}]",
                )
            )
    _, found = _list_section(
        node,
        ("rule_files",),
        "rule file pattern",
        "no alerting or recording rule is evaluated",
        'rule_files: ["{{ paths.rules }}/*.rules.yml"]',
    )
    problems += found
    if get(node, "alerting") is None or is_null(value(node, "alerting")):
        found_line = get(node, "alerting")
        problems.append(
            Problem(
                line_of(found_line[0]) if found_line else None,
                "no alerting section: alerts fire but reach no Alertmanager",
                "alerting: {alertmanagers: [{static_configs: [{targets: [alertmanager]}]}]}",
            )
        )
        return problems
    managers, found = _list_section(
        node,
        ("alerting", "alertmanagers"),
        "Alertmanager",
        "alerts fire but reach no Alertmanager",
        'alertmanagers: [{static_configs: [{targets: ["{{ hosts.alertmanager }}:'
        '{{ ports.alertmanager }}"]}]}]',
    )
    problems += found
    if managers and not any(_alertmanager_has_target(m) for m in managers):
        problems.append(
            Problem(
                line_of(managers[0]),
                "no Alertmanager has a target: alerts fire but reach no Alertmanager",
                'static_configs: [{targets: ["{{ hosts.alertmanager }}:'
                '{{ ports.alertmanager }}"]}]',
            )
        )
    return problems


def _alertmanager_has_target(manager: yaml.Node) -> bool:
    if not isinstance(manager, yaml.MappingNode):
        return False
    if any(
        isinstance(key, yaml.ScalarNode) and str(key.value).endswith("_sd_configs")
        for key, _ in manager.value
    ):
        return True  # service discovery: its targets are known only at run time
    return any(
        text(target)
        for static in entries(value(manager, "static_configs"))
        for target in entries(value(static, "targets"))
    )


def rule_pattern_problems(node: yaml.Node | None) -> list[Problem]:
    """Each rule_files pattern (absolute once rendered) that matches no file."""
    problems = []
    for entry in entries(value(node, "rule_files")):
        pattern = text(entry)
        if pattern is None:
            if not is_null(entry):  # a null entry is section_problems'
                problems.append(
                    Problem(line_of(entry), "a rule_files entry is not a path", "a glob")
                )
            continue
        if Path(pattern).is_absolute() and not glob.glob(pattern):
            problems.append(
                Problem(
                    line_of(entry),
                    f"rule_files pattern {pattern!r} matches no file: no rule is evaluated",
                    "point it at monitoring/rules/*.rules.yml ({{ paths.rules }})",
                )
            )
    return problems


@check(kind="prometheus", name="prometheus-sections", inputs=(PROMETHEUS_TEMPLATE,))
def prometheus_sections(root: Path) -> list[Finding]:
    """prometheus.yml has a scrape job, rule files and an Alertmanager (issue 21 class 4),
    and no empty entry in those lists (class 8)."""
    name, kind = "prometheus-sections", "prometheus"
    with tempfile.TemporaryDirectory(prefix="ocean-validate-") as tmp:
        config = load_rendered(root, Path(tmp), name, kind)
        if isinstance(config, Finding):
            return [config]
        problems = section_problems(config.node) + rule_pattern_problems(config.node)
    return [
        _finding(name, kind, config.template_line(p.line) or 1, p.message, p.hint) for p in problems
    ]


# ---------------------------------------------------------------------------------------
# scrape-jobs


@dataclass(frozen=True)
class Target:
    address: str
    line: int  # rendered
    how: str  # "target", "file_sd target", "relabelled __address__"


def job_targets(job: yaml.MappingNode) -> Iterator[Target]:
    """Every address a scrape job names: static targets, the targets of its file_sd
    files (read as Prometheus would, JSON), and a relabelled ``__address__``."""
    for static in entries(value(job, "static_configs")):
        for target in entries(value(static, "targets")):
            if text(target) is not None:
                yield Target(text(target) or "", line_of(target), "target")
    for sd in entries(value(job, "file_sd_configs")):
        for pattern_node in entries(value(sd, "files")):
            pattern = text(pattern_node)
            if pattern is None or not Path(pattern).is_absolute():
                continue
            for file in sorted(glob.glob(pattern)):
                for address in _file_sd_addresses(Path(file)):
                    yield Target(address, line_of(pattern_node), f"file_sd target ({file})")
    for relabel in entries(value(job, "relabel_configs")):
        replacement = value(relabel, "replacement")
        if text(value(relabel, "target_label")) == "__address__" and text(replacement):
            assert replacement is not None  # nosec B101  # narrows a type for the checker only
            yield Target(text(replacement) or "", line_of(replacement), "relabelled __address__")


def _file_sd_addresses(path: Path) -> list[str]:
    try:
        groups = json.loads(path.read_text())
    except (OSError, ValueError):
        return []  # the runtime writes these files; Prometheus reports a bad one
    if not isinstance(groups, list):
        return []
    return [
        str(target)
        for group in groups
        if isinstance(group, dict) and isinstance(group.get("targets"), list)
        for target in group["targets"]
    ]


def service_ports() -> dict[int, str]:
    """Port → service, on the port plan the validation renders with."""
    from ocean.config import DEFAULT_PORT_BASE, PortPlan
    from ocean.services import SERVICES

    plan = PortPlan(DEFAULT_PORT_BASE)
    # A service's port is its port-plan entry (its name, or the one it names).
    return {plan[service.port_name]: service.name for service in SERVICES}


def target_problems(node: yaml.Node | None, ports: dict[int, str]) -> list[Problem]:
    """Each scrape job with no target, and each target that reaches no service."""
    problems = []
    for index, job in enumerate(entries(value(node, "scrape_configs")), 1):
        if not isinstance(job, yaml.MappingNode):
            continue  # a null or odd entry: prometheus-sections reports it
        name = text(value(job, "job_name")) or f"#{index}"
        for key in JOB_LISTS:
            for number, entry in enumerate(entries(value(job, key)), 1):
                if is_null(entry):
                    problems.append(
                        Problem(
                            line_of(entry),
                            f"scrape job {name!r}: {key} entry #{number} is empty (null): "
                            "a `-` with nothing after it",
                            "complete it or delete the empty `-`",
                        )
                    )
        targets = list(job_targets(job))
        if not targets:
            problems.append(
                Problem(
                    line_of(job),
                    f"scrape job {name!r} has no target",
                    "give it static_configs.targets: a service's port ({{ ports['…'] }})",
                )
            )
        for target in targets:
            port = _PORT.search(target.address)
            if port and int(port.group(1)) in ports:
                continue
            why = f"port {port.group(1)} is no service's" if port else "it names no port"
            problems.append(
                Problem(
                    target.line,
                    f"scrape job {name!r}: {target.how} {target.address!r} reaches no "
                    f"service of {SERVICES_FILE} ({why})",
                    "point it at a service's port ({{ hosts['…'] }}:{{ ports['…'] }}), "
                    "or add the service",
                )
            )
    return problems


@check(kind="cross-file", name="scrape-jobs", inputs=(PROMETHEUS_TEMPLATE,))
def scrape_jobs(root: Path) -> list[Finding]:
    """Every target of every Prometheus scrape job reaches a service (issue 21 class 5)."""
    name, kind = "scrape-jobs", "cross-file"
    with tempfile.TemporaryDirectory(prefix="ocean-validate-") as tmp:
        config = load_rendered(root, Path(tmp), name, kind)
        if isinstance(config, Finding):
            return [config]
        problems = target_problems(config.node, service_ports())
    return [_finding(name, kind, config.template_line(p.line), p.message, p.hint) for p in problems]


# ---------------------------------------------------------------------------------------
# `promtool check config` on the rendered file


PROMETHEUS_TEMPLATE = "monitoring/prometheus/prometheus.yml"
_PROMTOOL_LINE = re.compile(r"line (\d+)")


@check(kind="prometheus", name="prometheus-config", inputs=(PROMETHEUS_TEMPLATE,))
def prometheus_config(root: Path) -> list[Finding]:
    """Render prometheus.yml and run `promtool check config` on it (rule files included)."""
    promtool = program("promtool")
    if promtool is None:
        return missing_package("promtool", "prometheus-config", "prometheus", "prometheus")
    with tempfile.TemporaryDirectory(prefix="ocean-validate-") as tmp:
        path, found = render_into(
            root,
            Path(tmp),
            PROMETHEUS_TEMPLATE,
            "prometheus.yml",
            "prometheus-config",
            "prometheus",
        )
        if path is None:
            return found
        result = run_tool([promtool, "check", "config", str(path)])
        if result.returncode == 0:
            return []
        output = (result.stdout + result.stderr).replace(tmp + "/", "")
        match = _PROMTOOL_LINE.search(output)
        message = " ".join(line.strip() for line in output.splitlines() if line.strip())
        message = message or f"promtool check config exited {result.returncode}, saying nothing"
        return [
            Finding(
                "prometheus-config",
                "prometheus",
                "error",
                PROMETHEUS_TEMPLATE,
                int(match.group(1)) or None if match else None,
                message[:500],
                "line numbers are those of the rendered file; "
                "promtool check config shows the rendered error",
            )
        ]


def rendered_prometheus(root: Path) -> tuple[dict, Path]:
    """(parsed rendered prometheus.yml, the targets dir) — caller removes nothing: tmp."""
    tmp = Path(tempfile.mkdtemp(prefix="ocean-validate-"))
    ctx = local_context(root, tmp)
    return yaml_nodes.load(render_template(root, PROMETHEUS_TEMPLATE, ctx)), tmp
