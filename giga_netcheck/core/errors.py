"""One exception tree for the whole package.

::

    NetcheckError                 anything giga-netcheck raises on purpose
    ├── ConfigError               a site or profile file is missing, malformed or wrongly typed
    │   └── UnknownProfileError   a profile name that no folder holds
    ├── ResultFileError           a saved result cannot be read (bad JSON, newer schema)
    └── ProbeError                a probe could not measure (recorded, never fatal to a run)
        ├── TimeoutFailure        no answer in time
        ├── RefusedFailure        connection refused or reset
        ├── PermissionFailure     the OS would not let us (raw sockets, ...)
        ├── UnreachableFailure    no route, DNS name did not resolve, network down
        ├── NotMeasurementServer  the target does not identify as a giga-netcheck server
        └── ProtocolFailure       the peer answered garbage

Foreign exceptions (socket, httpx, dnspython) are mapped to ProbeError subclasses in one
place, :func:`map_exception`, so probes record a failure *kind* that reports can count.
"""

from __future__ import annotations

import errno
import socket


class NetcheckError(Exception):
    """Base of every error giga-netcheck raises on purpose."""


class ConfigError(NetcheckError):
    """A site or profile file is missing, malformed or has a wrongly typed key.

    The message always names the file and, where known, the key path (``targets.internet[1]``).
    """

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = ": ".join(p for p in (path, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


class UnknownProfileError(ConfigError):
    """A profile name that none of the profile folders holds."""


class ResultFileError(NetcheckError):
    """A saved result file cannot be loaded."""


class ProbeError(NetcheckError):
    """A probe could not measure; ``kind`` is a short, stable word for reports."""

    kind = "error"


class TimeoutFailure(ProbeError):
    kind = "timeout"


class RefusedFailure(ProbeError):
    kind = "refused"


class ResetFailure(ProbeError):
    kind = "reset"


class PermissionFailure(ProbeError):
    kind = "permission"


class UnreachableFailure(ProbeError):
    kind = "unreachable"


class NotMeasurementServer(ProbeError):
    kind = "not-measurement-server"


class ProtocolFailure(ProbeError):
    kind = "protocol"


def map_exception(exc: BaseException) -> ProbeError:
    """Turn a foreign exception into the matching :class:`ProbeError` (never raises)."""
    if isinstance(exc, ProbeError):
        return exc
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx is a hard dependency
        httpx = None  # type: ignore[assignment]
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    if httpx is not None:
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
