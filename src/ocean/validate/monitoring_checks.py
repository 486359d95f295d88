"""Validation checks of monitoring/: Prometheus, rules, Alertmanager, dashboards, and the
cross-file links (runbooks, generated SLO files). prometheus.yml's meaning (sections,
scrape jobs ↔ services) is ``prometheus_checks``'.

Also the shared helpers the unit and integration tests use (PromQL tokeniser, dashboard
walking, Alertmanager semantics): the tests import them from here.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from ocean.model import Finding
from ocean.render import render
from ocean.validate import rule_test_batches, yaml_nodes
from ocean.validate.alertmanager_shape import shape_problems
from ocean.validate.amtool_output import amtool_reason, reason_line
from ocean.validate.core import check, missing_tool, program, scaled
from ocean.validate.rendering import local_context
from ocean.validate.selectors import KEYWORDS, LABEL_LIST_KEYWORDS
from ocean.validate.template_lines import TemplateLines, node_line

TOOL_TIMEOUT = 60

# ---------------------------------------------------------------------------------------
# Small helpers


def _rel(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _missing_tool(name: str, check_name: str, kind: str, package: str) -> list[Finding]:
    return [missing_tool(check_name, kind, name, f"apt-get install -y {package}")]


def _run(
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


def _yaml_error(check_name: str, kind: str, root: Path, path: Path, exc: Exception) -> Finding:
    mark = getattr(exc, "problem_mark", None)
    return Finding(
        check_name,
        kind,
        "error",
        _rel(root, path),
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


def _render_into(
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


# ---------------------------------------------------------------------------------------
# Prometheus

PROMETHEUS_TEMPLATE = "monitoring/prometheus/prometheus.yml"
_PROMTOOL_LINE = re.compile(r"line (\d+)")


@check(kind="prometheus", name="prometheus-config", inputs=(PROMETHEUS_TEMPLATE,))
def prometheus_config(root: Path) -> list[Finding]:
    """Render prometheus.yml and run `promtool check config` on it (rule files included)."""
    promtool = program("promtool")
    if promtool is None:
        return _missing_tool("promtool", "prometheus-config", "prometheus", "prometheus")
    with tempfile.TemporaryDirectory(prefix="ocean-validate-") as tmp:
        path, found = _render_into(
            root,
            Path(tmp),
            PROMETHEUS_TEMPLATE,
            "prometheus.yml",
            "prometheus-config",
            "prometheus",
        )
        if path is None:
            return found
        result = _run([promtool, "check", "config", str(path)])
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


def _line_of(path: Path, needle: str) -> int | None:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number
    return None


# ---------------------------------------------------------------------------------------
# Rules

_RULE_ERROR = re.compile(r"^(?P<file>\S+?): (?:(?P<line>\d+):\d+: )?(?P<msg>.*)$")
_RULE_INDEX = re.compile(r'group "(?P<group>[^"]*)", rule (?P<rule>\d+)')


def rule_files(root: Path) -> list[Path]:
    return sorted((root / "monitoring" / "rules").glob("*.yml"))


def rule_test_files(root: Path) -> list[Path]:
    return sorted((root / "monitoring" / "rules" / "tests").glob("*.yml"))


@dataclass(frozen=True)
class RuleProblem:
    """One thing `promtool check rules` says about a rule file."""

    line: int | None
    message: str
    severity: str = "error"
    hint: str = ""


# promtool's lint findings (it prints them and exits 0). The policy: a duplicate rule is
# an error, two rules writing the same series (same name, same labels) leave its value to
# whichever ran last and notify twice for one alert; a lint this promtool does not have
# yet (a later one may add more) is a warning until it is judged here.
LINT_ERRORS = ("duplicate rule",)
_LINT_HEADER = re.compile(r"^lint error (?P<what>.*)$")


def promtool_rule_errors(promtool: str, path: Path) -> list[tuple[int | None, str]]:
    """promtool check rules on one file: [(line or None, message)] of its errors, []
    when it passes (lint warnings aside)."""
    return [
        (p.line, p.message) for p in promtool_rule_problems(promtool, path) if p.severity == "error"
    ]


def promtool_rule_problems(promtool: str, path: Path) -> list[RuleProblem]:
    """promtool check rules on one file: its errors and lint findings."""
    result = _run([promtool, "check", "rules", str(path)])
    return rule_output_problems(path, result.returncode, result.stdout + result.stderr)


def rule_output_problems(path: Path, returncode: int, output: str) -> list[RuleProblem]:
    """What promtool's output says about ``path`` (also when it exited 0: its lint)."""
    if returncode == 0:
        return lint_problems(path, output)
    out: list[RuleProblem] = []
    lines: dict[tuple[int, int], int] = {}
    groups: list[object] = []
    with contextlib.suppress(Exception):  # the line is a nicety: the file may not parse
        lines = rule_lines(path)
        groups = [g.get("name") for g in (yaml_nodes.load(path.read_text()) or {}).get("groups")]
    for raw in output.splitlines():
        raw = raw.strip()
        if not raw or raw.startswith(("Checking ", "FAILED", "SUCCESS")):
            continue
        match = _RULE_ERROR.match(raw)
        line: int | None = None
        message = raw
        if match and match.group("file").rstrip(":") == str(path):
            message = match.group("msg")
            line = int(match.group("line")) if match.group("line") else None
            index = _RULE_INDEX.search(message)
            if index and index.group("group") in groups:
                key = (groups.index(index.group("group")), int(index.group("rule")) - 1)
                line = lines.get(key, line)
        out.append(RuleProblem(line, message))
    return out or [RuleProblem(None, output.strip()[:500] or f"promtool exited {returncode}")]


