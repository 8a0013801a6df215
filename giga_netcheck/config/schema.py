"""A tiny declarative validator for the YAML files people write by hand.

Errors name the file, the key path (``classrooms[1].devices``), the bad value and what was
expected; unknown keys get a "did you mean" hint. Small enough to read in one sitting, which
is why we do not pull in a schema framework for two file types.
"""

from __future__ import annotations

import difflib
import math
import re
import reprlib
from dataclasses import dataclass
from typing import Any, Optional, Union

from giga_netcheck.core.errors import ConfigError


@dataclass(frozen=True)
class Num:
    """A finite number (int or float) within [minimum, maximum]; ``.inf`` and ``.nan`` never fit."""

    minimum: Optional[float] = None
    maximum: Optional[float] = None
    integer: bool = False


@dataclass(frozen=True)
class Str:
    """A string (a bare YAML number is taken as its text); never one holding a NUL character.

    ``pattern`` is a regular expression the whole text must match; ``expect`` says in words
    what it allows, for the error message.
    """

    nonempty: bool = True
    choices: Optional[tuple[str, ...]] = None
    pattern: Optional[str] = None
    expect: str = ""


@dataclass(frozen=True)
class ListOf:
    item: Any
    nonempty: bool = False


@dataclass(frozen=True)
class Either:
    """The first alternative whose type matches the value decides."""

    options: tuple[Any, ...]


@dataclass(frozen=True)
class Obj:
    """A mapping with known keys; ``required`` keys must be present."""

    fields: dict[str, Any]
    required: tuple[str, ...] = ()


Schema = Union[Num, Str, ListOf, Either, Obj, type]


def validate(value: Any, schema: Schema, *, path: str, key: str = "") -> None:
    """Raise :class:`ConfigError` at the first value that does not fit ``schema``."""
    where = key or "(top level)"

    def fail(expected: str) -> None:
        raise ConfigError(f"expected {expected}, got {_show(value)}", path=path, key=where)

    if isinstance(schema, Obj):
        if not isinstance(value, dict):
            fail("a mapping (key: value)")
        for k in value:
            if k not in schema.fields:
                hint = difflib.get_close_matches(str(k), list(schema.fields), n=1)
                tip = f" (did you mean '{hint[0]}'?)" if hint else f" (known keys: {', '.join(schema.fields)})"
                raise ConfigError(f"unknown key '{printable(k)}'{tip}", path=path, key=_join(key, printable(k)))
        for k in schema.required:
            if k not in value:
                raise ConfigError(f"missing required key '{k}'", path=path, key=_join(key, k))
        for k, sub in schema.fields.items():
            if k in value and value[k] is not None:
                validate(value[k], sub, path=path, key=_join(key, k))
    elif isinstance(schema, ListOf):
        if not isinstance(value, list):
            fail("a list")
        if schema.nonempty and not value:
            fail("a non-empty list")
        for i, item in enumerate(value):
            validate(item, schema.item, path=path, key=f"{key}[{i}]")
    elif isinstance(schema, Either):
        for option in schema.options:
            if _shape_matches(value, option):
                validate(value, option, path=path, key=key)
                return
        fail(" or ".join(_describe(o) for o in schema.options))
    elif isinstance(schema, Num):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(_describe(schema))
        if isinstance(value, float) and not math.isfinite(value):
            fail(_describe(schema))
        if schema.integer and not (isinstance(value, int) or float(value).is_integer()):
            fail(_describe(schema))
        if schema.minimum is not None and value < schema.minimum:
            fail(_describe(schema))
        if schema.maximum is not None and value > schema.maximum:
            fail(_describe(schema))
    elif isinstance(schema, Str):
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            fail("a string")
        text = str(value)
        if schema.nonempty and not text.strip():
            fail("a non-empty string")
        if "\x00" in text:
            fail("a string without NUL characters")
        if schema.pattern and not re.fullmatch(schema.pattern, text):
            fail(schema.expect or f"a string matching {schema.pattern}")
        if schema.choices and text not in schema.choices:
            hint = difflib.get_close_matches(text, schema.choices, n=1)
            tip = f" (did you mean '{hint[0]}'?)" if hint else ""
            fail(f"one of {', '.join(schema.choices)}{tip}")
    elif schema is bool:
        if not isinstance(value, bool):
            fail("true or false")
    else:  # pragma: no cover - a programming error in a schema
        raise TypeError(f"unknown schema node {schema!r}")


def _shape_matches(value: Any, schema: Schema) -> bool:
    if isinstance(schema, Obj):
        return isinstance(value, dict)
    if isinstance(schema, ListOf):
        return isinstance(value, list)
    if isinstance(schema, Num):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(schema, Str):
        return isinstance(value, str)
    return schema is bool and isinstance(value, bool)


def _describe(schema: Schema) -> str:
    if isinstance(schema, Num):
        kind = "an integer" if schema.integer else "a number"
        if schema.minimum is not None and schema.maximum is not None:
            return f"{kind} from {schema.minimum:g} to {schema.maximum:g}"
        if schema.minimum is not None:
            return f"{kind} >= {schema.minimum:g}"
        return kind
    if isinstance(schema, Str):
        return "a string"
    if isinstance(schema, ListOf):
        return "a list"
    if isinstance(schema, Obj):
        return "a mapping"
    return "true or false"


def printable(text: Any) -> str:
    """Text for a one-line message: as written when printable, else its escaped form (a key with a newline)."""
    text = str(text)
    if text.isprintable():
        return str(text)
    return repr(text)[1:-1] if len(text) <= 60 else repr(text[:57])[1:-1] + "..."


def _join(prefix: str, k: str) -> str:
    return f"{prefix}.{k}" if prefix else k


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 50, 50


def _show(value: Any) -> str:
    """The bad value as the reader wrote it, bounded (a YAML alias bomb must not hang the error)."""
    text = _REPR.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
