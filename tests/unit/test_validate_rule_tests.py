"""The generated burn-rate promtool tests can fail: each file fails, for both SLOs, when
the alerts it tests are weakened (mutation testing of monitoring/rules/slo.rules.yml).

`invoke validate` runs these tests at a coarse step (ocean.slo.burn_step) to stay within
its time budget; this guards against a coarser test that no longer proves anything.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ocean import slo
from ocean.config import REPO_ROOT
from ocean.validate.core import program

RULES = REPO_ROOT / "monitoring" / "rules"
_LIMIT = re.compile(r"> \((\S+) \* (\S+)\)")
_CLAUSE = r'slo:sli_error:ratio_rate\w+\{slo="\w+"\} > \(\S+ \* \S+\)\n'


def _scale(factor: float) -> Callable[[str], str]:
    return lambda text: _LIMIT.sub(lambda m: f"> ({float(m[1]) * factor:g} * {m[2]})", text)


MUTATIONS: dict[str, Callable[[str], str]] = {
    "factor 30% higher": _scale(1.3),
    "factor 30% lower": _scale(1 / 1.3),
    "no short window": lambda text: re.sub(r"and\n\s*" + _CLAUSE, "\n", text),
    "no long window": lambda text: re.sub(r"(expr: \|\n\s*)" + _CLAUSE + r"\s*and\n", r"\1", text),
    "no for": lambda text: re.sub(r"for: \d+[smh]\n", "for: 0s\n", text),
}


def burn_test_files() -> list[Path]:
    s = slo.load()
    return [REPO_ROOT / slo.rule_test_file(alert) for alert in s.burn_rate_alerts]


@pytest.mark.skipif(program("promtool") is None, reason="promtool not installed")
def test_weakened_burn_rate_alerts_fail_their_tests(tmp_path: Path):
    promtool = program("promtool")
    assert promtool
    files = burn_test_files()
    runs = []
    for index, (name, mutate) in enumerate(MUTATIONS.items()):
        rules = tmp_path / str(index)
        (rules / "tests").mkdir(parents=True)
        original = (RULES / "slo.rules.yml").read_text()
        mutated = mutate(original)
        assert mutated != original, f"{name}: the mutation changed nothing"
        (rules / "slo.rules.yml").write_text(mutated)
        for path in files:
            shutil.copy(path, rules / "tests" / path.name)
            runs.append((name, rules / "tests", path.name))

    def failures(run: tuple[str, Path, str]) -> tuple[str, str, int, str]:
        name, cwd, file = run
        result = subprocess.run(
            [promtool, "test", "rules", file], cwd=cwd, capture_output=True, text=True, timeout=60
        )
        output = result.stdout + result.stderr
        return name, file, result.returncode, output

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(failures, runs))
    for name, file, returncode, output in results:
        assert returncode == 1, f"{file} still passes with the alerts mutated: {name}"
        failed = set(re.findall(r"alertname: (Shop\w+BudgetBurn\w+)", output))
        assert {n.split("BudgetBurn")[0] for n in failed} == {
            "ShopAvailability",
            "ShopLatency",
        }, f"{file}, {name}: not every SLO's test failed: {sorted(failed)}"


def test_a_test_file_no_longer_generated_is_stale(tmp_path: Path):
    for rel in ("monitoring", "docs/runbooks", "testing", "stack/shop/ocean_shop"):
        shutil.copytree(REPO_ROOT / rel, tmp_path / rel)
    assert slo.stale(root=tmp_path) == []
    gone = tmp_path / slo.TESTS_DIR / "slo-burn-gone.test.yml"
    gone.write_text(f"# {slo.HEADER}.\nrule_files: []\ntests: []\n")
    (tmp_path / slo.TESTS_DIR / "hand-written.test.yml").write_text("tests: []\n")
    assert slo.stale(root=tmp_path) == [
        f"{slo.TESTS_DIR}/slo-burn-gone.test.yml (no longer generated: delete it)"
    ]
