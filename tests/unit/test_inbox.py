"""The alert inbox (stack/inbox) as the stack runs it: `python -m ocean_inbox` on free
ports with a certificate from the stack's own CA (ocean.tls), spoken to with smtplib and
httpx as Alertmanager would. No fake: the real aiosmtpd server, the real Maildir."""

from __future__ import annotations

import base64
import json
import mailbox
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from ocean import tls
from tests.helpers import metric_value

USER, PASSWORD = "alertmanager", "s3cret-inbox-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    def __init__(self, directory: Path, tls_files: tls.TlsFiles) -> None:
        self.directory = directory
        self.tls = tls_files
        self.smtp_port, self.http_port = _free_port(), _free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "INBOX_HOST": "127.0.0.1",
            "INBOX_HTTP_PORT": str(self.http_port),
            "INBOX_SMTP_PORT": str(self.smtp_port),
            "INBOX_DIR": str(self.directory),
            "INBOX_TLS_CERT": str(self.tls.cert),
            "INBOX_TLS_KEY_FILE": str(self.tls.key),
            "INBOX_SMTP_USER": USER,
            "INBOX_SMTP_PASSWORD": PASSWORD,
            **extra,
        }

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.tls.ca_cert)

    def metric(self, name: str, **labels: str) -> float:
        return metric_value(f"{self.url}/metrics", name, **labels)

    def messages(self, since: float = 0) -> list[dict]:
        response = httpx.get(f"{self.url}/api/messages", params={"since": since}, timeout=5)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inbox]:
    root = tmp_path_factory.mktemp("inbox")
    files = tls.TlsFiles(root / "tls")
    tls.ensure(files, ["127.0.0.1"])
    box = Inbox(root / "data", files)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocean_inbox"],
        env=box.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(f"{box.url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the inbox did not start: {proc.communicate()[0]}")
        time.sleep(0.05)
    yield box
    proc.terminate()
    assert proc.wait(timeout=10) == 0  # SIGTERM is a clean stop


def _alert_mail(subject: str = "[FIRING:1] RedisReplicaDown") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "alertmanager@ocean.local"
    message["To"] = "business@ocean.local"
    message["Subject"] = subject
    message["X-Alertmanager-Receiver"] = "email"
    message["X-Alertmanager-Status"] = "firing"
    message["X-Alertmanager-Alertnames"] = "RedisReplicaDown RedisReplicaDown"
    # A sender cannot pass its message off as encrypted: the inbox's header comes first.
    message["X-Inbox-TLS"] = "yes (forged)"
    message.set_content("Runbook: docs/runbooks/RedisReplicaDown.md\n")
    return message


def test_starttls_and_auth_deliver_into_the_maildir_marked_as_tls(inbox: Inbox):
    since = time.time()
    before = inbox.metric("ocean_inbox_messages_total", receiver="email", kind="email")
    with smtplib.SMTP("127.0.0.1", inbox.smtp_port, timeout=10) as client:
        client.starttls(context=inbox.client_context())  # verifies against the stack CA
        client.login(USER, PASSWORD)
        client.send_message(_alert_mail())

    stored = [m for m in mailbox.Maildir(inbox.directory / "mail", create=False)]
    assert len(stored) == 1
    mail = stored[0]
    assert mail.get_all("X-Inbox-TLS")[0].startswith("yes (TLSv1.")
    assert mail["X-Inbox-User"] == USER
    assert float(mail["X-Inbox-Received-At"]) >= since
    assert "ESMTPSA" in mail["Received"]

    (record,) = [m for m in inbox.messages(since) if m["kind"] == "email"]
    assert record["tls"] is True and record["user"] == USER
    assert record["receiver"] == "email" and record["status"] == "firing"
    assert record["alertnames"] == ["RedisReplicaDown"]
    assert record["subject"] == "[FIRING:1] RedisReplicaDown"
    assert record["to"] == "business@ocean.local"
    assert "docs/runbooks/RedisReplicaDown.md" in record["text"]
    after = inbox.metric("ocean_inbox_messages_total", receiver="email", kind="email")
    assert after == before + 1
    assert inbox.metric("ocean_inbox_last_message_timestamp_seconds", receiver="email") >= since


def test_auth_login_prompts_are_the_ones_alertmanager_answers(inbox: Inbox):
    """Alertmanager's LOGIN client answers only "Username:" and "Password:" prompts."""
    with smtplib.SMTP("127.0.0.1", inbox.smtp_port, timeout=10) as client:
        client.starttls(context=inbox.client_context())
        client.ehlo()
        assert {"LOGIN", "PLAIN"} <= set(client.esmtp_features["auth"].upper().split())
        code, prompt = client.docmd("AUTH", "LOGIN")
        assert (code, base64.b64decode(prompt)) == (334, b"Username:")
        code, prompt = client.docmd(base64.b64encode(USER.encode()).decode())
        assert (code, base64.b64decode(prompt)) == (334, b"Password:")
        code, _ = client.docmd(base64.b64encode(PASSWORD.encode()).decode())
        assert code == 235


