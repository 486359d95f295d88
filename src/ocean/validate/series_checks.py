"""Series checks, offline: every query the repo ships selects something that exists.

What pint's ``promql/series`` check asks a live Prometheus, asked of the committed
metric catalog (monitoring/catalog.json, catalog.py) in CI: each vector selector of

- the alerting and recording rules (monitoring/rules/*.yml),
- the dashboards (monitoring/dashboards/*.json: panels, annotations, variables),
- the PromQL the toolkit's code sends (the deploy analysis in src/ocean/rollout, the
  console's views in src/ocean/observe.py and tui/, the load-test guards and figures,
  the alerting views: every string literal of src/ocean and tui/ that holds a selector),

must name a series the catalog has or a recording rule makes (``ALERTS`` and
``ALERTS_FOR_STATE`` are Prometheus' own, for every alerting rule), and each of its
label matchers must be satisfiable by the values the catalog knows for a closed label
(``job``, ``color``, ``route``, ``status``, ``slo`` … catalog.CLOSED_LABELS): an
``=`` on a value no series has, a regex no value matches, or a label the metric does not
carry at all selects nothing, silently. The k6 thresholds (testing/k6) must name a
metric k6 reports: one the catalog holds as remote-written ``k6_*`` series, or a custom
metric a script declares.

Errors, each with file, line, the selector and the nearest names or values. Values we
cannot know (Grafana's ``$color``, what code interpolates) are not judged; a metric
name code completes (``…ratio_rate{w}``) is skipped.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ocean.model import Finding
from ocean.validate import catalog as catalog_file
from ocean.validate import yaml_nodes
from ocean.validate.core import check
from ocean.validate.selectors import HOLE, Matcher, Selector, selectors

# libyaml when there is one: the rules are parsed twice (values, and nodes for lines)
CHECK = "series-selectors"
KIND = "series"
REFRESH = "invoke validate --refresh-catalog (with the stack up) if the metric is new"
# Code whose strings are PromQL the toolkit sends. Left out: validate/ (it holds
# broken queries on purpose, in docstrings and tests' data) and slo.py, the generator
# whose output (rules, dashboards) is checked as files.
CODE_DIRS = ("src/ocean", "tui")
CODE_SKIP = ("src/ocean/validate/", "src/ocean/slo.py")
# A string literal that is a metric name by itself (the console reads Alertmanager's
# counters by name from its /metrics page): an exporter's prefix and a unit or type
# suffix (dict keys such as "k6_cpu_pct" or "redis_dir" are not metrics).
BARE_NAME = re.compile(
    r"(?:shop|node|pg|redis|nginx|probe|alertmanager|prometheus|k6|ocean|inbox)_[a-z0-9_]+"
    r"_(?:total|seconds|bytes|info|bucket|count|sum|created)"
)
# Cheap pre-filter of a module's text before it is parsed: a selector with matchers or a
# range, or a name with a metric suffix.
_MAY_HOLD_PROMQL = re.compile(
    r"\{\{|\bup\[|slo:|"
    + BARE_NAME.pattern
    + r"|[a-z0-9]_[a-z0-9_:]*(?:\{\s*[A-Za-z_]+\s*(?:=|!=|=~|!~)|\[\d+[smhdwy]\])"
)
_FORMAT_FIELD = re.compile(r"\{\{|\}\}|\{[A-Za-z_][\w.]*(?:\[[^\]]*\])?(?:![rsa])?(?::[^{}]*)?\}")


@dataclass(frozen=True)
class Query:
    file: str
    line: int | None
    expr: str
    where: str  # what holds it: a rule, a panel, a function
    # Selector → its line in the file (None: ``line`` for every selector of expr)
    line_at: Any = None


# ---------------------------------------------------------------------------------------
# What a selector may select


@dataclass
class Known:
    catalog: catalog_file.Catalog
    recorded: set[str]
    alert_names: set[str]

    def names(self) -> set[str]:
        return self.catalog.names() | self.recorded | {"ALERTS", "ALERTS_FOR_STATE"}

    def labels(self, name: str) -> dict[str, list[str] | None] | None:
        if name in ("ALERTS", "ALERTS_FOR_STATE"):
            # An alert carries its rule's labels too: any other label may appear.
            return _open_labels(
                alertname=sorted(self.alert_names), alertstate=["firing", "pending"]
            )
        return self.catalog.labels(name)


class _OpenLabels(dict):
    """Label sets where any other label may also appear (ALERTS' rule labels)."""


def _open_labels(**labels: Any) -> _OpenLabels:
    return _OpenLabels(labels)


def recording_rules(root: Path) -> tuple[set[str], set[str]]:
    """(recording rules' names, alerting rules' names) of monitoring/rules/*.yml."""
    recorded, alerts = set(), set()
    for path in sorted((root / "monitoring" / "rules").glob("*.yml")):
        for _, rule, _ in _rules(path):
            if "record" in rule:
                recorded.add(str(rule["record"]))
            elif "alert" in rule:
                alerts.add(str(rule["alert"]))
    return recorded, alerts


def _matches(matcher: Matcher, value: str) -> bool:
    if matcher.op == "=":
        return value == matcher.value
    if matcher.op == "!=":
        return value != matcher.value
    try:
        found = re.fullmatch(matcher.value, value) is not None
    except re.error:
        return True  # not Python's regex dialect: promtool judges its syntax
    return found if matcher.op == "=~" else not found


def matcher_problem(name: str, matcher: Matcher, labels: dict[str, Any]) -> tuple[str, str] | None:
    """(why ``matcher`` selects nothing of ``name``, hint), or None when it may match."""
    if not matcher.known or matcher.label == "__name__":
        return None
    if matcher.label not in labels:
        if isinstance(labels, _OpenLabels) or _matches(matcher, ""):
            return None
        carried = ", ".join(sorted(labels)) or "none"
        near = difflib.get_close_matches(matcher.label, list(labels), 3, 0.6)
        return (
            f"{name} has no label {matcher.label!r}: {matcher.label}{matcher.op}"
            f"{json.dumps(matcher.value)} selects nothing",
            (f"did you mean {', '.join(near)}? " if near else "") + f"its labels: {carried}",
        )
    values = labels[matcher.label]
    if values is None or any(_matches(matcher, v) for v in values):
        return None
    shown = [v for v in values if v] or values
    near = difflib.get_close_matches(matcher.value, shown, 3, 0.5)
    return (
        f"{matcher.label}{matcher.op}{json.dumps(matcher.value)} matches no {name} series",
        (f"nearest: {', '.join(near)}; " if near else "")
        + f"{matcher.label} is one of {', '.join(shown[:12])}"
        + (" …" if len(shown) > 12 else ""),
    )


def selector_findings(known: Known, names: set[str], query: Query) -> Iterator[Finding]:
    for selector in selectors(query.expr):
        if query.where == "query" and not _metric_like(selector.name):
            continue  # a word in code's PromQL text, not a metric name
        line = query.line_at(selector) if query.line_at else query.line
        yield from _judge(known, names, query, selector, line)


def _judge(
    known: Known, names: set[str], query: Query, selector: Selector, line: int | None
) -> Iterator[Finding]:
    if not selector.name:
        return
    text = " ".join(selector.text.replace(HOLE, "…").split())
    if selector.name not in names:
        near = difflib.get_close_matches(selector.name, names, 3, 0.6)
        yield Finding(
            CHECK,
            KIND,
            "error",
            query.file,
            line,
            f"{query.where}: {text}: unknown metric {selector.name!r} (no service exports it "
            "and no recording rule makes it)",
            (f"nearest: {', '.join(near)}; " if near else "") + REFRESH,
        )
        return
    labels = known.labels(selector.name)
    if labels is None:
        return  # declared without a sample yet, or a rule not evaluated: name only
    for matcher in selector.matchers:
        problem = matcher_problem(selector.name, matcher, labels)
        if problem:
            yield Finding(
                CHECK,
                KIND,
                "error",
                query.file,
                line,
                f"{query.where}: {text}: {problem[0]}",
                problem[1],
            )


# ---------------------------------------------------------------------------------------
# Where the queries are


def _rel(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _rules(path: Path) -> Iterator[tuple[dict, dict, yaml.Node | None]]:
    """(group, rule, the expr's YAML node) of one rule file; nothing when unreadable."""
    try:
        text = path.read_text()
        doc = yaml_nodes.load(text)
        node = yaml_nodes.compose(text)
    except (yaml.YAMLError, OSError):
        return  # promtool-check-rules reports it
    if not isinstance(doc, dict) or not isinstance(node, yaml.MappingNode):
        return
    nodes = _expr_nodes(node)
    index = 0
    # Any value may stand where a list belongs (`groups: true`): promtool reports it.
    for group in _listed(doc.get("groups")):
        if not isinstance(group, dict):
            continue
        for rule in _listed(group.get("rules")):
            if isinstance(rule, dict):
                yield group, rule, nodes[index] if index < len(nodes) else None
            index += 1


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else []


def _expr_nodes(root: yaml.MappingNode) -> list[yaml.Node | None]:
    """The expr node of every rule, in order (None for a rule without one)."""
    out: list[yaml.Node | None] = []
    for key, groups in root.value:
        if key.value != "groups" or not isinstance(groups, yaml.SequenceNode):
            continue
        for group in groups.value:
            if not isinstance(group, yaml.MappingNode):
                continue
            for gkey, rules in group.value:
                if gkey.value != "rules" or not isinstance(rules, yaml.SequenceNode):
                    continue
                for rule in rules.value:
                    expr = None
                    if isinstance(rule, yaml.MappingNode):
                        expr = next((v for k, v in rule.value if k.value == "expr"), None)
                    out.append(expr)
    return out


def _yaml_line_at(node: yaml.Node | None, lines: list[str], expr: str) -> Any:
    """Selector → its line in the file: counted in a literal block (``|``), searched
    for in the node's lines otherwise (folded or quoted text moves line breaks)."""
    if node is None:
        return None
    first = node.start_mark.line + 1

    def at(selector: Selector) -> int:
        if getattr(node, "style", None) == "|":
            return first + 1 + expr.count("\n", 0, selector.offset)
        for number in range(node.start_mark.line, min(node.end_mark.line + 1, len(lines))):
            if selector.name and selector.name in lines[number]:
                return number + 1
        return first

    return at


def rule_queries(root: Path) -> Iterator[Query]:
    for path in sorted((root / "monitoring" / "rules").glob("*.yml")):
        yield from _tolerant(_rule_file_queries, root, path)


def _rule_file_queries(root: Path, path: Path) -> Iterator[Query]:
    lines = path.read_text().splitlines()
    for _, rule, node in _rules(path):
        expr = rule.get("expr")
        if not isinstance(expr, str | int | float):
            continue
        name = rule.get("alert") or rule.get("record") or "?"
        kind = "alert" if "alert" in rule else "recording rule"
        at = _yaml_line_at(node, lines, str(expr))
        line = node.start_mark.line + 1 if node is not None else None
        yield Query(_rel(root, path), line, str(expr), f"{kind} {name}", at)


def dashboard_queries(root: Path) -> Iterator[Query]:
    for path in sorted((root / "monitoring" / "dashboards").glob("*.json")):
        yield from _tolerant(_dashboard_file_queries, root, path)


def _dashboard_file_queries(root: Path, path: Path) -> Iterator[Query]:
    from ocean.validate.monitoring_checks import expressions

    text = path.read_text()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return  # dashboard-structure reports it
    if not isinstance(doc, dict):
        return
    used: set[int] = set()
    for title, ref_id, expr in expressions(doc):
        if not isinstance(expr, str):
            continue
        line = _json_string_line(text, expr, used)
        where = f"panel {title!r} {ref_id}" if ref_id != "-" else str(title)
        yield Query(_rel(root, path), line, expr, where)


def _tolerant(read: Any, root: Path, path: Path) -> Iterator[Query]:
    """The queries of one file, up to where it is shaped unlike a rule file or a
    dashboard (a list where a mapping belongs …): that file's structure check reports
    it; this one must not crash on it."""
    try:
        yield from read(root, path)
    except (AttributeError, TypeError, ValueError, RecursionError, UnicodeDecodeError):
        return


def _json_string_line(text: str, value: str, used: set[int]) -> int | None:
    """Line of the first not yet claimed occurrence of ``value`` as a JSON string."""
    for encoded in (json.dumps(value, ensure_ascii=False), json.dumps(value)):
        start = 0
        while (position := text.find(encoded, start)) >= 0:
            start = position + 1
            if position not in used:
                used.add(position)
                return text.count("\n", 0, position) + 1
    return None


def code_queries(root: Path) -> Iterator[Query]:
    """PromQL (and bare metric names) in the string literals of the toolkit's code."""
    for folder in CODE_DIRS:
        for path in sorted((root / folder).rglob("*.py")):
            rel = _rel(root, path)
            if rel.startswith(CODE_SKIP):
                continue
            try:
                text = path.read_text()
                if not _MAY_HOLD_PROMQL.search(text):
                    continue  # most modules: no need to parse them
                tree = ast.parse(text)
            except (SyntaxError, ValueError, OSError):
                continue
            yield from _strings(rel, tree, text.splitlines())


def _strings(rel: str, tree: ast.AST, lines: list[str]) -> Iterator[Query]:
    """PromQL in the module's string literals and f-strings (one walk of the tree:
    it is most of this check's time)."""
    skip: set[int] = set()  # docstrings, and the pieces of f-strings
    candidates: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
        elif isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
            candidates.append(node)
        elif isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            skip.add(id(node.format_spec))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            candidates.append(node)
    for node in candidates:
        if id(node) in skip:
            continue
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else HOLE
                for v in node.values
            )
        else:
            text = node.value  # type: ignore[attr-defined]
        query = _as_promql(text)
        if query is not None:
            line = getattr(node, "lineno", None)
            yield Query(rel, line, query, "query", _code_line(node, lines))


def _code_line(node: ast.AST, lines: list[str]) -> Any:
    """Selector → line: the first line of the literal's span holding its name (implicitly
    joined literals are one node to ast, spanning several lines)."""
    first = getattr(node, "lineno", None)
    last = getattr(node, "end_lineno", None) or first
    if first is None:
        return None

    def at(selector: Selector) -> int:
        for number in range(first, min(last, len(lines)) + 1):
            if selector.name and selector.name in lines[number - 1]:
                return number
        return first

    return at


def _as_promql(text: str) -> str | None:
    """``text`` as PromQL when it holds some (``str.format`` fields as holes), else None.

    PromQL here is a string with a metric-like selector (a name with ``_`` or ``:``)
    that has matchers or a range: prose, markup (``[b]…[/b]``) and SQL have none.
    """
    if BARE_NAME.fullmatch(text):
        return text
    if "{{" in text or "}}" in text:  # a str.format template (or an f-string's output)
        text = _FORMAT_FIELD.sub(lambda m: {"{{": "{", "}}": "}"}.get(m.group(), HOLE), text)
    for selector in selectors(text):
        after = text[selector.offset + len(selector.text) :].lstrip()
        if _metric_like(selector.name) and ("{" in selector.text or after.startswith("[")):
            return text
    return None


_METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?::[A-Za-z0-9_]+)*")


