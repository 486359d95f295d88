"""A load test's result: figures from k6's summary and Prometheus, verdicts per SLO,
where runs are kept, and the comparison of two runs.

A run lives in ``<state>/loadtests/<id>/``: ``params.json`` (what was asked),
``summary.json`` (k6's own end-of-test summary), ``result.json`` (a
:class:`LoadResult`), ``timeseries.json`` (one point per poll), ``chart.html`` and
``k6.log``. Ids start with the UTC start time, so they sort by age.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ocean import slo
from ocean.config import Settings
from ocean.errors import OceanError

THRESHOLDS_FILE = "testing/k6/thresholds.json"  # generated from monitoring/slo.yaml
_THRESHOLD = re.compile(r"^(p\((\d+(?:\.\d+)?)\)|rate|avg|med|max|min|count)\s*<\s*([\d.]+)$")
# A latency rise smaller than this is noise, whatever the ratio (sub-ms p99s double).
LATENCY_FLOOR_MS = 5.0
LOAD_GENERATOR = "load generator"  # a LoadResult.limited_by (loadtest/generator.py)
MACHINE = "machine"  # another: work outside the run took the cores (loadtest/machine.py)
# How an excuse starts when a p99 over its limit rests on too few slow requests to
# show the objective missed (a binomial test: ocean.rollout.analysis.errors_significant).
TOO_FEW_REQUESTS = "too few requests to tell"


def runs_dir(settings: Settings) -> Path:
    return settings.state_dir / "loadtests"


@dataclass(frozen=True)
class ClientLimits:
    """The k6 thresholds (testing/k6/thresholds.json): latency percentile and budget."""

    percentile: float
    latency_ms: float
    error_rate: float

    @classmethod
    def load(cls, repo_root: Path) -> ClientLimits:
        path = repo_root / THRESHOLDS_FILE
        try:
            thresholds = json.loads(path.read_text())["thresholds"]
            duration = _THRESHOLD.match(thresholds["http_req_duration"][0])
            failed = _THRESHOLD.match(thresholds["http_req_failed"][0])
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise OceanError(
                f"{path}: unreadable ({exc}); run `python -m ocean.slo generate`"
            ) from None
        if not duration or not duration[2] or not failed or failed[1] != "rate":
            raise OceanError(f"{path}: expected p(N)<MS and rate<R thresholds")
        return cls(float(duration[2]), float(duration[3]), float(failed[3]))

    @property
    def stat(self) -> str:
        return f"p({self.percentile:g})"


def _values(summary: dict, name: str) -> dict[str, Any]:
    return summary.get("metrics", {}).get(name, {}).get("values", {})


def client_figures(summary: dict) -> dict[str, Any]:
    """What k6 measured over the whole run (its end-of-test summary)."""
    reqs = _values(summary, "http_reqs")
    duration = _values(summary, "http_req_duration")
    failed = _values(summary, "http_req_failed")
    iterations = _values(summary, "iterations")
    checks = _values(summary, "checks")
    vus_max = _values(summary, "vus_max")
    return {
        "requests": int(reqs.get("count", 0)),
        "rps": round(reqs.get("rate", 0.0), 2),
        "iterations": int(iterations.get("count", 0)),
        "failed": int(failed.get("passes", 0)),  # a Rate: passes are the failed requests
        "failed_rate": round(failed.get("rate", 0.0), 6),
        "p50_ms": _round(duration.get("med")),
        "p95_ms": _round(duration.get("p(95)")),
        "p99_ms": _round(duration.get("p(99)")),
        "max_ms": _round(duration.get("max")),
        "checks_rate": _round(checks.get("rate"), 4),
        "vus_max": int(vus_max.get("value", vus_max.get("max", 0)) or 0),
        "dropped_iterations": int(_values(summary, "dropped_iterations").get("count", 0)),
    }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def stress_levels(summary: dict, limits: ClientLimits) -> tuple[list[dict], dict | None]:
    """Per arrival-rate level (stress.js tags requests level=N): what held; and the
    highest level below the first where p99 or errors broke or k6 fell behind (sent
    < 95% of what the level should have sent): the breaking point."""
    plan = summary.get("ocean", {}).get("levels", [])
    rows = []
    for i, level in enumerate(plan):
        reqs = _values(summary, f"http_reqs{{level:{i}}}")
        dur = _values(summary, f"http_req_duration{{level:{i}}}")
        failed = _values(summary, f"http_req_failed{{level:{i}}}")
        count = int(reqs.get("count", 0))
        hold = level["seconds"]
        rps = count / hold if hold else 0.0
        p99 = dur.get(limits.stat) if count else None
        held = (
            count > 0
            and p99 is not None
            and p99 < limits.latency_ms
            and failed.get("rate", 0.0) < limits.error_rate
            and count >= 0.95 * level.get("expected", level["rate"] * hold)
        )
        rows.append(
            {
                "level": i,
                "target_rate": level["rate"],
                "requests": count,
                "rps": round(rps, 1),
                "p99_ms": _round(p99),
                "failed_rate": round(failed.get("rate", 0.0), 6),
                "held": held,
            }
        )
    best = None
    for row in rows:  # the breaking point: the first level that does not hold
        if not row["held"]:
            break
        best = row
    return rows, best


PASS, FAIL, INCONCLUSIVE, NOT_MEASURED = "pass", "fail", "inconclusive", "n/a"
# How front ends spell an outcome.
WORDS = {PASS: "pass", FAIL: "FAIL", INCONCLUSIVE: "inconclusive", NOT_MEASURED: "n/a"}


@dataclass
class Verdict:
    slo: str
    source: str  # client (k6) | server (Prometheus) | browser (Chromium)
    limit: str
    measured: str
    passed: bool | None  # the measurement against the limit; None: not measured
    # Why a failed measurement is not judged (the load generator or the machine limited
    # the run: loadtest/generator.py; too few slow requests to tell); "" when it is.
    excused: str = ""

    @property
    def outcome(self) -> str:
        """pass | fail | inconclusive (failed, but excused) | n/a."""
        if self.passed is None:
            return NOT_MEASURED
        if self.passed:
            return PASS
        return INCONCLUSIVE if self.excused else FAIL

    def detail(self) -> str:
        why = f" ({self.excused})" if self.excused else ""
        return f"{self.measured} vs {self.limit}: {WORDS[self.outcome]}{why}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": self.outcome}


@dataclass
class LoadResult:
    id: str
    scenario: str
    params: dict[str, Any]
    started: float  # epoch seconds
    duration_s: float
    k6_exit: int
    stopped_by: str  # completed | guard | deadline
    client: dict[str, Any]
    server: dict[str, Any]
    verdicts: list[Verdict]
    breach: dict[str, Any] | None = None
    levels: list[dict] = field(default_factory=list)
    breaking_point: dict | None = None
    # Which side limited the run (loadtest/generator.py): "server", "load generator",
    # "machine" or None; the figures behind it (k6's CPU and wait, drops, k6's p99 vs the
    # shop's, other processes' CPU) and one line saying so. Runs saved before these
    # existed load with None, {} and "".
    limited_by: str | None = None
    generator: dict[str, Any] = field(default_factory=dict)
    limit_detail: str = ""
    # The load generator did not deliver the asked load (dropped iterations, k6 late).
    undelivered: bool = False

    @property
    def outcome(self) -> str:
        """fail (a verdict failed or a guard stopped the run), inconclusive (what failed
        was the load generator's doing, or it did not deliver the load), else pass."""
        outcomes = {v.outcome for v in self.verdicts}
        if self.breach is not None or FAIL in outcomes:
            return FAIL
        if self.stopped_by == "deadline" and self.limited_by != LOAD_GENERATOR:
            return FAIL  # k6 hung (runs saved before the load generator was judged)
        if INCONCLUSIVE in outcomes or self.undelivered:
            return INCONCLUSIVE
        return PASS

    @property
    def passed(self) -> bool:
        return self.outcome == PASS

    def headline(self) -> str:
        """passed, FAILED, or inconclusive with the load generator's part in it."""
        outcome = self.outcome
        if outcome != INCONCLUSIVE:
            return {PASS: "passed", FAIL: "FAILED"}[outcome]
        why = next((v.excused for v in self.verdicts if v.excused), "")
        return f"inconclusive: {why or LOAD_GENERATOR + ' fell short of the asked load'}"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdicts"] = [v.as_dict() for v in self.verdicts]
        out["passed"] = self.passed
        out["outcome"] = self.outcome
        out["headline"] = self.headline()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadResult:
        data = {k: v for k, v in data.items() if k not in ("passed", "outcome", "headline")}
        data["verdicts"] = [
            Verdict(**{k: v for k, v in verdict.items() if k != "outcome"})
            for verdict in data.get("verdicts", [])
        ]
        return cls(**data)


def verdicts(
    client: dict, server: dict, limits: ClientLimits, slo_limits: dict[str, float]
) -> list[Verdict]:
    """Pass/fail per SLO with the measured value, client- and server-side."""
    out = [
        Verdict(
            "availability",
            "client",
            f"failed < {limits.error_rate:.2%}",
            f"{client['failed_rate']:.3%} of {client['requests']:,}",
            client["failed_rate"] < limits.error_rate if client["requests"] else None,
        ),
        Verdict(
            "latency",
            "client",
            f"{limits.stat} < {limits.latency_ms:g} ms",
            _ms(client["p99_ms"]),
            None if client["p99_ms"] is None else client["p99_ms"] < limits.latency_ms,
        ),
    ]
    requests = server.get("requests") or 0
    ratio = server.get("error_ratio")
    out.append(
        Verdict(
            "availability",
            "server",
            f"5xx < {slo_limits['error_ratio']:.2%}",
            "-" if ratio is None else f"{ratio:.3%} of {requests:,.0f}",
            None if not requests else ratio <= slo_limits["error_ratio"],
        )
    )
    out.append(_server_latency(server, slo_limits["p99_ms"]))
    db = server.get("db_p95_ms")
    out.append(
        Verdict(
            "db_query_latency",
            "server",
            f"p95 < {slo_limits['db_p95_ms']:g} ms",
            _ms(db),
            None if db is None else db < slo_limits["db_p95_ms"],
        )
    )
    hit = server.get("cache_hit_ratio")
    out.append(
        Verdict(
            "cache_hit_ratio",
            "server",
            f"> {slo_limits['cache_hit_ratio']:.0%}",
            "-" if hit is None else f"{hit:.1%}",
            None if hit is None else hit >= slo_limits["cache_hit_ratio"],
        )
    )
    return out


def _server_latency(server: dict, limit_ms: float) -> Verdict:
    """The shop's p99 against the threshold; a p99 over it that the count of slow
    requests does not back (``slow_significant`` False: procedures/loadtest.py) is
    inconclusive: on a short run the p99 is its few slowest requests."""
    p99, requests = server.get("p99_ms"), server.get("requests") or 0
    verdict = Verdict(
        "latency",
        "server",
        f"p99 < {limit_ms:g} ms",
        _ms(p99),
        None if p99 is None or requests < 20 else p99 <= limit_ms,
    )
    if verdict.passed is False and server.get("slow_significant") is False:
        verdict.excused = (
            f"{TOO_FEW_REQUESTS}: {server['slow']:,} of {requests:,} slower than "
            f"{limit_ms:g} ms is within chance of the objective"
        )
    return verdict


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


# -- storage ----------------------------------------------------------------------------


def save(run_dir: Path, result: LoadResult, series: list[dict]) -> None:
    (run_dir / "result.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    (run_dir / "timeseries.json").write_text(json.dumps(series, indent=1) + "\n")


def run_ids(settings: Settings) -> list[str]:
    root = runs_dir(settings)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "result.json").is_file())