def rule_definitions(path: Path) -> list[tuple[str, dict[str, str], int]]:
    """(record or alert name, its labels, its line) of every rule of a rule file, []
    when it does not parse."""
    try:
        node = yaml_nodes.compose(path.read_text())
    except (yaml.YAMLError, OSError, ValueError, RecursionError):
        return []
    out = []
    for group in yaml_nodes.entries(yaml_nodes.value(node, "groups")):
        for rule in yaml_nodes.entries(yaml_nodes.value(group, "rules")):
            name = yaml_nodes.text(yaml_nodes.value(rule, "record")) or yaml_nodes.text(
                yaml_nodes.value(rule, "alert")
            )
            labels = yaml_nodes.value(rule, "labels")
            pairs = labels.value if isinstance(labels, yaml.MappingNode) else []
            label_map = {
                str(yaml_nodes.text(k)): str(yaml_nodes.text(v) or "")
                for k, v in pairs
                if yaml_nodes.text(k) is not None
            }
            if name:
                out.append((name, label_map, yaml_nodes.line_of(rule)))
    return out


def lint_problems(path: Path, output: str) -> list[RuleProblem]:
    """promtool's lint findings in ``output``, judged by LINT_ERRORS' policy.

    A duplicate-rules report lists ``Metric: NAME`` then ``Label(s):`` and one
    tab-indented ``name: value`` line per label; each duplicate becomes a finding at the
    line of its second definition, naming every line it is defined on.
    """
    out: list[RuleProblem] = []
    lines = output.splitlines()
    for index, raw in enumerate(lines):
        header = _LINT_HEADER.match(raw.strip())
        if header is None:
            continue
        what = header.group("what")
        if "duplicate rule" not in what:
            out.append(
                RuleProblem(
                    None,
                    f"promtool lint: {what}",
                    "error" if any(kind in what for kind in LINT_ERRORS) else "warning",
                    f"promtool check rules --lint=all {path.name}",
                )
            )
            continue
        out += _duplicates(path, lines[index + 1 :])
    return out


