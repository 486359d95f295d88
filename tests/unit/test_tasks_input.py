"""Bad numbers on the command line: one line naming the flag, exit 1, no traceback and
nothing done (subprocess, no stack)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import free_port_base, run_cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("deploy", "--color=green", "--warmup=many"), "--warmup: 'many' is not a whole number"),
        (("seed", "--products=1e3"), "--products: '1e3' is not a whole number"),
        (("backup-prune", "--keep-last=1.5"), "--keep-last: '1.5' is not a whole number"),
        (("loadtest-report", "--tolerance=tenth"), "--tolerance: 'tenth' is not a number"),
    ],
)
def test_a_bad_number_is_one_line_naming_the_flag(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = run_cli(*args, state_dir=tmp_path / "state", port_base=free_port_base())
    assert result.returncode == 1
    assert result.stderr.strip() == message
    assert not (tmp_path / "state").exists()  # nothing was started or written


def test_a_negative_warmup_is_refused_before_anything_starts(tmp_path: Path) -> None:
    result = run_cli(
        "deploy",
        "--color=green",
        "--warmup=-1",
        state_dir=tmp_path / "state",
        port_base=free_port_base(),
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: --warmup must be 0 or more")
