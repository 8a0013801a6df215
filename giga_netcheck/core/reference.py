"""Reference figures that code, SQL and reports share, read from ONE shipped data file.

``giga_netcheck/data/reference.yaml`` holds each figure once, with its source: the MEXT 2024
recommended-bandwidth table (``recommended_bandwidth: mext-2024`` in any profile; the profile
model turns it into a rule) and the national share of schools that met it in 2024 (the board
SQL reads it from a one-row table that board/batch.py registers; the dashboard formats it into
the catalogue lines). This module also finds the shipped profile folder.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from giga_netcheck.core.errors import ConfigError

REFERENCE_FILE = Path(__file__).resolve().parents[1] / "data" / "reference.yaml"
"""The data file (inside the package, so a wheel carries it: pyproject package-data)."""


def shipped_profiles_dir() -> Path:
    """profiles/ at the top of the repository (editable install) or inside the wheel."""
    here = Path(__file__).resolve()
    repo = here.parents[2] / "profiles"
    if repo.is_dir():
        return repo
    # A wheel maps profiles/ into the package (pyproject package-dir): a folder without
    # __init__.py, so importlib.resources would answer a MultiplexedPath, not a folder.
    return here.parents[1] / "profiles"


def _bad(message: str, key: str) -> ConfigError:
    return ConfigError(message, path=str(REFERENCE_FILE), key=key)


@functools.lru_cache(maxsize=1)
def reference_figures() -> dict[str, Any]:
    """The data file, checked: every figure a caller reads is there, with its source."""
    data: Any = yaml.safe_load(REFERENCE_FILE.read_text(encoding="utf-8"))
    mext: Any = data.get("mext_2024") if isinstance(data, dict) else None
    if not isinstance(mext, dict):
        raise _bad("expected a mapping", "mext_2024")
    table: Any = mext.get("recommended_bandwidth")
    if not isinstance(table, dict) or table.get("rule") != "mext-2024" or not table.get("source"):
        raise _bad("expected rule: mext-2024 with its source", "mext_2024.recommended_bandwidth")
    points: Any = table.get("points")
    if not isinstance(points, list) or len(points) < 2:
        raise _bad("expected at least two points", "mext_2024.recommended_bandwidth.points")
    students: list[Any] = [p.get("students") for p in points if isinstance(p, dict) and isinstance(p.get("down_mbps"), (int, float))]
    if len(students) != len(points) or not all(isinstance(n, int) for n in students) or students != sorted(set(students)):
        raise _bad("expected {students, down_mbps} points, student counts increasing", "mext_2024.recommended_bandwidth.points")
    share: Any = mext.get("national_share")
    value: Any = share.get("value") if isinstance(share, dict) else None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1 or not share.get("source"):
        raise _bad("expected {value: a share between 0 and 1, source}", "mext_2024.national_share")
    checked: dict[str, Any] = data
    return checked


def mext_2024_table() -> dict[str, Any]:
    """The raw MEXT 2024 recommended-bandwidth table: ``rule: mext-2024``, ``source`` and ``points``."""
    table: dict[str, Any] = reference_figures()["mext_2024"]["recommended_bandwidth"]
    return table


def national_share_2024() -> float:
    """Share of Japanese schools that met the MEXT recommended bandwidth in 2024 (0..1)."""
    return float(reference_figures()["mext_2024"]["national_share"]["value"])


def national_share_2024_source() -> str:
    return str(reference_figures()["mext_2024"]["national_share"]["source"])
