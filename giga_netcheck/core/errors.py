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
place, :func:`giga_netcheck.measure.failures.map_exception`, so probes record a failure *kind* that reports can count.
"""

from __future__ import annotations


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
