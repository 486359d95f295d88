"""The load generator's side of a run: did k6, not the shop, limit it?

k6 measures latency with its own clock: a k6 that cannot get a CPU reads responses
late, and the time it waited lands in ``http_req_duration``; an arrival-rate scenario
whose k6 cannot keep up drops iterations. Either way a failed client-side verdict then
says nothing about the shop. This module gathers the evidence and names the side that
limited the run:

- **k6's CPU**, sampled from ``/proc/<pid>/stat`` (user + system time of all its
  threads) and ``/proc/<pid>/task/*/schedstat`` (time its threads were runnable but
  waited for a CPU: starved by other processes, e.g. a busy CI machine), against the
  cores it may use (its CPU affinity, and GOMAXPROCS when set);
- k6's ``dropped_iterations`` against the iterations it ran;
- k6's p99 against the shop's own p99 (Prometheus histogram): how much of what k6
  measured happened outside the shop.

:func:`judge` applies the rule (the constants below) to the verdicts: a server-side
breach (the shop's own metrics, a guard) fails the run whatever the load generator did;
a client-side *timing* verdict that failed while the load generator limited the run
becomes inconclusive, and so does a run that did not deliver the load it asked for.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocean.loadtest import machine as machine_
from ocean.loadtest.results import FAIL, LOAD_GENERATOR, MACHINE, Verdict

SERVER = "server"

# k6 used at least this share of the cores it may run on (affinity ∩ GOMAXPROCS): Go's
# scheduler has no slack left, so response reads and timers queue behind the scripts'
# JavaScript and the queueing is measured as latency. 90%, not 100%: sampling ticks and
# the runtime's own threads keep a pegged k6 just under its ceiling.
BUSY_MAX = 0.90
# k6's threads spent at least this share of the time they wanted a CPU waiting for one
# (run-queue delay / (CPU time + run-queue delay)): other processes starved it. On an
# idle machine this is a few percent; at 25% every fourth moment k6 wanted to read a
# response it could not, which is enough to move a p99 by whole scheduler slices.
# Measured on the 2-core CI box: idle 2%; busy (load 2-9) 50-85%, yet k6's p99 within a
# few ms of the shop's; load 16-25 88-96%; k6 pinned beside a busy loop 97-99%, its p99
# 5-20x the shop's. It sums over k6's threads (Go wakes several at once), so it reads
# high on a busy machine: which is why saturation alone only excuses a timing verdict
# that failed while the shop's own p99 held, and names k6 on a run where nothing failed
# only with LATE_CLOCK_SHARE.
WAIT_MAX = 0.25
# More than this share of the iterations an arrival-rate scenario planned were dropped
# (dropped / (run + dropped)): the asked load was not delivered. 1%: k6 drops a few
# iterations at ramp edges on any machine; beyond that the run tested a lower rate.
DROPPED_MAX = 0.01
# k6's p99 at least twice the shop's: half of the tail k6 measured happened outside the
# shop (k6 itself, the kernel, nginx). On a run where nothing failed, a saturated k6 is
# named as the limit only then: on a busy machine k6 waits for a CPU most of the time it
# wants one, yet at a few percent of a core those waits are too short to move its p99.
LATE_CLOCK_SHARE = 0.5

# Client-side verdicts measured by a clock on this machine (k6, Chromium): the ones a
# starved load generator inflates. Error ratios are not among them: a slow client does
# not make the server answer errors.
TIMED = frozenset({("latency", "client"), ("page_load", "browser")})
# The shop's own timings: what processes outside the run inflate when they take the cores
# (loadtest/machine.py). Its error ratio and cache hit ratio are not among them.
SERVER_TIMED = frozenset({("latency", "server"), ("db_query_latency", "server")})


# -- sampling k6's CPU ------------------------------------------------------------------


CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuReading:
    cpu_s: float  # user + system time of all its threads, ended ones included
    # Run-queue delay per live thread (tid → seconds); None: the kernel keeps no schedstat.
    waits: dict[int, float] | None


def read_cpu(pid: int) -> CpuReading | None:
    """The process' CPU time and its threads' run-queue delay so far; None when gone."""
    proc = Path(f"/proc/{pid}")
    try:
        raw = (proc / "stat").read_text()
        tasks = list((proc / "task").iterdir())
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2 :].split()  # field 3 (state) onward
    cpu_s = (int(rest[11]) + int(rest[12])) / CLK_TCK  # fields 14, 15: utime, stime
    waits: dict[int, float] = {}
    for task in tasks:
        try:
            waits[int(task.name)] = int((task / "schedstat").read_text().split()[1]) / 1e9
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        except (OSError, IndexError, ValueError):  # a kernel without schedstats
            return CpuReading(cpu_s, None)
    return CpuReading(cpu_s, waits)


def usable_cores(pid: int) -> int:
    """The CPUs ``pid`` may run on (its affinity), fewer when its GOMAXPROCS says so."""
    try:
        cores = len(os.sched_getaffinity(pid))
    except OSError:
        cores = os.cpu_count() or 1
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        environ = []
    for item in environ:
        if item.startswith(b"GOMAXPROCS="):
            with contextlib.suppress(ValueError):
                cores = min(cores, max(1, int(item.split(b"=", 1)[1])))
    return max(1, cores)


class CpuWatch:
    """k6's CPU over a run, sampled at each poll: per-interval figures for the time
    series and the whole run's for the verdict (from k6's start to the last sample;
    :meth:`figures` is empty when the process could not be read)."""

    def __init__(self, pid: int, at_s: float) -> None:
        self.pid = pid
        self.cores = usable_cores(pid)
        # Each thread's run-queue delay as last seen: a thread's figure goes with it when
        # it ends, so the total is the sum of what each thread had at its last reading.
        self.waits: dict[int, float] | None = {}
        self.first = self._read()
        self.start = self.last_at = at_s
        self.last = self.first
        self.saturated_s = 0.0
        self.sampled_s = 0.0

    def _read(self) -> tuple[float, float | None] | None:
        """(CPU seconds, run-queue seconds) since k6 started; None when it is gone."""
        now = read_cpu(self.pid)
        if now is None:
            return None
        if now.waits is None or self.waits is None:
            self.waits = None
            return now.cpu_s, None
        self.waits.update(now.waits)
        return now.cpu_s, sum(self.waits.values())

    def sample(self, at_s: float) -> dict[str, Any]:
        """This interval's k6 CPU (% of one core) and CPU wait share; {} when unknown."""
        now = self._read()
        if now is None or self.last is None or at_s <= self.last_at:
            return {}
        # Again each time: a wrapper (taskset, nice) execs k6 after it was started.
        self.cores = usable_cores(self.pid)
        span = at_s - self.last_at
        point = _shares(self.last, now, span, self.cores)
        if point.get("k6_saturated"):
            self.saturated_s += span
        self.sampled_s += span
        self.last, self.last_at = now, at_s
        return point

    def figures(self) -> dict[str, Any]:
        """The whole run so far (from k6's start to the last sample)."""
        if self.first is None or self.last is None or self.last_at <= self.start:
            return {}
        out = _shares(self.first, self.last, self.last_at - self.start, self.cores)
        out["k6_cores"] = self.cores
        out["k6_saturated_s"] = round(self.saturated_s, 1)
        out["k6_sampled_s"] = round(self.sampled_s, 1)
        return out


