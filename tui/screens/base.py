"""What every console screen shares: header, the Prometheus banner, footer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header

from ocean.observe import HealthView
from tui.widgets.banner import Banner

if TYPE_CHECKING:
    from tui.app import OceanConsole


class OceanFooter(Footer):
    """Textual's Footer, rebuilt once per burst of binding changes and only on the
    screen shown. Footer rebuilds its keys after every change: a switch to a screen
    brings three or four (the stack, the focus, …), and the screen left behind got its
    own, so a switch rebuilt footer keys ≈ 8 times (≈ 100 keys restyled twice each)."""

    _pending = False  # a rebuild is scheduled

    def bindings_changed(self, screen: Screen) -> None:
        if self._pending:
            return
        if self.is_attached and screen is self.screen and not screen.is_current:
            # A suspended screen's footer: resuming it changes its bindings again.
            return
        super().bindings_changed(screen)
        self._pending = self.is_attached and screen is self.screen and self.app.app_focus

    async def recompose(self) -> None:
        self._pending = False
        await super().recompose()


class OceanScreen(Screen):
    # Actions that change the stack: hidden (and refused) with --readonly.
    MUTATING: frozenset[str] = frozenset()

    @property
    def console(self) -> OceanConsole:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Banner(id="banner")
        yield from self.compose_body()
        yield OceanFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_screen_resume(self) -> None:
        view = self.console.health
        if view is not None:
            self.show_health(view)
        if self.console.health_error:
            self.health_failed(*self.console.health_error)

    def show_health(self, view: HealthView) -> None:
        self.query_one(Banner).clear()
        self.remove_class("stale")

    def health_failed(self, error: str, retry_in: float) -> None:
        self.query_one(Banner).show_error(error, retry_in)
        self.add_class("stale")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # False hides the action from the footer and refuses it.
        return not (self.console.readonly and action in self.MUTATING)
