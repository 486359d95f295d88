"""The alerting and recording rules of monitoring/rules, as the semantic checks read them,
and what Prometheus adds to every alert it sends (external labels, relabelling).

Robust by design: a file that is not YAML, a group that is a string, a rule without
``expr`` … is skipped here (``promtool-check-rules`` reports it with its reason), so a
check built on this never crashes on a broken rule file.

An alert's labels, as far as they are known before it fires:

- ``alertname`` (the rule's name) and every literal value of the rule's ``labels:``;
- a label whose value is a template (``{{ $labels.team }}``) has *some* value:
  ``templated``, a wildcard for the checks;
- the global ``external_labels`` of prometheus.yml, which Prometheus adds when it sends
  (a rule's own label of the same name wins);
- any other label comes from the series the expression returns: unknown to an offline
  check (it may be absent or have any value).

``alerting.alert_relabel_configs`` can rewrite labels on the way to Alertmanager: a label
it writes (``target_label``) becomes unknown, and a labelmap/labeldrop/labelkeep makes
every label but ``alertname`` unknown.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

from ocean.errors import OceanError
from ocean.validate import yaml_nodes
from ocean.validate.rendering import rendering

RULES_DIR = "monitoring/rules"
PROMETHEUS_TEMPLATE = "monitoring/prometheus/prometheus.yml"
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "y": 365 * 86400,
}


def duration_seconds(text: Any) -> float | None:
    """A Prometheus duration (``1h30m``, ``5m``, ``0s``, ``500ms``) in seconds; None when
    ``text`` is not one."""
    if not isinstance(text, str) or not text:
        return None
    total, position = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += int(match[1]) * _UNIT_SECONDS[match[2]]
        position = match.end()
    return total if position == len(text) else None


@dataclass(frozen=True)
class Rule:
    file: str  # relative to the checked root
    line: int | None  # the rule's first line (`- alert:` / `- record:`)
    group: str
    group_interval: str | None  # the group's own `interval:`, None: the global one
    name: str
    is_alert: bool
    expr: str
    for_: str | None = None  # as written
    for_line: int | None = None
    labels: dict[str, str] = field(default_factory=dict)  # literal values
    templated: frozenset[str] = frozenset()  # label names whose value is a template


def rule_files(root: Path) -> list[Path]:
    return sorted((Path(root) / RULES_DIR).glob("*.yml"))


# libyaml when present: the rule files parse ≈ 10× faster (marks included).


def load_rules(root: Path) -> list[Rule]:
    """Every well-formed rule of monitoring/rules/*.yml, in file order (remembered per
    file content stamp: several checks read them in one run)."""
    stamps = []
    for path in rule_files(root):
        try:
            stat = path.stat()
        except OSError:
            continue
        stamps.append(
            (str(path), path.relative_to(root).as_posix(), stat.st_mtime_ns, stat.st_size)
        )
    return [rule for stamp in stamps for rule in _file_rules(*stamp)]


@functools.lru_cache(maxsize=256)
def _file_rules(path: str, rel: str, mtime_ns: int, size: int) -> tuple[Rule, ...]:
    try:
        text = Path(path).read_text()
        node = yaml_nodes.compose(text)
        data = yaml_nodes.load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return ()
    return tuple(_rules_of(rel, node, data))


def _mapping_entry(node: Any, key: str) -> tuple[Any, Any]:
    """(key node, value node) of ``key`` in a MappingNode; (None, None) when absent."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if getattr(k, "value", None) == key:
                return k, v
    return None, None


def _rules_of(rel: str, node: Any, data: Any) -> list[Rule]:
    groups = data.get("groups") if isinstance(data, dict) else None
    _, group_nodes = _mapping_entry(node, "groups")
    if not isinstance(groups, list) or not isinstance(group_nodes, yaml.SequenceNode):
        return []
    out = []
    for group, group_node in zip(groups, group_nodes.value, strict=False):
        rules = group.get("rules") if isinstance(group, dict) else None
        _, rule_nodes = _mapping_entry(group_node, "rules")
        if not isinstance(rules, list) or not isinstance(rule_nodes, yaml.SequenceNode):
            continue
        interval = group.get("interval")
        for rule, rule_node in zip(rules, rule_nodes.value, strict=False):
            parsed = _rule(rel, str(group.get("name", "")), interval, rule, rule_node)
            if parsed is not None:
                out.append(parsed)
    return out


def _rule(rel: str, group: str, interval: Any, rule: Any, node: Any) -> Rule | None:
    if not isinstance(rule, dict) or not isinstance(rule.get("expr"), str | int | float):
        return None
    name = rule.get("alert", rule.get("record"))
    if not isinstance(name, str) or not name:
        return None
    labels = rule.get("labels") if isinstance(rule.get("labels"), dict) else {}
    literal = {str(k): str(v) for k, v in labels.items() if "{{" not in str(v)}
    templated = frozenset(str(k) for k, v in labels.items() if "{{" in str(v))
    for_key, _ = _mapping_entry(node, "for")
    for_ = rule.get("for")
    return Rule(
        file=rel,
        line=node.start_mark.line + 1,
        group=group,
        group_interval=str(interval) if interval is not None else None,
        name=name,
        is_alert="alert" in rule,
        expr=str(rule["expr"]),
        for_=str(for_) if for_ is not None else None,
        for_line=for_key.start_mark.line + 1 if for_key is not None else None,
        labels=literal,
        templated=templated,
    )


@dataclass(frozen=True)
class PrometheusSettings:
    """What rendered prometheus.yml says about alerts: the labels it adds, the global
    evaluation interval, and which labels alert relabelling may change."""

    external_labels: dict[str, str] = field(default_factory=dict)
    evaluation_interval: float | None = None  # seconds; None when unreadable
    relabelled: frozenset[str] = frozenset()  # labels relabelling may rewrite
    relabels_everything: bool = False


# Prometheus's default evaluation interval (config/config.go DefaultGlobalConfig).
DEFAULT_EVALUATION_INTERVAL = 60.0


ALERTMANAGER_TEMPLATE = "monitoring/alertmanager/alertmanager.yml"
RENDERED = (PROMETHEUS_TEMPLATE, ALERTMANAGER_TEMPLATE)


def _stamp(path: Path) -> tuple[str, int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (str(path), 0, -1)
    return (str(path), stat.st_mtime_ns, stat.st_size)


def rendered_text(root: Path, template: str) -> str | None:
    """``template`` (one of RENDERED) rendered as the local runtime would; None when it
    does not render (``prometheus-config`` / ``alertmanager-config`` report why).

    Both are rendered in one context and remembered by the stamps of the templates, the
    environment files and the OCEAN_* variables: a context costs two bcrypt hashes
    (≈ 0.4 s), and the route, inhibit and rule checks all read them.
    """
    root = Path(root)
    stamps = [_stamp(root / t) for t in RENDERED]
    stamps += [_stamp(p) for p in sorted((root / "stack" / "environments").glob("*.yaml"))]
    # The receivers and settings an environment's OCEAN_* variables choose, too.
    stamps += sorted((k, v) for k, v in os.environ.items() if k.startswith("OCEAN_"))
    return _render_all(str(root), tuple(stamps)).get(template)


@functools.lru_cache(maxsize=16)
def _render_all(root: str, stamps: tuple) -> dict[str, str | None]:
    out: dict[str, str | None] = dict.fromkeys(RENDERED)
    try:
        with rendering(Path(root)) as rendered:
            for template in RENDERED:
                with contextlib.suppress(OSError, UnicodeDecodeError, jinja2.TemplateError):
                    out[template] = rendered.render(template)
    except (OSError, ValueError, KeyError, OceanError, jinja2.TemplateError):
        pass  # no context (a broken environment file): environment-checks report it
    return out


def prometheus_settings(root: Path) -> PrometheusSettings:
    """The rendered prometheus.yml's alert settings; defaults when it does not render or
    parse (``prometheus-config`` reports that)."""
    text = rendered_text(root, PROMETHEUS_TEMPLATE)
    try:
        config = yaml_nodes.load(text) if text is not None else None
    except yaml.YAMLError:
        return PrometheusSettings()
    if not isinstance(config, dict):
        return PrometheusSettings()
    glob = config.get("global") if isinstance(config.get("global"), dict) else {}
    external = glob.get("external_labels") if isinstance(glob.get("external_labels"), dict) else {}
    interval = glob.get("evaluation_interval")
    seconds = duration_seconds(interval) if interval is not None else DEFAULT_EVALUATION_INTERVAL
    alerting = config.get("alerting") if isinstance(config.get("alerting"), dict) else {}
    relabels = alerting.get("alert_relabel_configs")
    relabelled: set[str] = set()
    everything = False
    for relabel in relabels if isinstance(relabels, list) else []:
        if not isinstance(relabel, dict):
            continue
        action = str(relabel.get("action", "replace")).lower()
        if action in ("labelmap", "labeldrop", "labelkeep"):
            everything = True
        elif relabel.get("target_label"):
            relabelled.add(str(relabel["target_label"]))
    return PrometheusSettings(
        external_labels={str(k): str(v) for k, v in external.items()},
        evaluation_interval=seconds,
        relabelled=frozenset(relabelled),
        relabels_everything=everything,
    )
