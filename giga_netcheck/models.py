"""The result data model: frozen dataclasses with units in their field names.

A :class:`RunResult` is what ``run`` measures and what ``report`` re-renders; it is written as
one versioned JSON document (``docs/result-schema.md`` documents every field). Everything
after the probes works on these objects only, so it can be tested without a network.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

SCHEMA_VERSION = 1

Role = Literal["gateway", "center", "internet"]
CheckStatus = Literal["pass", "warn", "fail", "not-measured"]
RunStatus = Literal["pass", "warn", "fail", "error"]
ProbeStatusWord = Literal["ok", "partial", "failed", "skipped"]


@dataclass(frozen=True)
class Target:
    """A point on the path that probes measure."""

    name: str
    """Label used in reports: ``gateway``, ``center``, ``internet-1`` ..."""
    role: str
    """Segment end it represents: ``gateway``, ``center`` or ``internet``."""
    host: str
    """Address or host name."""
    url: Optional[str] = None
    """Base URL of a giga-netcheck measurement server, if the target runs one."""


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one series of round trips; times are None where nothing answered."""

    sent: int
    received: int
    loss_pct: float
    min_ms: Optional[float] = None
    p50_ms: Optional[float] = None
    p95_ms: Optional[float] = None
    max_ms: Optional[float] = None
    jitter_ms: Optional[float] = None
    """Mean absolute difference of consecutive RTTs (RFC 3550 style, not smoothed)."""


@dataclass(frozen=True)
class LatencySeries:
    """Round trips to one target by one method in one phase, raw samples kept."""

    target: str
    role: str
    host: str
    method: str
    """``icmp`` (raw socket), ``icmp-dgram``, ``udp-echo``, ``tcp-connect`` or ``http``."""
    phase: str
    """``idle``, or ``download`` / ``upload`` while the bandwidth probe loads the path."""
    rtts_ms: tuple[Optional[float], ...]
    """One entry per probe sent, in order; None is a lost probe."""
    stats: LatencyStats
    error: Optional[str] = None
    error_kind: Optional[str] = None


@dataclass(frozen=True)
class BandwidthMeasurement:
    """One throughput test (one direction, one stream count) against one server."""

    target: str
    role: str
    url: str
    direction: str
    """``download`` or ``upload``."""
    streams: int
    engine: str
    duration_s: float
    warmup_s: float
    """Seconds discarded at the start (TCP slow start)."""
    interval_s: float
    goodput_mbps: Optional[float]
    """Bytes moved after the warm-up divided by the time after the warm-up."""
    p50_mbps: Optional[float]
    p90_mbps: Optional[float]
    bytes_total: int
    samples_mbps: tuple[float, ...]
    """Aggregate throughput per interval, warm-up included (first ``warmup_s`` marked by index)."""
    per_stream_mbps: tuple[float, ...] = ()
    error: Optional[str] = None
    error_kind: Optional[str] = None


@dataclass(frozen=True)
class DnsSeries:
    """Queries of one kind for one name to one resolver."""

    resolver: str
    """The label the site file used (``system`` or an address)."""
    server: str
    """The address actually queried."""
    name: str
    kind: str
    """``cold`` (random label under the name: a cache miss) or ``warm`` (the name again)."""
    times_ms: tuple[Optional[float], ...]
    """One entry per query; None is a timeout."""
    rcodes: tuple[str, ...]
    answers: tuple[str, ...]
    """Addresses in the warm answers (sorted, unique)."""
    timeouts: int
    p50_ms: Optional[float]
    p95_ms: Optional[float]
    error: Optional[str] = None
    error_kind: Optional[str] = None


@dataclass(frozen=True)
class DnsAgreement:
    """Whether every resolver gave the same addresses for a name."""

    name: str
    agree: bool
    answers: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class ProbeRecord:
    """What happened to one probe: ran, ran in part, failed, or was skipped and why."""

    probe: str
    status: str
    reason: Optional[str] = None
    reason_kind: Optional[str] = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Measurements:
    bandwidth: tuple[BandwidthMeasurement, ...] = ()
    latency: tuple[LatencySeries, ...] = ()
    dns: tuple[DnsSeries, ...] = ()
    dns_agreement: tuple[DnsAgreement, ...] = ()
    load: Optional[dict[str, Any]] = None


