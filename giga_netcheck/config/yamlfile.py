"""Reading hand-written YAML files: bounded, one-line errors that name the file, line and column."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml

from giga_netcheck.config.schema import printable
from giga_netcheck.core.errors import ConfigError

MAX_FILE_BYTES = 1 << 20
"""Site and profile files are hand-written; anything larger is a mistake (or /dev/zero)."""


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; errors name the file, line and column. Never raises anything but ConfigError."""
    p = Path(path)
    try:
        if not p.exists():
            raise FileNotFoundError(str(p))
        if p.is_dir():
            raise IsADirectoryError(str(p))
        if not p.is_file():
            raise config_error("not a regular file", path=str(p))
        with p.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise config_error(f"larger than {MAX_FILE_BYTES // 1024} KiB: not a hand-written YAML file", path=str(p))
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise config_error("file not found", path=str(p)) from None
    except IsADirectoryError:
        raise config_error("is a folder, not a file", path=str(p)) from None
    except UnicodeDecodeError as exc:
        raise config_error(f"not UTF-8 text (byte {exc.start})", path=str(p)) from None
    except (OSError, ValueError) as exc:
        raise config_error(f"cannot read: {exc}", path=str(p)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise config_error(f"YAML syntax error: {one_line(problem)}", path=str(p), key=where) from None
    except RecursionError:
        raise config_error("YAML nested too deeply", path=str(p)) from None
    except (ValueError, TypeError, OverflowError) as exc:
        # PyYAML lets some constructor errors through: a date like 2024-13-45, an integer too long
        raise config_error(f"YAML value cannot be read: {one_line(str(exc))}", path=str(p)) from None


def one_line(text: str) -> str:
    return " ".join(text.split())


def config_error(message: str, *, path: Optional[str] = None, key: Optional[str] = None) -> ConfigError:
    """A ConfigError whose text stays on one line whatever names and paths the file held."""
    return ConfigError(printable(message), path=None if path is None else printable(path), key=None if key is None else printable(key))
