"""Saving and loading the versioned JSON result."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import ResultFileError
from .models import SCHEMA_VERSION, RunResult, from_dict, to_dict


def dumps(result: RunResult) -> str:
    return json.dumps(to_dict(result), ensure_ascii=False, indent=2)


def write_atomic(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write via a temporary file in the same folder and rename: never a half-written file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=str(p.parent))
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p


def upgrade(data: dict[str, Any], path: str) -> dict[str, Any]:
    """Bring an older result document to the current schema; refuse newer ones."""
    version = data.get("schema_version")
    if not isinstance(version, int):
        raise ResultFileError(f"{path}: not a giga-netcheck result (no schema_version)")
    if version > SCHEMA_VERSION:
        raise ResultFileError(
            f"{path}: schema_version {version} is newer than this giga-netcheck understands ({SCHEMA_VERSION}); upgrade giga-netcheck"
        )
    # version 1 is the first; later versions add their conversions here, oldest first.
    return data


def load(path: str | Path) -> RunResult:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultFileError(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError(f"{p}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ResultFileError(f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise ResultFileError(f"{p}: not a giga-netcheck result (top level is not an object)")
    data = upgrade(data, str(p))
    try:
        return from_dict(RunResult, data)
    except (TypeError, ValueError) as exc:
        raise ResultFileError(f"{p}: malformed result: {exc}") from None


def report_basename(result: RunResult) -> str:
    """``<school id>-<YYYYmmdd-HHMMSS>``, safe as a file name."""
    stamp = result.started_at[:19].replace("-", "").replace(":", "").replace("T", "-")
    return f"{_safe(result.school.id) or 'site'}-{_safe(stamp) or 'time'}"


def _safe(text: str) -> str:
    """Letters, digits, '-' and '_' only: no separators, no '..'."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)
