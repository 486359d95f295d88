"""Validation checks of the Grafana dashboards (monitoring/dashboards/*.json): structure,
datasources, $__rate_interval in rate-like functions, and every query parsed by promtool."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ocean.model import Finding
from ocean.validate.core import check, program
from ocean.validate.promql import (
    FUNCTIONS_WANTING_RATE_INTERVAL,
    check_expressions,
    range_selectors,
)
from ocean.validate.tools import line_of, missing_package, rel_path

DASHBOARDS = ("monitoring/dashboards/*.json",)  # what the dashboard checks read


def dashboard_files(root: Path) -> list[Path]:
    return sorted((root / "monitoring" / "dashboards").glob("*.json"))


def all_panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def expressions(dashboard: dict) -> Iterator[tuple[str, str, str]]:
    """(panel title or annotation name, refId, expr) of every PromQL query."""
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield panel.get("title", "?"), target.get("refId", "?"), target["expr"]
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            yield f"annotation {annotation.get('name', '?')}", "-", annotation["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            query = query.get("query", "") if isinstance(query, dict) else query or ""
            # label_values(metric, label) and friends are Grafana functions, not PromQL.
            inner = re.fullmatch(r"\s*query_result\((.*)\)\s*", query, re.S)
            if inner:
                yield f"variable {variable.get('name')}", "-", inner.group(1)
            elif query and not re.match(r"\s*(label_names|label_values|metrics)\(", query):
                yield f"variable {variable.get('name')}", "-", query


def is_templated(datasource: object) -> bool:
    if isinstance(datasource, str):
        return datasource in ("${datasource}", "$datasource")
    if isinstance(datasource, dict):
        return datasource.get("uid") in ("${datasource}", "$datasource")
    return False


def datasource_problems(dashboard: dict) -> list[str]:
    """What is not on the templated ${datasource} variable ([] when all is)."""
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    wrong = []
    ds = variables.get("datasource") or {}
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        wrong.append("no `datasource` variable of type datasource, query prometheus")
    for panel in all_panels(dashboard):
        if panel.get("type") == "row" or not panel.get("targets"):
            continue  # rows and text panels query nothing
        if not is_templated(panel.get("datasource")):
            wrong.append(f"panel {panel.get('title')!r}: {panel.get('datasource')!r}")
        for target in panel.get("targets", []):
            # A target may inherit the panel's data source; a named one must be templated.
            if "datasource" in target and not is_templated(target["datasource"]):
                wrong.append(f"panel {panel.get('title')!r}/{target.get('refId')}")
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if not annotation.get("builtIn") and not is_templated(annotation.get("datasource")):
            wrong.append(f"annotation {annotation.get('name')!r}")
    for variable in variables.values():
        if variable.get("type") == "query" and not is_templated(variable.get("datasource")):
            wrong.append(f"variable {variable.get('name')!r}")
    return wrong


def rate_interval_problems(dashboard: dict) -> list[str]:
    documented = {
        panel.get("title")
        for panel in all_panels(dashboard)
        if "fixed window" in panel.get("description", "").lower()
    }
    return [
        f"{title}/{ref_id}: {function}[{window}]"
        for title, ref_id, expr in expressions(dashboard)
        for function, window in range_selectors(expr)
        if FUNCTIONS_WANTING_RATE_INTERVAL.match(function)
        and window != "$__rate_interval"
        and title not in documented
    ]


def _load_dashboards(root: Path, check_name: str) -> tuple[list[tuple[Path, dict]], list[Finding]]:
    loaded, out = [], []
    for path in dashboard_files(root):
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            out.append(
                Finding(
                    check_name,
                    "dashboards",
                    "error",
                    rel_path(root, path),
                    exc.lineno,
                    f"invalid JSON: {exc.msg}",
                    "fix the JSON syntax",
                )
            )
            continue
        if not isinstance(doc, dict):
            out.append(
                Finding(
                    check_name,
                    "dashboards",
                    "error",
                    rel_path(root, path),
                    1,
                    "a dashboard is a JSON object",
                    "",
                )
            )
            continue
        loaded.append((path, doc))
    return loaded, out


def _title_line(path: Path, title: str) -> int | None:
    return line_of(path, f'"title": {json.dumps(title)}')


@check(kind="dashboards", name="dashboard-structure", inputs=DASHBOARDS)
def dashboard_structure(root: Path) -> list[Finding]:
    """Valid JSON, a title and uid, unique panel ids, unique uids and titles."""
    loaded, out = _load_dashboards(root, "dashboard-structure")
    uids: dict[str, str] = {}
    for path, doc in loaded:
        rel = rel_path(root, path)

        def bad(message: str, line: int | None = None, hint: str = "", rel: str = rel) -> None:
            out.append(
                Finding("dashboard-structure", "dashboards", "error", rel, line, message, hint)
            )

        if not doc.get("title"):
            bad("a dashboard needs a title")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", str(doc.get("uid", ""))):
            bad("uid: 1-40 of [A-Za-z0-9_-]", line_of(path, '"uid"'))
        elif doc["uid"] in uids:
            bad(f"uid {doc['uid']!r} is also {uids[doc['uid']]}'s", line_of(path, '"uid"'))
        else:
            uids[doc["uid"]] = rel
        seen: dict[Any, str] = {}
        for panel in all_panels(doc):
            pid = panel.get("id")
            title = str(panel.get("title", "?"))
            if pid is None:
                bad(f"panel {title!r} has no id", _title_line(path, title), "give it a unique id")
            elif pid in seen:
                bad(
                    f"panel id {pid} is used by {seen[pid]!r} and {title!r}",
                    _title_line(path, title),
                    "panel ids must be unique within a dashboard",
                )
            else:
                seen[pid] = title
    return out


@check(kind="dashboards", name="dashboard-datasource", inputs=DASHBOARDS)
def dashboard_datasource(root: Path) -> list[Finding]:
    """Every query uses the templated ${datasource} variable."""
    loaded, _ = _load_dashboards(root, "dashboard-datasource")
    return [
        Finding(
            "dashboard-datasource",
            "dashboards",
            "error",
            rel_path(root, path),
            _title_line(path, problem.split("'")[1]) if "'" in problem else None,
            f"not on the templated datasource: {problem}",
            'use "datasource": {"type": "prometheus", "uid": "${datasource}"}',
        )
        for path, doc in loaded
        for problem in datasource_problems(doc)
    ]


@check(kind="dashboards", name="dashboard-rate-interval", inputs=DASHBOARDS)
def dashboard_rate_interval(root: Path) -> list[Finding]:
    """rate/increase/*_over_time ranges use $__rate_interval (unless a 'fixed window')."""
    loaded, _ = _load_dashboards(root, "dashboard-rate-interval")
    return [
        Finding(
            "dashboard-rate-interval",
            "dashboards",
            "warning",
            rel_path(root, path),
            _title_line(path, problem.split("/")[0]),
            f"fixed range: {problem}",
            "use [$__rate_interval], or say 'fixed window' in the panel description",
        )
        for path, doc in loaded
        for problem in rate_interval_problems(doc)
    ]


@check(kind="dashboards", name="dashboard-queries", inputs=DASHBOARDS)
def dashboard_queries(root: Path) -> list[Finding]:
    """Every PromQL expression of every dashboard parses (promtool, one run for all)."""
    promtool = program("promtool")
    if promtool is None:
        return missing_package("promtool", "dashboard-queries", "dashboards", "prometheus")
    loaded, _ = _load_dashboards(root, "dashboard-queries")
    exprs: list[tuple[str, str]] = []
    where: dict[str, tuple[Path, str]] = {}
    for path, doc in loaded:
        for index, (title, ref_id, expr) in enumerate(expressions(doc)):
            label = f"{path.name} | {title} | {ref_id} #{index}"
            exprs.append((label, expr))
            where[label] = (path, title)
    if not exprs:
        return []
    out = []
    with tempfile.TemporaryDirectory(prefix="ocean-validate-") as tmp:
        report = check_expressions(promtool, exprs, Path(tmp))
    for line in report.splitlines():
        match = re.search(r'group "([^"]*)", rule \d+, "[^"]*": (.*)', line)
        if not match:
            continue
        path, title = where.get(match.group(1), (None, ""))
        out.append(
            Finding(
                "dashboard-queries",
                "dashboards",
                "error",
                rel_path(root, path) if path else "",
                _title_line(path, title) if path else None,
                f"{match.group(1)}: {match.group(2)}",
                "fix the PromQL (Grafana variables are substituted before parsing)",
            )
        )
    if report and not out:
        out.append(Finding("dashboard-queries", "dashboards", "error", "", None, report[:500], ""))
    return out
