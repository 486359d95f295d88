"""The Low items of issue 25 that are input checks (each failed on main): `up --services ,`
started nothing and said ok; OCEAN_PORT_BASE=40000 was accepted with every port in the
ephemeral range. (`deploy --version ""`, `--ready-timeout 0s` and backup on a missing
state dir: tests/unit/test_limits.py and test_fs_errors.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocean import config
from ocean.config import Settings
from ocean.errors import OceanError
from tests.task_runner import run_task


@pytest.mark.parametrize("services", [",", " , ", " "])
def test_up_with_services_naming_nothing_is_refused(tmp_path: Path, services: str) -> None:
    state = tmp_path / "state"
    outcome = run_task(
        "up", f"--services={services}", "--no-install",
        env={"OCEAN_STATE_DIR": str(state), "OCEAN_PORT_BASE": "32600"},
    )  # fmt: skip
    assert not outcome.traceback, outcome.traceback
    assert outcome.code == 1
    assert outcome.stderr.strip().splitlines() == [
        f"error: --services {services!r} names no service: list some, or leave it out"
    ]
    assert not state.exists()


@pytest.mark.parametrize("base", ["40000", "32714", "60990"])
def test_a_port_base_in_the_ephemeral_range_is_refused(tmp_path: Path, base: str) -> None:
    outcome = run_task(
        "status", env={"OCEAN_STATE_DIR": str(tmp_path / "s"), "OCEAN_PORT_BASE": base}
    )
    assert not outcome.traceback, outcome.traceback
    assert outcome.code == 1
    (line,) = outcome.stderr.strip().splitlines()
    assert f"OCEAN_PORT_BASE={base}: its ports" in line and "ephemeral" in line


def test_the_range_is_the_machines(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "ip_local_port_range"
    fake.write_text("20000\t20999\n")
    monkeypatch.setattr(config, "LOCAL_PORT_RANGE", fake)
    env = {"OCEAN_STATE_DIR": str(tmp_path / "s"), "OCEAN_ENV": ""}
    with pytest.raises(OceanError, match=r"choose a base in 1024\.\.19945 or 21000\.\.65481"):
        Settings.from_env({**env, "OCEAN_PORT_BASE": "20500"})
    assert Settings.from_env({**env, "OCEAN_PORT_BASE": "40000"}).ports.base == 40000
    assert Settings.from_env({**env, "OCEAN_PORT_BASE": "32600"}).ports.base == 32600
