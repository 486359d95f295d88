"""Where Alertmanager's receivers deliver: the real services an environment configures
(secrets from the environment or the 0600 secrets file, never the repo or argv), else
the stack's own alert inbox (stack/inbox, service ``alert-inbox``).

    receiver  real setting                          else, the inbox
    pager     OCEAN_PAGER_WEBHOOK_URL (+ _TOKEN)    <base>/webhook/pager
    deadman   OCEAN_DEADMAN_URL                     <base>/webhook/watchdog
    chat      OCEAN_SLACK_WEBHOOK_URL               <base>/slack/chat   (Slack's format)
    email     OCEAN_SMTP_SMARTHOST, _USERNAME, …    SMTP on the alert-smtp port, STARTTLS
                                                    verified against the stack's CA, AUTH

``<base>`` is OCEAN_ALERT_WEBHOOK_URL, else the environment's ``alerting.webhook_url``,
else the inbox's HTTP side (``http://<host>:<alert-webhook port>``). The inbox runs
only while some receiver still delivers to it: with every one real it is not started
(derived, no setting of its own: docs/environments.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ocean import tls
from ocean.config import Settings

INBOX_USER = "alertmanager"  # the inbox's SMTP user; its password: INBOX_SMTP_PASSWORD


@dataclass(frozen=True)
class Smtp:
    smarthost: str
    sender: str
    to: str
    username: str
    password: str
    require_tls: bool
    ca_file: Path | None  # None: the system's roots (a real server)
    local: bool  # the stack's own inbox


@dataclass(frozen=True)
class Receivers:
    pager_url: str
    deadman_url: str
    slack_url: str
    smtp: Smtp
    inbox_url: str  # the inbox's HTTP side, whether it runs or not

    @property
    def inbox(self) -> bool:
        """Whether any receiver delivers to the stack's inbox (so it must run)."""
        urls = (self.pager_url, self.deadman_url, self.slack_url)
        return self.smtp.local or any(u.startswith(self.inbox_url + "/") for u in urls)


def resolve(settings: Settings, get: Callable[[str], str], inbox_password: str) -> Receivers:
    """The receivers of ``settings``' stack; ``get(NAME)`` reads a setting or secret
    (the environment first, then the secrets file; "" when unset)."""
    conf = settings.env["alerting"]
    inbox_url = f"http://{settings.host}:{settings.ports['alert-webhook']}"
    base = (get("OCEAN_ALERT_WEBHOOK_URL") or conf["webhook_url"] or inbox_url).rstrip("/")
    sender = get("OCEAN_SMTP_FROM") or conf["email_from"]
    to = get("OCEAN_SMTP_TO") or conf["email_to"]
    if get("OCEAN_SMTP_SMARTHOST"):
        smtp = Smtp(
            smarthost=get("OCEAN_SMTP_SMARTHOST"),
            sender=sender,
            to=to,
            username=get("OCEAN_SMTP_USERNAME"),
            password=get("OCEAN_SMTP_PASSWORD"),
            require_tls=get("OCEAN_SMTP_REQUIRE_TLS") != "false",
            ca_file=None,
            local=False,
        )
    else:
        smtp = Smtp(
            smarthost=f"{settings.host}:{settings.ports['alert-smtp']}",
            sender=sender,
            to=to,
            username=INBOX_USER,
            password=inbox_password,
            require_tls=True,
            ca_file=tls.TlsFiles(settings.tls_dir).ca_cert,
            local=True,
        )
    return Receivers(
        pager_url=get("OCEAN_PAGER_WEBHOOK_URL") or f"{base}/webhook/pager",
        deadman_url=get("OCEAN_DEADMAN_URL") or f"{base}/webhook/watchdog",
        slack_url=get("OCEAN_SLACK_WEBHOOK_URL") or f"{base}/slack/chat",
        smtp=smtp,
        inbox_url=inbox_url,
    )
