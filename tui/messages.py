"""Messages the console's workers post (attributes down, messages up).

Workers run procedures and fetches in threads; ``post_message`` is the only safe way
back to the UI from there.
"""

from __future__ import annotations

from textual.message import Message

from ocean.dashboards.query import PanelData
from ocean.model import ServiceStatus, Step
from ocean.observe import HealthView


class HealthUpdated(Message):
    """A fetch from Prometheus succeeded (``services``: the runtime's own view)."""

    def __init__(self, view: HealthView, services: list[ServiceStatus] | None = None) -> None:
        super().__init__()
        self.view = view
        self.services = services or []


class HealthFailed(Message):
    """A fetch failed; the console keeps the last view, greyed, and retries later."""

    def __init__(self, error: str, retry_in: float) -> None:
        super().__init__()
        self.error = error
        self.retry_in = retry_in


class StepPosted(Message):
    """One Step of a running procedure."""

    def __init__(self, source: str, step: Step) -> None:
        super().__init__()
        self.source = source
        self.step = step


class ProcedureDone(Message):
    """A procedure ended: ``error`` is empty when it succeeded."""

    def __init__(self, source: str, error: str = "", result: object = None) -> None:
        super().__init__()
        self.source = source
        self.error = error
        self.result = result


class DashboardFetched(Message):
    """One refresh of a dashboard's panels (``data``: panel id → PanelData) and the
    values each template variable offers; ``generation`` names the dashboard and
    selection it was fetched for, so a late answer for an old one is dropped."""

    def __init__(
        self,
        generation: int,
        data: dict[int, PanelData],
        options: dict[str, list[str]],
        seconds: float,
    ) -> None:
        super().__init__()
        self.generation = generation
        self.data = data
        self.options = options
        self.seconds = seconds


class AlertsFetched(Message):
    """The Alerts screen's poll ended: ``listing`` is `invoke alerts`' report (None when
    neither Prometheus nor Alertmanager answered), ``receivers`` each receiver's last
    delivery and failures (ocean.alerting.deliveries), ``problems`` what did not
    answer, ``at`` when (ages are shown as of then)."""

    def __init__(
        self, listing: dict | None, receivers: list, problems: list[str], at: float
    ) -> None:
        super().__init__()
        self.listing = listing
        self.receivers = receivers
        self.problems = problems
        self.at = at
