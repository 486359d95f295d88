"""`invoke alerts`: the firing and pending alerts, each with its route and receivers and
whether it is silenced or inhibited (and by what), then the silences in force.

Prometheus knows pending alerts (not yet sent) and firing ones; Alertmanager knows
where a firing alert went (``receivers``) and what mutes it (``silencedBy``,
``inhibitedBy`` fingerprints). The two are joined on labels: Alertmanager's copy carries
Prometheus' external labels too. An alert only Alertmanager holds (a drill's, or one
posted by another sender) is listed as well. Routes and inhibit rules are computed
from the stack's rendered config (routes.py, inhibition.py), so a pending alert shows
where it *will* go. Pure functions of the payloads: ``build`` is unit-tested.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ocean.alerting import inhibition
from ocean.alerting import matchers as m
from ocean.alerting.routes import Routing
from ocean.errors import OceanError
from ocean.freeze import DRILL_LABEL  # set on every alert `alerts drill` injects

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def epoch(text: str | None) -> float | None:
    """RFC 3339 (Prometheus' activeAt, Alertmanager's startsAt/endsAt) → epoch seconds."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _subset(small: Mapping[str, str], big: Mapping[str, str]) -> bool:
    return all(big.get(k) == v for k, v in small.items())


def build(
    prom_alerts: list[dict[str, Any]] | None,
    am_alerts: list[dict[str, Any]] | None,
    silences: list[dict[str, Any]] | None,
    routing: Routing | None,
    rule_labels: Mapping[str, Mapping[str, str]],
    now: float | None = None,
) -> dict[str, Any]:
    """The listing from the APIs' payloads (None: that API could not be reached)."""
    now = time.time() if now is None else now
    held = list(am_alerts or [])
    by_fingerprint = {a.get("fingerprint"): a for a in held}
    rules = inhibition.rules_of(routing.inhibit_rules) if routing else []
    live_labels = [a.get("labels") or {} for a in held]
    rows: list[dict[str, Any]] = []
    matched: set[int] = set()
    for alert in prom_alerts or []:
        labels = alert.get("labels") or {}
        twin = next(
            (i for i, a in enumerate(held) if i not in matched and _subset(labels, a["labels"])),
            None,
        )
        if twin is not None:
            matched.add(twin)
        state = alert.get("state", "firing")
        rows.append(
            _row(
                labels,
                state,
                alert.get("activeAt"),
                alert.get("annotations") or {},
                held[twin] if twin is not None else None,
                "prometheus",
            )
        )
    for index, alert in enumerate(held):
        if index in matched or (alert.get("status") or {}).get("state") == "unprocessed":
            continue
        rows.append(
            _row(
                alert["labels"],
                "firing",
                alert.get("startsAt"),
                alert.get("annotations") or {},
                alert,
                "alertmanager",
            )
        )
    for row in rows:
        _route(row, routing, rules, live_labels, by_fingerprint, rule_labels, now)
        # Alertmanager has not got a pending alert: would a silence in force hide it?
        row["silenced_when_it_fires"] = (
            _silencing(row["labels"], silences or []) if not row["held_by_alertmanager"] else []
        )
    rows.sort(
        key=lambda r: (r["state"] != "firing", SEVERITY_ORDER.get(r["severity"], 3), r["name"])
    )
    return {
        "alerts": rows,
        "silences": _silences(silences or [], held, now),
        "counts": {
            "firing": sum(r["state"] == "firing" for r in rows),
            "pending": sum(r["state"] == "pending" for r in rows),
            "silenced": sum(bool(r["silenced_by"]) for r in rows),
            "inhibited": sum(bool(r["inhibited_by"]) for r in rows),
        },
    }


def _row(
    labels: Mapping[str, str],
    state: str,
    since: str | None,
    annotations: Mapping[str, str],
    held: dict[str, Any] | None,
    source: str,
) -> dict[str, Any]:
    status = (held or {}).get("status") or {}
    return {
        "name": labels.get("alertname", "?"),
        "state": state,
        "severity": labels.get("severity", ""),
        "team": labels.get("team", ""),
        "since": since,
        "summary": annotations.get("summary", ""),
        "labels": dict(labels),
        "source": source,
        "drill": DRILL_LABEL in labels,
        "held_by_alertmanager": held is not None,
        "receivers": [r.get("name", "") for r in (held or {}).get("receivers") or []],
        "silenced_by": list(status.get("silencedBy") or []),
        "inhibited_by": [],
        "_inhibited_fingerprints": list(status.get("inhibitedBy") or []),
        "fingerprint": (held or {}).get("fingerprint", ""),
    }


