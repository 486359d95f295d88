"""Alerting procedures: the listing, silences and the delivery drill (issue 20).

``listing`` returns a report (like ``stack.status``); ``silence``, ``unsilence`` and
``drill`` yield Steps. The front ends reach silence and unsilence through
``ocean.guardrails`` (audited); the logic lives in ``ocean.alerting``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ocean import audit
from ocean.alerting import listing as listings
from ocean.alerting import routes
from ocean.alerting import silences as silencing
from ocean.alerting.api import AlertmanagerApi, NotFound, PrometheusApi
from ocean.errors import OceanError
from ocean.model import Step
from ocean.rollout.freeze import rule_labels
from ocean.runtime.base import Runtime


def routing(runtime: Runtime) -> routes.Routing:
    """The routing of the config the stack's Alertmanager runs (rendered by `up`)."""
    return routes.load(runtime.settings.etc / routes.CONFIG_FILE)


def alert_rules(runtime: Runtime) -> dict[str, dict[str, str]]:
    return rule_labels(runtime.settings.repo_root)


def listing(runtime: Runtime) -> dict[str, Any]:
    """Firing and pending alerts with routes, receivers, silences and inhibitions.

    One of Prometheus and Alertmanager down still lists what the other knows (named in
    ``problems``); both down is an OceanError."""
    problems: list[str] = []
    prom_alerts = am_alerts = silences = None
    try:
        with PrometheusApi(runtime) as prometheus:
            prom_alerts = prometheus.alerts()
    except OceanError as exc:
        problems.append(str(exc))
    try:
        with AlertmanagerApi(runtime) as alertmanager:
            am_alerts = alertmanager.alerts()
            silences = alertmanager.silences()
    except OceanError as exc:
        problems.append(str(exc))
    if prom_alerts is None and am_alerts is None:
        raise OceanError("; ".join(problems))
    try:
        tree = routing(runtime)
    except OceanError as exc:
        tree = None
        problems.append(str(exc))
    report = listings.build(prom_alerts, am_alerts, silences, tree, alert_rules(runtime))
    return {"ok": not problems, "problems": problems, **report}


def silence(runtime: Runtime, request: silencing.SilenceRequest) -> Iterator[Step]:
    """Silence every alert named ``request.alert`` for its duration (checked already:
    ``silences.check``)."""
    body = request.body(audit.who())
    with AlertmanagerApi(runtime) as alertmanager:
        silence_id = alertmanager.create_silence(body)
    yield Step(
        "silenced",
        detail=f"{request.alert} until {body['endsAt']} ({silence_id}): {request.reason}",
        data={"id": silence_id, "alert": request.alert, "ends_at": body["endsAt"]},
    )


def unsilence(runtime: Runtime, silence_id: str) -> Iterator[Step]:
    """End a silence now; an unknown or already ended one is an OceanError."""
    silence_id = silencing.check_id(silence_id)
    with AlertmanagerApi(runtime) as alertmanager:
        try:
            found = alertmanager.silence(silence_id)
        except NotFound:
            raise OceanError(_unknown(silence_id, alertmanager)) from None
        except OceanError as exc:
            if "HTTP 422" in str(exc) or "HTTP 400" in str(exc):  # not even a silence id
                raise OceanError(_unknown(silence_id, alertmanager)) from None
            raise
        state = (found.get("status") or {}).get("state")
        if state == "expired":
            raise OceanError(f"silence {silence_id} already ended at {found.get('endsAt')}")
        alertmanager.expire_silence(silence_id)
    what = ", ".join(listings._matcher_text(x) for x in found.get("matchers") or [])
    yield Step(
        "unsilenced",
        detail=f"{silence_id} ({what}) ended",
        data={"id": silence_id, "matchers": what},
    )


def _unknown(silence_id: str, alertmanager: AlertmanagerApi) -> str:
    active = [
        s["id"]
        for s in alertmanager.silences()
        if (s.get("status") or {}).get("state") in ("active", "pending")
    ]
    known = f"active: {', '.join(active)}" if active else "no silence is active"
    return f"no silence {silence_id!r} in Alertmanager ({known})"
