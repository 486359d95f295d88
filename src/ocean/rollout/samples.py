"""Figures over raw latency samples (warm-up rounds, paired probes).

Nearest rank, not interpolation: with the few dozen samples a round or a probe
window holds, a figure should be a latency that was really seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def quantile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank quantile (the p90 of 50 latencies is the 45th fastest); None when
    there are no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]
