"""Route reachability: which Alertmanager routes the alerts of monitoring/rules can reach.

A misspelt matcher value (``severity="critcal"``) is valid YAML and a valid config:
amtool passes it, and the pager silently never gets an alert. These checks put every
alerting rule's label set (``ocean.validate.alert_rules``: its literal labels,
``alertname``, the external labels; a templated or series label is unknown) through the
rendered routing tree with Alertmanager 0.25's semantics (``ocean.alerting.routes``: the
first matching child takes the alert unless it says ``continue: true``; a route none of
whose children took it keeps it; ``matchers``, ``match`` and ``match_re`` alike).

A matcher on a known label is true or false; on an unknown one it is *maybe*. An alert
*may reach* a route when every matcher on the way down may match and no earlier sibling
without ``continue`` surely takes it first. That over-approximates (two matchers on the
same unknown label are judged apart), so what is reported is certain for the label sets
the rules produce:

- ``alertmanager-reachability``, **error**: a route (not the root) no alert may reach:
  its receiver silently gets nothing from it. The culprit matcher is named, with the
  values the rules produce for its label (and the nearest one: ``did you mean``), or
  the earlier route that takes everything first. An error because it is the mistake that
  pages nobody, and a deploy must stop on it.
- ``alertmanager-reachability``, **error**: a receiver that routes name but no alert
  may reach (the existing ``alertmanager-routes`` reports one no route names).
- ``alertmanager-reachability``, **warning**: an alert that only the default (root)
  route may take. It is still delivered (to the root's receiver), so it does not fail
  the run without ``--strict``; but the default route is the net for what nobody
  foresaw (a new severity, a typo in a rule's label), so every alert the rules produce
  should be routed by intent: give it a route, or a label value one takes.
- ``alertmanager-inhibit``, **warning**: an inhibit rule whose source or target
  matchers no alert may match: it never mutes anything (a typo, or a rule outlived by
  renamed alerts). Alertmanager's muting still works without it, hence a warning.

The root route itself is never "unreachable" (it keeps only what no child takes, and
may rightly keep nothing). Alerts from elsewhere (the delivery drill's synthetic ones,
another Prometheus) are not counted: the drill derives its alerts from the routes.

Findings name the template's line (monitoring/alertmanager/alertmanager.yml), mapped
from the rendered config by ``ocean.validate.template_lines``. A config of the wrong shape
is left to ``alertmanager-config`` (``ocean.validate.alertmanager_shape``): nothing here
walks a tree that is not one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ocean.alerting import matchers as m
from ocean.alerting import routes
from ocean.errors import OceanError
from ocean.model import Finding
from ocean.validate import yaml_nodes
from ocean.validate.alert_rules import (
    PrometheusSettings,
    load_rules,
    prometheus_settings,
    rendered_text,
)
from ocean.validate.alertmanager_shape import shape_problems
from ocean.validate.core import check
from ocean.validate.template_lines import TemplateLines, compose, node_line

ALERTMANAGER_TEMPLATE = "monitoring/alertmanager/alertmanager.yml"
KIND = "alertmanager"
REACHABILITY = "alertmanager-reachability"
INHIBIT = "alertmanager-inhibit"

Verdict = bool | None  # True, False, or None: maybe (it depends on an unknown label)


@dataclass(frozen=True)
class Alert:
    """The labels of one alerting rule's alerts, as far as known before they fire."""

    name: str
    file: str
    line: int | None
    known: Mapping[str, str]  # alertname included
    wild: frozenset[str] = frozenset()  # set to some value nobody knows (templated)
    closed: bool = False  # True: a label neither known nor wild is absent (tests, amtool)

    def verdict(self, matcher: m.Matcher) -> Verdict:
        if matcher.name in self.known:
            return matcher.matches(self.known)
        if self.closed and matcher.name not in self.wild:
            return matcher.matches({})
        return None


def all_of(verdicts: Iterable[Verdict]) -> Verdict:
    """Three-valued AND: False wins, then maybe, else True."""
    result: Verdict = True
    for verdict in verdicts:
        if verdict is False:
            return False
        if verdict is None:
            result = None
    return result


@dataclass(frozen=True)
class Located:
    """A matcher and the YAML path of the entry it was written in."""

    matcher: m.Matcher
    path: tuple[str | int, ...]


