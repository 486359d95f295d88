"""`./ocean` repairs an interrupted first install (issue 23).

The script runs on a copy of a checkout whose interpreters are stand-ins: a `python3`
on PATH that makes a stand-in venv, and a venv `python` whose `-m pip install` writes
the stand-in `invoke` a finished install has. Each run's argv is logged, so a test sees
whether the script installed and what it ran, in milliseconds and without pip.

Before the fix, under dash (Debian's /bin/sh) a venv without its stamp (pip killed
mid-install) was taken as installed, and every later command failed with
`exec: .venv/bin/invoke: not found`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ocean.config import REPO_ROOT

# A venv's python: `-m pip --version` answers only when the venv has pip; `-m pip
# install` leaves the console script a finished install has.
VENV_PYTHON = """#!/bin/sh
bin=$(dirname "$0")
echo "python $*" >> "$bin/../../calls.log"
case "$*" in
    "-m pip --version") [ -e "$bin/pip" ] ;;
    "-m pip install"*) printf '#!/bin/sh\\necho "invoke $*"\\n' > "$bin/invoke"
                       chmod +x "$bin/invoke" ;;
esac
"""

# The system python3: the script's probe for venv and ensurepip, and `-m venv DIR`.
SYSTEM_PYTHON = """#!/bin/sh
echo "python3 $*" >> "$(dirname "$0")/../calls.log"
if [ "$1 $2" = "-m venv" ]; then
    mkdir -p "$3/bin"
    cp "$(dirname "$0")/venv-python" "$3/bin/python"
    touch "$3/bin/pip"
fi
"""

SHELLS = [shell for shell in ("dash", "bash") if shutil.which(shell)]


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The script and the three pyproject files it watches, plus the stand-ins."""
    shutil.copy2(REPO_ROOT / "ocean", tmp_path / "ocean")
    for folder in (tmp_path, tmp_path / "stack/shop", tmp_path / "stack/inbox"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "pyproject.toml").write_text("[project]\n")
    _executable(tmp_path / "bin/python3", SYSTEM_PYTHON)
    _executable(tmp_path / "bin/venv-python", VENV_PYTHON)
    return tmp_path


def _venv(checkout: Path, *, pip: bool = True, stamp: bool = False) -> None:
    _executable(checkout / ".venv/bin/python", VENV_PYTHON)
    if pip:
        (checkout / ".venv/bin/pip").touch()
    if stamp:
        (checkout / ".venv/.ocean-installed").touch()


def _run(checkout: Path, shell: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{checkout / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run(
        [shell, str(checkout / "ocean"), "--version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def _calls(checkout: Path) -> list[str]:
    log = checkout / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def _installs(checkout: Path) -> int:
    return sum(call.startswith("python -m pip install") for call in _calls(checkout))


def _ran_invoke(checkout: Path, result: subprocess.CompletedProcess) -> bool:
    return result.stdout.strip() == f"invoke --search-root {checkout} --version"


@pytest.mark.parametrize("shell", SHELLS)
def test_a_venv_whose_install_was_killed_is_installed_again(checkout: Path, shell: str):
    _venv(checkout)  # python and pip, no invoke, no stamp: pip died mid-install
    result = _run(checkout, shell)
    assert result.returncode == 0, result.stderr
    assert _installs(checkout) == 1
    assert (checkout / ".venv/.ocean-installed").exists()
    assert _ran_invoke(checkout, result), result.stdout


@pytest.mark.parametrize("shell", SHELLS)
def test_a_venv_killed_while_being_made_is_made_again(checkout: Path, shell: str):
    _venv(checkout, pip=False)  # ensurepip died: a python without pip
    result = _run(checkout, shell)
    assert result.returncode == 0, result.stderr
    assert f"python3 -m venv {checkout / '.venv'}" in _calls(checkout)
    assert _installs(checkout) == 1
    assert _ran_invoke(checkout, result), result.stdout


@pytest.mark.parametrize("shell", SHELLS)
def test_a_finished_install_is_not_repeated(checkout: Path, shell: str):
    _venv(checkout)
    _run(checkout, shell)  # installs, stamps
    result = _run(checkout, shell)
    assert result.returncode == 0, result.stderr
    assert _installs(checkout) == 1
    assert _ran_invoke(checkout, result), result.stdout


@pytest.mark.parametrize("shell", SHELLS)
def test_a_changed_pyproject_installs_again(checkout: Path, shell: str):
    _venv(checkout, stamp=True)
    stamp = checkout / ".venv/.ocean-installed"
    os.utime(stamp, (1_000_000_000, 1_000_000_000))  # older than every pyproject.toml
    result = _run(checkout, shell)
    assert result.returncode == 0, result.stderr
    assert _installs(checkout) == 1
