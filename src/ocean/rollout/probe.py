"""The same small stream of reads, interleaved, to the new color and the old one.

Kayenta's idea, for blue-green: machine-wide slowness (a CPU hog, a busy CI runner, a
noisy neighbour) slows every process on the box alike, so the new color's p99 alone
cannot tell a slow machine from a slow release. While the analysis runs, the old
color is still up and warm; a prober sends the same reads straight to both colors'
own ports, both reads of a pair at once, and keeps each answer's latency. Only a
difference between the two is the release's own (ocean.rollout.verdicts compares
them). The probes reach the new color as API requests, so a deploy with no user
traffic is still judged on evidence, not promoted on silence.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

# One pair (one read to each color) every this many seconds: 5 reads/s per color,
# about 1% of what one shop process serves, yet 50 samples per color in 10 s.
PAIR_INTERVAL_S = 0.2
TIMEOUT_S = 5.0
# What a shopper reads most (ocean.rollout.warmup warms the same routes first).
READS = ("/api/products?limit=20", "/api/search?q=ocean&limit=10", "/api/categories")


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic() when the read was sent
    color: str
    seconds: float
    status: int  # 0: no answer (connection refused, timeout)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Prober:
    """Reads ``paths`` in turn from every color in ``urls``, one round per interval, in
    a daemon thread from start() until stop(). Thread-safe readers: samples()."""

    def __init__(
        self,
        urls: dict[str, str],
        paths: Iterable[str] = READS,
        interval: float = PAIR_INTERVAL_S,
        timeout: float = TIMEOUT_S,
    ) -> None:
        self.urls = dict(urls)
        self.paths = tuple(paths)
        self.interval = interval
        self.timeout = timeout
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe", daemon=True)

    def start(self) -> Prober:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(self.timeout + 1)

    def __enter__(self) -> Prober:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def samples(self, since: float = 0.0) -> dict[str, list[Sample]]:
        """Each color's samples sent at or after ``since`` (monotonic seconds)."""
        with self._lock:
            chosen = [s for s in self._samples if s.at >= since]
        return {color: [s for s in chosen if s.color == color] for color in self.urls}

    def _run(self) -> None:
        clients = {
            color: httpx.Client(base_url=url, timeout=self.timeout)
            for color, url in self.urls.items()
        }
        # Both reads of a pair leave together: a slow color does not delay the other's.
        pool = ThreadPoolExecutor(len(clients), thread_name_prefix="probe-read")
        try:
            for path in itertools.cycle(self.paths):
                begun = time.monotonic()
                reads = [
                    pool.submit(self._read, client, color, path)
                    for color, client in clients.items()
                ]
                for read in reads:
                    read.result()
                if self._stopping.wait(max(0.0, self.interval - (time.monotonic() - begun))):
                    return
        finally:
            pool.shutdown(wait=True)
            for client in clients.values():
                client.close()

    def _read(self, client: httpx.Client, color: str, path: str) -> None:
        sent = time.monotonic()
        try:
            status = client.get(path).status_code
        except httpx.HTTPError:
            status = 0
        sample = Sample(sent, color, time.monotonic() - sent, status)
        with self._lock:
            self._samples.append(sample)
