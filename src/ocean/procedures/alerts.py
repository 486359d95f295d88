"""Alerting procedures: the listing, silences and the delivery drill (issue 20).

``listing`` returns a report (like ``stack.status``); ``silence``, ``unsilence`` and
``drill`` yield Steps. The front ends reach silence and unsilence through
``ocean.guardrails`` (audited); the logic lives in ``ocean.alerting``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

from ocean import audit
from ocean.alerting import drill as drills
from ocean.alerting import listing as listings
from ocean.alerting import routes
from ocean.alerting import silences as silencing
from ocean.alerting.api import AlertmanagerApi, InboxApi, NotFound, PrometheusApi
from ocean.errors import OceanError
from ocean.model import Step, StepStatus
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


# -- the drill (ocean/alerting/drill.py) --------------------------------------------------

POLL_SECONDS = 0.25


def drill(runtime: Runtime, only: str | None = None, timeout: float | None = None):
    """Inject a drill alert per route, wait for each receiver to have it, time it,
    resolve the alerts; the last Step is FAILED naming the routes that did not deliver.
    Alertmanager (or the local inbox) not answering: OceanError before anything is
    posted."""
    tree = routing(runtime)
    planned = drills.plan(tree, alert_rules(runtime), drills.new_run_id(), only)
    deliveries = _deliveries(runtime, tree, planned)
    wait = (
        timeout if timeout is not None else max(a.group_wait for a in planned) + drills.WAIT_MARGIN
    )
    if wait <= 0:
        raise OceanError(f"--timeout {wait:g}s: give the receivers a positive time")
    yield Step(
        "plan",
        detail=", ".join(f"{a.receiver} ← {_shown_labels(a)}" for a in planned),
        data={"alerts": [{"route": a.receiver, "labels": a.labels} for a in planned]},
    )
    with ExitStack() as open_apis:
        alertmanager = open_apis.enter_context(AlertmanagerApi(runtime))
        alertmanager.call("GET", "/-/ready")  # down: one line, nothing posted
        inbox = None
        if _by(deliveries, "inbox"):
            inbox = open_apis.enter_context(InboxApi(runtime))
            inbox.messages(time.time())  # it must answer before anything is posted
        before = drills.counters(alertmanager.metrics()) if _by(deliveries, "counters") else {}
        posted = time.time()
        alertmanager.post_alerts([a.payload() for a in planned])
        for delivery in deliveries:
            delivery.posted_at = posted
        yield Step("injected", detail=f"{len(planned)} drill alert(s), waiting ≤ {wait:g}s")
        try:
            yield from _wait(alertmanager, inbox, tree, deliveries, before, posted + wait)
            _diagnose(alertmanager, deliveries)
        finally:  # Ctrl-C or an error while waiting: the drill alerts still end
            resolved = _resolve(alertmanager, planned)
    ended = "drill alerts ended: receivers get resolved notices at their next group_interval"
    yield Step("resolved", StepStatus.FAILED if resolved else StepStatus.OK, resolved or ended)
    yield _verdict(deliveries)


def _deliveries(runtime: Runtime, tree: routes.Routing, planned: list) -> list:
    inbox_url = runtime.url("alert-webhook")
    ports = set(runtime.settings.ports.as_dict().values())

    def read(path: str) -> str:
        with open(path) as handle:
            return handle.read()

    out = []
    for alert in planned:
        for receiver in alert.expected:
            config = tree.receivers.get(receiver, {})
            local = drills.delivers_locally(
                config, tree.config, inbox_url, ports, runtime.settings.host, read
            )
            out.append(drills.Delivery(alert, receiver, "inbox" if local else "counters", 0.0))
    return out


def _by(deliveries: list, via: str) -> list:
    return [d for d in deliveries if d.via == via]


def _wait(alertmanager, inbox, tree, deliveries, before, deadline) -> Iterator[Step]:
    uses = {name: drills.integrations(config) for name, config in tree.receivers.items()}
    names = set(tree.receivers)
    started = time.time()
    shown = -1
    while True:
        if inbox and any(d.received_at is None for d in _by(deliveries, "inbox")):
            drills.match_inbox(deliveries, inbox.messages(started - 1), names)
        if any(d.received_at is None for d in _by(deliveries, "counters")):
            now_counts = drills.counters(alertmanager.metrics())
            drills.match_counters(deliveries, before, now_counts, uses)
        waiting = sorted({d.receiver for d in deliveries if d.received_at is None})
        if not waiting or time.time() >= deadline:
            return
        elapsed = int(time.time() - started)
        if elapsed != shown:
            shown = elapsed
            yield Step(
                "progress",
                StepStatus.INFO,
                f"{elapsed}s: waiting for {', '.join(waiting)} "
                f"({len(deliveries) - len(waiting)}/{len(deliveries)} delivered)",
                data={"t": elapsed},
            )
        time.sleep(POLL_SECONDS)


def _diagnose(alertmanager: AlertmanagerApi, deliveries: list) -> None:
    """Why an undelivered drill alert did not go out, when Alertmanager knows: a silence
    or an inhibit rule muted it."""
    for delivery in deliveries:
        if delivery.received_at is not None:
            continue
        held = alertmanager.alerts(**{listings.DRILL_LABEL: delivery.alert.drill_id})
        status = (held[0].get("status") or {}) if held else {}
        if status.get("silencedBy"):
            delivery.problem = f"silenced by {', '.join(status['silencedBy'])}"
        elif status.get("inhibitedBy"):
            delivery.problem = "inhibited by another alert"
        elif not held:
            delivery.problem = "Alertmanager does not hold the drill alert"
        else:
            delivery.problem = f"nothing arrived ({delivery.via})"


def _resolve(alertmanager: AlertmanagerApi, planned: list) -> str:
    """Post the drill alerts again, ended now; "" or why it failed (never raises: a
    drill that failed must still say which routes did not deliver)."""
    ended = silencing.rfc3339(time.time())
    try:
        alertmanager.post_alerts([a.payload(ends_at=ended) for a in planned])
    except OceanError as exc:
        return f"could not resolve the drill alerts ({exc}): they end by themselves"
    return ""


def _verdict(deliveries: list) -> Step:
    rows = [d.as_dict() for d in deliveries]
    failed = sorted({d.alert.receiver for d in deliveries if not d.delivered})
    parts = []
    for d in deliveries:
        if d.delivered:
            late = " LATE" if d.as_dict()["late"] else ""
            how = d.kind or d.via
            parts.append(f"{d.receiver} {how} {d.latency:.2f}s{late}")
        else:
            parts.append(f"{d.receiver}: {d.problem or 'not delivered'}")
    if failed:
        detail = f"not delivered: {', '.join(failed)} ({'; '.join(parts)})"
    else:
        detail = "every route delivered: " + ", ".join(parts)
    status = StepStatus.FAILED if failed else StepStatus.OK
    return Step("drill", status, detail, data={"failed": failed, "routes": rows})


def _shown_labels(alert: drills.DrillAlert) -> str:
    """``OceanAlertDrill{severity="critical"}``: the labels that route it (the drill id,
    and the grouping label set to it, are the same for every alert of a run)."""
    shown = [
        f'{k}="{v}"' for k, v in alert.labels.items() if k != "alertname" and v != alert.drill_id
    ]
    return f"{alert.labels['alertname']}{{{', '.join(shown)}}}"
