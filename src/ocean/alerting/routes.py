"""Alertmanager's routing tree in Python: which routes and receivers a label set reaches.

Read from the stack's *rendered* config (``<state>/etc/alertmanager.yml``, written by the
runtime from monitoring/alertmanager/alertmanager.yml), so it routes exactly what the
running Alertmanager routes, with this environment's receivers and timings. The walk is
Alertmanager 0.25's (dispatch/route.go ``Route.Match``): a route that matches offers the
alert to its children in order; the first child that matches takes it unless that child
says ``continue: true``; a route none of whose children took the alert keeps it itself.
Children inherit the receiver, ``group_by`` and the timings they do not set.

Each route gets a name for people: the root is ``default``, a child is named after its
receiver (``pager``), with ``#2``… when the receiver has several routes; ``path`` spells
the way down with the matchers (``default > pager{severity="critical"}``).
``tests/unit/test_alert_routing.py`` holds it against ``amtool config routes test`` for
every label set the alerting rules can produce.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ocean import slo
from ocean.alerting import matchers as m
from ocean.durations import parse_duration
from ocean.errors import OceanError

ROOT_NAME = "default"
CONFIG_FILE = "alertmanager.yml"  # below the settings' etc dir
# Alertmanager's defaults for a root route that sets none (config/config.go).
DEFAULT_TIMINGS = {"group_wait": 30.0, "group_interval": 300.0, "repeat_interval": 14400.0}


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    receiver: str
    matchers: tuple[m.Matcher, ...]
    continues: bool
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    routes: tuple[Route, ...] = ()

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes that take an alert with ``labels`` (Alertmanager's Route.Match)."""
        if not m.matches_all(self.matchers, labels):
            return []
        taken: list[Route] = []
        for child in self.routes:
            found = child.match(labels)
            taken.extend(found)
            if found and not child.continues:
                break
        return taken or [self]

    def walk(self) -> Iterator[Route]:
        yield self
        for child in self.routes:
            yield from child.walk()

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "receiver": self.receiver,
            "group_wait_s": self.group_wait,
        }


@dataclass(frozen=True)
class Routing:
    """A parsed config: the tree, its receivers' configs and its inhibit rules (raw)."""

    root: Route
    receivers: dict[str, dict[str, Any]]
    inhibit_rules: list[dict[str, Any]]
    config: dict[str, Any]

    def routes_for(self, labels: Mapping[str, str]) -> list[Route]:
        return self.root.match(labels)

    def receivers_for(self, labels: Mapping[str, str]) -> list[str]:
        """Receiver names in the order Alertmanager notifies them, each once (``amtool
        config routes test`` prints one per route taken: a receiver twice when two
        routes to it both take the alert)."""
        return list(dict.fromkeys(r.receiver for r in self.routes_for(labels)))

    def routed_receivers(self) -> list[str]:
        """Every receiver some route uses, in tree order."""
        return list(dict.fromkeys(r.receiver for r in self.root.walk()))


def load(path: Path) -> Routing:
    """The routing of a rendered Alertmanager config; one-line OceanError when it is
    missing or malformed."""
    try:
        config = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise OceanError(
            f"{path} does not exist: the stack's Alertmanager config is rendered by `up`"
        ) from None
    except (OSError, yaml.YAMLError) as exc:
        raise OceanError(f"{path}: cannot read it ({str(exc).splitlines()[0]})") from None
    return parse(config, str(path))


def parse(config: Any, where: str = "alertmanager.yml") -> Routing:
    if not isinstance(config, dict) or not isinstance(config.get("route"), dict):
        raise OceanError(f"{where}: no `route:` tree")
    tree = config["route"]
    if not tree.get("receiver"):
        raise OceanError(f"{where}: the root route names no receiver")
    counts = Counter(r.get("receiver") for r in _raw_children(tree))
    seen: Counter = Counter()
    inherited = {"receiver": tree["receiver"], "group_by": (), **DEFAULT_TIMINGS}
    root = _route(tree, inherited, ROOT_NAME, ROOT_NAME, counts, seen, where)
    receivers = {r["name"]: r for r in config.get("receivers") or [] if isinstance(r, dict)}
    return Routing(root, receivers, list(config.get("inhibit_rules") or []), config)


def _raw_children(node: dict) -> Iterator[dict]:
    for child in node.get("routes") or []:
        yield child
        yield from _raw_children(child)


def _route(
    node: dict,
    parent: dict[str, Any],
    name: str,
    path: str,
    counts: Counter,
    seen: Counter,
    where: str,
) -> Route:
    opts = {
        "receiver": node.get("receiver") or parent["receiver"],
        "group_by": tuple(node["group_by"]) if "group_by" in node else parent["group_by"],
    }
    for key in DEFAULT_TIMINGS:
        opts[key] = _seconds(node[key], where, key) if key in node else parent[key]
    children = []
    for child in node.get("routes") or []:
        receiver = child.get("receiver") or opts["receiver"]
        seen[receiver] += 1
        child_name = receiver if counts[receiver] <= 1 else f"{receiver}#{seen[receiver]}"
        selector = "{" + ", ".join(str(x) for x in m.from_config(child)) + "}"
        children.append(
            _route(child, opts, child_name, f"{path} > {receiver}{selector}", counts, seen, where)
        )
    return Route(
        name=name,
        path=path,
        receiver=opts["receiver"],
        matchers=tuple(m.from_config(node)),
        continues=bool(node.get("continue", False)),
        group_by=opts["group_by"],
        group_wait=opts["group_wait"],
        group_interval=opts["group_interval"],
        repeat_interval=opts["repeat_interval"],
        routes=tuple(children),
    )


def _seconds(value: Any, where: str, key: str) -> float:
    text = str(value)
    try:
        return parse_duration(text, key)
    except OceanError:
        pass
    try:
        return float(slo.seconds(text))  # 1d, 1w: Prometheus units the CLI parser lacks
    except ValueError:
        raise OceanError(f"{where}: {key} {text!r} is not a duration") from None