def load(settings: Settings, run_id: str | None = None) -> LoadResult:
    """A saved run (the newest without ``run_id``); OceanError when there is none."""
    ids = run_ids(settings)
    if run_id in (None, ""):
        if not ids:
            raise OceanError("no load test results yet: run `./ocean loadtest --scenario smoke`")
        run_id = ids[-1]
    if "/" in run_id or run_id.startswith("."):
        raise OceanError(f"not a load test id: {run_id!r}")
    path = runs_dir(settings) / run_id / "result.json"
    if not path.is_file():
        hint = f" (newest: {', '.join(ids[-3:])})" if ids else ""
        raise OceanError(f"no load test {run_id!r} in {runs_dir(settings)}{hint}")
    try:
        return LoadResult.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise OceanError(f"{path}: unreadable ({exc})") from None


# -- comparison -------------------------------------------------------------------------

# metric → (where, key, a rise is bad)
COMPARED = (
    ("rps", "client", "rps", False),
    ("p50 ms", "client", "p50_ms", True),
    ("p95 ms", "client", "p95_ms", True),
    ("p99 ms", "client", "p99_ms", True),
    ("failed rate", "client", "failed_rate", True),
    ("server p99 ms", "server", "p99_ms", True),
    ("server 5xx ratio", "server", "error_ratio", True),
    ("db p95 ms", "server", "db_p95_ms", True),
)