@dataclass
class RouteNode:
    """One route of the tree with where it was written and its own matchers."""

    route: routes.Route
    path: tuple[str | int, ...]  # YAML path in the config ("route", "routes", 0, …)
    matchers: list[Located]
    parent: RouteNode | None
    children: list[RouteNode] = field(default_factory=list)

    @property
    def is_root(self) -> bool:
        return self.parent is None

    def describe(self) -> str:
        own = ", ".join(str(x.matcher) for x in self.matchers)
        return f"route to {self.route.receiver!r}" + (f" {{{own}}}" if own else "")

    def walk(self) -> Iterator[RouteNode]:
        yield self
        for child in self.children:
            yield from child.walk()


def located_matchers(node: Mapping, prefix: str, path: tuple) -> list[Located]:
    """A route's (prefix "") or an inhibit rule side's matchers, each with its entry's
    path, in ``ocean.alerting.matchers.from_config``'s order."""
    out: list[Located] = []
    for name, value in (node.get(f"{prefix}match") or {}).items():
        out.append(Located(m.Matcher.of(str(name), "=", str(value)), (*path, f"{prefix}match")))
    for name, value in (node.get(f"{prefix}match_re") or {}).items():
        out.append(Located(m.Matcher.of(str(name), "=~", str(value)), (*path, f"{prefix}match_re")))
    for index, entry in enumerate(node.get(f"{prefix}matchers") or []):
        for matcher in m.parse(str(entry)):
            out.append(Located(matcher, (*path, f"{prefix}matchers", index)))
    return out


def route_tree(config: Mapping[str, Any]) -> RouteNode:
    """The routing tree of a config already found well-shaped (OceanError otherwise)."""
    root = routes.parse(dict(config)).root

    def build(route: routes.Route, raw: Mapping, path: tuple, parent: RouteNode | None):
        node = RouteNode(route, path, located_matchers(raw, "", path), parent)
        raw_children = raw.get("routes") or []
        for index, (child, raw_child) in enumerate(zip(route.routes, raw_children, strict=True)):
            node.children.append(build(child, raw_child, (*path, "routes", index), node))
        return node

    return build(root, config["route"], ("route",), None)


def may_take(tree: RouteNode, alert: Alert) -> list[RouteNode]:
    """The routes that may take ``alert``, in Alertmanager's order (for a closed alert:
    exactly the routes Alertmanager's Route.Match returns)."""
    out: list[RouteNode] = []

    def visit(node: RouteNode) -> None:
        surely_taken = False
        for child in node.children:
            verdict = all_of(alert.verdict(x.matcher) for x in child.matchers)
            if verdict is False:
                continue
            visit(child)
            if verdict is True:
                surely_taken = True
                if not child.route.continues:
                    break  # later siblings never see it
        if not surely_taken:
            out.append(node)

    if all_of(alert.verdict(x.matcher) for x in tree.matchers) is not False:
        visit(tree)
    return out


def alerts_of(root: Path, prometheus: PrometheusSettings | None = None) -> list[Alert]:
    """Every alerting rule's label set (see ocean.validate.alert_rules)."""
    prometheus = prometheus or prometheus_settings(root)
    out = []
    for rule in load_rules(root):
        if not rule.is_alert:
            continue
        known = {**prometheus.external_labels, **rule.labels, "alertname": rule.name}
        wild = set(rule.templated)
        for name in rule.templated:
            known.pop(name, None)
        changed = set(known) - {"alertname"} if prometheus.relabels_everything else set()
        for name in (prometheus.relabelled | changed) & set(known):
            known.pop(name)
            wild.add(name)
        out.append(Alert(rule.name, rule.file, rule.line, known, frozenset(wild)))
    return out


# ---------------------------------------------------------------------------------------
# Reading the rendered config


@dataclass
class RenderedConfig:
    config: Any
    text: str
    lines: TemplateLines
    _tree: Any = field(default=None, repr=False)  # the composed node tree, made once

    def line(self, path: tuple) -> int | None:
        if self._tree is None:
            self._tree = compose(self.text) or False
        return self.lines.line(node_line(self._tree or None, path))


def rendered_alertmanager(root: Path) -> RenderedConfig | None:
    """The rendered alertmanager.yml; None when it does not render or parse (then
    ``alertmanager-config`` reports why)."""
    text = rendered_text(root, ALERTMANAGER_TEMPLATE)
    if text is None:
        return None
    try:
        template = (Path(root) / ALERTMANAGER_TEMPLATE).read_text()
        config = yaml_nodes.load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return RenderedConfig(config, text, TemplateLines(template, text))


def _sound_tree(rendered: RenderedConfig | None) -> RouteNode | None:
    if rendered is None or shape_problems(rendered.config):
        return None
    try:
        return route_tree(rendered.config)
    except (OceanError, ValueError):
        return None  # a bad duration or matcher: alertmanager-config reports it


