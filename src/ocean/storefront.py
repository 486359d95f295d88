"""The storefront in a real browser: what a run of testing/k6/storefront_browser.js
(k6 browser driving Debian's Chromium, headless) measured, per page: FCP, LCP and load.

Running it is process management, so it lives with the runtimes
(``ocean.runtime.browser.run_browser``, ``runtime.run_browser``). Used by the load-test
verdict, the end-to-end test (tests/integration/test_storefront.py) and the benchmark
(tests/bench/storefront.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PAGES = ("home", "category", "product", "cart", "checkout", "order")


@dataclass(frozen=True)
class BrowserRun:
    returncode: int  # 0: every journey and threshold passed; 99: a threshold failed
    summary: dict[str, Any]  # what the script's handleSummary wrote
    output: str  # k6's stdout and stderr (the tail, for error messages)

    @property
    def failures(self) -> list[str]:
        """Why journeys failed, as the script logged it (one line each)."""
        lines = self.output.splitlines()
        return list(dict.fromkeys(line for line in lines if "journey failed" in line))

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.summary.get("thresholds_ok"))

    def p95_ms(self) -> dict[str, dict[str, float]]:
        """page → {"fcp", "lcp", "load"} → p95 in ms (pages never measured left out)."""
        figures: dict[str, dict[str, float]] = {}
        for page, metrics in self.summary.get("pages", {}).items():
            values = {k: round(v["p95"], 1) for k, v in metrics.items() if v.get("p95") is not None}
            if values:
                figures[page] = values
        return figures