def _metric_like(name: str) -> bool:
    """A name that reads as a metric (``shop_x_total``, ``slo:x:y``, ``up``), not a
    word of prose or a label such as ``socket:``."""
    return bool(_METRIC_NAME.fullmatch(name)) and (
        "_" in name.strip("_") or ":" in name or name == "up"
    )


# ---------------------------------------------------------------------------------------
# k6 thresholds

_K6_CUSTOM = re.compile(r"new\s+(?:Trend|Counter|Rate|Gauge)\s*\(\s*['\"`]([\w.]+)['\"`]")
_K6_THRESHOLD_KEYS = [
    re.compile(r"thresholds\s*\[\s*[`'\"]([^`'\"]+)[`'\"]\s*\]"),  # thresholds[`name{…}`]
]
_K6_OBJECT = re.compile(r"thresholds\s*[:=]\s*\{")  # options' key, or a variable
_K6_KEY = re.compile(r"(?:^|[{,])\s*(?:['\"`]([^'\"`]+)['\"`]|([A-Za-z_]\w*))\s*:")


def k6_thresholds(root: Path) -> Iterator[tuple[str, int, str]]:
    """(file, line, threshold key) of every k6 threshold of testing/k6."""
    folder = root / "testing" / "k6"
    generated = folder / "thresholds.json"
    if generated.exists():
        text = generated.read_text()
        try:
            keys = (json.loads(text).get("thresholds") or {}).keys()
        except (json.JSONDecodeError, AttributeError):
            keys = []
        for key in keys:
            line = text.count("\n", 0, max(text.find(json.dumps(key)), 0)) + 1
            yield _rel(root, generated), line, key
    for path in sorted(folder.rglob("*.js")):
        text = path.read_text()
        for pattern in _K6_THRESHOLD_KEYS:
            for match in pattern.finditer(text):
                yield _rel(root, path), text.count("\n", 0, match.start()) + 1, match.group(1)
        for match in _K6_OBJECT.finditer(text):
            body_start = match.end() - 1
            body = _braced(text, body_start)
            for key in _K6_KEY.finditer(body):
                name = key.group(1) or key.group(2)
                line = text.count("\n", 0, body_start + key.start()) + 1
                yield _rel(root, path), line, name