# ---------------------------------------------------------------------------------------
# Hints


def _values(alerts: Iterable[Alert], label: str) -> list[str]:
    return sorted({a.known[label] for a in alerts if label in a.known})


def _meant(matcher: m.Matcher, alerts: list[Alert]) -> str | None:
    """The value the rules produce that an ``=`` matcher's value looks like a typo of."""
    if matcher.op != "=":
        return None
    close = difflib.get_close_matches(matcher.value, _values(alerts, matcher.name), 1, 0.6)
    return close[0] if close else None


def _value_hint(matcher: m.Matcher, alerts: list[Alert]) -> str:
    values = _values(alerts, matcher.name)
    if not values:
        return f"no alerting rule sets {matcher.name}: add it to the rules' labels"
    shown = ", ".join(f'"{v}"' for v in values)
    hint = f"the rules produce {matcher.name} = {shown}"
    meant = _meant(matcher, alerts)
    if meant is not None:
        return f'did you mean {matcher.name}="{meant}"? ({hint})'
    return hint


def _culprit(matchers: list[Located], alerts: list[Alert]) -> Located | None:
    """The first matcher no alert in ``alerts`` may satisfy (None: it is a combination)."""
    for located in matchers:
        if all(a.verdict(located.matcher) is False for a in alerts):
            return located
    return None


def _entering(node: RouteNode, alerts: list[Alert]) -> list[Alert]:
    """Alerts whose labels may match every matcher above ``node`` (its parent's way)."""
    way = []
    above = node.parent
    while above is not None:
        way += above.matchers
        above = above.parent
    return [a for a in alerts if all_of(a.verdict(x.matcher) for x in way) is not False]


def _shadowing(node: RouteNode, alerts: list[Alert]) -> RouteNode | None:
    """An earlier sibling without ``continue`` that surely takes every alert that may
    match ``node`` (so ``node`` never sees one)."""
    if node.parent is None:
        return None
    matching = [
        a for a in alerts if all_of(a.verdict(x.matcher) for x in node.matchers) is not False
    ]
    for sibling in node.parent.children:
        if sibling is node:
            return None
        if sibling.route.continues or not matching:
            continue
        if all(all_of(a.verdict(x.matcher) for x in sibling.matchers) is True for a in matching):
            return sibling
    return None


# ---------------------------------------------------------------------------------------
# The checks


def reachability_findings(
    tree: RouteNode, rendered: RenderedConfig, alerts: list[Alert]
) -> list[Finding]:
    reached: dict[int, list[Alert]] = {}
    for alert in alerts:
        for node in may_take(tree, alert):
            reached.setdefault(id(node), []).append(alert)
    # A route reached counts for every route above it: they saw the alert on its way.
    seen: set[int] = set(reached)
    for node in tree.walk():
        if id(node) in reached:
            above = node.parent
            while above is not None:
                seen.add(id(above))
                above = above.parent
    out: list[Finding] = []
    stranded: set[str] = set()  # alerts a misspelt matcher sends to the default route
    for node in tree.walk():
        if node.is_root or id(node) in seen or (node.parent and id(node.parent) not in seen):
            continue  # reached, the root, or below a route already reported
        out.append(_unreachable_route(node, rendered, alerts, stranded))
    out += _unreached_receivers(tree, rendered, reached, alerts)
    for alert in alerts:
        taken = may_take(tree, alert)
        if [id(n) for n in taken] == [id(tree)] and tree.children and alert.name not in stranded:
            out.append(_default_only(alert, tree))
    return out


def _unreachable_route(
    node: RouteNode, rendered: RenderedConfig, alerts: list[Alert], stranded: set[str]
) -> Finding:
    entering = _entering(node, alerts)
    culprit = _culprit(node.matchers, entering) if entering else None
    below = sum(1 for _ in node.walk()) - 1
    tail = f" (nor its {below} sub-route{'s' if below > 1 else ''})" if below else ""
    message = f"{node.describe()} is reached by no alert the rules produce{tail}"
    if culprit is not None:
        message += f": no alert has {culprit.matcher}"
        hint = _value_hint(culprit.matcher, entering)
        line = rendered.line(culprit.path)
        meant = _meant(culprit.matcher, entering)
        if meant:
            # The alerts the route was written for: said once here, not once per rule.
            named = [a.name for a in entering if a.known.get(culprit.matcher.name) == meant]
            stranded.update(named)
            message += f"; the {len(named)} alert{'s' if len(named) > 1 else ''} with "
            message += f'{culprit.matcher.name}="{meant}" miss it'
    else:
        shadow = _shadowing(node, entering)
        line = rendered.line(node.path)
        if shadow is not None:
            message += f": the {shadow.describe()} above takes all of them first"
            hint = (
                f"move this route above the one at line {rendered.line(shadow.path)}, "
                "or give that one `continue: true`"
            )
        else:
            hint = "no alert's labels satisfy all of its matchers together: fix the matchers"
    return Finding(REACHABILITY, KIND, "error", ALERTMANAGER_TEMPLATE, line, message, hint)