def _shares(
    a: tuple[float, float | None], b: tuple[float, float | None], span_s: float, cores: int
) -> dict[str, Any]:
    cpu = max(0.0, b[0] - a[0])
    busy = cpu / (span_s * cores)
    out: dict[str, Any] = {"k6_cpu_pct": round(100 * cpu / span_s, 1), "k6_busy": round(busy, 3)}
    wait_share = None
    if a[1] is not None and b[1] is not None:
        wait = max(0.0, b[1] - a[1])
        wait_share = wait / (cpu + wait) if cpu + wait > 0 else 0.0
        out["k6_wait_share"] = round(wait_share, 3)
    out["k6_saturated"] = busy >= BUSY_MAX or (wait_share is not None and wait_share >= WAIT_MAX)
    return out


# -- the rule ---------------------------------------------------------------------------


@dataclass
class Judgement:
    limited_by: str | None  # SERVER | LOAD_GENERATOR | None: nothing limited the run
    detail: str  # one line with the figures
    undelivered: bool  # the load generator did not deliver the asked load


def figures(cpu: dict[str, Any], client: dict[str, Any], server: dict[str, Any]) -> dict:
    """Everything the rule looks at, for the result (``generator``) and the report."""
    ran = client.get("iterations") or 0
    dropped = client.get("dropped_iterations") or 0
    client_p99, server_p99 = client.get("p99_ms"), server.get("p99_ms")
    outside = None
    if client_p99 and server_p99 is not None:
        outside = round(max(0.0, 1 - server_p99 / client_p99), 3)
    return {
        **cpu,
        "dropped_iterations": dropped,
        "dropped_share": round(dropped / (ran + dropped), 4) if ran + dropped else 0.0,
        "client_p99_ms": client_p99,
        "server_p99_ms": server_p99,
        "outside_shop_share": outside,  # of k6's p99: time not spent in the shop
        "thresholds": {"busy": BUSY_MAX, "wait_share": WAIT_MAX, "dropped_share": DROPPED_MAX},
    }


