"""The deploy freeze policy: which firing alerts refuse a deploy, and which only warn.

A deploy is frozen while customers are hurt: the shop's own paging alerts (its SLO
burn-rate alerts, generated from monitoring/slo.yaml, and its availability alerts) carry
``team: shop`` (slo.yaml's ``team``) and ``severity: critical``. Everything else that
fires (notification failures, an exporter or a target down, a backup check,
certificate expiry …) is plumbing: preflight names it as a warning, and the deploy goes
on. The policy lives with the environment (``deploy.freeze`` in stack/environments)::

    deploy:
      freeze:
        teams: [shop]            # an alert freezes when its `team` label is listed …
        severities: [critical]   # … and its `severity` label too,
        alerts: [ShopPaymentFailureRatioHigh]   # or when it is named here;
        ignore: [Watchdog]       # never these (neither a freeze nor a warning)

``problems`` checks a policy against the alerting rules in monitoring/rules: a name no
rule defines, or a team or severity no rule carries, is an error (a typo would
otherwise leave deploys unfrozen). No invoke/textual imports here.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from ocean.environments import Environment

RULES_DIR = Path("monitoring") / "rules"  # below the checkout root
KEY = "deploy.freeze"
# Policy key → the alert label it matches.
LABEL_KEYS = {"teams": "team", "severities": "severity"}
NAME_KEYS = ("alerts", "ignore")
# `alerts drill` marks its synthetic alerts with this label (ocean/alerting/drill.py):
# a drill proves delivery and must never freeze (or warn about) a deploy.
DRILL_LABEL = "drill_id"
# Every environment load reads the rules: libyaml's loader parses them 5x faster.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class FreezeDecision:
    """What the firing alerts mean for a deploy: ``frozen`` refuse it (unless forced),
    ``warned`` are shown and let it pass. Alert names, sorted, each once."""

    frozen: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {"frozen": list(self.frozen), "warned": list(self.warned)}


@dataclass(frozen=True)
class FreezePolicy:
    teams: frozenset[str] = frozenset({"shop"})
    severities: frozenset[str] = frozenset({"critical"})
    alerts: frozenset[str] = frozenset()
    ignore: frozenset[str] = frozenset()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FreezePolicy:
        return cls(
            teams=frozenset(data.get("teams") or ()),
            severities=frozenset(data.get("severities") or ()),
            alerts=frozenset(data.get("alerts") or ()),
            ignore=frozenset(data.get("ignore") or ()),
        )

    @classmethod
    def from_env(cls, env: Environment) -> FreezePolicy:
        """The environment's ``deploy.freeze`` (base.yaml, overridden per environment);
        this module's defaults for a definition without one."""
        try:
            return cls.from_dict(env[KEY])
        except KeyError:
            return cls()

    def freezes(self, labels: Mapping[str, str]) -> bool:
        """Whether an alert with these labels (``alertname`` among them) freezes deploys."""
        name = labels.get("alertname", "")
        if name in self.ignore:
            return False
        if name in self.alerts:
            return True
        return labels.get("team") in self.teams and labels.get("severity") in self.severities

    def decide(self, alerts: Iterable[Mapping[str, Any]]) -> FreezeDecision:
        """Sort Prometheus' alerts (``/api/v1/alerts`` entries: ``state``, ``labels``):
        firing ones freeze or warn, ignored, pending and drill ones count for nothing."""
        frozen: set[str] = set()
        warned: set[str] = set()
        for alert in alerts:
            if alert.get("state", "firing") != "firing":
                continue
            labels = alert.get("labels") or {}
            name = labels.get("alertname", "?")
            if name in self.ignore or DRILL_LABEL in labels:
                continue
            (frozen if self.freezes(labels) else warned).add(name)
        # An alert that freezes for one series never also warns for another.
        return FreezeDecision(sorted(frozen), sorted(warned - frozen))


# -- checking a policy against the rules --------------------------------------------------


def rule_labels(root: Path) -> dict[str, dict[str, str]]:
    """{alert name: its rule's labels} of every alerting rule in ``root``/monitoring/rules
    (empty when there is no such folder). Unreadable files count for nothing here:
    `invoke validate` reports them on their own."""
    folder = root / RULES_DIR
    files = tuple(
        (str(p), p.stat().st_mtime_ns) for p in sorted(folder.glob("*.yml")) if p.is_file()
    )
    return dict(_rule_labels(files))


@functools.lru_cache(maxsize=8)
def _rule_labels(files: tuple[tuple[str, int], ...]) -> tuple[tuple[str, dict], ...]:
    found: dict[str, dict[str, str]] = {}
    for path, _ in files:
        try:
            data = yaml.load(Path(path).read_text(), Loader=_LOADER)  # nosec B506  # a safe loader
        except (OSError, yaml.YAMLError):
            continue
        groups = data.get("groups") if isinstance(data, dict) else None
        for group in groups if isinstance(groups, list) else []:
            rules = group.get("rules") if isinstance(group, dict) else None
            for rule in rules if isinstance(rules, list) else []:
                if isinstance(rule, dict) and isinstance(rule.get("alert"), str):
                    labels = rule.get("labels") if isinstance(rule.get("labels"), dict) else {}
                    found[rule["alert"]] = {str(k): str(v) for k, v in labels.items()}
    return tuple(found.items())


def problems(policy: Mapping[str, Any], rules: Mapping[str, Mapping[str, str]]) -> Iterator[tuple]:
    """(dotted key, message) for every entry of ``policy`` (an environment's
    ``deploy.freeze``, already of the right shape) that no rule in ``rules`` backs."""
    if not rules:
        return  # no rules to check against (a checkout without monitoring/rules)
    for key in NAME_KEYS:
        for name in policy.get(key) or ():
            if name not in rules:
                yield (
                    f"{KEY}.{key}",
                    f"{name!r} is not an alert of {RULES_DIR}{_close(name, rules)}",
                )
    for key, label in LABEL_KEYS.items():
        carried = sorted({labels[label] for labels in rules.values() if label in labels})
        for value in policy.get(key) or ():
            if value not in carried:
                yield (
                    f"{KEY}.{key}",
                    f"{value!r}: no alert rule of {RULES_DIR} carries {label}={value!r} "
                    f"(they carry: {', '.join(carried)})",
                )
    both = sorted(set(policy.get("alerts") or ()) & set(policy.get("ignore") or ()))
    if both:
        yield f"{KEY}.ignore", f"{', '.join(both)} also in {KEY}.alerts: choose one"


def _close(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
