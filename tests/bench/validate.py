"""Config validation benchmark: `nox -s bench -- validate` (= python -m tests.bench.validate).

Times the whole `invoke validate` command (a fresh process each run, start-up
included) on a copy of this checkout, so editing a rule file never touches the real
one, in three states (issue 21's targets):

1. cold: an empty rule-test cache (a new OCEAN_VALIDATE_CACHE directory each run).
   Target ≤ 5 s.
2. one rule file changed: the cache holds a passing run, then one line is appended to
   --rule-file before each run (a comment with the run's number: new content, so every
   test file that loads it runs again; the others come from the cache). Target ≤ 8 s.
3. warm: nothing changed since a passing run.

Each figure is the median of --runs runs with min and max, and the CPU seconds of the
command with its promtool children; a wide spread says the machine was busy (the load
average is printed with each line). Prints a Markdown table
for docs/benchmarks.md; --json-out writes the raw figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ocean.config import REPO_ROOT
from tests.helpers import validate_copy

COPIED = ("src", "monitoring", "docs/runbooks", "stack", "testing")
IGNORE = shutil.ignore_patterns(
    ".venv", "__pycache__", "*.egg-info", "node_modules", ".pytest_cache"
)


def copy_checkout(into: Path) -> Path:
    for rel in COPIED:
        shutil.copytree(REPO_ROOT / rel, into / rel, ignore=IGNORE)
    for rel in ("tasks.py", ".yamllint"):
        shutil.copy(REPO_ROOT / rel, into / rel)
    return into


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_validate(root: Path, cache: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds with its promtool children, exit code) of one
    `invoke validate` of the copy at ``root``."""
    cpu_before = _children_cpu()
    started = time.monotonic()
    result = validate_copy(root, OCEAN_VALIDATE_CACHE=str(cache))
    took, cpu = time.monotonic() - started, _children_cpu() - cpu_before
    if result.returncode != 0:
        print(result.stdout[-2000:], result.stderr[-2000:], file=sys.stderr)
    return took, cpu, result.returncode


def summary(name: str, runs: list[float], cpus: list[float], loads: list[float]) -> dict:
    return {
        "state": name,
        "median_cpu_s": round(statistics.median(cpus), 2),
        "median_s": round(statistics.median(runs), 2),
        "min_s": round(min(runs), 2),
        "max_s": round(max(runs), 2),
        "runs_s": [round(r, 2) for r in runs],
        "load_average": [round(min(loads), 1), round(max(loads), 1)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rule-file", default="monitoring/rules/application.rules.yml")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="ocean-bench-validate-") as tmp:
        root = copy_checkout(Path(tmp) / "repo")
        caches = Path(tmp) / "caches"
        warm_cache = caches / "warm"

        def measure(name: str, before_each, cache_for) -> None:
            runs, cpus, loads = [], [], []
            for index in range(args.runs):
                before_each(index)
                loads.append(os.getloadavg()[0])
                took, cpu, code = timed_validate(root, cache_for(index))
                if code != 0:
                    raise SystemExit(f"{name}: validate exited {code} (see above)")
                runs.append(took)
                cpus.append(cpu)
            results.append(summary(name, runs, cpus, loads))
            print(json.dumps(results[-1]), flush=True)

        rule_file = root / args.rule_file
        original = rule_file.read_text()

        def change_rule_file(index: int) -> None:
            rule_file.write_text(original + f"# benchmark edit {index}\n")

        measure("cold", lambda i: None, lambda i: caches / f"cold-{i}")
        timed_validate(root, warm_cache)  # fills the cache: a passing run
        measure("one rule file changed", change_rule_file, lambda i: warm_cache)
        measure("warm", lambda i: None, lambda i: warm_cache)
    today = datetime.date.today().isoformat()
    print(f"\n{today}, {os.cpu_count()} cores, {args.runs} runs each, --rule-file {args.rule_file}")
    print("| state | wall time, median (min–max) | CPU s, median | load average |")
    print("|---|---|---|---|")
    for r in results:
        print(
            f"| {r['state']} | **{r['median_s']:.2f} s** ({r['min_s']:.2f}–{r['max_s']:.2f}) "
            f"| {r['median_cpu_s']:.2f} | {r['load_average'][0]}–{r['load_average'][1]} |"
        )
    if args.json_out:
        args.json_out.write_text(json.dumps({"date": today, "results": results}, indent=2))


if __name__ == "__main__":
    main()
