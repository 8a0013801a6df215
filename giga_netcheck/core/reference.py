"""Reference figures that code, SQL and reports share, read from shipped data files.

The MEXT 2024 recommended-bandwidth table lives in profiles/mext-2024.yaml (data, with its
citation); this module finds the shipped files and hands the raw table to the profile model.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from giga_netcheck.core.errors import ConfigError


def shipped_profiles_dir() -> Path:
    """profiles/ at the top of the repository (editable install) or inside the wheel."""
    here = Path(__file__).resolve()
    repo = here.parents[2] / "profiles"
    if repo.is_dir():
        return repo
    # A wheel maps profiles/ into the package (pyproject package-dir): a folder without
    # __init__.py, so importlib.resources would answer a MultiplexedPath, not a folder.
    return here.parents[1] / "profiles"


@functools.lru_cache(maxsize=1)
def mext_2024_table() -> dict[str, Any]:
    """The raw ``school.recommended_bandwidth`` mapping of the shipped ``mext-2024`` profile."""
    path = shipped_profiles_dir() / "mext-2024.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    raw = (data.get("school") or {}).get("recommended_bandwidth") if isinstance(data, dict) else None
    if not isinstance(raw, dict) or raw.get("rule") != "mext-2024" or not raw.get("points"):
        raise ConfigError(
            "the shipped mext-2024 profile must carry the MEXT table (rule: mext-2024 with points)",
            path=str(path),
            key="school.recommended_bandwidth",
        )
    return raw
