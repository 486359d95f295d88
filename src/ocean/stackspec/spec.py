"""``StackSpec``: the stack of one settings object, as every runtime and validation see
it: where each service answers, its credentials, which build each color runs, and (by
the sibling modules) its programs and rendered configs."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from ocean import receivers, scrape_tls, secrets
from ocean.config import Settings
from ocean.errors import OceanError
from ocean.model import Build
from ocean.services import BY_NAME, COLORS
from ocean.stackspec import configs, context, programs, sockets


def checkout_build() -> Build:
    """The shop as the checkout's venv runs it: what `up` starts before any deploy."""
    return Build(id="checkout", version="checkout", label="checkout", python="")


class StackSecrets:
    """The stack's secrets: the secrets file, read (or created) on first use; or fixed
    values (validation's placeholders), which no file backs."""

    def __init__(self, path: Path, values: Mapping[str, str] | None = None) -> None:
        self.path = path
        self._values = values

    def __getitem__(self, name: str) -> str:
        if self._values is None:
            self._values = secrets.load_or_create(self.path)
        return self._values[name]

    def load(self) -> None:
        """Read the secrets file again, creating what is missing (``up``'s prepare)."""
        self._values = secrets.load_or_create(self.path)

    def known(self) -> Mapping[str, str]:
        """What is known without creating anything: a secrets file that is not there yet
        is not made (skipped_services() asks before the state dir is checked)."""
        if self._values is None and self.path.exists():
            self._values = secrets.load_or_create(self.path)
        return self._values or {}


class StackSpec:
    """The stack of ``settings``. ``binary(name)`` is where the runtime has a program
    (a path on this machine, or in the stack image); ``as_root`` whether the toolkit
    runs as root (then PostgreSQL and nginx's workers run as their own users)."""

    def __init__(
        self,
        settings: Settings,
        *,
        secrets: StackSecrets | None = None,
        binary: Callable[[str], str],
        as_root: bool,
    ) -> None:
        self.settings = settings
        self.secrets = secrets if secrets is not None else StackSecrets(settings.secrets_file)
        self.binary = binary
        self.as_root = as_root

    def secret(self, name: str) -> str:
        return self.secrets[name]

    # -- where each service answers ------------------------------------------------------

    def url(self, service: str) -> str:
        known = BY_NAME.get(service)
        scheme, port = (known.scheme, known.port_name) if known else ("http", service)
        return f"{scheme}://{self.settings.host}:{self.settings.ports[port]}"

    def scrape_tls(self) -> scrape_tls.ScrapeTls:
        return scrape_tls.ScrapeTls(self.settings.tls_dir / "scrape")

    def scrape_sockets(self) -> sockets.ScrapeSockets:
        return sockets.locate(self.settings.run, self.settings.state_dir)

    def redis_url(self, service: str = "redis-master", db: int = 0, user: str = "default") -> str:
        """A redis:// URL with credentials (for the environment, never a command line)."""
        names = {
            "default": "REDIS_PASSWORD",
            "shop": "REDIS_SHOP_PASSWORD",
            "exporter": "REDIS_EXPORTER_PASSWORD",
        }
        password = self.secret(names[user])
        return f"redis://{user}:{password}@{self.settings.host}:{self.settings.ports[service]}/{db}"

    def shop_database_url(self) -> str:
        """The shop's own login (not the superuser), with its password: env only."""
        s = self.settings
        password = self.secret("SHOP_DB_PASSWORD")
        return f"postgresql://shop:{password}@{s.host}:{s.ports['postgres']}/shop"

    def redis_scrape_targets(self) -> list[str]:
        """The exporter's targets, as Prometheus names them (monitoring/prometheus)."""
        s = self.settings
        return [f"redis://{s.host}:{s.ports[name]}" for name in ("redis-master", "redis-replica")]

    # -- alerting ------------------------------------------------------------------------

    def alerting_setting(self, name: str) -> str:
        """An alerting setting or secret: the environment first, then the secrets file
        (read, not created: skipped_services() asks before the state dir is checked)."""
        return os.environ.get(name) or self.secrets.known().get(name, "")

    # B107: empty default: no password
    def receivers(self, inbox_password: str = "") -> receivers.Receivers:  # nosec B107
        """Where each of Alertmanager's receivers delivers (ocean/receivers.py); the
        inbox's SMTP password only when asked for (rendering: it creates the secret)."""
        return receivers.resolve(self.settings, self.alerting_setting, inbox_password)

    def skipped_services(self) -> frozenset[str]:
        """Services this stack does not run: the alert inbox when every receiver is real."""
        return frozenset() if self.receivers().inbox else frozenset({"alert-inbox"})

    # -- which build each color runs, which color is live ---------------------------------

    @property
    def builds_file(self) -> Path:
        """Which build each color runs (written by the runtime's start_color)."""
        return self.settings.etc / "shop-builds.json"

    def color_builds(self) -> dict[str, dict]:
        try:
            return json.loads(self.builds_file.read_text())
        except FileNotFoundError:
            return {}

    def color_build(self, color: str) -> Build:
        known = self.color_builds().get(color)
        return Build(**known) if known else checkout_build()

    def live_color(self) -> str:
        """The color nginx's upstream names (blue before the first deploy)."""
        try:
            text = (self.settings.etc / "upstream.conf").read_text()
        except OSError:  # none yet, or no usable state dir (check() says so clearly)
            return "blue"
        by_port = {self.settings.ports[f"shop-{c}"]: c for c in COLORS}
        for port in re.findall(r"^\s*server\s+[^\s:]+:(\d+)", text, re.MULTILINE):
            if int(port) in by_port:
                return by_port[int(port)]
        raise OceanError(f"{self.settings.etc / 'upstream.conf'} names no shop color")

    # -- the programs and configs (programs.py, context.py, configs.py) -------------------

    def programs(self) -> list[programs.Program]:
        return programs.programs(self)

    def context(self) -> dict:
        return context.context(self)

    def rule_files(self) -> dict[Path, str]:
        return configs.rule_files(self.settings)

    def render_upstream(self, colors: list[str]) -> str:
        return configs.render_upstream(self.settings, colors)

    def render_shop_targets(self, colors: list[str]) -> str:
        return configs.render_shop_targets(self.settings, colors)