def _duplicates(path: Path, report: list[str]) -> list[RuleProblem]:
    duplicates: list[tuple[str, dict[str, str]]] = []
    for raw in report:
        if raw.startswith("Metric: "):
            duplicates.append((raw[len("Metric: ") :].strip(), {}))
        elif raw.startswith("\t") and duplicates and ": " in raw:
            key, _, label_value = raw.strip().partition(": ")
            duplicates[-1][1][key] = label_value
        elif raw.startswith("lint error"):
            break
    defined = rule_definitions(path)
    out = []
    for name, labels in duplicates:
        where = [line for n, ls, line in defined if n == name and ls == labels]
        shown = name + ("{" + ", ".join(f"{k}={v!r}" for k, v in labels.items()) + "}")
        if not labels:
            shown = name
        lines = ", ".join(map(str, where))
        times = f"{len(where)} times (lines {lines})" if where else "more than once"
        out.append(
            RuleProblem(
                where[1] if len(where) > 1 else (where[0] if where else None),
                f"duplicate rule {shown}: defined {times}; promtool lint: it might cause "
                "inconsistency while recording expressions",
                "error",
                "delete the copy, or tell them apart by a label",
            )
        )
    return out


@check(kind="rules", name="promtool-check-rules", inputs=("monitoring/rules/*.yml",))
def check_rules(root: Path) -> list[Finding]:
    """`promtool check rules` on every monitoring/rules/*.yml (PromQL, labels, names) and
    its lint findings (duplicate rules: errors; see LINT_ERRORS)."""
    promtool = program("promtool")
    if promtool is None:
        return _missing_tool("promtool", "promtool-check-rules", "rules", "prometheus")
    files = rule_files(root)
    if files and _all_rules_clean(promtool, files):
        return []
    out = []
    for path in files:
        for problem in promtool_rule_problems(promtool, path):
            out.append(
                Finding(
                    "promtool-check-rules",
                    "rules",
                    problem.severity,
                    _rel(root, path),
                    problem.line,
                    problem.message,
                    problem.hint or f"promtool check rules {_rel(root, path)}",
                )
            )
    return out


# What a clean file's part of `promtool check rules A B …` says, and nothing else.
_CLEAN_RULES_LINE = re.compile(r"^(Checking (?P<file>.+)|  SUCCESS: \d+ rules found)$")


def _all_rules_clean(promtool: str, files: list[Path]) -> bool:
    """Whether one `promtool check rules` over every file says nothing but SUCCESS for
    each: a clean repo then costs one process, not one a file (≈ 0.05 CPU-second each).
    Anything else (an error, a lint finding, a file not named) and the caller checks the
    files one at a time, for findings each attributed to its file."""
    result = _run([promtool, "check", "rules", *map(str, files)])
    if result.returncode != 0:
        return False
    checked = set()
    for line in (result.stdout + result.stderr).splitlines():
        if not line.strip():
            continue
        match = _CLEAN_RULES_LINE.match(line)
        if match is None:
            return False
        if match.group("file"):
            checked.add(match.group("file"))
    return checked == {str(p) for p in files} and result.stdout.count("SUCCESS") == len(files)


def _cache_dir() -> Path | None:
    """Where passing `promtool test rules` runs are remembered (None: no cache).

    OCEAN_VALIDATE_CACHE: a directory, or "0" to disable; default ~/.cache/ocean/validate.
    """
    setting = os.environ.get("OCEAN_VALIDATE_CACHE", "")
    if setting == "0":
        return None
    return Path(setting) if setting else Path.home() / ".cache" / "ocean" / "validate"


def loaded_rule_files(test_file: Path) -> list[Path]:
    """The rule files a promtool test file loads (its ``rule_files``, globs expanded,
    relative to its directory as promtool reads them), sorted.

    A test file that does not say (unparseable, no list) is taken to load every rule
    file beside its directory: the cache key then errs towards running it again.
    """
    every = sorted(test_file.parent.parent.glob("*.yml"))
    try:  # libyaml's loader where there is one: 16 test files a run, some large
        doc = yaml_nodes.load(test_file.read_text())
    except (yaml.YAMLError, OSError, ValueError, RecursionError):
        return every
    patterns = doc.get("rule_files") if isinstance(doc, dict) else None
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        return every
    found: set[Path] = set()
    for pattern in patterns:
        base = Path(pattern) if Path(pattern).is_absolute() else test_file.parent / pattern
        found.update(Path(m) for m in glob.glob(str(base)))
    return sorted(found)


