"""Foreign exceptions (socket, httpx, dnspython) mapped to :mod:`giga_netcheck.core.errors` kinds, in one place."""

from __future__ import annotations

import errno
import socket

import httpx

from giga_netcheck.core.errors import (
    PermissionFailure,
    ProbeError,
    ProtocolFailure,
    RefusedFailure,
    ResetFailure,
    TimeoutFailure,
    UnreachableFailure,
)


def map_exception(exc: BaseException) -> ProbeError:
    """Turn a foreign exception into the matching :class:`ProbeError` (never raises)."""
    if isinstance(exc, ProbeError):
        return exc
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    if isinstance(exc, httpx.TimeoutException):
        return TimeoutFailure(text)
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.DecodingError)):
        return ProtocolFailure(text)
    if isinstance(exc, httpx.TransportError):
        inner = _os_cause(exc)
        if inner is not None:
            return type(map_exception(inner))(text)
        low = str(exc).lower()
        if "refused" in low:
            return RefusedFailure(text)
        if "name or service" in low or "unreachable" in low or "no route" in low:
            return UnreachableFailure(text)
        return RefusedFailure(text) if isinstance(exc, httpx.ConnectError) else ResetFailure(text)
    if isinstance(exc, httpx.HTTPError):
        return ProtocolFailure(text)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return TimeoutFailure(text)
    if isinstance(exc, ConnectionRefusedError):
        return RefusedFailure(text)
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return ResetFailure(text)
    if isinstance(exc, PermissionError):
        return PermissionFailure(text)
    if isinstance(exc, socket.gaierror):
        return UnreachableFailure(text)
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN):
        return UnreachableFailure(text)
    if isinstance(exc, OSError) and exc.errno in (errno.EPERM, errno.EACCES):
        return PermissionFailure(text)
    if isinstance(exc, (ValueError, UnicodeDecodeError)):
        return ProtocolFailure(text)
    return ProbeError(text)


def _os_cause(exc: BaseException) -> OSError | None:
    """The first OSError in an exception's cause/context chain (httpx wraps socket errors)."""
    seen: set[int] = set()
    cur: BaseException | None = exc.__cause__ or exc.__context__
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError):
            return cur
        cur = cur.__cause__ or cur.__context__
    return None
