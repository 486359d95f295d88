"""What `invoke config` shows: an environment's effective configuration, where each value
comes from, with every secret masked, and the differences between two environments.

Effective = the definition (base + overlay) with the OCEAN_* variables that override it
(the precedence of ``ocean.config``). Secrets are shown only as being set: anything read
from the secrets file or a secret variable becomes ``<secret>``, a secret-like name
``••••``, the password of a URL ``••••``; and no displayed value may contain a known
secret's value (it is masked whole if it does).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ocean import audit, environments
from ocean.config import Settings

SECRET = "<secret>"  # nosec B105  # the mask shown instead of a secret
MASK = audit.MASK

# Definition keys an OCEAN_* variable overrides (and, for the alerting ones, the
# secrets file too, as the runtime reads them: StackSpec.alerting_setting, ocean/stackspec).
OVERRIDES = {
    "runtime": "OCEAN_RUNTIME",
    "state_dir": "OCEAN_STATE_DIR",
    "port_base": "OCEAN_PORT_BASE",
    "backup.dir": "OCEAN_BACKUP_DIR",
    "alerting.webhook_url": "OCEAN_ALERT_WEBHOOK_URL",
    "alerting.slack_channel": "OCEAN_SLACK_CHANNEL",
    "alerting.email_from": "OCEAN_SMTP_FROM",
    "alerting.email_to": "OCEAN_SMTP_TO",
}
FROM_SECRETS_FILE_TOO = {k for k in OVERRIDES if k.startswith("alerting.")}
# Receivers' secrets: never in a definition, only set or not.
RECEIVER_SECRETS = {
    "alerting.receivers.slack_webhook_url": "OCEAN_SLACK_WEBHOOK_URL",
    "alerting.receivers.pager_webhook_url": "OCEAN_PAGER_WEBHOOK_URL",
    # B105: a variable's name, not its value
    "alerting.receivers.pager_token": "OCEAN_PAGER_TOKEN",  # nosec B105
    "alerting.receivers.deadman_url": "OCEAN_DEADMAN_URL",
    "alerting.receivers.smtp_smarthost": "OCEAN_SMTP_SMARTHOST",
    "alerting.receivers.smtp_username": "OCEAN_SMTP_USERNAME",
    # B105: a variable's name, not its value
    "alerting.receivers.smtp_password": "OCEAN_SMTP_PASSWORD",  # nosec B105
}
_URL_PASSWORD = re.compile(r"^(\w+://[^/:@\s]+:)[^@/\s]+@")


def read_secrets_file(path: Path) -> dict[str, str]:
    """The secrets file's values, without creating it (config only looks)."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#") and value.strip():
            values[key.strip()] = value.strip()
    return values


def effective(name: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """{"env", "files", "config": {dotted key: shown value}, "sources": {key: source}}."""
    env = os.environ if environ is None else environ
    settings = Settings.from_env(dict(env), name)
    definition = settings.env
    stored = read_secrets_file(settings.secrets_file)
    config: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value in environments.leaves(definition.data).items():
        config[key], sources[key] = value, definition.sources.get(key, "base.yaml")
        variable = OVERRIDES.get(key)
        if variable and env.get(variable):
            config[key], sources[key] = env[variable], variable
        elif variable in stored and key in FROM_SECRETS_FILE_TOO:
            config[key], sources[key] = stored[variable], f"secrets.env ({variable})"
    # What the definition's relative paths and defaults turn into here.
    config["state_dir"] = str(settings.state_dir)
    config["backup.dir"] = str(settings.backup_dir)
    for key, variable in RECEIVER_SECRETS.items():
        if env.get(variable):
            config[key], sources[key] = SECRET, variable
        elif stored.get(variable):
            config[key], sources[key] = SECRET, f"secrets.env ({variable})"
        else:
            config[key], sources[key] = "not set", "default: the stack's alert inbox"
    for variable in sorted(stored):
        if not variable.startswith("OCEAN_"):  # generated: database passwords, tokens
            config[f"secrets.{variable}"] = SECRET
            sources[f"secrets.{variable}"] = str(settings.secrets_file)
    known = [v for v in stored.values()] + [env[v] for v in RECEIVER_SECRETS.values() if env.get(v)]
    shown = {key: mask(key, value, known) for key, value in config.items()}
    return {
        "env": definition.name,
        "files": [str(p) for p in definition.files],
        "config": shown,
        "sources": sources,
    }


def mask(key: str, value: Any, known_secrets: list[str]) -> Any:
    """``value`` as it may be shown under ``key``."""
    if value == SECRET:
        return value
    if audit.secret_like(key.rsplit(".", 1)[-1]) and value not in ("", None, "not set"):
        return MASK
    if isinstance(value, str):
        if any(secret and len(secret) >= 4 and secret in value for secret in known_secrets):
            return SECRET
        return _URL_PASSWORD.sub(rf"\g<1>{MASK}@", value)
    return value


def diff(name: str, other: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The keys whose shown values differ between environments ``name`` and ``other``."""
    left, right = effective(name, environ), effective(other, environ)
    keys = sorted(set(left["config"]) | set(right["config"]))
    rows = [
        {
            "key": key,
            name: left["config"].get(key, "-"),
            other: right["config"].get(key, "-"),
            "sources": [left["sources"].get(key, "-"), right["sources"].get(key, "-")],
        }
        for key in keys
        if left["config"].get(key, "-") != right["config"].get(key, "-")
    ]
    return {"env": name, "other": other, "differences": rows}
