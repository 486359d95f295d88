"""`down --purge --yes` deletes only a stack's state dir (issue 25, High 1): the decision
(ocean/statedir.py) and the task as a user runs it (subprocess, no stack).

Before the fix, `OCEAN_STATE_DIR=<any dir> ./ocean down --purge --yes` deleted it all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocean import statedir
from ocean.config import REPO_ROOT
from ocean.errors import OceanError
from tests.helpers import run_cli

PORT_BASE = 32100  # hand-picked: nothing listens, the tasks here start nothing


def _foreign(tmp_path: Path) -> Path:
    folder = tmp_path / "somebodys"
    (folder / "important").mkdir(parents=True)
    (folder / "important" / "thesis.tex").write_text("years of work\n")
    (folder / "notes.txt").write_text("keep me\n")
    return folder


def _legacy(tmp_path: Path) -> Path:
    """A state dir made before the marker existed: the layout, supervisord's config."""
    state = tmp_path / "legacy"
    (state / "etc").mkdir(parents=True)
    (state / "etc" / "supervisord.conf").write_text("[supervisord]\n")
    (state / "data" / "postgres").mkdir(parents=True)
    (state / "secrets.env").write_text("POSTGRES_PASSWORD=x\n")
    return state


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


# -- the decision -------------------------------------------------------------------------


def test_a_claimed_state_dir_may_be_purged(tmp_path: Path) -> None:
    state = tmp_path / "new"
    statedir.claim(state, REPO_ROOT)
    assert (state / statedir.MARKER).is_file()
    (state / "data").mkdir()
    (state / "logs").mkdir()
    assert statedir.purge_problem(state, REPO_ROOT) == ""


def test_a_legacy_state_dir_with_a_stack_footprint_may_be_purged(tmp_path: Path) -> None:
    assert statedir.purge_problem(_legacy(tmp_path), REPO_ROOT) == ""


def test_a_foreign_dir_is_refused_naming_what_it_holds(tmp_path: Path) -> None:
    problem = statedir.purge_problem(_foreign(tmp_path), REPO_ROOT)
    assert "important, notes.txt" in problem and "no stack writes" in problem


def test_an_unmarked_stack_layout_with_foreign_files_is_refused(tmp_path: Path) -> None:
    folder = _legacy(tmp_path)
    (folder / "thesis.tex").write_text("years of work\n")
    assert "thesis.tex" in statedir.purge_problem(folder, REPO_ROOT)


def test_a_marked_dir_is_a_stacks_with_whatever_was_put_in_it(tmp_path: Path) -> None:
    state = tmp_path / "bench"
    statedir.claim(state, REPO_ROOT)  # made empty by the toolkit, then used by a stack
    (state / "busy" / "healthy").mkdir(parents=True)  # a benchmark's run outputs
    assert statedir.purge_problem(state, REPO_ROOT) == ""


def test_a_symlinked_marker_is_no_marker(tmp_path: Path) -> None:
    folder = _foreign(tmp_path)
    real = tmp_path / "real-marker"
    real.write_text(statedir.MARKER_TEXT)
    (folder / statedir.MARKER).symlink_to(real)
    assert "no .ocean-state marker" in statedir.purge_problem(folder, REPO_ROOT)


def test_known_names_alone_are_no_proof(tmp_path: Path) -> None:
    folder = tmp_path / "srv"
    (folder / "data").mkdir(parents=True)  # e.g. somebody's /srv with a data/ folder
    assert "no .ocean-state marker" in statedir.purge_problem(folder, REPO_ROOT)


@pytest.mark.parametrize("which", ["root", "home", "checkout", "parent of checkout"])
def test_root_home_and_the_checkout_are_never_purged(tmp_path: Path, which: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    statedir.mark(home)  # even marked
    target = {
        "root": Path("/"),
        "home": home,
        "checkout": REPO_ROOT,
        "parent of checkout": REPO_ROOT.parent,
    }[which]
    problem = statedir.purge_problem(target, REPO_ROOT, home=home)
    assert "is not a state dir to purge" in problem


def test_a_symlink_or_a_file_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "real"
    statedir.claim(state, REPO_ROOT)
    link = tmp_path / "link"
    link.symlink_to(state)
    assert "symbolic link" in statedir.purge_problem(link, REPO_ROOT)
    plain = tmp_path / "file"
    plain.write_text("x")
    assert "not a directory" in statedir.purge_problem(plain, REPO_ROOT)


def test_up_does_not_take_over_a_foreign_dir(tmp_path: Path) -> None:
    folder = _foreign(tmp_path)
    with pytest.raises(OceanError, match="new or empty directory"):
        statedir.claim(folder, REPO_ROOT)
    assert not (folder / statedir.MARKER).exists()
    legacy = _legacy(tmp_path)
    statedir.claim(legacy, REPO_ROOT)  # an old state dir is marked on its next up
    assert (legacy / statedir.MARKER).is_file()


# -- the task ------------------------------------------------------------------------------


def test_down_purge_of_a_foreign_dir_is_one_line_and_leaves_it_intact(tmp_path: Path) -> None:
    folder = _foreign(tmp_path)
    before = _snapshot(folder)
    result = run_cli("down", "--purge", "--yes", state_dir=folder, port_base=PORT_BASE)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to purge"), result.stderr
    assert _snapshot(folder) == before  # nothing deleted, nothing (not even audit) added


def test_down_purge_of_a_real_state_dir_still_purges(tmp_path: Path) -> None:
    for state in (tmp_path / "fresh", _legacy(tmp_path)):
        if not state.exists():
            statedir.claim(state, REPO_ROOT)
            (state / "data" / "postgres").mkdir(parents=True)
            (state / "secrets.env").write_text("POSTGRES_PASSWORD=x\n")
        result = run_cli("down", "--purge", "--yes", state_dir=state, port_base=PORT_BASE)
        assert result.returncode == 0, result.stderr
        # Only the audit log survives a purge (and the marker, so it may be purged again).
        assert sorted(p.name for p in state.iterdir()) == [statedir.MARKER, "audit.jsonl"]