def saturated(gen: dict[str, Any]) -> bool:
    """Whether the load generator was the bottleneck over the run (the constants above)."""
    if gen.get("k6_busy") is not None and gen["k6_busy"] >= BUSY_MAX:
        return True
    return gen.get("k6_wait_share") is not None and gen["k6_wait_share"] >= WAIT_MAX


def describe(gen: dict[str, Any]) -> str:
    """The figures in one line: k6's CPU, its wait, drops, k6's p99 against the shop's."""
    parts = []
    if "k6_cpu_pct" in gen:
        cores = gen.get("k6_cores", 1)
        parts.append(
            f"k6 CPU {gen['k6_cpu_pct']:.0f}% ({gen['k6_busy']:.0%} of {cores} "
            f"core{'s' if cores != 1 else ''})"
        )
    else:
        parts.append("k6 CPU not measured")
    if gen.get("k6_wait_share") is not None:
        parts.append(f"waited for a CPU {gen['k6_wait_share']:.0%} of the time it was runnable")
    if gen.get("dropped_iterations"):
        parts.append(
            f"{gen['dropped_iterations']:,} iterations dropped ({gen['dropped_share']:.1%})"
        )
    if gen.get("client_p99_ms") is not None:
        shop = gen.get("server_p99_ms")
        parts.append(
            f"k6 p99 {gen['client_p99_ms']:.0f} ms vs the shop's "
            + ("-" if shop is None else f"{shop:.0f} ms")
        )
    if "others_cores" in gen:
        parts.append(machine_.describe(gen))
    return ", ".join(parts)


