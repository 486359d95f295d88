"""Validation checks of monitoring/rules: `promtool check rules` (with lint), the
promtool rule tests (cached by content, in batches), a runbook per alert, and the
generated SLO files up to date with monitoring/slo.yaml."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from ocean.model import Finding
from ocean.validate import rule_test_batches, yaml_nodes
from ocean.validate.core import check, program
from ocean.validate.tools import (
    PROMTOOL_TEST_ENV,
    line_of,
    missing_package,
    rel_path,
    rule_lines,
    run_tool,
)

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
    result = run_tool([promtool, "check", "rules", str(path)])
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
        return missing_package("promtool", "promtool-check-rules", "rules", "prometheus")
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
                    rel_path(root, path),
                    problem.line,
                    problem.message,
                    problem.hint or f"promtool check rules {rel_path(root, path)}",
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
    result = run_tool([promtool, "check", "rules", *map(str, files)])
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
    result = run_tool(
        [promtool, "test", "rules", path.name], cwd=path.parent, env=PROMTOOL_TEST_ENV
    )
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
    line = line_of(path, f"alertname: {name.group(1)}") if name else None
    return [
        Finding(
            "promtool-test-rules",
            "rule-tests",
            "error",
            rel_path(root, path),
            line,
            " ".join(detail)[:600] or "promtool test rules failed",
            f"cd {rel_path(root, path.parent)} && promtool test rules {path.name}",
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
        return missing_package("promtool", "promtool-test-rules", "rule-tests", "prometheus")
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
    result = run_tool(
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
                    rel_path(root, path),
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
                    rel_path(root, path),
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