def _route(
    row: dict[str, Any],
    routing: Routing | None,
    rules: list[inhibition.InhibitRule],
    live: list[Mapping[str, str]],
    by_fingerprint: Mapping[str, dict[str, Any]],
    rule_labels: Mapping[str, Mapping[str, str]],
    now: float,
) -> None:
    labels = row["labels"]
    started = epoch(row["since"])
    row["for_s"] = round(now - started, 1) if started else None
    fingerprints = row.pop("_inhibited_fingerprints")
    if routing is None:
        row.update(routes=[], route_path="", can_be_inhibited_by=[])
        return
    taken = routing.routes_for(labels)
    row["routes"] = [r.name for r in taken]
    row["route_path"] = "; ".join(r.path for r in taken)
    if not row["receivers"]:  # pending, or Alertmanager unreachable: where it will go
        row["receivers"] = routing.receivers_for(labels)
    for fingerprint in fingerprints:
        source = (by_fingerprint.get(fingerprint) or {}).get("labels") or {}
        found = inhibition.muted_by(labels, [source], rules) if source else None
        row["inhibited_by"].append(
            {
                "alert": source.get("alertname", fingerprint),
                "fingerprint": fingerprint,
                "rule": found[0].number if found else None,
                "rule_text": found[0].describe() if found else "",
            }
        )
    if not fingerprints and row["state"] == "pending":
        # Once it fires: would an alert firing now mute it? (Alertmanager cannot say yet.)
        found = inhibition.muted_by(labels, live, rules)
        if found:
            row["inhibited_by"].append(
                {
                    "alert": found[1].get("alertname", "?"),
                    "fingerprint": "",
                    "rule": found[0].number,
                    "rule_text": found[0].describe(),
                    "when_it_fires": True,
                }
            )
    row["can_be_inhibited_by"] = inhibition.could_mute(row["name"], rule_labels, rules)


def _silences(
    silences: list[dict[str, Any]], held: list[dict[str, Any]], now: float
) -> list[dict[str, Any]]:
    out = []
    for silence in silences:
        state = (silence.get("status") or {}).get("state", "")
        if state not in ("active", "pending"):
            continue
        ends = epoch(silence.get("endsAt"))
        silence_id = silence.get("id", "")
        out.append(
            {
                "id": silence_id,
                "state": state,
                "matchers": ", ".join(matcher_text(x) for x in silence.get("matchers") or []),
                "starts_at": silence.get("startsAt"),
                "ends_at": silence.get("endsAt"),
                "ends_in_s": round(ends - now, 1) if ends else None,
                "created_by": silence.get("createdBy", ""),
                "comment": silence.get("comment", ""),
                "silences": sorted(
                    {
                        a["labels"].get("alertname", "?")
                        for a in held
                        if silence_id in ((a.get("status") or {}).get("silencedBy") or [])
                    }
                ),
            }
        )
    out.sort(key=lambda s: (s["state"], s["ends_at"] or ""))
    return out


def _silencing(labels: Mapping[str, str], silences: list[dict[str, Any]]) -> list[str]:
    """The ids of the active silences whose every matcher matches ``labels``."""
    found = []
    for silence in silences:
        if (silence.get("status") or {}).get("state") != "active":
            continue
        try:
            wanted = [_matcher(x) for x in silence.get("matchers") or []]
        except OceanError:
            continue  # a regex Python cannot read: Alertmanager will decide
        if wanted and m.matches_all(wanted, labels):
            found.append(silence.get("id", ""))
    return found


def _matcher(matcher: Mapping[str, Any]) -> m.Matcher:
    regex, equal = bool(matcher.get("isRegex")), matcher.get("isEqual", True)
    op = ("=~" if regex else "=") if equal else ("!~" if regex else "!=")
    return m.Matcher.of(str(matcher.get("name")), op, str(matcher.get("value")))


def matcher_text(matcher: Mapping[str, Any]) -> str:
    equal = matcher.get("isEqual", True)
    op = (
        ("=~" if matcher.get("isRegex") else "=")
        if equal
        else ("!~" if matcher.get("isRegex") else "!=")
    )
    return f'{matcher.get("name")}{op}"{matcher.get("value")}"'
