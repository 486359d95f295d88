"""Builds of the shop for the local runtime: a git ref or a directory, in its own venv.

A build is the shop's source (``stack/shop`` at a git ref, or a directory holding the
shop's pyproject.toml, or a checkout whose ``stack/shop`` does) copied below
``<state>/builds/<id>/src`` plus a venv whose interpreter finds that source first and
the toolkit venv's packages after it. ``id`` is a content hash (git's tree id of
``stack/shop``, or a hash of the directory's files), so deploying the same code twice
reuses the build, and a build is never changed once it is complete (written to a temp
dir, renamed into place).

Why not ``pip install`` each build: the shop's dependencies are the toolkit venv's
already (the same pyproject), and a full install costs tens of seconds of a deploy. A
build whose pyproject asks for something that venv lacks installs just that into its
own venv, with pip.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from ocean.errors import OceanError
from ocean.fsys import private_dir, remove_other_access
from ocean.model import Build

SHOP_SUBDIR = "stack/shop"
# What a build needs besides the package itself; tests, caches and eggs stay behind.
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache")


def resolve(repo_root: Path, version: str) -> tuple[str, str, Path | None]:
    """(id, label, source dir or None for a git ref) for ``version``; OceanError if unknown."""
    candidate = Path(version).expanduser()
    if candidate.is_dir():
        source = _shop_dir(candidate)
        digest = _hash_dir(source)
        return f"dir-{digest[:16]}", f"{candidate.resolve().name}-{digest[:8]}", source
    git = ["git", "-C", str(repo_root)]
    commit = subprocess.run(
        [*git, "rev-parse", "--verify", "--quiet", f"{version}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if commit.returncode != 0:
        raise OceanError(
            f"unknown version {version!r}: neither a directory nor a git ref of {repo_root}"
        )
    tree = subprocess.run(
        [*git, "rev-parse", "--verify", "--quiet", f"{version}:{SHOP_SUBDIR}"],
        capture_output=True,
        text=True,
    )
    if tree.returncode != 0:
        raise OceanError(f"version {version!r} has no {SHOP_SUBDIR}: not a build of the shop")
    sha = commit.stdout.strip()
    label = version if version.startswith(sha[:7]) else f"{version}@{sha[:8]}"
    return f"git-{tree.stdout.strip()[:16]}", label, None


def build(builds_dir: Path, repo_root: Path, version: str) -> tuple[Build, bool]:
    """The build for ``version`` (made now unless it exists); also whether it was made."""
    build_id, label, source = resolve(repo_root, version)
    home = builds_dir / build_id
    python = home / "venv" / "bin" / "python"
    if (home / "build.json").exists():
        return Build(build_id, version, label, str(python)), False
    private_dir(builds_dir)
    tmp = Path(tempfile.mkdtemp(dir=builds_dir, prefix=f".{build_id}."))
    try:
        src = tmp / "src"
        export_source(repo_root, version, source, src)
        _make_venv(tmp / "venv", home / "src")
        _install_missing(tmp / "venv" / "bin" / "python", src)
        made = Build(build_id, version, label, str(python))
        (tmp / "build.json").write_text(
            json.dumps({**made.as_dict(), "created": time.time()}, indent=2) + "\n"
        )
        # pip and git wrote with their modes: nothing in the state dir is others' to
        # read (issue 25). The shop runs as us.
        remove_other_access(tmp)
        try:
            tmp.rename(home)
        except OSError:  # a concurrent build of the same code won the race: use it
            shutil.rmtree(tmp, ignore_errors=True)
            if not (home / "build.json").exists():
                raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return made, True


def export_source(repo_root: Path, version: str, source: Path | None, dest: Path) -> None:
    """The shop's source of ``version`` into ``dest``: ``git archive`` of a ref, or a
    copy of a directory (``source``, from resolve())."""
    if source is None:
        _git_export(repo_root, version, dest)
    else:
        shutil.copytree(source, dest, ignore=IGNORED)


def _shop_dir(path: Path) -> Path:
    for candidate in (path, path / SHOP_SUBDIR):
        project = candidate / "pyproject.toml"
        if project.exists() and 'name = "ocean-shop"' in project.read_text():
            return candidate
    raise OceanError(f"{path} is not a build of the shop: no pyproject.toml of ocean-shop")


def _hash_dir(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path)
        if any(part == "__pycache__" or part.endswith(".egg-info") for part in rel.parts):
            continue
        digest.update(str(rel).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def _git_export(repo_root: Path, ref: str, dest: Path) -> None:
    archive = subprocess.run(  # nosec B607  # a system tool from PATH
        ["git", "-C", str(repo_root), "archive", "--format=tar", ref, SHOP_SUBDIR],
        capture_output=True,
    )
    if archive.returncode != 0:
        raise OceanError(f"git archive {ref}: {archive.stderr.decode().strip()}")
    prefix = SHOP_SUBDIR + "/"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        members = []
        for member in tar.getmembers():
            if member.name.startswith(prefix):
                member.name = member.name[len(prefix) :]
                members.append(member)
        tar.extractall(dest, members=members, filter="data")


def _make_venv(venv: Path, src: Path) -> None:
    """A venv that imports ``src`` (where the build's source will be once the build dir
    is renamed into place) before the toolkit venv's packages."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True
    )
    site = Path(
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import sysconfig;print(sysconfig.get_path('purelib'))",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # Plain paths (not site dirs): the build's source first, then the toolkit venv's
    # packages. The toolkit's own editable shop is not visible (its finder .pth files
    # are only run for site dirs), so `import ocean_shop` is this build's.
    base = sysconfig.get_path("purelib")
    (site / "ocean_build.pth").write_text(f"{src}\n{base}\n")


def _install_missing(python: Path, src: Path) -> None:
    project = tomllib.loads((src / "pyproject.toml").read_text())["project"]
    missing = []
    for raw in project.get("dependencies", []):
        requirement = Requirement(raw)
        if requirement.marker and not requirement.marker.evaluate():
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(raw)
            continue
        if requirement.specifier and not requirement.specifier.contains(
            installed, prereleases=True
        ):
            missing.append(raw)
    if not missing:
        return
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", *missing],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise OceanError(f"build needs {', '.join(missing)}; pip failed: {' '.join(tail)}")