def test_auth_without_tls_is_refused_and_counted(inbox: Inbox):
    before = inbox.metric("ocean_inbox_rejected_total", reason="tls_required")
    with smtplib.SMTP("127.0.0.1", inbox.smtp_port, timeout=10) as client:
        client.ehlo()
        assert not client.has_extn("auth")  # not even offered before STARTTLS
        code, reply = client.docmd("AUTH", "PLAIN AGFsZXJ0bWFuYWdlcgBwdw==")
        assert code == 530 and b"STARTTLS" in reply
        code, _ = client.docmd("MAIL", "FROM:<a@b.c>")
        assert code == 530
    assert inbox.metric("ocean_inbox_rejected_total", reason="tls_required") == before + 2


def test_wrong_password_is_refused_and_counted(inbox: Inbox):
    before = inbox.metric("ocean_inbox_rejected_total", reason="auth_failed")
    count = len(inbox.messages())
    with smtplib.SMTP("127.0.0.1", inbox.smtp_port, timeout=10) as client:
        client.starttls(context=inbox.client_context())
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login(USER, "not-the-password")
        assert refused.value.smtp_code == 535
        # Still unauthenticated: a message is refused, nothing is stored.
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.send_message(_alert_mail())
    assert inbox.metric("ocean_inbox_rejected_total", reason="auth_failed") >= before + 1
    assert inbox.metric("ocean_inbox_rejected_total", reason="auth_required") >= 1
    assert len(inbox.messages()) == count


WEBHOOK = {
    "version": "4",
    "status": "resolved",
    "receiver": "pager",
    "groupKey": '{}:{alertname="ShopInstanceDown"}',
    "alerts": [
        {
            "status": "resolved",
            "labels": {"alertname": "ShopInstanceDown", "severity": "critical"},
            "annotations": {"runbook_url": "docs/runbooks/ShopInstanceDown.md"},
        }
    ],
}
SLACK = {
    "channel": "#ocean-alerts",
    "username": "Alertmanager",
    "attachments": [
        {"title": "[FIRING] RedisReplicaDown", "text": "warning: the replica is down\n"}
    ],
}


def test_webhook_and_slack_payloads_are_stored_and_normalised(inbox: Inbox):
    since = time.time()
    assert httpx.post(f"{inbox.url}/webhook/pager", json=WEBHOOK).status_code == 200
    reply = httpx.post(f"{inbox.url}/slack/chat", json=SLACK)
    assert reply.status_code == 200 and reply.text == "ok"  # what Slack answers

    webhook, chat = inbox.messages(since)
    assert webhook["kind"] == "webhook" and webhook["receiver"] == "pager"
    assert webhook["status"] == "resolved" and webhook["alertnames"] == ["ShopInstanceDown"]
    assert webhook["alerts"] == [{k: WEBHOOK["alerts"][0][k] for k in ("labels", "annotations")}]
    assert webhook["tls"] is False and webhook["user"] is None
    assert chat["kind"] == "slack" and chat["receiver"] == "chat"
    assert chat["channel"] == "#ocean-alerts" and chat["status"] == "firing"
    assert chat["alertnames"] == ["RedisReplicaDown"] and chat["alerts"] == []
    # Every record has the whole contract, whatever carried it.
    fields = {"received_at", "receiver", "kind", "channel", "status", "alertnames", "alerts",
              "subject", "to", "tls", "user"}  # fmt: skip
    assert all(fields <= set(m) for m in inbox.messages())

    lines = (inbox.directory / "webhooks.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["payload"] == SLACK  # as received, beside the record
    assert inbox.metric("ocean_inbox_messages_total", receiver="pager", kind="webhook") >= 1
    assert inbox.metric("ocean_inbox_messages_total", receiver="chat", kind="slack") >= 1
    assert inbox.messages(time.time() + 60) == []  # `since` filters


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/webhook/pager", b"{not json"),
        ("/webhook/pager", json.dumps({"status": "maybe", "alerts": []}).encode()),
        ("/slack/chat", json.dumps({"channel": "#x"}).encode()),
    ],
)
def test_bad_payloads_are_refused_and_counted(inbox: Inbox, path: str, body: bytes):
    before = inbox.metric("ocean_inbox_rejected_total", reason="bad_payload")
    count = len(inbox.messages())
    reply = httpx.post(f"{inbox.url}{path}", content=body)
    assert reply.status_code == 400 and reply.json()["error"]
    assert inbox.metric("ocean_inbox_rejected_total", reason="bad_payload") == before + 1
    assert len(inbox.messages()) == count


def test_bad_queries_and_unknown_paths(inbox: Inbox):
    assert httpx.get(f"{inbox.url}/api/messages", params={"since": "yesterday"}).status_code == 400
    assert httpx.get(f"{inbox.url}/api/messages", params={"since": "-1"}).status_code == 400
    assert httpx.post(f"{inbox.url}/webhook/../etc", json=WEBHOOK).status_code == 404


def test_bad_settings_fail_in_one_line(inbox: Inbox):
    for extra in ({"INBOX_SMTP_PASSWORD": ""}, {"INBOX_SMTP_PORT": "99999"}):
        result = subprocess.run(
            [sys.executable, "-m", "ocean_inbox"],
            env=inbox.env(**extra),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 1
        assert result.stderr.startswith("ocean-inbox: error: ")
        assert len(result.stderr.strip().splitlines()) == 1
    # The running inbox holds its ports: a second one fails at once, naming the port.
    result = subprocess.run(
        [sys.executable, "-m", "ocean_inbox"], env=inbox.env(), capture_output=True, text=True,
        timeout=30,
    )  # fmt: skip
    assert result.returncode == 1 and f":{inbox.http_port}" in result.stderr
