"""Which alert mutes which: the ``inhibit_rules`` of the rendered Alertmanager config.

Live (``muted_by``), exactly as Alertmanager 0.25 decides it (inhibit/inhibit.go
``Inhibitor.Mutes``): an alert is muted when some rule's target matchers match it and a
firing alert matching that rule's source matchers carries the same value of every
``equal`` label (an absent label is the empty value). An alert matching both sides is
never muted by another alert that also matches both sides, so a rule cannot make two
alerts mute each other.

On paper (``could_mute``), from the alerting rules alone: only the labels a rule sets
itself (alertname, severity, team …) are known before an alert fires; a matcher on any
other label (``instance=~".+"``) is assumed satisfiable, so the answer is "would be
muted by these alerts when both fire on the same <equal labels>".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ocean.alerting import matchers as m

Labels = Mapping[str, str]


@dataclass(frozen=True)
class InhibitRule:
    number: int  # 1-based, in the config's order (as operators count them)
    source: tuple[m.Matcher, ...]
    target: tuple[m.Matcher, ...]
    equal: tuple[str, ...]

    def describe(self) -> str:
        same = f" with the same {', '.join(self.equal)}" if self.equal else ""
        return (
            f"inhibit rule #{self.number}: {{{', '.join(map(str, self.source))}}} mutes "
            f"{{{', '.join(map(str, self.target))}}}{same}"
        )

    def _mutes(self, source: Labels, target: Labels) -> bool:
        if not m.matches_all(self.source, source):
            return False
        if any(source.get(name, "") != target.get(name, "") for name in self.equal):
            return False
        # Alertmanager's excludeTwoSidedMatch: a target that could also be a source is
        # not muted by another alert that could also be a target.
        two_sided = m.matches_all(self.source, target)
        return not (two_sided and m.matches_all(self.target, source))


def rules_of(raw_rules: Iterable[Mapping[str, Any]]) -> list[InhibitRule]:
    return [
        InhibitRule(
            number=index,
            source=tuple(m.from_config(raw, "source_")),
            target=tuple(m.from_config(raw, "target_")),
            equal=tuple(str(name) for name in raw.get("equal") or ()),
        )
        for index, raw in enumerate(raw_rules, start=1)
    ]


def muted_by(
    target: Labels, firing: Iterable[Labels], rules: Iterable[InhibitRule]
) -> tuple[InhibitRule, Labels] | None:
    """The first rule, and the firing alert under it, that mutes ``target``; None when
    nothing does. ``firing`` may include ``target`` itself (it never mutes itself)."""
    firing = list(firing)
    for rule in rules:
        if not m.matches_all(rule.target, target):
            continue
        for source in firing:
            if rule._mutes(source, target):
                return rule, source
    return None


def _could_match(matchers: Iterable[m.Matcher], known: Labels) -> bool:
    """Whether an alert whose rule sets ``known`` can satisfy ``matchers``: a matcher on
    a label the rule does not set depends on the series, so it may."""
    return all(x.matches(known) for x in matchers if x.name in known)


def _surely_matches(matchers: Iterable[m.Matcher], known: Labels) -> bool:
    return all(x.name in known and x.matches(known) for x in matchers)


def could_mute(
    name: str, rule_labels: Mapping[str, Labels], rules: Iterable[InhibitRule]
) -> list[dict[str, Any]]:
    """For the alert ``name`` (its rule's labels in ``rule_labels``): each inhibit rule
    that could mute it, with the alerts that could do so and the labels they must share.
    """
    target = {**rule_labels.get(name, {}), "alertname": name}
    out = []
    for rule in rules:
        if not _could_match(rule.target, target):
            continue
        sources = []
        for other, labels in sorted(rule_labels.items()):
            source = {**labels, "alertname": other}
            if other == name or not _could_match(rule.source, source):
                continue
            known_equal = [n for n in rule.equal if n in source and n in target]
            if any(source[n] != target[n] for n in known_equal):
                continue
            if _surely_matches(rule.source, target) and _surely_matches(rule.target, source):
                continue  # both are surely either side: Alertmanager excludes the pair
            sources.append(other)
        if sources:
            out.append({"rule": rule.number, "sources": sources, "equal": list(rule.equal)})
    return out
