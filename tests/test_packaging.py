"""The wheel carries the whole package: every module, the shipped profiles, catalogues and SQL.

Package discovery is automatic (setup.py), so a new subpackage cannot be left out; this test
builds a wheel the way ``.ci/run`` and users do (``pip wheel``) and compares it with the tree,
so a data file or a folder that discovery cannot see (profiles/ is mapped in) shows here first.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "giga_netcheck"

# What a build never needs; the rest of the checkout is copied so the build sees what CI sees.
_NOT_COPIED = shutil.ignore_patterns(
    ".git", "__pycache__", "*.pyc", "*.egg-info", "build", "dist", ".*cache*", ".hypothesis", ".benchmarks", "reports", ".venv"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the checkout (the build writes build/ and egg-info
    beside the sources, which must not land in the working tree others use)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=_NOT_COPIED)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}"
    wheels = list((tmp / "dist").glob("giga_netcheck-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


def _tree(pattern: str, root: Path = PACKAGE) -> set[str]:
    """Files under ``root`` matching ``pattern`` as wheel names (``giga_netcheck/...``)."""
    return {"giga_netcheck/" + p.relative_to(root).as_posix() for p in root.glob(pattern) if "__pycache__" not in p.parts}


def test_every_package_folder_and_module_is_in_the_wheel(wheel_names: set[str]) -> None:
    modules = _tree("**/*.py")
    folders = {name.rsplit("/", 1)[0] for name in modules}
    assert len(folders) > 10, folders  # the tree was found (cli, config, core, measure/..., render, ...)
    shipped_folders = {name.rsplit("/", 1)[0] for name in wheel_names if name.endswith(".py")}
    assert sorted(folders - shipped_folders) == [], "package folders missing from the wheel"
    assert sorted(modules - wheel_names) == [], "modules missing from the wheel"


def test_profiles_catalogues_and_sql_are_in_the_wheel(wheel_names: set[str]) -> None:
    profiles = {f"giga_netcheck/profiles/{p.name}" for p in (REPO / "profiles").glob("*.yaml")}
    messages = _tree("messages/*.yaml")
    sql = _tree("board/sql/*.sql")
    for what, names in (("profiles/*.yaml", profiles), ("messages/*.yaml", messages), ("board/sql/*.sql", sql)):
        assert names, f"no {what} in the tree"
        assert sorted(names - wheel_names) == [], f"{what} missing from the wheel"


def test_every_data_file_in_the_package_is_in_the_wheel(wheel_names: set[str]) -> None:
    """Not only the three kinds above: any file the package holds (a new data folder too)."""
    data = {name for name in _tree("**/*") if not name.endswith((".py", ".pyc")) and not (REPO / name).is_dir()}
    assert data, "no data files in the tree"
    assert sorted(data - wheel_names) == [], "package data missing from the wheel (pyproject package-data)"


def test_the_wheel_declares_the_command(wheel: Path, wheel_names: set[str]) -> None:
    entry_points = [n for n in wheel_names if n.endswith(".dist-info/entry_points.txt")]
    assert len(entry_points) == 1, entry_points
    with zipfile.ZipFile(wheel) as z:
        text = z.read(entry_points[0]).decode("utf-8")
    lines = [line.replace(" ", "") for line in text.splitlines()]
    assert "[console_scripts]" in lines
    assert "giga-netcheck=giga_netcheck.cli.main:main" in lines
