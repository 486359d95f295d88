"""Where deliveries are kept, below the inbox's directory (``<state>/data/inbox``):

- ``mail/``: a Maildir (one file per message, written to tmp/ then renamed into new/,
  so a reader never sees half a message); any mail client or ``mailbox.Maildir`` reads it;
- ``webhooks.jsonl``: one JSON line per webhook or Slack delivery, the normalised
  record plus the payload as received.

Both survive restarts of the inbox; ``messages(since)`` reads them back as records.
"""

from __future__ import annotations

import json
import mailbox
import os
import threading
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from ocean_inbox import normalise

_PARSER = BytesParser(policy=policy.default)


def parse_mail(raw: bytes):
    """A stored message as an EmailMessage (headers decoded, bodies reachable)."""
    return _PARSER.parsebytes(raw)


class Store:
    def __init__(self, directory: Path) -> None:
        # Alerts may name customers' data: the inbox's files are its user's alone.
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
        self.maildir = mailbox.Maildir(directory / "mail", create=True)
        self.webhooks = directory / "webhooks.jsonl"
        self._lock = threading.Lock()
        # Maildir files never change once delivered: each is parsed once.
        self._mails: dict[str, dict[str, Any]] = {}

    def add_mail(self, raw: bytes) -> str:
        """Deliver one message into new/; returns its Maildir key."""
        with self._lock:
            return self.maildir.add(raw)

    def add_webhook(self, entry: dict[str, Any], payload: Any) -> None:
        line = json.dumps({**entry, "payload": payload}, separators=(",", ":")) + "\n"
        with self._lock, open(self.webhooks, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def messages(self, since: float = 0.0) -> list[dict[str, Any]]:
        """Every stored delivery received at or after ``since`` (Unix time), oldest first."""
        found = self._webhook_records() + self._mail_records()
        found = [m for m in found if m["received_at"] >= since]
        return sorted(found, key=lambda m: m["received_at"])

    def _webhook_records(self) -> list[dict[str, Any]]:
        try:
            with open(self.webhooks, encoding="utf-8") as handle:
                lines = handle.readlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:  # a line cut short by a crash mid-write
                continue
            entry.pop("payload", None)
            out.append(normalise.record(**entry))
        return out

    def _mail_records(self) -> list[dict[str, Any]]:
        with self._lock:
            keys = list(self.maildir.keys())
        for key in keys:
            if key not in self._mails:
                try:
                    message = parse_mail(self.maildir.get_bytes(key))
                except (KeyError, OSError):  # removed meanwhile (an operator's cleanup)
                    continue
                self._mails[key] = normalise.email(message, key)
        return [self._mails[k] for k in keys if k in self._mails]