def rule_test_key(promtool: str, path: Path) -> str:
    """Content hash of everything a promtool unit test depends on: the promtool binary,
    the test file and the rule files it loads (``loaded_rule_files``) — not every rule
    file, so editing one rule file reruns only the tests of that file."""
    digest = hashlib.sha256()
    stat = Path(promtool).stat()
    digest.update(f"{promtool}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    digest.update(path.read_bytes())
    for rules in loaded_rule_files(path):
        with contextlib.suppress(OSError):  # a missing one fails the test run itself
            where = os.path.relpath(rules, path.parent)  # the same in a copy of the repo
            digest.update(b"\0" + where.encode() + b"\0" + rules.read_bytes())
    return digest.hexdigest()


def _cached(cache: Path | None, key: str) -> bool:
    return bool(cache) and (cache / key).exists()


def _remember(cache: Path | None, key: str) -> None:
    if cache:
        with contextlib.suppress(OSError):
            cache.mkdir(parents=True, exist_ok=True)
            (cache / key).touch()


def rule_test_findings(root: Path, promtool: str, path: Path) -> list[Finding]:
    """`promtool test rules` on one test file (run from its directory, as it expects).

    A pass is remembered by content hash (``rule_test_key``: the test file, the rule
    files it loads, the promtool binary), so an unchanged test is not re-run, and a rule
    file's edit reruns only the tests that load it: the validation stays within seconds.
    """
    cache = _cache_dir()
    key = rule_test_key(promtool, path) if cache else ""
    if _cached(cache, key):
        return []
    result = _run([promtool, "test", "rules", path.name], cwd=path.parent, env=PROMTOOL_TEST_ENV)
    if result.returncode == 0:
        _remember(cache, key)
        return []
    return _test_failure(root, path, result)


def _test_failure(root: Path, path: Path, result: subprocess.CompletedProcess) -> list[Finding]:
    """The finding of a failed single-file `promtool test rules` run."""
    text = (result.stdout + result.stderr).strip()
    detail = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith(("Unit Testing", "  SUCCESS"))
    ]
    name = re.search(r"alertname: ?(\w+)", text)
    line = _line_of(path, f"alertname: {name.group(1)}") if name else None
    return [
        Finding(
            "promtool-test-rules",
            "rule-tests",
            "error",
            _rel(root, path),
            line,
            " ".join(detail)[:600] or "promtool test rules failed",
            f"cd {_rel(root, path.parent)} && promtool test rules {path.name}",
        )
    ]


@check(
    kind="rule-tests",
    name="promtool-test-rules",
    timeout=120,
    inputs=("monitoring/rules/*.yml", "monitoring/rules/tests/*.yml"),
)
def promtool_test_rules(root: Path) -> list[Finding]:
    """`promtool test rules` on every monitoring/rules/tests/*.yml not passed before
    (``rule_test_key``), a few files per process (``rule_test_batches``: ≈ 0.1 CPU-second
    a process saved), the batches in parallel, one worker per core.

    promtool evaluates every rule of a file at every evaluation_interval up to each
    test's last eval_time, so a scenario that spans hours or days goes into its own file
    with a coarser interval (the *.hours/*.weekly/*.minutes files, the generated
    slo-burn-*.test.yml at ocean.slo.burn_step): no file costs more than ≈ 0.5 s.
    """
    promtool = program("promtool")
    if promtool is None:
        return _missing_tool("promtool", "promtool-test-rules", "rule-tests", "prometheus")
    cache = _cache_dir()
    keys = {path: rule_test_key(promtool, path) if cache else "" for path in rule_test_files(root)}
    todo = [path for path, key in keys.items() if not _cached(cache, key)]
    cores = os.cpu_count() or 2
    batches = rule_test_batches.plan(todo, 2 * cores)
    with ThreadPoolExecutor(max_workers=cores) as pool:
        found = pool.map(
            lambda batch: _rule_test_batch(root, promtool, batch, cache, keys), batches
        )
        return [f for one in found for f in one]