def compare(
    base: LoadResult, run: LoadResult, tolerance: float = 0.2, error_budget: float = 0.001
) -> list[dict[str, Any]]:
    """Side by side; ``regression`` where ``run`` is worse than ``base`` beyond
    ``tolerance`` (a fraction: 0.2 = 20%). Latencies must also rise by
    LATENCY_FLOOR_MS, error rates must also exceed the error budget."""
    rows = []
    for label, where, key, rise_is_bad in COMPARED:
        old = getattr(base, where).get(key)
        new = getattr(run, where).get(key)
        change = None
        regression = False
        if old is not None and new is not None:
            change = (new - old) / old if old else (0.0 if new == old else None)
            if rise_is_bad:
                worse = new > old * (1 + tolerance)
                if key.endswith("_ms"):
                    worse = worse and new - old >= LATENCY_FLOOR_MS
                else:  # a rate: only beyond the error budget is it a regression
                    worse = worse and new > error_budget
            else:
                worse = new < old * (1 - tolerance)
            regression = worse
        rows.append(
            {
                "metric": label,
                "base": old,
                "run": new,
                "change": None if change is None else round(change, 4),
                "regression": regression,
            }
        )
    return rows


def page_load_verdict(
    p95_ms: dict[str, dict[str, float]],
    objective: slo.PageLoadSLO,
    pages: tuple[str, ...],
    failure: str = "",
) -> Verdict:
    """page_load from a browser run: every page's p95 load and LCP under slo.yaml's."""
    limit = (
        f"p{objective.percentile:g} load < {objective.threshold_ms:g} ms, "
        f"LCP < {objective.lcp_threshold_ms:g} ms, every page"
    )
    if failure:
        return Verdict("page_load", "browser", limit, f"browser run failed: {failure}", False)
    missing = [page for page in pages if "load" not in p95_ms.get(page, {})]
    if missing:
        return Verdict("page_load", "browser", limit, f"not measured: {', '.join(missing)}", False)
    worst_load = max(pages, key=lambda p: p95_ms[p]["load"])
    worst_lcp = max(pages, key=lambda p: p95_ms[p].get("lcp", 0.0))
    load, lcp = p95_ms[worst_load]["load"], p95_ms[worst_lcp].get("lcp")
    passed = load < objective.threshold_ms and lcp is not None and lcp < objective.lcp_threshold_ms
    measured = f"worst load {load:.0f} ms ({worst_load}), LCP {_ms(lcp)} ({worst_lcp})"
    return Verdict("page_load", "browser", limit, measured, passed)
