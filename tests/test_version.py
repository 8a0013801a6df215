"""One version source: giga_netcheck.__version__, which pyproject.toml reads (``dynamic``)."""

from __future__ import annotations

import email
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import giga_netcheck

ROOT = Path(__file__).resolve().parent.parent


def test_pyproject_does_not_write_the_version_itself():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+ (3.10 is supported: skip there)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "giga_netcheck.__version__"}


def test_installed_metadata_version_is_the_package_version():
    try:
        installed = importlib.metadata.version("giga-netcheck")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("giga-netcheck is not installed (tests run from the source tree)")
    assert installed == giga_netcheck.__version__, "the installed metadata is stale: pip install -e . again"


def test_built_metadata_takes_the_version_from_the_package(tmp_path):
    """Build the wheel's metadata from a copy of the tree whose __init__ says 9.8.7: the metadata
    follows it (what both a wheel and an editable install are made from)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "giga_netcheck", src / "giga_netcheck", ignore=ignore)
    shutil.copytree(ROOT / "profiles", src / "profiles", ignore=ignore)
    init = src / "giga_netcheck" / "__init__.py"
    text = init.read_text(encoding="utf-8")
    assert f'__version__ = "{giga_netcheck.__version__}"' in text
    init.write_text(text.replace(f'__version__ = "{giga_netcheck.__version__}"', '__version__ = "9.8.7"'), encoding="utf-8")
    out = tmp_path / "meta"
    out.mkdir()
    # egg_info writes the metadata setuptools puts in a wheel (and pip's editable install) and
    # needs nothing beyond setuptools, which builds this package anyway.
    setup = ["setup.py"] if (src / "setup.py").exists() else ["-c", "from setuptools import setup; setup()"]
    done = subprocess.run(
        [sys.executable, *setup, "-q", "egg_info", "--egg-base", str(out)], cwd=src, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    meta = email.message_from_string((out / "giga_netcheck.egg-info" / "PKG-INFO").read_text(encoding="utf-8"))
    assert meta["Name"] == "giga-netcheck" and meta["Version"] == "9.8.7"
