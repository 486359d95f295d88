"""The largest count and duration each task accepts, in one table (issue 25, Medium 7).

Without a ceiling, `seed --orders 99999999999999999999` grew PostgreSQL by 14 GB in ten
minutes and `deploy --analysis-window 99999999999999h` held the deploy lock for good.
Each maximum is generous for real use and small enough that a typo ends in minutes,
not days; the README's task table and `./ocean --help TASK` name them.
"""

from __future__ import annotations

from ocean.durations import parse_duration
from ocean.errors import OceanError

# seed: 1 M orders take ≈ 20 s (docs/benchmarks.md), so the largest run is minutes.
MAX_SEED_PRODUCTS = 1_000_000
MAX_SEED_CUSTOMERS = 10_000_000
MAX_SEED_ORDERS = 10_000_000
MAX_SEED = 2**31 - 1  # the loader's random seed: any 32-bit value
# logs: more lines than this is a file to open, not a terminal's worth.
MAX_LOG_LINES = 100_000
# deploy / promote (the analysis window's 1 h is MAX_ANALYSIS_WINDOW_S in deploy_options.py)
MAX_SCALE_DOWN_DELAY_S = 3600.0
MAX_READY_TIMEOUT_S = 600.0
MAX_WARMUP_REQUESTS = 100_000
# deploy-status --history, backup-prune --keep-*
MAX_HISTORY = 10_000
MAX_KEEP = 1000
# loadtest-report --tolerance: a fraction; 10 = 1000 % worse still counts as fine
MAX_TOLERANCE = 10.0


def count(value: object, flag: str, lowest: int, highest: int) -> int:
    """``value`` as a whole number in lowest..highest; OceanError naming ``--flag``."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise OceanError(f"--{flag} {value!r} is not a whole number") from None
    if number < lowest:
        raise OceanError(f"--{flag} must be {lowest} or more, not {number}")
    if number > highest:
        raise OceanError(f"--{flag} must be at most {highest:,}, not {number:,}")
    return number


def seconds(value: str | float, flag: str, highest: float, positive: bool = False) -> float:
    """A duration (``parse_duration``) of 0 (above 0 when ``positive``) up to
    ``highest`` seconds; OceanError naming ``--flag``."""
    got = parse_duration(value, flag) if isinstance(value, str) else float(value)
    if positive and got <= 0:
        raise OceanError(f"--{flag} must be more than 0s, not {got:g}s")
    if not 0 <= got <= highest:  # also NaN
        raise OceanError(f"--{flag} must be at most {highest:g}s, not {got:g}s")
    return got
