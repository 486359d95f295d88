"""Running the storefront's browser journey: k6's browser module driving Debian's
Chromium, headless (testing/k6/storefront_browser.js).

Chromium is kept on loopback (``--proxy-server=http://127.0.0.1:9``: it otherwise looks
up update and account hosts) and runs without a sandbox (required as root). k6 puts
each browser's profile in TMPDIR: a temp dir of our own, removed afterwards, so a killed
run leaves no /tmp/k6browser-data-* behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ocean import slo
from ocean.config import REPO_ROOT
from ocean.errors import OceanError
from ocean.runtime import k6
from ocean.storefront import BrowserRun

SCRIPT = REPO_ROOT / "testing" / "k6" / "storefront_browser.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "no-sandbox,disable-gpu,disable-quic,disable-dev-shm-usage,proxy-server=http://127.0.0.1:9"
)


def run_browser(
    base_url: str,
    *,
    vus: int = 1,
    iterations: int = 1,
    max_duration: str = "2m",
    timeout: float = 300,
    load_ms: float | None = None,
    lcp_ms: float | None = None,
    spki_pins: tuple[str, ...] = (),
) -> BrowserRun:
    """Run the storefront journey `iterations` times over `vus` browsers; bounded by
    `max_duration` inside k6 and `timeout` outside it. The p95 thresholds per page
    default to slo.yaml's page_load objectives.

    ``spki_pins``: base64 SHA-256 of the public keys Chromium accepts for HTTPS although
    no CA it knows signed them (the stack's own certificate: a pin, not "ignore all
    certificate errors"; Chromium does not read SSL_CERT_FILE)."""
    if load_ms is None or lcp_ms is None:
        objective = slo.load().page_load
        load_ms = objective.threshold_ms if load_ms is None else load_ms
        lcp_ms = objective.lcp_threshold_ms if lcp_ms is None else lcp_ms
    if not Path(CHROMIUM).exists():
        raise OceanError(f"{CHROMIUM} is missing: ./ocean up installs it (Debian's chromium)")
    work = Path(tempfile.mkdtemp(prefix="ocean-browser-"))
    summary_path = work / "summary.json"
    env = {
        **os.environ,
        "TMPDIR": str(work),
        "XDG_CONFIG_HOME": str(work / "config"),
        "K6_BROWSER_HEADLESS": "true",
        "K6_BROWSER_EXECUTABLE_PATH": CHROMIUM,
        "K6_BROWSER_ARGS": ",".join(
            [CHROMIUM_ARGS, *(f"ignore-certificate-errors-spki-list={pin}" for pin in spki_pins)]
        ),
        "K6_NO_USAGE_REPORT": "true",
        "BASE_URL": base_url,
        "VUS": str(vus),
        "ITERATIONS": str(iterations),
        "MAX_DURATION": max_duration,
        "LOAD_MS": str(load_ms),
        "LCP_MS": str(lcp_ms),
        "SUMMARY": str(summary_path),
    }
    try:
        # Chromium's stderr must reach k6 unwrapped (it reads the DevTools URL there):
        # k6 is given files, not pipes that a reader could stall.
        with open(work / "k6.log", "w+") as log:
            try:
                process = subprocess.run(
                    [k6.k6_binary(), "run", *k6.BASE_FLAGS, "--quiet", str(SCRIPT)],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise OceanError(f"the browser run took over {timeout:.0f} s") from None
            log.seek(0)
            output = log.read()
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        # The tail for error messages, and every failed journey's line.
        failed = "\n".join(line for line in output.splitlines() if "journey failed" in line)
        return BrowserRun(process.returncode, summary, f"{failed}\n{output[-4000:]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
