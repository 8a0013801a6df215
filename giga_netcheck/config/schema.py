"""A tiny declarative validator for the YAML files people write by hand.

Errors name the file, the key path (``classrooms[1].devices``), the bad value and what was
expected; unknown keys get a "did you mean" hint. Small enough to read in one sitting, which
is why we do not pull in a schema framework for two file types.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
import reprlib
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union
from urllib.parse import urlsplit

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

    ``pattern`` is a regular expression the whole text must match; ``check`` returns why the
    text is impossible (None: it is fine), e.g. :func:`host_problem`; ``expect`` says in words
    what they allow, for the error message.
    """

    nonempty: bool = True
    choices: Optional[tuple[str, ...]] = None
    pattern: Optional[str] = None
    expect: str = ""
    check: Optional[Callable[[str], Optional[str]]] = None


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

    def fail(expected: str, why: Optional[str] = None) -> None:
        reason = f" ({why})" if why else ""
        raise ConfigError(f"expected {expected}, got {_show(value)}{reason}", path=path, key=where)

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
        if schema.check:
            why = schema.check(text)
            if why:
                fail(schema.expect or "a valid value", why)
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


# ------------------------------------------------------------- addresses, ports and names
# What cannot work is refused when the file loads, naming the key, rather than becoming a probe
# that fails in the field: ``999.1.1.1:99999`` as a resolver, ``..`` as a name to resolve.

MAX_NAME = 253
"""Longest DNS name in text form (RFC 1035: 255 octets on the wire, its length bytes included)."""
MAX_LABEL = 63
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?")


def _short(text: str) -> str:
    return repr(text if len(text) <= 30 else text[:27] + "...")


def _ip_error(exc: ValueError) -> str:
    """ipaddress's reason without its trailing " in '...'" (the value is already in the message)."""
    text = str(exc)
    return text[: text.index(" in '")] if " in '" in text else text


def port_problem(text: str) -> Optional[str]:
    """Why ``text`` is not a port (1-65535); None when it is one."""
    if not text.isascii() or not text.isdigit():
        return f"bad port {_short(text)}: not a number"
    if not 1 <= int(text) <= 65535:
        return f"bad port {int(text)}: ports are 1-65535"
    return None


def ip_problem(text: str, version: Optional[int] = None) -> Optional[str]:
    """Why ``text`` is not an IP address literal (no brackets) of ``version`` (None: 6 when it
    holds a colon, else 4); None when it is one."""
    version = version or (6 if ":" in text else 4)
    try:
        (ipaddress.IPv6Address if version == 6 else ipaddress.IPv4Address)(text)
    except ValueError as exc:
        return f"not an IPv{version} address: {_ip_error(exc)}"
    return None


def name_problem(text: str, *, limit: int = MAX_NAME) -> Optional[str]:
    """Why ``text`` cannot be a DNS name; None when it can. One trailing dot (absolute) is allowed;
    labels are letters, digits, ``_`` and inner hyphens, internationalised ones as IDNA."""
    name = text[:-1] if text.endswith(".") else text
    if not name:
        return "an empty name"
    wire: list[str] = []
    for label in name.split("."):
        if not label:
            return "an empty label (a leading dot, or two dots in a row)"
        try:
            ascii_label = label if label.isascii() else label.encode("idna").decode("ascii")
        except UnicodeError:
            return f"label {_short(label)} is not a valid internationalised label (or is over {MAX_LABEL} characters)"
        if len(ascii_label) > MAX_LABEL:
            return f"label {_short(label)} has {len(ascii_label)} characters, over {MAX_LABEL}"
        if not _LABEL.fullmatch(ascii_label):
            return f"label {_short(label)} may hold only letters, digits, '_' and '-' (not at its ends)"
        wire.append(ascii_label)
    if len(".".join(wire)) > limit:
        return f"{len('.'.join(wire))} characters, over {limit}"
    if wire[-1].isdigit():  # an all-numeric last label: an IPv4 address, never a name
        return ip_problem(name)
    return None


def host_problem(text: str) -> Optional[str]:
    """Why ``text`` is neither an IP address literal nor a host name; None when it is one."""
    if ":" in text or text.startswith("["):
        if text.startswith("[") or text.count(":") == 1:
            return "a bare host takes no port or brackets; a measurement server is a URL, http://host:port"
        return ip_problem(text)
    return name_problem(text)


def url_problem(text: str, schemes: tuple[str, ...] = ("http", "https")) -> Optional[str]:
    """Why ``text`` is not a URL of one of ``schemes`` with a valid host and port; None when it is."""
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in schemes:
        return f"the scheme must be {' or '.join(schemes)}"
    if not host:
        return "no host"
    hostport = parts.netloc.rpartition("@")[2]
    # what follows the host's colon; none or empty: the scheme's port
    port = (hostport.partition("]")[2] if hostport.startswith("[") else hostport).partition(":")[2]
    if port:
        why = port_problem(port)
        if why:
            return why
    return ip_problem(host) if ":" in host else name_problem(host)


def target_problem(text: str) -> Optional[str]:
    """A measurement server's URL, or a bare host measured for latency only."""
    return url_problem(text) if "://" in text else host_problem(text)


def resolver_problem(text: str) -> Optional[str]:
    """``system``, an address, ``address:port`` or ``[v6]:port`` (what the DNS probe can ask)."""
    if text == "system":
        return None
    if text.startswith("["):
        m = re.fullmatch(r"\[([^\]]*)\](?::(.*))?", text)
        if not m:
            return "write [IPv6]:port"
        return ip_problem(m.group(1), 6) or (port_problem(m.group(2)) if m.group(2) is not None else None)
    host, sep, port = text.partition(":") if text.count(":") == 1 else (text, "", "")
    ip_why = ip_problem(host)
    if ip_why and ":" not in host and not name_problem(host):
        return "a resolver is asked at its IP address, not by name"
    return ip_why or (port_problem(port) if sep else None)
