"""PromQL vector selectors, read without Prometheus: ``name{label op "value", …}``.

The series check (series_checks.py) holds every selector of the repo's queries against
the metric catalog, hundreds of expressions in well under a second: spawning promtool
per expression would cost that much per file. PromQL's grammar matters here only as
far as telling a selector from everything around it:

- an identifier followed by ``(`` is a function or an aggregation, never a metric;
- keywords (``by``, ``offset``, ``and`` …) are not metrics, and the parenthesised list
  after ``by``/``without``/``on``/``ignoring``/``group_left``/``group_right`` holds
  label names;
- ``{…}`` after a name (or alone) holds its matchers, ``[…]`` a range or subquery.

Values we cannot know offline are kept, but marked: a Grafana variable (``$color``,
``${color}``, ``[[color]]``) or a piece a Python f-string or ``str.format`` fills in
(:data:`HOLE`, which series_checks puts where code interpolates) make a matcher
*open*: its label is still checked, its value is not. A metric name with a hole in it
(``slo:sli_error:ratio_rate{w}``) is skipped: nobody can say which name it becomes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# What series_checks substitutes for a value the code fills in at run time.
HOLE = "__ocean_hole__"

KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "and",
        "or",
        "unless",
        "atan2",
        "inf",
        "nan",
        "start",
        "end",
    }
)
LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
OPERATORS = ("=~", "!~", "!=", "=")

_VARIABLE = re.compile(r"\$\{\w+(?::[^}]*)?\}|\$\w+|\[\[\w+\]\]")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[a-zA-Z0-9]*")
_MATCHER = re.compile(
    r"\s*(?P<label>[A-Za-z_][A-Za-z0-9_]*|" + HOLE + r")\s*(?P<op>=~|!~|!=|=)\s*"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`)\s*(?:,|$)"
)


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # =, !=, =~, !~
    value: str
    # False when the value is filled in later (a Grafana variable, code): unknowable.
    known: bool = True


@dataclass(frozen=True)
class Selector:
    """One vector selector: its metric name ("" when only matchers name the series),
    its matchers, and where it starts in the expression (for line numbers)."""

    name: str
    matchers: tuple[Matcher, ...] = field(default=())
    offset: int = 0
    text: str = ""


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    if literal[0] == "`":
        return body
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def _matchers(body: str) -> tuple[tuple[Matcher, ...], bool]:
    """The matchers inside ``{…}`` and whether all of it was understood."""
    out: list[Matcher] = []
    position, ok = 0, True
    body = body.strip().rstrip(",")
    while position < len(body):
        match = _MATCHER.match(body, position)
        if not match:
            # A piece code fills in whole (``{sel}``, ``{api},status="5xx"``): skip it.
            hole = re.compile(r"\s*" + HOLE + r"\s*(?:,|$)").match(body, position)
            if hole:
                position = hole.end()
                continue
            ok = False
            break
        value = _unquote(match.group("value"))
        known = HOLE not in value and not _VARIABLE.search(value)
        if match.group("label") != HOLE:
            out.append(Matcher(match.group("label"), match.group("op"), value, known))
        position = match.end()
    return tuple(out), ok


def _skip_string(expr: str, start: int) -> int:
    quote = expr[start]
    position = start + 1
    while position < len(expr):
        char = expr[position]
        if char == "\\" and quote != "`":
            position += 2
            continue
        if char == quote:
            return position + 1
        position += 1
    return len(expr)


def _closing(expr: str, start: int, open_: str, close: str) -> int:
    """Index just past the bracket closing the one at ``start`` (strings respected)."""
    depth, position = 0, start
    while position < len(expr):
        char = expr[position]
        if char in "\"'`":
            position = _skip_string(expr, position)
            continue
        if char == open_:
            depth += 1
        elif char == close:
            depth -= 1
            if depth == 0:
                return position + 1
        position += 1
    return len(expr)


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of ``expr``, in order. Never raises: what it cannot read
    (an unbalanced bracket, a matcher it does not understand) it leaves out."""
    out: list[Selector] = []
    position = 0
    label_list_depth: int | None = None  # paren depth of a by(…)/on(…) label list
    depth = 0
    length = len(expr)
    while position < length:
        char = expr[position]
        if char in "\"'`":
            position = _skip_string(expr, position)
            continue
        if char == "#":  # a comment runs to the end of the line
            end = expr.find("\n", position)
            position = length if end < 0 else end
            continue
        if char == "(":
            depth += 1
            position += 1
            continue
        if char == ")":
            depth -= 1
            if label_list_depth is not None and depth < label_list_depth:
                label_list_depth = None
            position += 1
            continue
        if char == "[":
            position = _closing(expr, position, "[", "]")
            continue
        if char == "{":  # a selector of matchers only: {__name__="x", job="y"}
            end = _closing(expr, position, "{", "}")
            matchers, ok = _matchers(expr[position + 1 : end - 1])
            if ok and label_list_depth is None:
                name = next(
                    (m.value for m in matchers if m.label == "__name__" and m.op == "="), ""
                )
                rest = tuple(m for m in matchers if not (m.label == "__name__" and m.op == "="))
                out.append(Selector(name, rest, position, expr[position:end]))
            position = end
            continue
        if char == "$":
            variable = _VARIABLE.match(expr, position)
            if variable:
                position = variable.end()
                continue
        if char.isdigit() or (char == "." and expr[position + 1 : position + 2].isdigit()):
            number = _NUMBER.match(expr, position)
            position = number.end() if number else position + 1
            continue
        ident = _IDENT.match(expr, position)
        if not ident:
            position += 1
            continue
        name = ident.group()
        start, position = position, ident.end()
        following = position
        while following < length and expr[following] in " \t\r\n":
            following += 1
        next_char = expr[following] if following < length else ""
        lowered = name.lower()
        if label_list_depth is not None:
            continue
        if lowered in LABEL_LIST_KEYWORDS:
            if next_char == "(":
                label_list_depth = depth + 1
            continue
        if next_char == "(" or lowered in KEYWORDS:
            continue
        if _IDENT.match(expr, following) and expr[following:].split(None, 1)[0].lower() in (
            "by",
            "without",
        ):
            continue  # an aggregation written `sum by (…) (…)`
        matchers: tuple[Matcher, ...] = ()
        end = position
        if next_char == "{":
            end = _closing(expr, following, "{", "}")
            matchers, ok = _matchers(expr[following + 1 : end - 1])
            if not ok:
                position = end
                continue
        position = end
        if HOLE in name:
            continue  # a name code completes: which one is unknowable
        out.append(Selector(name, matchers, start, expr[start:end]))
    return out
