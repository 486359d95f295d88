"""The inbox's settings, from INBOX_* variables (the runtime sets them; secrets never
come on the command line: the SMTP password by INBOX_SMTP_PASSWORD or a 0600 file named
by INBOX_SMTP_PASSWORD_FILE)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """A missing or malformed setting: main() prints it on one line and exits 1."""


@dataclass(frozen=True)
class Config:
    host: str
    http_port: int
    smtp_port: int
    directory: Path  # <state>/data/inbox: mail/ (a Maildir) and webhooks.jsonl
    tls_cert: Path
    tls_key: Path
    smtp_user: str
    smtp_password: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config:
        env = dict(os.environ if env is None else env)
        password = env.get("INBOX_SMTP_PASSWORD", "")
        if not password and env.get("INBOX_SMTP_PASSWORD_FILE"):
            path = Path(env["INBOX_SMTP_PASSWORD_FILE"])
            try:
                password = path.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"INBOX_SMTP_PASSWORD_FILE {path}: {exc.strerror}") from None
        if not password:
            raise ConfigError("set INBOX_SMTP_PASSWORD or INBOX_SMTP_PASSWORD_FILE")
        for name in ("INBOX_TLS_CERT", "INBOX_TLS_KEY_FILE"):
            if not Path(_required(env, name)).is_file():
                raise ConfigError(f"{name}={env[name]} is not a file")
        return cls(
            host=env.get("INBOX_HOST") or "127.0.0.1",
            http_port=_port(env, "INBOX_HTTP_PORT"),
            smtp_port=_port(env, "INBOX_SMTP_PORT"),
            directory=Path(_required(env, "INBOX_DIR")),
            tls_cert=Path(env["INBOX_TLS_CERT"]),
            tls_key=Path(env["INBOX_TLS_KEY_FILE"]),
            smtp_user=env.get("INBOX_SMTP_USER") or "alertmanager",
            smtp_password=password,
        )


def _required(env: dict[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ConfigError(f"{name} is not set")
    return value


def _port(env: dict[str, str], name: str) -> int:
    raw = _required(env, name)
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigError(f"{name}={raw!r} is not a port (1..65535)")
    return int(raw)
