"""PromQL read without a server: Grafana's variables substituted, strings and comments
blanked, metric names and range selectors found, and a batch of expressions checked by
`promtool check rules` (the dashboard checks, rule sanity and the series check use it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import yaml

from ocean.validate.selectors import KEYWORDS, LABEL_LIST_KEYWORDS
from ocean.validate.tools import run_tool

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
    result = run_tool([promtool, "check", "rules", str(rules)])
    return "" if result.returncode == 0 else result.stdout + result.stderr
