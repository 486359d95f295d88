"""Background k6 traffic for deploy tests and benchmarks (testing/k6/deploy_traffic.js).

Bounded twice: k6 stops by itself after ``duration``, and ``stop()`` interrupts it
(SIGINT: k6 still writes its summary) or, if it hangs, kills it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ocean.config import REPO_ROOT
from ocean.runtime import k6

SCRIPT = REPO_ROOT / "testing" / "k6" / "deploy_traffic.js"


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
        self,
        base_url: str,
        workdir: Path,
        vus: int = 10,
        duration: float = 120,
        products: int = 50,
        env: dict[str, str] | None = None,
    ) -> None:
        self.summary_path = workdir / "k6-summary.json"
        self.log_path = workdir / "k6.log"
        self.duration = duration
        args = [
            "run",
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
        # The toolkit's one way to start k6: no usage report, no REST API port, and
        # SIGINT when this process dies.
        self.proc = k6.spawn(args, env or {}, self.log_path, cwd=SCRIPT.parent)
        self.started = time.monotonic()

    @classmethod
    def through_nginx(cls, runtime, workdir: Path, **kwargs) -> Traffic:
        """Traffic to ``runtime``'s nginx over HTTPS (k6 trusts the stack's CA) with
        the traffic token (not rate-limited)."""
        return cls(runtime.url("nginx"), workdir, env=runtime.access().k6_env(), **kwargs)

    def stop(self) -> TrafficResult:
        """Interrupt k6 (if still running) and return what it measured."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        tail = self.log_path.read_text(errors="replace")[-2000:]
        if not self.summary_path.exists():
            raise RuntimeError(f"k6 wrote no summary (exit {self.proc.returncode}):\n{tail}")
        return TrafficResult.from_summary(json.loads(self.summary_path.read_text()), tail)

    def warm_up(self, seconds: float = 2.0) -> None:
        """Give k6 a moment to ramp up before the thing under test starts."""
        time.sleep(max(0.0, seconds - (time.monotonic() - self.started)))
