"""A load test's verdicts and a comparison of two runs, as `invoke loadtest-report` and
the console's Load test screen show them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ocean.loadtest import results

TONE = {
    results.PASS: "good",
    results.FAIL: "bad",
    results.INCONCLUSIVE: "warn",
    results.NOT_MEASURED: "muted",
}


@dataclass(frozen=True)
class VerdictRow:
    slo: str
    source: str
    measured: str
    limit: str
    word: str  # pass, FAIL, inconclusive, n/a
    excused: str  # why a failed measurement is not judged; "" when it is
    tone: str


@dataclass(frozen=True)
class ComparisonRow:
    metric: str
    base: str
    run: str
    change: str  # +12%, or - where there is nothing to compare
    regression: bool


@dataclass(frozen=True)
class Comparison:
    rows: list[ComparisonRow]
    # What makes the comparison weaker: the runs were asked for different loads, or
    # the load generator or the machine limited one of them. Said as warnings.
    notes: list[str]
    regressions: list[str]
    summary: str  # "2 regression(s) beyond 20%: p99 ms, …" or "no regression beyond 20%"


def verdict_rows(verdicts: list[dict[str, Any]]) -> list[VerdictRow]:
    """A saved run's verdicts (LoadResult.as_dict()'s), one row each."""
    rows = []
    for v in verdicts:
        outcome = v.get("outcome") or results.Verdict(**v).outcome
        rows.append(
            VerdictRow(
                v["slo"],
                v["source"],
                v["measured"],
                v["limit"],
                results.WORDS[outcome],
                v.get("excused") or "",
                TONE[outcome],
            )
        )
    return rows


def comparison(report: dict[str, Any]) -> Comparison:
    """``procedures.loadtest.report(…, compare=…)``'s rows, notes and summary; its
    regressions already weigh error rates against the SLO's error budget."""
    notes = []
    if report["differs"]:
        notes.append(f"runs differ in: {', '.join(report['differs'])}")
    notes += [
        f"{limited} was limited by the load generator: its figures measure k6 as much as the shop"
        for limited in report.get("load_generator_limited", [])
    ]
    notes += [
        f"{limited} ran while other processes took the cores: its figures measure the "
        "machine as much as the shop"
        for limited in report.get("machine_limited", [])
    ]
    rows = [
        ComparisonRow(
            row["metric"],
            figure(row["base"]),
            figure(row["run"]),
            "-" if row["change"] is None else f"{row['change']:+.0%}",
            bool(row["regression"]),
        )
        for row in report["rows"]
    ]
    found = report["regressions"]
    beyond = f"beyond {report['tolerance']:.0%}"
    summary = (
        f"{len(found)} regression(s) {beyond}: {', '.join(found)}"
        if found
        else f"no regression {beyond}"
    )
    return Comparison(rows, notes, list(found), summary)


def figure(value: float | None) -> str:
    return "-" if value is None else f"{value:,.4g}"