@dataclass(frozen=True)
class Check:
    """One threshold compared with one measurement."""

    id: str
    """Stable id, e.g. ``classroom.bandwidth.down``; with ``classroom`` it names the check."""
    classroom: Optional[str]
    metric: str
    measured: Optional[float]
    threshold: Optional[float]
    warn_at: Optional[float]
    unit: str
    better: str
    """``higher`` or ``lower``: which way is good."""
    status: str
    source: str
    """Where the threshold comes from (profile name and citation)."""
    detail: Optional[str] = None
    estimate: bool = False


@dataclass(frozen=True)
class Evidence:
    """One fact that supports a cause, in terms a reader can check against the result."""

    metric: str
    value: Optional[float]
    unit: str
    target: Optional[str] = None
    check_id: Optional[str] = None
    note: Optional[str] = None


@dataclass(frozen=True)
class Cause:
    """A likely cause; confidence >= 0.5 is a claim."""

    id: str
    segment: str
    confidence: float
    evidence: tuple[Evidence, ...]
    advice: str
    rules: tuple[str, ...]


@dataclass(frozen=True)
class School:
    id: str = "unknown"
    name: str = "unnamed site"
    students: Optional[int] = None
    staff: Optional[int] = None
    """Staff count, for standards that count students and staff (FCC E-rate, SETDA)."""


@dataclass(frozen=True)
class Classroom:
    name: str
    devices: int
    profile: str


@dataclass(frozen=True)
class RunResult:
    """Everything one run measured and concluded. Serialised as the versioned JSON result."""

    schema_version: int
    run_id: str
    tool_version: str
    started_at: str
    finished_at: str
    duration_s: float
    status: str
    school: School
    classrooms: tuple[Classroom, ...]
    profile: str
    site_file: Optional[str]
    mode: str
    """``full``, ``quick``, ``scheduled`` (light, byte-capped) or ``scheduled-full``."""
    host: dict[str, Any]
    targets: tuple[Target, ...]
    measurements: Measurements
    probes: tuple[ProbeRecord, ...]
    checks: tuple[Check, ...] = ()
    causes: tuple[Cause, ...] = ()
    not_measured: tuple[str, ...] = ()
    interrupted: bool = False


# --------------------------------------------------------------------------- (de)serialising


def to_dict(obj: Any) -> Any:
    """Dataclass tree -> plain JSON-ready data (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


def from_dict(cls: Any, data: Any) -> Any:
    """Plain data -> dataclass tree of type ``cls``, guided by the type hints.

    Unknown keys are ignored (a newer minor writer may add fields); missing keys take the
    field default. Raises ValueError/TypeError on shapes that do not fit.
    """
    return _convert(cls, data)


def _convert(tp: Any, data: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is None:
        return data
    if origin in (Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            return _convert(arg, data)
    if dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise TypeError(f"{tp.__name__}: expected an object, got {type(data).__name__}")
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in data:
                kwargs[f.name] = _convert(hints[f.name], data[f.name])
        return tp(**kwargs)
    if origin is tuple:
        if not isinstance(data, (list, tuple)):
            raise TypeError(f"expected a list, got {type(data).__name__}")
        item = args[0] if args else Any
        return tuple(_convert(item, x) for x in data)
    if origin is dict:
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, got {type(data).__name__}")
        vt = args[1] if len(args) == 2 else Any
        return {k: _convert(vt, v) for k, v in data.items()}
    if origin is Literal:
        return data
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise TypeError(f"expected a number, got {data!r}")
        return float(data)
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise TypeError(f"expected an integer, got {data!r}")
        return data
    if tp is str:
        if not isinstance(data, str):
            raise TypeError(f"expected a string, got {data!r}")
        return data
    if tp is bool:
        if not isinstance(data, bool):
            raise TypeError(f"expected true/false, got {data!r}")
        return data
    return data


def claims(causes: tuple[Cause, ...]) -> tuple[Cause, ...]:
    """Causes with confidence >= 0.5, the ones a report states as likely."""
    return tuple(c for c in causes if c.confidence >= 0.5)


__all__ = [
    "SCHEMA_VERSION", "Target", "LatencyStats", "LatencySeries", "BandwidthMeasurement",
    "DnsSeries", "DnsAgreement", "ProbeRecord", "Measurements", "Check", "Evidence", "Cause",
    "School", "Classroom", "RunResult", "to_dict", "from_dict", "claims", "field",
]