def _unreached_receivers(
    tree: RouteNode, rendered: RenderedConfig, reached: dict[int, list[Alert]], alerts: list
) -> list[Finding]:
    routed: dict[str, list[RouteNode]] = {}
    for node in tree.walk():
        if not node.is_root:
            routed.setdefault(node.route.receiver, []).append(node)
    getting = {node.route.receiver for node in tree.walk() if id(node) in reached}
    receivers = rendered.config.get("receivers") or []
    out = []
    for name, nodes in routed.items():
        if name in getting:
            continue
        index = next(
            (i for i, r in enumerate(receivers) if isinstance(r, dict) and r.get("name") == name),
            None,
        )
        where = ("receivers", index) if index is not None else nodes[0].path
        lines = ", ".join(str(rendered.line(n.path)) for n in nodes)
        out.append(
            Finding(
                REACHABILITY,
                KIND,
                "error",
                ALERTMANAGER_TEMPLATE,
                rendered.line(where),
                f"receiver {name!r} gets no alert the rules produce: "
                f"no alert reaches its route{'s' if len(nodes) > 1 else ''}",
                f"fix the matchers of its route (line {lines})",
            )
        )
    return out


def _default_only(alert: Alert, tree: RouteNode) -> Finding:
    routed_on: dict[str, set[str]] = {}
    for node in tree.walk():
        for located in node.matchers:
            routed_on.setdefault(located.matcher.name, set()).add(str(located.matcher))
    own = ", ".join(
        f"{k}={alert.known[k]}" for k in sorted(routed_on) if k in alert.known and k != "alertname"
    )
    takes = "; ".join(f"{', '.join(sorted(v))}" for _, v in sorted(routed_on.items()))
    return Finding(
        REACHABILITY,
        KIND,
        "warning",
        alert.file,
        alert.line,
        f"{alert.name}{f' ({own})' if own else ''} is taken by no route but the default "
        f"one (receiver {tree.route.receiver!r}): nothing routes it by intent",
        f"the routes take {takes}: give the rule a label value one of them takes, or add "
        f"a route for it to {ALERTMANAGER_TEMPLATE}",
    )


def inhibit_findings(rendered: RenderedConfig, alerts: list[Alert]) -> list[Finding]:
    out = []
    for index, rule in enumerate(rendered.config.get("inhibit_rules") or []):
        path = ("inhibit_rules", index)
        for side in ("source", "target"):
            try:
                located = located_matchers(rule, f"{side}_", path)
            except OceanError:
                continue  # alertmanager-config reports a bad matcher
            if not located or any(
                all_of(a.verdict(x.matcher) for x in located) is not False for a in alerts
            ):
                continue
            culprit = _culprit(located, alerts)
            what = ", ".join(str(x.matcher) for x in located)
            out.append(
                Finding(
                    INHIBIT,
                    KIND,
                    "warning",
                    ALERTMANAGER_TEMPLATE,
                    rendered.line(culprit.path if culprit else path),
                    f"inhibit rule #{index + 1}: its {side} matchers {{{what}}} match no alert "
                    "the rules produce: it never mutes anything",
                    _value_hint(culprit.matcher, alerts)
                    if culprit
                    else "no alert's labels satisfy them together: fix the matchers",
                )
            )
    return out


@check(kind=KIND, name=REACHABILITY)
def alertmanager_reachability(root: Path) -> list[Finding]:
    """Routes, receivers and alerts the routing tree and the rules leave unconnected."""
    rendered = rendered_alertmanager(root)
    tree = _sound_tree(rendered)
    if tree is None or rendered is None:
        return []
    alerts = alerts_of(root)
    if not alerts:
        return []  # no rules to judge the tree by (a checkout without monitoring/rules)
    return reachability_findings(tree, rendered, alerts)


@check(kind=KIND, name=INHIBIT)
def alertmanager_inhibit(root: Path) -> list[Finding]:
    """Inhibit rules whose source or target matchers no alert of the rules can match."""
    rendered = rendered_alertmanager(root)
    if rendered is None or shape_problems(rendered.config):
        return []
    alerts = alerts_of(root)
    return inhibit_findings(rendered, alerts) if alerts else []
