"""duckdb and pyarrow are the ``[board]`` extra (#15 item 5): classroom laptops install without them.

``batch`` (the only user) says in one line which extra to install, exit 2; everything else
imports and starts without them. Their absence is simulated in a subprocess by an import hook
that answers "no module named ..." for them, as a machine without the extra would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import clean_env

REPO = Path(__file__).resolve().parents[1]

# Run first in the child: the named top-level modules (argv[1], comma separated) are "not installed".
_ABSENT = """
import sys
class _Absent:
    def __init__(self, names):
        self.names = names
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _Absent(set(sys.argv[1].split(","))))
"""

_CLI = _ABSENT + "from giga_netcheck.cli.main import main\nsys.argv = ['giga-netcheck', *sys.argv[2:]]\nmain()\n"


def _child(code: str, absent: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = clean_env()
    env["COLUMNS"] = "80"  # a narrow terminal: the line must not be wrapped into two
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-c", code, absent, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("absent", ["duckdb", "pyarrow", "duckdb,pyarrow"])
def test_batch_without_the_board_extra_is_one_line_naming_it(tmp_path, absent):
    (tmp_path / "results").mkdir()
    out = tmp_path / "board"
    proc = _child(_CLI, absent, "batch", str(tmp_path / "results"), "--out", str(out), "--lang", "en", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "pip install 'giga-netcheck[board]'" in lines[0]
    for name in absent.split(","):
        assert name in lines[0]
    assert not out.exists()  # nothing half-written


def test_the_hook_really_hides_the_modules(tmp_path):
    """The simulation is what the batch test relies on: without it the modules import here."""
    proc = _child(_ABSENT + "import duckdb\n", "duckdb", cwd=tmp_path)
    assert proc.returncode == 1 and "ModuleNotFoundError" in proc.stderr


def test_every_other_module_and_command_starts_without_the_extra(tmp_path):
    walk = _ABSENT + (
        "import importlib, pkgutil, giga_netcheck\n"
        "bad = []\n"
        "for mod in pkgutil.walk_packages(giga_netcheck.__path__, 'giga_netcheck.'):\n"
        "    if mod.name.endswith('__main__'):\n"
        "        continue  # runs the CLI when imported\n"
        "    try:\n"
        "        importlib.import_module(mod.name)\n"
        "    except ImportError as exc:\n"
        "        bad.append(f'{mod.name}: {exc}')\n"
        "print('\\n'.join(bad))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = _child(walk, "duckdb,pyarrow", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for args in (["--help"], ["version"], ["batch", "--help"]):
        proc = _child(_CLI, "duckdb,pyarrow", *args, cwd=tmp_path)
        assert proc.returncode == 0, (args, proc.stdout + proc.stderr)


def test_duckdb_and_pyarrow_are_the_board_extra_and_the_tests_pull_it_in():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+ (3.10 is supported: skip there)
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def names(reqs: list[str]) -> set[str]:
        return {r.split(";")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in reqs}

    assert not names(project["dependencies"]) & {"duckdb", "pyarrow"}
    extras = project["optional-dependencies"]
    assert names(extras["board"]) == {"duckdb", "pyarrow"}
    assert "giga-netcheck[board]" in names(extras["test"])  # `pip install -e '.[test]'` runs the batch tests