def _rule_test_batch(
    root: Path, promtool: str, batch: list[Path], cache: Path | None, keys: dict[Path, str]
) -> list[Finding]:
    """One `promtool test rules` process over ``batch`` (files of one directory); a file
    that did not pass is run again alone (``rule_test_findings``) for its own message."""
    result = _run(
        [promtool, "test", "rules", *(p.name for p in batch)],
        cwd=batch[0].parent,
        env=PROMTOOL_TEST_ENV,
    )
    if len(batch) == 1 and result.returncode != 0:
        return _test_failure(root, batch[0], result)
    ok = rule_test_batches.passed(result.stdout)
    out: list[Finding] = []
    for path in batch:
        if path.name in ok:
            _remember(cache, keys[path])
        else:
            out.extend(rule_test_findings(root, promtool, path))
    return out


def alerts(root: Path) -> Iterator[tuple[Path, int | None, dict]]:
    """(file, line, rule) of every alerting rule in monitoring/rules/*.yml."""
    for path in rule_files(root):
        try:
            doc = yaml_nodes.load(path.read_text())
            lines = rule_lines(path)
        except (yaml.YAMLError, RecursionError):
            continue  # promtool-check-rules reports it
        groups = doc.get("groups") if isinstance(doc, dict) else None
        for g, group in enumerate(groups if isinstance(groups, list) else []):
            rules = group.get("rules") if isinstance(group, dict) else None
            for r, rule in enumerate(rules if isinstance(rules, list) else []):
                if isinstance(rule, dict) and isinstance(rule.get("alert"), str):
                    yield path, lines.get((g, r)), rule  # any other shape: promtool's


@check(kind="cross-file", name="alert-runbooks", inputs=("monitoring/rules/*.yml",))
def alert_runbooks(root: Path) -> list[Finding]:
    """Every alert's runbook_url is docs/runbooks/<alert>.md and that file exists."""
    out = []
    for path, line, rule in alerts(root):
        name = rule["alert"]
        annotations = rule.get("annotations")
        url = str(annotations.get("runbook_url") or "") if isinstance(annotations, dict) else ""
        expected = f"docs/runbooks/{name}.md"
        if url != expected:
            out.append(
                Finding(
                    "alert-runbooks",
                    "cross-file",
                    "error",
                    _rel(root, path),
                    line,
                    f"{name}: runbook_url is {url!r}, not {expected!r}",
                    f"set annotations.runbook_url: {expected}",
                )
            )
        elif not (root / url).is_file():
            out.append(
                Finding(
                    "alert-runbooks",
                    "cross-file",
                    "error",
                    _rel(root, path),
                    line,
                    f"{name}: {url} does not exist",
                    f"write {url} (title '# {name}', the tasks to run)",
                )
            )
    return out


@check(
    kind="slo",
    name="slo-generated",
    inputs=(
        "monitoring/slo.yaml",
        "monitoring/rules/slo.rules.yml",
        "monitoring/rules/tests/*.yml",
    ),
)
def slo_generated(root: Path) -> list[Finding]:
    """Files generated from monitoring/slo.yaml are up to date (`python -m ocean.slo check`)."""
    from ocean import slo

    try:
        problems = slo.stale(root=root)
    except slo.SLOError as exc:
        return [
            Finding(
                "slo-generated",
                "slo",
                "error",
                "monitoring/slo.yaml",
                None,
                str(exc),
                "fix monitoring/slo.yaml",
            )
        ]
    out = []
    for problem in problems:
        rel, _, reason = problem.partition(" (")
        out.append(
            Finding(
                "slo-generated",
                "slo",
                "error",
                rel,
                None,
                f"generated file {reason.rstrip(')')}",
                "run: python -m ocean.slo generate",
            )
        )
    return out


