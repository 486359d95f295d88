"""`alerts`, `alerts.silence`, `alerts.drill` with nothing running: one line on stderr,
exit 1, nothing silenced or posted (subprocess, no service)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ocean import audit
from ocean.config import REPO_ROOT
from tests.alerting_support import rendered_runtime
from tests.helpers import cli, free_port_base, run_cli


def _one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_an_unknown_alert_is_refused_before_anything_is_written(tmp_path: Path):
    state = tmp_path / "state"
    result = run_cli(
        "alerts.silence",
        "RedisDwn",
        "--for",
        "1h",
        "--reason",
        "x",
        state_dir=state,
        port_base=free_port_base(),
    )
    line = _one_line(result)
    assert line == (
        "error: no alerting rule defines 'RedisDwn' "
        "(did you mean RedisDown or RedisReplicaDown?): nothing silenced"
    )
    assert not state.exists()


def test_the_ocean_script_takes_the_two_word_form(tmp_path: Path):
    env = {
        **os.environ,
        "OCEAN_STATE_DIR": str(tmp_path / "s"),
        "OCEAN_PORT_BASE": str(free_port_base()),
    }
    result = subprocess.run(
        [str(REPO_ROOT / "ocean"), "alerts", "silence", "Nope", "--for", "1h", "--reason", "x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert _one_line(result).startswith("error: no alerting rule defines 'Nope'")


def test_silencing_with_alertmanager_down_is_one_line_and_audited_as_failed(tmp_path: Path):
    runtime = rendered_runtime(tmp_path / "state")
    line = _one_line(cli(runtime, "alerts.silence", "TargetDown", "--for", "2h", "--reason", "x"))
    assert line.startswith("error: alertmanager is not answering at http://127.0.0.1:")
    outcomes = [e["outcome"] for e in audit.read(runtime.settings)]
    assert outcomes == ["started", "failed"]


def test_the_listing_with_nothing_up_is_one_line(tmp_path: Path):
    runtime = rendered_runtime(tmp_path / "state")
    line = _one_line(cli(runtime, "alerts"))
    assert "prometheus is not answering" in line and "alertmanager is not answering" in line


def test_a_stack_never_brought_up_says_so(tmp_path: Path):
    result = run_cli("alerts", state_dir=tmp_path / "state", port_base=free_port_base())
    assert "(the stack's CA is made by `./ocean up`)" in _one_line(result)
    drill = run_cli("alerts.drill", state_dir=tmp_path / "state", port_base=free_port_base())
    assert "alertmanager.yml does not exist" in _one_line(drill)
