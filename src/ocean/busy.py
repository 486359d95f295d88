"""How busy the machine is now, for waits that must hold on a busy machine too.

A fixed wall-clock budget (a check's subprocess timeout, a new color's ready timeout)
judges the machine as much as the work when other processes keep the cores: the same
shop that is ready in 3 s on an idle box took over 60 s beside two test suites (load
average 36 on 2 cores). Such budgets stretch by :func:`factor`, read again at every
poll, so a wait that began on a quiet machine follows the load as it comes and goes.
"""

from __future__ import annotations

import os

# A stretched budget still ends: a release that never gets ready is abandoned within
# this many times its timeout however busy the machine is.
MAX_FACTOR = 4.0


def load_per_core() -> float | None:
    """The 1-minute load average per core; None where the kernel does not say."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return None
    return load / (len(os.sched_getaffinity(0)) or 1)


def factor(cap: float | None = None) -> float:
    """How much longer than on an idle machine work may take now: the load per core,
    at least 1, at most ``cap``."""
    per_core = load_per_core()
    stretch = max(1.0, per_core) if per_core is not None else 1.0
    return min(stretch, cap) if cap is not None else stretch


def describe(stretch: float) -> str:
    """ ", stretched 2.5x for a busy machine" or "" when nothing was stretched."""
    return f", stretched {stretch:.1f}x for a busy machine" if stretch > 1.0 else ""
