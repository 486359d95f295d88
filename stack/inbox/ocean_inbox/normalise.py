"""Every delivery as one record, whatever carried it (the contract of GET /api/messages,
which `invoke alerts drill` and the tests read; keep the field names):

    {received_at, receiver, kind: webhook|slack|email, channel, status: firing|resolved,
     alertnames: [..], alerts: [{labels, annotations}] (when known), subject, to,
     tls: bool, user, text}

Alertmanager's generic webhook carries every alert; its Slack message and e-mail carry
what their templates put in (monitoring/alertmanager/alertmanager.yml): a status and the
alert names in the title or subject, and for e-mail also in headers of their own.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any

STATUSES = ("firing", "resolved")
# "[FIRING:2] RedisReplicaDown (…)" or "[RESOLVED] RedisReplicaDown": Alertmanager's
# default Slack title and ours, and the e-mail subject.
_TITLE = re.compile(r"^\s*\[(?P<status>FIRING|RESOLVED)(?::\d+)?\]\s*(?P<names>[^()\n]*)", re.I)
TEXT_LIMIT = 4000  # a record carries the start of a message's text, not megabytes


class BadPayload(ValueError):
    """Not what the endpoint accepts: the inbox answers 400 and counts it."""


def record(**fields: Any) -> dict[str, Any]:
    """A record with every field of the contract present."""
    base: dict[str, Any] = {
        "received_at": 0.0,
        "receiver": "",
        "kind": "",
        "channel": None,
        "status": "",
        "alertnames": [],
        "alerts": [],
        "subject": None,
        "to": None,
        "tls": False,
        "user": None,
        "text": "",
    }
    base.update(fields)
    return base


def webhook(receiver: str, payload: Any, received_at: float) -> dict[str, Any]:
    """Alertmanager's generic webhook (version 4): status, alerts with labels and
    annotations."""
    if not isinstance(payload, dict) or payload.get("status") not in STATUSES:
        raise BadPayload("expected Alertmanager's webhook JSON with status firing or resolved")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not all(isinstance(a, dict) for a in alerts):
        raise BadPayload("expected a list of alerts")
    kept = [
        {"labels": dict(a.get("labels") or {}), "annotations": dict(a.get("annotations") or {})}
        for a in alerts
    ]
    return record(
        received_at=received_at,
        receiver=receiver,
        kind="webhook",
        status=payload["status"],
        alertnames=_unique(a["labels"].get("alertname", "") for a in kept),
        alerts=kept,
    )


def slack(receiver: str, payload: Any, received_at: float) -> dict[str, Any]:
    """A Slack incoming-webhook message: channel, text, attachments (title, text)."""
    if not isinstance(payload, dict):
        raise BadPayload("expected a Slack message (a JSON object)")
    attachments = payload.get("attachments") or []
    if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
        raise BadPayload("attachments must be a list of objects")
    if not payload.get("text") and not attachments:
        raise BadPayload("a Slack message needs text or attachments")
    titles = [str(a.get("title") or "") for a in attachments]
    texts = [str(payload.get("text") or "")] + [str(a.get("text") or "") for a in attachments]
    status, names = _from_title(titles + texts)
    return record(
        received_at=received_at,
        receiver=receiver,
        kind="slack",
        channel=payload.get("channel"),
        status=status,
        alertnames=names,
        text="\n".join(t for t in titles + texts if t)[:TEXT_LIMIT],
    )


def email(message: EmailMessage, key: str = "") -> dict[str, Any]:
    """A stored e-mail, with the headers the inbox added (X-Inbox-*) and those our
    Alertmanager template sets (X-Alertmanager-*). The inbox's own headers come first
    in the file, and ``get`` returns the first: a sender cannot forge them."""
    subject = str(message.get("Subject", ""))
    status, names = _from_title([subject])
    status = str(message.get("X-Alertmanager-Status", "")).lower() or status
    listed = str(message.get("X-Alertmanager-Alertnames", "")).replace(",", " ").split()
    body = message.get_body(preferencelist=("plain", "html"))
    text = body.get_content().replace("\r\n", "\n") if body is not None else ""
    try:
        received_at = float(message.get("X-Inbox-Received-At", "0"))
    except ValueError:
        received_at = 0.0
    return record(
        received_at=received_at,
        receiver=str(message.get("X-Alertmanager-Receiver", "")) or "email",
        kind="email",
        status=status if status in STATUSES else "",
        alertnames=_unique(listed) or names,
        subject=subject,
        to=str(message.get("To", "")) or None,
        tls=str(message.get("X-Inbox-TLS", "")).startswith("yes"),
        user=str(message.get("X-Inbox-User", "")) or None,
        text=text[:TEXT_LIMIT],
        id=key,
    )


def _from_title(lines: list[str]) -> tuple[str, list[str]]:
    for line in lines:
        match = _TITLE.match(line)
        if match:
            first = match.group("names").split()[:1]
            return match.group("status").lower(), first
    return "", []


def _unique(names) -> list[str]:
    return [n for n in dict.fromkeys(names) if n]