# ---------------------------------------------------------------------------------------
# Alertmanager

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
        path, found = _render_into(
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
            out += _missing_tool(
                "amtool", "alertmanager-config", "alertmanager", "prometheus-alertmanager"
            )
        else:
            result = _run([amtool, "check-config", str(path)])
            if result.returncode != 0:
                out.append(_amtool_finding(root, path, result.stdout + result.stderr, tmp))
                amtool_refused = True
        rendered_text = path.read_text()
        try:
            config = yaml_nodes.load(rendered_text)
        except yaml.YAMLError as exc:
            return [
                *out,
                _yaml_error(
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
                _line_of(template, needle),
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


# ---------------------------------------------------------------------------------------
# PromQL helpers (shared with tests/unit/test_dashboards.py and the live check)

GRAFANA_DURATIONS = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "__interval_ms": "60000",
}
# A Grafana variable: $name, ${name}, ${name:format}, [[name]].
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")
PLACEHOLDER = "grafana_variable"

FUNCTIONS_WANTING_RATE_INTERVAL = re.compile(r"^(rate|irate|increase|\w+_over_time)$")


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_COMMENT = re.compile(r"#[^\n]*")
_TOKEN = re.compile(
    r"(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)"
    r"|(?P<number>\d[\w.]*(?:[eE][+-]?\d+)?)"
    r"|(?P<open>\()|(?P<close>\))"
    r"|(?P<other>\S)"
)


def substitute_variables(expr: str) -> str:
    """``expr`` with Grafana's variables replaced by values PromQL accepts."""

    def replace(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        return GRAFANA_DURATIONS.get(name, PLACEHOLDER)

    return _VARIABLE.sub(replace, expr)


def blank_strings(expr: str) -> str:
    """Strings emptied and comments removed (what they hold is never a metric name)."""
    expr = _STRING.sub('""', expr)
    return _COMMENT.sub("", expr)


def _strip_brackets(expr: str, open_: str, close: str) -> str:
    out, depth = [], 0
    for char in expr:
        if char == open_:
            depth += 1
            continue
        if char == close and depth:
            depth -= 1
            continue
        if not depth:
            out.append(char)
    return "".join(out)


def metric_names(expr: str) -> set[str]:
    """Metric names ``expr`` selects (functions, keywords, labels, literals skipped).

    Label matchers ({…}), ranges and subqueries ([…]) and strings are removed first;
    then an identifier is a metric name unless a ``(`` follows it (a function or an
    aggregation), it is a keyword, or it sits in the label list after by/without/on/
    ignoring/group_left/group_right.
    """
    text = blank_strings(substitute_variables(expr))
    text = _strip_brackets(_strip_brackets(text, "{", "}"), "[", "]")
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]
    names: set[str] = set()
    label_list_depth: int | None = None
    depth = 0
    for index, (kind, value) in enumerate(tokens):
        if kind == "open":
            depth += 1
            continue
        if kind == "close":
            depth -= 1
            if label_list_depth is not None and depth < label_list_depth:
                label_list_depth = None
            continue
        if kind != "ident" or label_list_depth is not None:
            continue
        following = tokens[index + 1] if index + 1 < len(tokens) else (None, "")
        lowered = value.lower()
        if lowered in LABEL_LIST_KEYWORDS:
            if following[0] == "open":
                label_list_depth = depth + 1
            continue
        if lowered in KEYWORDS or following[0] == "open" or value == PLACEHOLDER:
            continue
        if following[0] == "ident" and following[1].lower() in ("by", "without"):
            continue  # an aggregation written `sum by (…) (…)`
        names.add(value)
    return names


def range_selectors(expr: str) -> Iterator[tuple[str, str]]:
    """(enclosing function, range text) for every […] in ``expr`` (strings blanked)."""
    text = blank_strings(expr)
    for match in re.finditer(r"\[([^\]]*)\]", text):
        depth, position = 0, match.start() - 1
        function = ""
        while position >= 0:
            char = text[position]
            if char == ")":
                depth += 1
            elif char == "(":
                if depth == 0:
                    head = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*$", text[:position])
                    function = head.group(1) if head else ""
                    break
                depth -= 1
            position -= 1
        yield function, match.group(1).strip()


def check_expressions(promtool: str, exprs: list[tuple[str, str]], tmp_dir: Path) -> str:
    """promtool's complaints about ``exprs`` ((label, expr) pairs); "" when all parse.

    promtool has no "parse this expression" command: each expression (Grafana variables
    substituted) becomes a recording rule in its own group, named by ``label``.
    """
    groups = [
        {"name": label, "rules": [{"record": "dashboard:check", "expr": substitute_variables(e)}]}
        for label, e in exprs
    ]
    rules = tmp_dir / "dashboards.rules.yml"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    result = _run([promtool, "check", "rules", str(rules)])
    return "" if result.returncode == 0 else result.stdout + result.stderr


# ---------------------------------------------------------------------------------------
# Dashboards

DASHBOARDS = ("monitoring/dashboards/*.json",)  # what the dashboard checks read


def dashboard_files(root: Path) -> list[Path]:
    return sorted((root / "monitoring" / "dashboards").glob("*.json"))


def all_panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def expressions(dashboard: dict) -> Iterator[tuple[str, str, str]]:
    """(panel title or annotation name, refId, expr) of every PromQL query."""
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield panel.get("title", "?"), target.get("refId", "?"), target["expr"]
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            yield f"annotation {annotation.get('name', '?')}", "-", annotation["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            query = query.get("query", "") if isinstance(query, dict) else query or ""
            # label_values(metric, label) and friends are Grafana functions, not PromQL.
            inner = re.fullmatch(r"\s*query_result\((.*)\)\s*", query, re.S)
            if inner:
                yield f"variable {variable.get('name')}", "-", inner.group(1)
            elif query and not re.match(r"\s*(label_names|label_values|metrics)\(", query):
                yield f"variable {variable.get('name')}", "-", query


def is_templated(datasource: object) -> bool:
    if isinstance(datasource, str):
        return datasource in ("${datasource}", "$datasource")
    if isinstance(datasource, dict):
        return datasource.get("uid") in ("${datasource}", "$datasource")
    return False


def datasource_problems(dashboard: dict) -> list[str]:
    """What is not on the templated ${datasource} variable ([] when all is)."""
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    wrong = []
    ds = variables.get("datasource") or {}
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        wrong.append("no `datasource` variable of type datasource, query prometheus")
    for panel in all_panels(dashboard):
        if panel.get("type") == "row" or not panel.get("targets"):
            continue  # rows and text panels query nothing
        if not is_templated(panel.get("datasource")):
            wrong.append(f"panel {panel.get('title')!r}: {panel.get('datasource')!r}")
        for target in panel.get("targets", []):
            # A target may inherit the panel's data source; a named one must be templated.
            if "datasource" in target and not is_templated(target["datasource"]):
                wrong.append(f"panel {panel.get('title')!r}/{target.get('refId')}")
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if not annotation.get("builtIn") and not is_templated(annotation.get("datasource")):
            wrong.append(f"annotation {annotation.get('name')!r}")
    for variable in variables.values():
        if variable.get("type") == "query" and not is_templated(variable.get("datasource")):
            wrong.append(f"variable {variable.get('name')!r}")
    return wrong


def rate_interval_problems(dashboard: dict) -> list[str]:
    documented = {
        panel.get("title")
        for panel in all_panels(dashboard)
        if "fixed window" in panel.get("description", "").lower()
    }
    return [
        f"{title}/{ref_id}: {function}[{window}]"
        for title, ref_id, expr in expressions(dashboard)
        for function, window in range_selectors(expr)
        if FUNCTIONS_WANTING_RATE_INTERVAL.match(function)
        and window != "$__rate_interval"
        and title not in documented
    ]


def _load_dashboards(root: Path, check_name: str) -> tuple[list[tuple[Path, dict]], list[Finding]]:
    loaded, out = [], []
    for path in dashboard_files(root):
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            out.append(
                Finding(
                    check_name,
                    "dashboards",
                    "error",
                    _rel(root, path),
                    exc.lineno,
                    f"invalid JSON: {exc.msg}",
                    "fix the JSON syntax",
                )
            )
            continue
        if not isinstance(doc, dict):
            out.append(
                Finding(
                    check_name,
                    "dashboards",
                    "error",
                    _rel(root, path),
                    1,
                    "a dashboard is a JSON object",
                    "",
                )
            )
            continue
        loaded.append((path, doc))
    return loaded, out


def _title_line(path: Path, title: str) -> int | None:
    return _line_of(path, f'"title": {json.dumps(title)}')


@check(kind="dashboards", name="dashboard-structure", inputs=DASHBOARDS)
def dashboard_structure(root: Path) -> list[Finding]:
    """Valid JSON, a title and uid, unique panel ids, unique uids and titles."""
    loaded, out = _load_dashboards(root, "dashboard-structure")
    uids: dict[str, str] = {}
    for path, doc in loaded:
        rel = _rel(root, path)

        def bad(message: str, line: int | None = None, hint: str = "", rel: str = rel) -> None:
            out.append(
                Finding("dashboard-structure", "dashboards", "error", rel, line, message, hint)
            )

        if not doc.get("title"):
            bad("a dashboard needs a title")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", str(doc.get("uid", ""))):
            bad("uid: 1-40 of [A-Za-z0-9_-]", _line_of(path, '"uid"'))
        elif doc["uid"] in uids:
            bad(f"uid {doc['uid']!r} is also {uids[doc['uid']]}'s", _line_of(path, '"uid"'))
        else:
            uids[doc["uid"]] = rel
        seen: dict[Any, str] = {}
        for panel in all_panels(doc):
            pid = panel.get("id")
            title = str(panel.get("title", "?"))
            if pid is None:
                bad(f"panel {title!r} has no id", _title_line(path, title), "give it a unique id")
            elif pid in seen:
                bad(
                    f"panel id {pid} is used by {seen[pid]!r} and {title!r}",
                    _title_line(path, title),
                    "panel ids must be unique within a dashboard",
                )
            else:
                seen[pid] = title
    return out


@check(kind="dashboards", name="dashboard-datasource", inputs=DASHBOARDS)
def dashboard_datasource(root: Path) -> list[Finding]:
    """Every query uses the templated ${datasource} variable."""
    loaded, _ = _load_dashboards(root, "dashboard-datasource")
    return [
        Finding(
            "dashboard-datasource",
            "dashboards",
            "error",
            _rel(root, path),
            _title_line(path, problem.split("'")[1]) if "'" in problem else None,
            f"not on the templated datasource: {problem}",
            'use "datasource": {"type": "prometheus", "uid": "${datasource}"}',
        )
        for path, doc in loaded
        for problem in datasource_problems(doc)
    ]


@check(kind="dashboards", name="dashboard-rate-interval", inputs=DASHBOARDS)
def dashboard_rate_interval(root: Path) -> list[Finding]:
    """rate/increase/*_over_time ranges use $__rate_interval (unless a 'fixed window')."""
    loaded, _ = _load_dashboards(root, "dashboard-rate-interval")
    return [
        Finding(
            "dashboard-rate-interval",
            "dashboards",
            "warning",
            _rel(root, path),
            _title_line(path, problem.split("/")[0]),
            f"fixed range: {problem}",
            "use [$__rate_interval], or say 'fixed window' in the panel description",
        )
        for path, doc in loaded
        for problem in rate_interval_problems(doc)
    ]


@check(kind="dashboards", name="dashboard-queries", inputs=DASHBOARDS)
def dashboard_queries(root: Path) -> list[Finding]:
    """Every PromQL expression of every dashboard parses (promtool, one run for all)."""
    promtool = program("promtool")
    if promtool is None:
        return _missing_tool("promtool", "dashboard-queries", "dashboards", "prometheus")
    loaded, _ = _load_dashboards(root, "dashboard-queries")
    exprs: list[tuple[str, str]] = []
    where: dict[str, tuple[Path, str]] = {}
    for path, doc in loaded:
        for index, (title, ref_id, expr) in enumerate(expressions(doc)):
            label = f"{path.name} | {title} | {ref_id} #{index}"
            exprs.append((label, expr))
            where[label] = (path, title)
    if not exprs:
        return []
    out = []
    with tempfile.TemporaryDirectory(prefix="ocean-validate-") as tmp:
        report = check_expressions(promtool, exprs, Path(tmp))
    for line in report.splitlines():
        match = re.search(r'group "([^"]*)", rule \d+, "[^"]*": (.*)', line)
        if not match:
            continue
        path, title = where.get(match.group(1), (None, ""))
        out.append(
            Finding(
                "dashboard-queries",
                "dashboards",
                "error",
                _rel(root, path) if path else "",
                _title_line(path, title) if path else None,
                f"{match.group(1)}: {match.group(2)}",
                "fix the PromQL (Grafana variables are substituted before parsing)",
            )
        )
    if report and not out:
        out.append(Finding("dashboard-queries", "dashboards", "error", "", None, report[:500], ""))
    return out