def _braced(text: str, start: int) -> str:
    """``text[start]`` is ``{``: the object literal up to its closing brace, with the
    values' nested brackets blanked (only its own keys remain)."""
    depth, out = 0, []
    for char in text[start:]:
        if char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
            if depth == 0:
                break
        out.append(char if depth == 1 else " ")
    return "".join(out)


def k6_metric_names(root: Path, catalog: catalog_file.Catalog) -> set[str]:
    """k6's metric names we know of: remote-written (k6_NAME_total/_rate/_p99 …) and
    the custom metrics the scripts declare."""
    names = set()
    for series in catalog.names():
        if series.startswith("k6_"):
            base = re.sub(r"_(total|rate|p\d+|min|max|avg|med|count|sum|seconds)$", "", series)
            names.update((series[3:], base[3:]))
    for path in (root / "testing" / "k6").rglob("*.js"):
        names.update(_K6_CUSTOM.findall(path.read_text()))
    return names


def k6_findings(root: Path, catalog: catalog_file.Catalog) -> Iterator[Finding]:
    names = k6_metric_names(root, catalog)
    for file, line, key in k6_thresholds(root):
        metric = key.split("{", 1)[0].strip()
        if not metric or "$" in metric or metric in names:
            continue
        near = difflib.get_close_matches(metric, names, 3, 0.6)
        yield Finding(
            CHECK,
            KIND,
            "error",
            file,
            line,
            f"k6 threshold {key!r}: k6 reports no metric {metric!r}",
            (f"nearest: {', '.join(near)}; " if near else "")
            + "a k6 built-in metric (docs: k6 metrics reference) or a custom one the script "
            "declares (new Trend('name') …)",
        )


# ---------------------------------------------------------------------------------------


@check(kind=KIND, name=CHECK)
def series_selectors(root: Path) -> list[Finding]:
    """Every selector of the repo's queries matches a catalogued or recorded series."""
    try:
        catalog = catalog_file.load(root)
    except (ValueError, json.JSONDecodeError) as exc:
        return [Finding(CHECK, KIND, "error", catalog_file.CATALOG_PATH, None, str(exc), REFRESH)]
    if catalog is None:
        return [
            Finding(
                CHECK,
                KIND,
                "error",
                catalog_file.CATALOG_PATH,
                None,
                "no metric catalog: the series checks cannot run",
                "invoke validate --refresh-catalog with the stack up, then commit it",
            )
        ]
    recorded, alert_names = recording_rules(root)
    known = Known(catalog, recorded, alert_names)
    names = known.names()
    out: list[Finding] = []
    for source in (rule_queries, dashboard_queries, code_queries):
        for query in source(root):
            out.extend(selector_findings(known, names, query))
    out.extend(k6_findings(root, catalog))
    return out
