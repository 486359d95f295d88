"""Whether a parsed Alertmanager config has the shape the semantic checks walk.

YAML parses many documents Alertmanager refuses: a list or a scalar at the top, ``routes:
5``, a receiver that is a string. amtool says so (when it is installed), but the checks
that read the routing tree must not crash on them (``check crashed: AttributeError``
names no file): they ask ``shape_problems`` first and walk the tree only when it finds
nothing. Each problem carries the YAML path it is about, so the caller can name a line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ocean.alerting import matchers as m
from ocean.errors import OceanError

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class ShapeProblem:
    path: Path  # where in the document (keys and list indexes)
    message: str
    hint: str


def _type(value: Any) -> str:
    if value is None:
        return "empty (null)"
    return {
        list: "a list",
        dict: "a mapping",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def shape_problems(config: Any) -> list[ShapeProblem]:
    """Every place ``config`` is not shaped like an Alertmanager config ([] when sound)."""
    if not isinstance(config, dict):
        return [
            ShapeProblem(
                (),
                f"the Alertmanager config is {_type(config)}, not a mapping",
                "it needs top-level keys: route:, receivers: (and global:, inhibit_rules:)",
            )
        ]
    out: list[ShapeProblem] = []
    route = config.get("route")
    if not isinstance(route, dict):
        out.append(
            ShapeProblem(
                ("route",),
                f"route: is {_type(route)}, not a mapping" if "route" in config else "no route:",
                "give the root route a receiver: (route: {receiver: NAME, routes: [...]})",
            )
        )
    else:
        if not isinstance(route.get("receiver"), str) or not route.get("receiver"):
            out.append(
                ShapeProblem(
                    ("route", "receiver"),
                    "the root route names no receiver",
                    "every alert no route takes goes to the root's receiver: name one",
                )
            )
        out += _route_problems(route, ("route",))
    out += list(_receiver_problems(config.get("receivers"), "receivers" in config))
    out += list(_inhibit_problems(config.get("inhibit_rules")))
    return out


def _route_problems(route: dict, path: Path) -> list[ShapeProblem]:
    out = list(_matcher_problems(route, "", path))
    if "receiver" in route and not isinstance(route["receiver"], str):
        out.append(ShapeProblem((*path, "receiver"), f"receiver is {_type(route['receiver'])}", ""))
    if "continue" in route and not isinstance(route["continue"], bool):
        out.append(
            ShapeProblem(
                (*path, "continue"),
                f"continue is {_type(route['continue'])}, not true or false",
                "continue: true",
            )
        )
    if "group_by" in route and not isinstance(route["group_by"], list):
        out.append(
            ShapeProblem(
                (*path, "group_by"),
                f"group_by is {_type(route['group_by'])}, not a list",
                "group_by: [alertname, …]",
            )
        )
    children = route.get("routes")
    if children is None:
        return out
    if not isinstance(children, list):
        return [
            *out,
            ShapeProblem(
                (*path, "routes"),
                f"routes: is {_type(children)}, not a list of routes",
                "routes: [{receiver: NAME, matchers: [...]}, …]",
            ),
        ]
    for index, child in enumerate(children):
        where = (*path, "routes", index)
        if not isinstance(child, dict):
            out.append(
                ShapeProblem(
                    where,
                    f"route #{index + 1} is {_type(child)}, not a mapping",
                    "a route is {receiver: NAME, matchers: [...]}",
                )
            )
        else:
            out += _route_problems(child, where)
    return out


def _matcher_problems(node: dict, prefix: str, path: Path) -> Iterator[ShapeProblem]:
    for key in (f"{prefix}match", f"{prefix}match_re"):
        if key in node and not isinstance(node[key], dict | None):
            yield ShapeProblem(
                (*path, key), f"{key} is {_type(node[key])}, not a mapping", "name: value"
            )
    key = f"{prefix}matchers"
    entries = node.get(key)
    if entries is None:
        return
    if not isinstance(entries, list):
        yield ShapeProblem(
            (*path, key), f"{key} is {_type(entries)}, not a list", f"{key}: ['name=\"value\"']"
        )
        return
    for index, entry in enumerate(entries):
        if not isinstance(entry, str):
            yield ShapeProblem(
                (*path, key, index), f"{key} entry is {_type(entry)}", "write it 'name=\"value\"'"
            )
            continue
        try:
            m.parse(entry)
        except OceanError as exc:
            yield ShapeProblem((*path, key, index), str(exc), "Alertmanager refuses it too")
    try:
        if isinstance(node.get(f"{prefix}match_re"), dict):
            for name, value in node[f"{prefix}match_re"].items():
                m.Matcher.of(str(name), "=~", str(value))
    except OceanError as exc:
        yield ShapeProblem((*path, f"{prefix}match_re"), str(exc), "fix the regex")


def _receiver_problems(receivers: Any, present: bool) -> Iterator[ShapeProblem]:
    if receivers is None:
        if present:
            yield ShapeProblem(("receivers",), "receivers: is empty", "define the receivers")
        return
    if not isinstance(receivers, list):
        yield ShapeProblem(
            ("receivers",),
            f"receivers: is {_type(receivers)}, not a list",
            "receivers: [{name: NAME, …}, …]",
        )
        return
    for index, receiver in enumerate(receivers):
        if not isinstance(receiver, dict) or not isinstance(receiver.get("name"), str):
            yield ShapeProblem(
                ("receivers", index),
                f"receiver #{index + 1} is {_type(receiver)} without a name: string",
                "a receiver is {name: NAME, webhook_configs: [...]} (or slack_, email_…)",
            )


def _inhibit_problems(rules: Any) -> Iterator[ShapeProblem]:
    if rules is None:
        return
    if not isinstance(rules, list):
        yield ShapeProblem(("inhibit_rules",), f"inhibit_rules: is {_type(rules)}, not a list", "")
        return
    for index, rule in enumerate(rules):
        where: Path = ("inhibit_rules", index)
        if not isinstance(rule, dict):
            yield ShapeProblem(where, f"inhibit rule #{index + 1} is {_type(rule)}", "")
            continue
        for prefix in ("source_", "target_"):
            yield from _matcher_problems(rule, prefix, where)
        if "equal" in rule and not isinstance(rule["equal"], list | None):
            yield ShapeProblem((*where, "equal"), "equal is not a list of label names", "")
