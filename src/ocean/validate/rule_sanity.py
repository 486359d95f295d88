"""Rule sanity: an alerting rule's ``for:`` against its range windows and the evaluation
interval (check ``rule-for``, kind ``rules``).

promtool accepts any duration in ``for:``, and the generated promtool tests follow
whatever the generator wrote, so a fast-burn alert with ``for: 2h`` passes everything
and pages two hours late, or never. The policy:

1. **A multi-window alert's ``for:`` is at most its shortest window — error.** A rule is
   multi-window when its expression looks at two or more distinct range windows, the
   recording rules it reads counted with their own windows (``slo:sli_error:ratio_rate1h``
   and ``…_rate5m``: 1h and 5m). That is the SRE workbook's multiwindow burn-rate alert:
   the long window says enough budget burnt, the short one that it is still burning, so
   the alert fires within minutes and resets minutes after the burn stops; the workbook
   uses ``for:`` of none or 2m. A ``for:`` beyond the short window delays the page past
   the detection time the windows were chosen for, and drops a burn that stops before
   ``for:`` runs out although the long window says it cost budget worth paging.
   (The generated ones: 1h/5m with 2m, 6h/30m with 15m, 3d/6h with 1h.)
2. **A non-zero ``for:`` shorter than the evaluation interval — warning.** Prometheus
   tests the condition once per evaluation (the group's ``interval:``, else
   prometheus.yml's ``evaluation_interval``), so such a ``for:`` acts as one interval:
   the rule says something it does not do. Harmless, hence a warning.

A single-window rule gets no upper bound: ``rate(…[5m]) > x`` ``for: 15m`` is the usual,
sound way to ask that a condition last. A ``for:`` that is not a duration is left to
promtool-check-rules.

The rules generated from monitoring/slo.yaml (``python -m ocean.slo generate``) are
checked like any other; their findings name the ``for:`` in slo.yaml that produced them,
since that is where the fix goes.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ocean.model import Finding
from ocean.validate import yaml_nodes
from ocean.validate.alert_rules import Rule, duration_seconds, load_rules, prometheus_settings
from ocean.validate.core import check
from ocean.validate.promql import metric_names, range_selectors
from ocean.validate.template_lines import node_line

CHECK = "rule-for"
KIND = "rules"
SLO_FILE = "monitoring/slo.yaml"
GENERATED_MARK = "# GENERATED from monitoring/slo.yaml"


def _own_windows(expr: str) -> set[float]:
    out = set()
    for _, text in range_selectors(expr):
        seconds = duration_seconds(text.split(":", 1)[0].strip())
        if seconds:
            out.add(seconds)
    return out


def windows(rule: Rule, recorded: dict[str, Rule]) -> set[float]:
    """The range windows (seconds) ``rule``'s expression looks at, through the recording
    rules it reads (cycles and unknown names count for nothing)."""
    found: set[float] = set()
    seen: set[str] = set()
    pending = [rule.expr]
    while pending:
        expr = pending.pop()
        found |= _own_windows(expr)
        for name in metric_names(expr):
            if name in recorded and name not in seen:
                seen.add(name)
                pending.append(recorded[name].expr)
    return found


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def for_problems(
    rules: list[Rule], evaluation_interval: float | None
) -> list[tuple[Rule, str, str, str]]:
    """(rule, severity, message, hint) for every ``for:`` the policy refuses (the
    message without the rule's name, so a generated source can name all its rules)."""
    recorded = {r.name: r for r in rules if not r.is_alert}
    out = []
    for rule in rules:
        if not rule.is_alert or rule.for_ is None:
            continue
        wait = duration_seconds(rule.for_)
        if not wait:
            continue  # absent, zero, or not a duration (promtool's)
        spans = sorted(windows(rule, recorded))
        if len(spans) >= 2 and wait > spans[0]:
            shown = "/".join(_span(s) for s in reversed(spans))
            out.append(
                (
                    rule,
                    "error",
                    f"for: {rule.for_} is longer than its shortest window "
                    f"({_span(spans[0])} of {shown}): it fires late, and never for a burn "
                    f"that stops within {rule.for_}",
                    f"use for: {_span(spans[0])} or less (the SRE workbook's multiwindow "
                    "alerts use none or 2m)",
                )
            )
        interval = duration_seconds(rule.group_interval) if rule.group_interval else None
        interval = interval or evaluation_interval
        if interval and wait < interval:
            where = f"group {rule.group!r}" if rule.group_interval else "prometheus.yml"
            out.append(
                (
                    rule,
                    "warning",
                    f"for: {rule.for_} is shorter than the evaluation interval "
                    f"({_span(interval)}, {where}): it acts as {_span(interval)}",
                    f"use for: {_span(interval)} (or more), or for: 0s",
                )
            )
    return out


def _slo_source(root: Path, rule: Rule) -> int | None:
    """The line of the ``for:`` in monitoring/slo.yaml a generated rule came from, when
    it still holds the rule's value (else None: the generated file is stale)."""
    from ocean import slo

    try:
        text = (root / SLO_FILE).read_text()
        data = yaml_nodes.load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(data, dict):
        return None
    candidates: list[tuple[tuple, object]] = []
    alerts = data.get("burn_rate_alerts")
    for index, entry in enumerate(alerts if isinstance(alerts, list) else []):
        if isinstance(entry, dict) and rule.name.endswith(f"BudgetBurn{entry.get('name')}"):
            candidates.append((("burn_rate_alerts", index, "for"), entry.get("for")))
    slos = data.get("slos") if isinstance(data.get("slos"), dict) else {}
    for alert, key in ((slo.DB_ALERT, "db_query_latency"), (slo.CACHE_ALERT, "cache_hit_ratio")):
        if rule.name == alert and isinstance(slos.get(key), dict):
            candidates.append((("slos", key, "for"), slos[key].get("for")))
    for path, value in candidates:
        if str(value) == rule.for_:
            return node_line(text, path)
    return None


@check(kind=KIND, name=CHECK)
def rule_for(root: Path) -> list[Finding]:
    """Every alerting rule's ``for:`` against its range windows and evaluation interval."""
    rules = load_rules(root)
    if not any(r.is_alert for r in rules):
        return []
    interval = prometheus_settings(root).evaluation_interval
    out = []
    generated: dict[str, bool] = {}
    from_slo: dict[tuple[int, str, str, str], list[str]] = {}  # one finding per source line
    for rule, severity, message, hint in for_problems(rules, interval):
        if rule.file not in generated:
            generated[rule.file] = _is_generated(root / rule.file)
        source = _slo_source(root, rule) if generated[rule.file] else None
        if source is not None:
            key = (source, severity, f"{message} (generated into {rule.file})", hint)
            from_slo.setdefault(key, []).append(rule.name)
            continue
        out.append(
            Finding(
                CHECK,
                KIND,
                severity,
                rule.file,
                rule.for_line or rule.line,
                f"{rule.name}: {message}",
                hint,
            )
        )
    for (line, severity, message, hint), names in from_slo.items():
        out.append(
            Finding(
                CHECK,
                KIND,
                severity,
                SLO_FILE,
                line,
                f"{', '.join(names)}: {message}",
                f"{hint}; then run: python -m ocean.slo generate",
            )
        )
    return out


def _is_generated(path: Path) -> bool:
    try:
        return path.read_text().startswith(GENERATED_MARK)
    except (OSError, UnicodeDecodeError):
        return False
