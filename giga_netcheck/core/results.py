"""Saving and loading the versioned JSON result."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from giga_netcheck.core.errors import ResultFileError
from giga_netcheck.core.models import SCHEMA_VERSION, RunResult, from_dict, to_dict


def dumps(result: RunResult) -> str:
    return json.dumps(to_dict(result), ensure_ascii=False, indent=2)


def write_atomic(path: str | Path, data: str | bytes, *, encoding: str = "utf-8", mode: int = 0o644) -> Path:
    """Write via a temporary file in the same folder, fsync, rename, fsync the folder.

    Readers see the old file or the new one, never half of one, even after a crash or SIGKILL.
    The temp name starts with ``.`` and ends in ``.tmp`` so collectors (``*.prom``, ``*.json``)
    never pick it up; ``mode`` is applied before the rename (``0o644``: node_exporter and web
    servers usually run as another user). ``str`` data is written as is (no newline translation).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=str(p.parent))
    try:
        if hasattr(os, "fchmod"):  # not on Windows before Python 3.13
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode(encoding) if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        fsync_dir(p.parent)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p


def fsync_dir(folder: Path) -> None:
    """Make a rename durable (best effort: not every OS or file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
        result: RunResult = from_dict(RunResult, data)
        return result
    except (TypeError, ValueError) as exc:
        raise ResultFileError(f"{p}: malformed result: {exc}") from None


def report_basename(result: RunResult) -> str:
    """``<school id>-<YYYYmmdd-HHMMSS>``, safe as a file name."""
    stamp = result.started_at[:19].replace("-", "").replace(":", "").replace("T", "-")
    return f"{_safe(result.school.id) or 'site'}-{_safe(stamp) or 'time'}"


def _safe(text: str) -> str:
    """Letters, digits, '-' and '_' only: no separators, no '..'."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)
