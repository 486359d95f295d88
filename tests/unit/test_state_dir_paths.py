"""A state dir whose path the stack's configs cannot hold is refused when the settings
are made (issue 25, Medium 11): before, `OCEAN_STATE_DIR="/tmp/a b" ./ocean up` wrote
`dir /tmp/a b/data/redis-master` into redis.conf, and up waited 30 s for a Redis that had
refused its config. A path that is accepted renders as one token wherever it goes.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from ocean.config import REPO_ROOT, PortPlan, Settings
from ocean.errors import OceanError
from ocean.render import render
from ocean.validate.rendering import local_context
from tests.task_runner import run_task

BAD = ["a b", "tab\there", "new\nline", "hash#dir", "per%cent", "semi;colon", 'quo"te', "it's"]


@pytest.mark.parametrize("name", BAD, ids=repr)
def test_a_state_dir_the_configs_cannot_hold_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(OceanError, match="cannot hold unquoted") as caught:
        Settings(state_dir=tmp_path / name, ports=PortPlan(32400))
    assert "\n" not in str(caught.value).replace(repr(name)[1:-1], "")  # one line


def test_the_task_says_so_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "a b"
    outcome = run_task("up", env={"OCEAN_STATE_DIR": str(state), "OCEAN_PORT_BASE": "32400"})
    assert not outcome.traceback, outcome.traceback
    assert outcome.code == 1
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds a space" in lines[0], outcome.stderr
    assert not state.exists()


def test_an_accepted_path_is_one_token_in_redis_conf(tmp_path: Path) -> None:
    # Letters of any script, dots, dashes, @ and + are fine: unquoted, still one token.
    state = tmp_path / "stäte-ü.v2+x@host"
    ctx = local_context(REPO_ROOT, state)
    for conf, sub in (("redis-master", "redis-master"), ("redis-replica", "redis-replica")):
        text = render(f"stack/redis/{conf}.conf", {**ctx, "redis_dir": state / "data" / sub})
        line = next(line for line in text.splitlines() if line.startswith("dir "))
        assert shlex.split(line) == ["dir", str(state / "data" / sub)]
