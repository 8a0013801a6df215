"""Reading hand-written YAML files: bounded, strict, one-line errors that name the file, line and column.

Strict: a key written twice in one mapping is an error (PyYAML keeps the last silently, so a
site file with two ``school:`` blocks or a profile with two ``limits:`` would lose one without a
word). Keys merged in with ``<<: *anchor`` may be overridden, as YAML means them to be.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml

from giga_netcheck.config.schema import printable
from giga_netcheck.core.errors import ConfigError

MAX_FILE_BYTES = 1 << 20
"""Site and profile files are hand-written; anything larger is a mistake (or /dev/zero)."""


class DuplicateKeyError(yaml.YAMLError):
    """A key that a mapping already holds, with where both are."""

    def __init__(self, key: str, line: int, column: int, first_line: int) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key, self.line, self.column, self.first_line = key, line, column, first_line


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key written twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base class says so, with its mark
                    continue
                mark = key_node.start_mark
                if first is not None:
                    raise DuplicateKeyError(printable(key), mark.line + 1, mark.column + 1, first)
                seen[key] = mark.line + 1
        return super().construct_mapping(node, deep=deep)


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
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: no Python objects
    except DuplicateKeyError as exc:
        raise config_error(
            f"duplicate key '{exc.key}' (first at line {exc.first_line}); each key may appear once in a mapping",
            path=str(p),
            key=f"line {exc.line}, column {exc.column}",
        ) from None
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