def judge(
    verdicts: list[Verdict],
    gen: dict[str, Any],
    breach: dict | None = None,
    stopped_by: str = "completed",
) -> Judgement:
    """Which side limited the run, excusing (``Verdict.excused``) the client-side timing
    verdicts that failed because of the load generator.

    - A server-side verdict failed or a guard stopped the run: the **server** (a starved
      client does not make the shop slow or failing as its own metrics see it); nothing
      is excused.
    - Else the load generator was saturated (:func:`saturated`), dropped more than
      DROPPED_MAX of its iterations, or did not stop in time: the **load generator**;
      failed timing verdicts (TIMED) become inconclusive, and a run that dropped
      iterations did not deliver its load. (Saturated, and nothing failed or dropped:
      named only when k6's p99 ran LATE_CLOCK_SHARE past the shop's.)
    - First, with no guard tripped: work outside the run took the cores
      (loadtest/machine.py): the **machine**; every failed timing verdict, the shop's
      own and the clients', becomes inconclusive. Failed error or cache verdicts stand
      (**server**); with nothing failed, the rules below apply.
    - Else a verdict failed: the **server** (k6 had the CPU it needed: the time it
      measured was spent in nginx, the shop or the network).
    - Else nothing limited the run: None. (A shop's p99 over its limit on too few slow
      requests to tell comes here excused by results.verdicts: inconclusive, no side
      named.)
    """
    figures_line = describe(gen)
    if breach is None and machine_.starved(gen):
        judged = _judge_starved_machine(verdicts, gen, figures_line, stopped_by)
        if judged is not None:
            return judged
    server_failed = [v for v in verdicts if v.source == SERVER and v.outcome == FAIL]
    if breach is not None or server_failed:
        what = f"guard {breach['guard']} tripped" if breach else f"{server_failed[0].slo} failed"
        also = " (the load generator was saturated too)" if saturated(gen) else ""
        return Judgement(SERVER, f"the shop's own metrics: {what}{also}; {figures_line}", False)
    dropped = gen.get("dropped_share", 0.0) > DROPPED_MAX
    late = stopped_by == "deadline"
    if saturated(gen) or dropped or late:
        reasons = []
        if saturated(gen):
            reasons.append("saturated")
        if dropped:
            reasons.append("dropped iterations")
        if late:
            reasons.append("did not stop in time")
        why = f"{LOAD_GENERATOR} {' and '.join(reasons)}"
        for v in verdicts:
            if v.passed is False and (v.slo, v.source) in TIMED and _measured(v):
                v.excused = why
        standing = [v for v in verdicts if v.outcome == FAIL]
        if standing:  # errors: a slow client does not make the server answer them
            what = f"{standing[0].slo} ({standing[0].source}) failed"
            detail = f"{what}, not explained by the load generator ({why}); {figures_line}"
            return Judgement(SERVER, detail, False)
        excused = any(v.excused == why for v in verdicts)
        late_clock = (gen.get("outside_shop_share") or 0.0) >= LATE_CLOCK_SHARE
        if not (dropped or late or excused or late_clock):
            detail = f"nothing (k6 saturated, but its p99 stayed near the shop's): {figures_line}"
            return Judgement(None, detail, False)
        detail = f"k6 {' and '.join(reasons)}: {figures_line}"
        return Judgement(LOAD_GENERATOR, detail, dropped or late)
    if any(v.outcome == FAIL for v in verdicts):
        return Judgement(SERVER, f"k6 had the CPU it needed: {figures_line}", False)
    return Judgement(None, figures_line, False)


def _judge_starved_machine(
    verdicts: list[Verdict], gen: dict[str, Any], figures_line: str, stopped_by: str
) -> Judgement | None:
    why = f"{MACHINE} busy: {machine_.describe(gen)}"
    for v in verdicts:
        timed = (v.slo, v.source) in TIMED | SERVER_TIMED
        if v.passed is False and timed and _measured(v):
            v.excused = why
    standing = [v for v in verdicts if v.outcome == FAIL]
    if standing:
        what = f"{standing[0].slo} ({standing[0].source}) failed"
        return Judgement(SERVER, f"{what}, not explained by the busy machine; {why}", False)
    if not any(v.excused for v in verdicts):
        return None
    # k6, starved with the rest, may not have delivered the load either.
    undelivered = gen.get("dropped_share", 0.0) > DROPPED_MAX or stopped_by == "deadline"
    detail = f"work outside the run took the cores: {figures_line}"
    return Judgement(MACHINE, detail, undelivered)


def _measured(verdict: Verdict) -> bool:
    """A timing verdict with figures (a crashed browser run is no slow page)."""
    return not verdict.measured.startswith(("browser run failed", "not measured"))
