"""Saving and loading the versioned JSON result."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, NoReturn

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


MAX_RESULT_BYTES = 64 * 1024 * 1024
"""A result file larger than this is refused unread (``report``, ``batch``); a result with every
raw sample is tens of KB, so this is far above any real one and bounds memory."""
MAX_DEPTH = 64
"""Nesting of objects and lists; a result nests about 8 deep."""
MAX_INT_DIGITS = 20
"""Integers are counts, byte totals and ids: 20 digits hold any 64-bit value."""


class DocumentError(ResultFileError):
    """A result document refused before its schema is looked at: too large, not UTF-8, not JSON,
    nested too deep, a number out of bounds, a lone surrogate. ``code`` is the short refusal code
    the collector answers with, ``reason`` the one-line reason without the path."""

    def __init__(self, path: str, code: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.code = code
        self.reason = reason


def _no_constant(name: str) -> NoReturn:
    raise ValueError(name)


def parse_document(data: bytes | str, path: str, *, max_bytes: int = MAX_RESULT_BYTES) -> dict[str, Any]:
    """The one loader of result JSON (``report``, ``batch``, the collector): bytes -> the top-level object.

    Everything a hostile file could use to crash or poison the readers after it is refused with
    a :class:`DocumentError` naming what is wrong: more than ``max_bytes``, not UTF-8, not JSON,
    nesting deeper than :data:`MAX_DEPTH`, an integer longer than :data:`MAX_INT_DIGITS` digits,
    a number that is not finite (``1e400``, ``NaN``, ``Infinity``), a lone UTF-16 surrogate
    (``"\\ud800"``: it cannot be written back as UTF-8), a top level that is not an object.
    """
    if len(data) > max_bytes:
        raise DocumentError(path, "too-large", f"larger than {max_bytes} bytes")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DocumentError(path, "not-utf8", f"not UTF-8 text (byte {exc.start})") from None
    else:
        text = data
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise DocumentError(path, "not-json", f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise DocumentError(path, "too-deep", f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        if "digits" in str(exc):  # int() refuses more than sys.get_int_max_str_digits() digits
            raise DocumentError(path, "number-too-long", f"an integer longer than {MAX_INT_DIGITS} digits") from None
        raise DocumentError(path, "not-finite", f"{exc} is not a number JSON allows") from None
    if not isinstance(doc, dict):
        raise DocumentError(path, "not-an-object", "not a giga-netcheck result (top level is not an object)")
    _check_values(doc, path, surrogates="\\u" in text)
    return doc


def _check_values(doc: dict[str, Any], path: str, *, surrogates: bool) -> None:
    """Walk the parsed tree once without recursion: depth, integer size, finite floats, surrogates.

    A lone surrogate can only come from a ``\\uXXXX`` escape (UTF-8 cannot encode one), so strings
    are looked at only when the text has an escape."""
    limit = 10**MAX_INT_DIGITS
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        items: Iterable[tuple[Any, Any]] = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if surrogates and isinstance(key, str):
                _text(key, path)
            kind = type(value)
            if kind is dict or kind is list:
                if depth >= MAX_DEPTH:  # the value itself would be one level deeper, empty or not
                    raise DocumentError(path, "too-deep", f"nested deeper than {MAX_DEPTH} levels")
                if value:
                    stack.append((value, depth + 1))
            elif kind is float:
                if not math.isfinite(value):
                    raise DocumentError(path, "not-finite", f"a number out of range ({value}): every number must be finite")
            elif kind is int:
                if not -limit < value < limit:
                    raise DocumentError(path, "number-too-long", f"an integer longer than {MAX_INT_DIGITS} digits")
            elif surrogates and kind is str:
                _text(value, path)


def _text(value: str, path: str) -> None:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise DocumentError(
                path, "lone-surrogate", f"a string holds a lone UTF-16 surrogate (\\u{ord(value[exc.start]):04x})"
            ) from None


def load(path: str | Path) -> RunResult:
    """Read, check (:func:`parse_document`), upgrade and build one saved result; ResultFileError naming the file."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_RESULT_BYTES:
            raise ResultFileError(f"{p}: larger than {MAX_RESULT_BYTES // (1 << 20)} MiB")
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ResultFileError(f"{p}: file not found") from None
    except OSError as exc:
        raise ResultFileError(f"{p}: cannot read: {exc}") from None
    try:
        data = parse_document(raw, str(p))
    except DocumentError as exc:
        if exc.code == "not-utf8":
            raise ResultFileError(f"{p}: cannot read: {exc.reason}") from None
        raise
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
