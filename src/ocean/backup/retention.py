"""Which backup sets a prune keeps: the last N, and the newest of each of the last N
days, ISO weeks and months (restic/borg semantics: a set kept by any rule is kept),
counting only sets that may restore, and always the newest set proven to restore."""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    last: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0

    def __post_init__(self) -> None:
        for name in ("last", "daily", "weekly", "monthly"):
            if getattr(self, name) < 0:
                raise ValueError(f"--keep-{name} must be 0 or more")

    @property
    def empty(self) -> bool:
        return not (self.last or self.daily or self.weekly or self.monthly)


def _bucket(kind: str, at: float) -> str:
    t = time.gmtime(at)
    if kind == "daily":
        return time.strftime("%Y-%m-%d", t)
    if kind == "weekly":
        year, week, _ = datetime.date(t.tm_year, t.tm_mon, t.tm_mday).isocalendar()
        return f"{year}-W{week:02d}"
    return time.strftime("%Y-%m", t)


def select(sets: Sequence[tuple[str, float]], policy: Policy) -> dict[str, list[str]]:
    """``sets`` as (id, created); returns {id: reasons kept} for every set kept.

    Sets not in the result are to be removed. A policy of all zeros keeps everything
    (a prune must be told what to keep; it never deletes all sets by default)."""
    newest_first = sorted(sets, key=lambda s: (s[1], s[0]), reverse=True)
    if policy.empty:
        return {sid: ["no policy"] for sid, _ in newest_first}
    kept: dict[str, list[str]] = {}
    for sid, _ in newest_first[: policy.last]:
        kept.setdefault(sid, []).append("last")
    for kind, count in (
        ("daily", policy.daily),
        ("weekly", policy.weekly),
        ("monthly", policy.monthly),
    ):
        seen: list[str] = []
        for sid, created in newest_first:
            if len(seen) >= count:
                break
            bucket = _bucket(kind, created)
            if bucket in seen:
                continue
            seen.append(bucket)
            kept.setdefault(sid, []).append(f"{kind} {bucket}")
    return kept


def select_restorable(
    sets: Sequence[tuple[str, float, str]], policy: Policy
) -> dict[str, list[str]]:
    """``sets`` as (id, created, last verification: ok, failed or never); {id: reasons}.

    A set whose verification failed fills no keep rule's place: ``--keep-last 1`` once
    kept the newest set although it had failed and removed the older one that had been
    verified (issue 25, Medium 10). And the newest set verified ok is always kept, so a
    prune never leaves only sets nobody has restored. All zeros keeps everything."""
    if policy.empty:
        return select([(sid, created) for sid, created, _ in sets], policy)
    kept = select([(sid, created) for sid, created, status in sets if status != "failed"], policy)
    verified = [(created, sid) for sid, created, status in sets if status == "ok"]
    if verified:
        kept.setdefault(max(verified)[1], []).append("newest verified set")
    return kept
