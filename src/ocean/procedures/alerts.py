"""Alerting procedures: the listing, silences and the delivery drill (issue 20).

``listing`` returns a report (like ``stack.status``); ``silence``, ``unsilence`` and
``drill`` yield Steps. The front ends reach silence and unsilence through
``ocean.guardrails`` (audited); the logic lives in ``ocean.alerting``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

from ocean import audit
from ocean.alerting import deliveries as per_receiver
from ocean.alerting import drill as drills
from ocean.alerting import listing as listings
from ocean.alerting import routes
from ocean.alerting import silences as silencing
from ocean.alerting.api import AlertmanagerApi, ApiError, InboxApi, PrometheusApi
from ocean.errors import OceanError
from ocean.freeze import rule_labels
from ocean.model import Step, StepStatus
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
        except ApiError as exc:
            if exc.status not in (400, 404, 422):  # 422: not even a silence id (a UUID)
                raise
            raise OceanError(_unknown(silence_id, alertmanager)) from None
        state = (found.get("status") or {}).get("state")
        if state == "expired":
            raise OceanError(f"silence {silence_id} already ended at {found.get('endsAt')}")
        alertmanager.expire_silence(silence_id)
    what = ", ".join(listings.matcher_text(x) for x in found.get("matchers") or [])
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


# -- per receiver: the last delivery and the failures (ocean/alerting/deliveries.py) ----


def deliveries(runtime: Runtime, watch: per_receiver.DeliveryWatch) -> list[per_receiver.Receiver]:
    """Each receiver's last delivery, count and failures, from the stack's alert inbox
    (receivers that end there) and Alertmanager's counters; ``watch`` carries what
    earlier calls read. Either one not answering is said in the rows' notes; the
    routing config missing (the stack never brought up) is an OceanError."""
    tree = routing(runtime)
    local = _local_receivers(runtime, tree)
    names = set(tree.receivers)
    by_inbox_name = {
        inbox_name: name
        for name in sorted(local)
        for inbox_name in per_receiver.inbox_names(name, tree.receivers[name])
    }
    inbox_problem = alertmanager_problem = ""
    if local:
        try:
            with InboxApi(runtime) as inbox:
                watch.add_messages(inbox.messages(watch.inbox_since()), by_inbox_name, names)
        except OceanError as exc:
            inbox_problem = "not answering"
            if "not answering" not in str(exc):
                inbox_problem = str(exc)
    counts = None
    try:
        with AlertmanagerApi(runtime) as alertmanager:
            counts = per_receiver.counters(alertmanager.metrics())
        watch.add_counters(counts, time.time())
    except OceanError as exc:
        alertmanager_problem = str(exc)
    return per_receiver.summarise(
        tree.receivers, local, watch, counts, inbox_problem, alertmanager_problem
    )


# -- the drill (ocean/alerting/drill.py) --------------------------------------------------

POLL_SECONDS = 0.25


def drill(runtime: Runtime, only: str | None = None, timeout: float | None = None):
    """Inject a drill alert per route, wait for each receiver to have it, time it,
    resolve the alerts; the last Step is FAILED naming the routes that did not deliver.
    Alertmanager (or the local inbox, when a drilled receiver uses it) not answering:
    OceanError before anything is posted."""
    tree = routing(runtime)
    planned = drills.plan(tree, alert_rules(runtime), drills.new_run_id(), only)
    local = _local_receivers(runtime, tree)
    deliveries = [
        drills.Delivery(alert, receiver, "inbox" if receiver in local else "counters", 0.0)
        for alert in planned
        for receiver in alert.expected
    ]
    wait = timeout if timeout is not None else max(a.group_wait for a in planned)
    wait += drills.WAIT_MARGIN if timeout is None else 0.0
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
        inbox = open_apis.enter_context(InboxApi(runtime)) if local else None
        if _by(deliveries, "inbox"):
            inbox.messages(time.time())  # it must answer before anything is posted
        watch = _Watch(alertmanager, inbox, tree, deliveries)
        posted = time.time()
        alertmanager.post_alerts([a.payload() for a in planned])
        for delivery in deliveries:
            delivery.posted_at = posted
        yield Step("injected", detail=f"{len(planned)} drill alert(s), waiting ≤ {wait:g}s")
        try:
            yield from watch.wait(posted + wait)
            _diagnose(alertmanager, deliveries, watch.refusals())
        finally:  # Ctrl-C or an error while waiting: the drill alerts still end
            resolved = _resolve(alertmanager, planned)
    ended = "drill alerts ended: receivers get resolved notices at their next group_interval"
    yield Step("resolved", StepStatus.FAILED if resolved else StepStatus.OK, resolved or ended)
    yield _verdict(deliveries)


def _local_receivers(runtime: Runtime, tree: routes.Routing) -> set[str]:
    """The receivers whose every integration ends at the stack's alert inbox."""
    inbox_url = runtime.url("alert-webhook")
    ports = set(runtime.settings.ports.as_dict().values())

    def read(path: str) -> str:
        with open(path) as handle:
            return handle.read()

    return {
        name
        for name, config in tree.receivers.items()
        if drills.delivers_locally(
            config, tree.config, inbox_url, ports, runtime.settings.host, read
        )
    }


