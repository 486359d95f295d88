"""One runbook per generated alert (docs/runbooks/), from the SLOs and the rules."""

from __future__ import annotations

from typing import Any

from ocean.slo.model import HEADER, SLOs, seconds
from ocean.slo.rules import CACHE_ALERT, DB_ALERT, alert_name, num_text, pct_text

_TASKS = """\
## What to do

1. `./ocean status`: which services and shop colors are up, and their health probes.
2. `./ocean logs shop-blue` (and `shop-green`): the shop's JSON log lines; follow one
   request across nginx and the shop by its `trace_id`.
3. Check fault injection is off: `shop_fault_injection_active` on the dashboard, or
   `GET /admin/faults` on the color's admin listener.
4. `./ocean restart SERVICE` for a crashed or wedged service (e.g. `postgres`,
   `redis-master`, `shop-blue`).
5. If it started with a deploy: `invoke rollback` (one nginx reload back to the
   previous color), then find the cause before `invoke deploy` again.
"""


def _runbook(slos: SLOs, rule: dict[str, Any], means: str, causes: list[str]) -> str:
    name = rule["alert"]
    severity = rule["labels"]["severity"]
    how = "pages the on-call" if severity == "critical" else "opens a ticket"
    lines = [
        f"<!-- {HEADER}. -->",
        f"# {name}",
        "",
        f"**Severity:** `{severity}` ({how}), team `{rule['labels']['team']}`."
        " Dashboard: `monitoring/dashboards/slo.json`.",
        "",
        "## What it means",
        "",
        means,
        "",
        "```promql",
        rule["expr"].rstrip(),
        "```",
        "",
        f"Pending for {rule['for']} before it fires.",
        "",
        "## Likely causes",
        "",
        *[f"- {c}" for c in causes],
        "",
        _TASKS,
    ]
    return "\n".join(lines)


def runbooks(slos: SLOs, rule_docs: tuple[dict, dict]) -> dict[str, str]:
    by_name = {r["alert"]: r for g in rule_docs[1]["groups"] for r in g["rules"] if "alert" in r}
    out: dict[str, str] = {}
    for slo in slos.budget_slos:
        for alert in slos.burn_rate_alerts:
            name = alert_name(slo, alert)
            sli = (
                "API requests answered with a 5xx"
                if slo.name == "availability"
                else f"API requests slower than {num_text(slo.threshold_ms or 0)} ms"
            )
            means = (
                f"The share of {sli} over both the last {alert.long} and the last"
                f" {alert.short} is above {num_text(alert.factor)}x the error budget"
                f" ({pct_text(slo.error_budget)} for a {num_text(slo.objective)}% objective over"
                f" {slo.window}). At that rate the whole {slo.window} budget is spent in"
                f" {seconds(slo.window) / alert.factor / 86400:.1f} days. The short window"
                " makes it resolve soon after the problem stops."
            )
            if slo.name == "availability":
                causes = [
                    "A bad deploy of one color (compare `shop:http_errors:ratio_rate5m` by color).",
                    "PostgreSQL or the Redis master down or refusing connections.",
                    "Fault injection (`error_rate`) left on after a drill.",
                    "Overload: connection pool exhausted, lock timeouts answered with 503.",
                ]
            else:
                causes = [
                    "Slow database queries (see ShopDatabaseQueriesSlow,"
                    " `shop:db_query_duration_seconds:p95_5m`).",
                    "A cold or failing product cache (`shop:cache_hit:ratio_rate5m`).",
                    "Lock contention on hot products during checkout bursts.",
                    "CPU saturation on the host, or latency injection (`latency_ms`) left on.",
                ]
            out[name] = _runbook(slos, by_name[name], means, causes)
    db, cache = slos.db_query_latency, slos.cache_hit_ratio
    out[DB_ALERT] = _runbook(
        slos,
        by_name[DB_ALERT],
        f"The p{db.percentile} latency of one named shop query (label `query`) has stayed"
        f" above {num_text(db.threshold_ms)} ms for {db.for_}. User-facing latency suffers next"
        " (ShopLatencyBudgetBurn*).",
        [
            "Row lock waits on hot products (`place_order` locks product rows).",
            "A bulk load (`invoke seed`) just ran: stale statistics, or queries waiting for"
            " its commit.",
            "The connection pool is exhausted (`SHOP_DB_POOL_MAX`) and queries queue.",
            "The host is short of CPU or I/O; PostgreSQL's small local buffer pool.",
        ],
    )
    out[CACHE_ALERT] = _runbook(
        slos,
        by_name[CACHE_ALERT],
        f"Under {num_text(cache.min_percent)}% of lookups in a cache (label `cache`) hit for"
        f" {cache.for_}, while it serves more than {num_text(cache.min_rate)} lookups/s."
        " Misses fall through to PostgreSQL, so database load and latency rise.",
        [
            "The Redis master is down or restarting (errors count as non-hits).",
            "Redis evicting entries at `maxmemory`.",
            "A cold cache after a restart or flush (should recover within minutes).",
            "Many product writes (checkouts, admin changes) replacing entries with tombstones.",
        ],
    )
    return {f"docs/runbooks/{name}.md": text for name, text in out.items()}
