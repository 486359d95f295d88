"""The banner that says Prometheus cannot be reached (hidden while it can)."""

from __future__ import annotations

from textual.widgets import Static


class Banner(Static):
    def show_error(self, error: str, retry_in: float) -> None:
        self.update(
            f"Prometheus unreachable: {error}. Values shown are the last known; "
            f"retrying in {retry_in:.0f}s."
        )
        self.add_class("visible")

    def clear(self) -> None:
        self.update("")
        self.remove_class("visible")