def _by(deliveries: list, via: str) -> list:
    return [d for d in deliveries if d.via == via]


class _Watch:
    """Polls the inbox and Alertmanager's counters until every delivery is seen."""

    def __init__(self, alertmanager: AlertmanagerApi, inbox, tree, deliveries: list) -> None:
        self.alertmanager, self.inbox, self.deliveries = alertmanager, inbox, deliveries
        self.uses = {name: drills.integrations(config) for name, config in tree.receivers.items()}
        self.names = set(tree.receivers)
        self.since = time.time()
        counted = _by(deliveries, "counters")
        self.before = drills.counters(alertmanager.metrics()) if counted else {}
        # What the inbox refuses (a wrong SMTP password …) names why nothing arrived.
        self.refused_before = self.refused()

    def refused(self) -> dict[str, float]:
        if self.inbox is None:
            return {}
        try:
            text = self.inbox.metrics()
        except OceanError:
            return {}
        totals = drills.counter_totals(text, "ocean_inbox_rejected_total", "reason")
        return {reason: n for (_, reason), n in totals.items()}

    def refusals(self) -> str:
        """The inbox's refusals since the drill began, e.g. "auth_failed ×3"."""
        now = self.refused()
        rose = {r: n - self.refused_before.get(r, 0.0) for r, n in now.items()}
        return ", ".join(f"{r} ×{n:g}" for r, n in sorted(rose.items()) if n > 0)

    def _messages(self) -> list:
        """What the inbox got since the drill began. Only for subtracting local
        notifications from the counters, an inbox that does not answer got nothing
        (Alertmanager counts those notifications as failed, not sent)."""
        if self.inbox is None:
            return []
        if _by(self.deliveries, "inbox"):
            return self.inbox.messages(self.since - 1)
        try:
            return self.inbox.messages(self.since)
        except OceanError:
            return []

    def wait(self, deadline: float) -> Iterator[Step]:
        started, shown = time.time(), -1
        while True:
            messages = self._messages() if self._pending() else []
            drills.match_inbox(self.deliveries, messages, self.names)
            if any(d.received_at is None for d in _by(self.deliveries, "counters")):
                # Counters are per integration: the inbox's own notifications (the drill's
                # local receivers, resolved notices) are taken off before attributing.
                local = Counter(
                    str(m.get("kind")) for m in messages if drills.message_time(m, 0) >= self.since
                )
                counts = drills.counters(self.alertmanager.metrics())
                drills.match_counters(self.deliveries, self.before, counts, self.uses, local)
            waiting = sorted({d.receiver for d in self.deliveries if d.received_at is None})
            if not waiting or time.time() >= deadline:
                return
            elapsed = int(time.time() - started)
            if elapsed != shown:
                shown = elapsed
                done = len(self.deliveries) - len(waiting)
                yield Step(
                    "progress",
                    StepStatus.INFO,
                    f"{elapsed}s: waiting for {', '.join(waiting)} "
                    f"({done}/{len(self.deliveries)} delivered)",
                    data={"t": elapsed},
                )
            time.sleep(POLL_SECONDS)

    def _pending(self) -> bool:
        return any(d.received_at is None for d in self.deliveries)


def _diagnose(alertmanager: AlertmanagerApi, deliveries: list, refusals: str = "") -> None:
    """Why an undelivered drill alert did not go out, when Alertmanager knows: a silence
    or an inhibit rule muted it; or the inbox refused what Alertmanager sent
    (``refusals``: a wrong SMTP password shows as auth_failed)."""
    for delivery in deliveries:
        if delivery.received_at is not None or delivery.problem:
            continue  # delivered, or the counters already say why not
        held = alertmanager.alerts(**{listings.DRILL_LABEL: delivery.alert.drill_id})
        status = (held[0].get("status") or {}) if held else {}
        if status.get("silencedBy"):
            delivery.problem = f"silenced by {', '.join(status['silencedBy'])}"
        elif status.get("inhibitedBy"):
            delivery.problem = "inhibited by another alert"
        elif not held:
            delivery.problem = "Alertmanager does not hold the drill alert"
        elif refusals and delivery.via == "inbox":
            delivery.problem = (
                f"nothing arrived: the inbox refused Alertmanager ({refusals}; a wrong SMTP "
                "password shows as auth_failed)"
            )
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
            how = (d.kind or d.via) + (" over TLS" if d.tls else "")
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
