"""The Alerts screen's tables: alerts with where they go, silences, and each receiver's
last delivery and failures. Pure renderings of what ``ocean.procedures.alerts`` returns."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import DataTable

from ocean.alerting.deliveries import Receiver
from ocean.durations import span
from tui.widgets.health import SEVERITY_STYLE


def _cut(text: str, width: int = 44) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class AlertListTable(DataTable):
    """Firing and pending alerts, each with its receivers and what mutes it."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("alert", "state", "severity", "for", "receivers", "muted")

    def show(self, rows: list[dict]) -> None:
        self.clear()
        for r in rows:
            muted = ", ".join(
                [f"silenced by {s[:8]}" for s in r["silenced_by"]]
                + [f"inhibited by {i['alert']}" for i in r["inhibited_by"]]
            )
            self.add_row(
                r["name"] + (" (drill)" if r.get("drill") else ""),
                r["state"],
                Text(r["severity"], style=SEVERITY_STYLE.get(r["severity"], "")),
                span(r.get("for_s")),
                ", ".join(r["receivers"]) or "-",
                Text(muted, style="yellow") if muted else "",
            )


class SilencesTable(DataTable):
    """Active and pending silences: what they match, how long they have left."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("id", "matchers", "ends in", "by", "reason")

    def show(self, rows: list[dict]) -> None:
        self.clear()
        for s in rows:
            self.add_row(
                s["id"][:8],
                s["matchers"],
                span(s["ends_in_s"]),
                s["created_by"],
                s["comment"],
            )


class ReceiversTable(DataTable):
    """Per receiver: the last delivery (when, what), delivered and failed counts, and
    where the figures come from (the inbox, or Alertmanager's counters)."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns(
            "receiver", "via", "last delivery (UTC)", "what", "delivered", "failed", "source"
        )

    def show(self, rows: list[Receiver], now: float) -> None:
        self.clear()
        for r in rows:
            if r.last_at is None:
                last = Text("none seen", style="grey50")
            else:
                clock = time.strftime("%H:%M:%S", time.gmtime(r.last_at))
                last = f"{clock} ({span(now - r.last_at)} ago)"
            failed = "-" if r.failed is None else str(r.failed)
            if r.failed_attempts:
                failed += f" ({r.failed_attempts} tries)"
            style = "bold red" if r.failed else ("green" if r.failed == 0 else "grey50")
            self.add_row(
                r.receiver,
                ", ".join(r.integrations),
                last,
                _cut(r.last_what) if r.last_what else Text(_cut(r.note), style="grey50"),
                "-" if r.delivered is None else str(r.delivered),
                Text(failed, style=style),
                self._source(r),
            )

    @staticmethod
    def _source(r: Receiver) -> Text:
        """Where the figures come from: failures always from Alertmanager's counters per
        integration, which the receivers named after "with" share."""
        shared = f", with {', '.join(r.shared_with)}" if r.shared_with else ""
        per = f"per {', '.join(r.integrations) or '?'}{shared}"
        if r.source == "inbox":
            return Text(f"inbox; failed {per}")
        return Text(f"Alertmanager {per}", style="yellow")
