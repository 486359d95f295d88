"""The SMTP side: aiosmtpd with STARTTLS required before anything but EHLO/NOOP/QUIT,
AUTH PLAIN/LOGIN required before MAIL and offered only over TLS; each accepted message
goes into the Maildir with headers of the inbox's own in front:

    Received: from <helo> ([peer]) by ocean-inbox with ESMTPSA (TLSv1.3 …); <date>
    X-Inbox-Received-At: <Unix time>
    X-Inbox-TLS: yes (TLSv1.3, TLS_AES_256_GCM_SHA384)   |  no
    X-Inbox-User: <the authenticated user>

Refusals are counted by reason (ocean_inbox_rejected_total): auth_failed (wrong user
or password), tls_required (a command before STARTTLS), auth_required (MAIL before
AUTH).
"""

from __future__ import annotations

import hmac
import logging
import ssl
import time
from email.utils import formatdate
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from ocean_inbox import normalise
from ocean_inbox.metrics import Metrics
from ocean_inbox.store import Store, parse_mail

log = logging.getLogger("ocean_inbox.smtp")
HOSTNAME = "ocean-inbox"  # announced in the banner; never looked up (getfqdn can be slow)
MAX_MESSAGE = 10 * 1024 * 1024

# What a refusal looks like on the wire → the reason it is counted under.
_REFUSALS = {
    "530 Must issue a STARTTLS": "tls_required",
    "538 ": "tls_required",
    "530 5.7.0 Authentication required": "auth_required",
}


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context with the stack's certificate: TLS 1.2 at least."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class InboxSMTP(SMTP):
    """aiosmtpd's SMTP that counts the refusals it sends."""

    metrics: Metrics
    # AUTH LOGIN's prompts as most servers send them: Alertmanager's LOGIN client answers
    # only "Username:" and "Password:" (aiosmtpd's own "User Name" gets nothing back).
    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"

    async def push(self, status: str) -> None:
        text = status if isinstance(status, str) else status.decode(errors="replace")
        for prefix, reason in _REFUSALS.items():
            if text.startswith(prefix):
                self.metrics.reject(reason)
                break
        await super().push(status)


class MaildirHandler:
    def __init__(self, store: Store, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics

    async def handle_DATA(self, server, session, envelope) -> str:
        now = time.time()
        tls = _tls_detail(session.ssl)
        user = (session.login_data or b"").decode(errors="replace")
        peer = session.peer[0] if session.peer else "unknown"
        headers = (
            f"Received: from {session.host_name} ([{peer}]) by {HOSTNAME} with "
            f"{'ESMTPSA' if tls else 'ESMTPA'}{f' ({tls})' if tls else ''}; "
            f"{formatdate(now)}\r\n"
            f"X-Inbox-Received-At: {now:.6f}\r\n"
            f"X-Inbox-TLS: {f'yes ({tls})' if tls else 'no'}\r\n"
            f"X-Inbox-User: {user}\r\n"
        )
        raw = headers.encode() + envelope.original_content
        key = self.store.add_mail(raw)
        entry = normalise.email(parse_mail(raw))
        self.metrics.stored(entry["receiver"], "email", now)
        log.info("mail %s for %s from %s: %s", key, entry["receiver"], user, entry["subject"] or "")
        return "250 2.0.0 OK: stored"


def _tls_detail(extra) -> str:
    """'TLSv1.3, TLS_AES_256_GCM_SHA384' for a session after STARTTLS, else ''."""
    if not extra:
        return ""
    ssl_object = extra.get("ssl_object")
    cipher = (extra.get("cipher") or (None,))[0]
    version = ssl_object.version() if ssl_object is not None else ""
    return ", ".join(p for p in (version, cipher) if p) or "yes"


class InboxController(Controller):
    """aiosmtpd's threaded controller, serving InboxSMTP."""

    def __init__(self, handler: MaildirHandler, **kwargs) -> None:
        super().__init__(handler, **kwargs)
        self.metrics = handler.metrics

    def factory(self) -> SMTP:
        server = InboxSMTP(self.handler, **self.SMTP_kwargs)
        server.metrics = self.metrics
        return server


def controller(
    store: Store, metrics: Metrics, host: str, port: int, context: ssl.SSLContext,
    user: str, password: str,
) -> InboxController:  # fmt: skip
    """The SMTP server (not started): STARTTLS and AUTH both required."""
    expected = (user.encode(), password.encode())

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and all(
            hmac.compare_digest(given, wanted)
            for given, wanted in zip((auth_data.login, auth_data.password), expected, strict=True)
        )
        if not ok:
            metrics.reject("auth_failed")
            log.warning("auth failed (%s) from %s", mechanism, session.peer)
        # auth_data becomes session.login_data: the user the stored mail names.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return InboxController(
        MaildirHandler(store, metrics),
        hostname=host,
        port=port,
        server_hostname=HOSTNAME,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticate,
        data_size_limit=MAX_MESSAGE,
        ready_timeout=10,
    )
