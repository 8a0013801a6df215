"""A board's batch summary as data: the tables ``batch`` computes and what it read on the way.

:mod:`giga_netcheck.board.batch` fills these (DuckDB over Parquet); the dashboard renderer and
the CSV writer read them. Plain data, no I/O, so a renderer needs nothing from the board layer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    """One query's result: column names and rows, in the query's order."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r)) for r in self.rows]


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class Inputs:
    """Flattened rows and what was skipped on the way."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    causes: list[dict[str, Any]] = field(default_factory=list)
    files: int = 0
    result_files: int = 0
    history_files: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    bad_lines: int = 0
    """History lines that did not parse, in files that were otherwise read."""
    duplicates: int = 0
    """Runs seen twice (same run id, e.g. in a result file and a history line); kept once."""


@dataclass
class Summary:
    tables: dict[str, Table]
    inputs: Inputs
    generated_at: str = field(default_factory=lambda: dt.datetime.now().astimezone().isoformat(timespec="seconds"))
