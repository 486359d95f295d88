"""Alertmanager's label matchers, as 0.25 parses and applies them (pkg/labels).

A matcher is ``name="value"``, ``name!="value"``, ``name=~"regex"`` or ``name!~"regex"``;
a route's or inhibit rule's ``matchers`` entry may hold several, comma-separated, in
braces or not, quoted or not. A label an alert lacks has the empty value (so
``team!="shop"`` matches an alert without ``team``), and a regex must match the whole
value (Alertmanager anchors it: ``^(?:regex)$``). The deprecated ``match`` /
``match_re`` maps of older configs mean ``=`` / ``=~``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ocean.errors import OceanError

# Alertmanager's own pattern for one matcher (pkg/labels/parse.go).
_ONE = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*(.*?)\s*$", re.DOTALL)
OPERATORS = ("=", "!=", "=~", "!~")


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    _regex: re.Pattern | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, name: str, op: str, value: str) -> Matcher:
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = re.compile(f"^(?:{value})$", re.DOTALL)
            except re.error as exc:
                raise OceanError(f"matcher {name}{op}{value!r}: bad regex ({exc})") from None
        return cls(name, op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = self._regex is not None and self._regex.match(value) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def parse_one(text: str) -> Matcher:
    """One matcher: ``severity="critical"``, ``alertname=~"A|B"``, ``team!=shop`` …"""
    found = _ONE.match(text)
    if not found:
        raise OceanError(f'bad matcher {text.strip()!r}: want name="value" (=, !=, =~, !~)')
    name, op, raw = found.groups()
    return Matcher.of(name, op, _unquote(raw, text))


def _unquote(raw: str, text: str) -> str:
    """Alertmanager's unescaping: \\n, \\" and \\\\ inside quotes; a stray \\ is literal."""
    quoted = raw.startswith('"')
    if quoted:
        raw = raw[1:]
    out: list[str] = []
    escaped = False
    for index, char in enumerate(raw):
        if escaped:
            escaped = False
            out.append({"n": "\n", '"': '"', "\\": "\\"}.get(char, "\\" + char))
        elif char == "\\":
            if index < len(raw) - 1:
                escaped = True
            else:
                out.append("\\")
        elif char == '"':
            if not quoted or index < len(raw) - 1:
                raise OceanError(f"matcher {text.strip()!r}: unescaped double quote in its value")
            quoted = False  # the closing quote
        else:
            out.append(char)
    if quoted:
        raise OceanError(f"matcher {text.strip()!r}: its value's quote is never closed")
    return "".join(out)


def parse(text: str) -> list[Matcher]:
    """Every matcher of one ``matchers`` entry: ``{a="1", b=~"x|y"}`` or ``a="1",b!="2"``
    (commas inside quotes belong to the value)."""
    body = text.strip().removeprefix("{").removesuffix("}")
    tokens: list[str] = []
    token: list[str] = []
    quoted = escaped = False
    for char in body:
        if char == "," and not quoted:
            tokens.append("".join(token))
            token = []
            continue
        if char == '"':
            if escaped:
                escaped = False
            else:
                quoted = not quoted
        elif char == "\\":
            escaped = not escaped
        else:
            escaped = False
        token.append(char)
    if "".join(token).strip():
        tokens.append("".join(token))
    return [parse_one(t) for t in tokens]


def from_config(node: Mapping, prefix: str = "") -> list[Matcher]:
    """The matchers of a route (``prefix`` "") or of an inhibit rule's side (``source_`` /
    ``target_``): its ``matchers`` list plus the older ``match`` / ``match_re`` maps."""
    found: list[Matcher] = []
    for name, value in (node.get(f"{prefix}match") or {}).items():
        found.append(Matcher.of(str(name), "=", str(value)))
    for name, value in (node.get(f"{prefix}match_re") or {}).items():
        found.append(Matcher.of(str(name), "=~", str(value)))
    for entry in node.get(f"{prefix}matchers") or []:
        found.extend(parse(str(entry)))
    return found
