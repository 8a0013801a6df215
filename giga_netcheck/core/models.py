"""The result data model: frozen dataclasses with units in their field names.

A :class:`RunResult` is what ``run`` measures and what ``report`` re-renders; it is written as
one versioned JSON document (``docs/result-schema.md`` documents every field). Everything
after the probes works on these objects only, so it can be tested without a network.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

from giga_netcheck.core.i18n import Text, encode_args

SCHEMA_VERSION = 1

Role = Literal["gateway", "center", "internet"]
CheckStatus = Literal["pass", "warn", "fail", "not-measured"]
RunStatus = Literal["pass", "warn", "fail", "incomplete", "no-connectivity", "error"]
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
    """Base URL of a giga-netcheck measurement server, if the target runs one (or, with another
    engine, of a speedtest mini server or a LibreSpeed backend)."""
    engine: str = "http"
    """Throughput engine for this target: ``http`` (own), ``speedtest`` or ``librespeed`` (docs/engines.md)."""
    server_id: Optional[str] = None
    """Engine's server choice: an Ookla server id, or a LibreSpeed server-list entry's id or name."""
    secure: bool = False
    """speedtest: HTTPS to speedtest.net (``--secure``); librespeed: https for ``//`` server URLs."""
    server_list: Optional[str] = None
    """librespeed: a server list in LibreSpeed's JSON format (file path or URL)."""


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
    """The headline figure, reduced as ``goodput_method`` says (bytes moved after the warm-up
    divided by the time after it, for every engine but the scheduled light plan's)."""
    p50_mbps: Optional[float]
    p90_mbps: Optional[float]
    bytes_total: int
    samples_mbps: tuple[float, ...]
    """Aggregate throughput per interval, warm-up included (first ``warmup_s`` marked by index)."""
    per_stream_mbps: tuple[float, ...] = ()
    error: Optional[str] = None
    error_kind: Optional[str] = None
    server: Optional[dict[str, Any]] = None
    """The server the engine measured against (Ookla id/sponsor/host, LibreSpeed list entry, or
    the giga-netcheck server's URL and version): with ``engine`` it says where the figure comes from."""
    engine_raw: Optional[dict[str, Any]] = None
    """The engine's own figures, unchanged (speedtest-cli's results dict, LibreSpeed ping samples...)."""
    notes: tuple[str, ...] = ()
    """Message keys of warnings about this figure (e.g. ``engine.speedtest.archived``)."""
    family: Optional[str] = None
    """``ipv4`` or ``ipv6`` when the test was pinned to one family (see ``families``); None: as the OS chose."""
    proxy: Optional[str] = None
    """The HTTP proxy this test went through; None: direct."""
    goodput_method: Optional[str] = None
    """How ``goodput_mbps`` was reduced (core/goodput.py): ``after-warmup``, ``whole-transfer`` or
    ``first-byte-to-last``; None in results written before the field."""


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
    """Why, in English (the text of ``reason_key``, or recorded error text); kept for older readers."""
    reason_kind: Optional[str] = None
    """Short stable word for counting: ``timeout``, ``refused``, ``interrupted``, ``config`` ..."""
    seconds: float = 0.0
    reason_key: Optional[str] = None
    """Message-catalogue key of the reason (reports translate it); None: ``reason`` is data or old."""
    reason_args: dict[str, Any] = field(default_factory=dict)
    """Values of the key's placeholders (target names, counts, recorded error texts)."""

    def __post_init__(self) -> None:
        _take_key(self, "reason", "reason_key", "reason_args")


@dataclass(frozen=True)
class FamilyPath:
    """One service measured over one IP family, beside the other family (IPv4 vs IPv6)."""

    target: str
    role: str
    family: str
    """``ipv4`` or ``ipv6``."""
    address: str
    """The address of this family the target's host resolved to (or the site file gave)."""
    status: str
    """``ok``, or ``not-measured`` (no route for this family, connection refused ...): not a fault."""
    reason: Optional[str] = None
    rtt: Optional[LatencySeries] = None
    """TCP connect round trips to ``address`` (method ``tcp-connect``, phase ``family``)."""
    download: Optional[BandwidthMeasurement] = None
    """Multi-stream download from ``address`` (the own engine)."""


@dataclass(frozen=True)
class ProxyPath:
    """How HTTP to one target goes: direct or through a proxy, and what the proxy costs."""

    target: str
    role: str
    url: str
    proxy: Optional[str]
    """The proxy URL browsers would use for ``url``; None: direct."""
    decided_by: str
    """What chose it: ``site``, ``env``, ``scutil``, ``winhttp``, ``pac``, ``no_proxy`` or ``none``."""
    connect: Optional[LatencySeries] = None
    """TCP connect round trips to the proxy (method ``tcp-connect``, phase ``proxy``)."""
    ttfb: Optional[LatencySeries] = None
    """HTTP time to first byte of ``GET /rtt`` through the proxy (method ``http-ttfb``, phase ``proxy``)."""
    error: Optional[str] = None
    error_kind: Optional[str] = None


@dataclass(frozen=True)
class ProxyReport:
    """The proxy settings found, the path each HTTP target takes, and which probes use it."""

    detected: bool
    """A proxy (or a PAC script) is configured somewhere giga-netcheck looks."""
    source: Optional[str] = None
    """Where the settings came from: ``site``, ``env``, ``scutil``, ``winhttp``; None: nowhere."""
    http: Optional[str] = None
    https: Optional[str] = None
    no_proxy: tuple[str, ...] = ()
    pac_url: Optional[str] = None
    pac_status: Optional[str] = None
    """``evaluated``, ``not-understood`` or ``unreachable`` when a PAC URL is configured."""
    paths: tuple[ProxyPath, ...] = ()
    probe_paths: dict[str, str] = field(default_factory=dict)
    """Probe -> ``proxy`` or ``direct``: ICMP and UDP probes never go through an HTTP proxy."""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PathHop:
    """One TTL of a discovered path: who answered, and how fast (probes/path.py)."""

    ttl: int
    address: Optional[str]
    """The router that answered (ICMP time exceeded) or the target itself; None: nothing answered."""
    reply: Optional[str]
    """``time-exceeded``, ``echo-reply``, ``port-unreachable``, ``unreachable``, ``syn-ack`` or ``rst``."""
    trace_rtts_ms: tuple[Optional[float], ...]
    """The trace's own round trips, one per round (None: no answer; routers rate-limit these)."""
    other_addresses: tuple[str, ...] = ()
    """Other routers that answered at this TTL (load-balanced paths)."""
    name: Optional[str] = None
    """The latency series' target name: a configured target (``gateway``, ``internet``) or ``hop-<ttl>``."""
    role: Optional[str] = None
    """``gateway``, ``center``, ``internet``, or ``hop`` for a router that is none of the site's targets."""
    idle: Optional[LatencyStats] = None
    """Echo round trips straight to the hop, without load (its loss is the hop's loss)."""
    loaded: Optional[LatencyStats] = None
    """The same under load: the loaded series with the largest p50."""
    loaded_phase: Optional[str] = None


@dataclass(frozen=True)
class DiscoveredPath:
    """The routers on the way to one internet target, found by a traceroute."""

    target: str
    host: str
    method: Optional[str]
    """Probe kind that gave this path: ``icmp``, ``udp`` or ``tcp``; None: none worked."""
    reached: bool
    hops: tuple[PathHop, ...]
    attempts: tuple[str, ...] = ()
    """What each probe kind gave, in the order tried (``icmp: reached in 3 hops``)."""
    max_hops: int = 0
    probes_per_hop: int = 0
    seconds: float = 0.0
    error: Optional[str] = None
    error_kind: Optional[str] = None


# ------------------------------------------------------------------------------ the load ramp
# ``measurements.load``: written by the load probe (measure/probes/load.py), reduced by
# core/load.py, read by thresholds, triage and the renderers. The field order is the JSON order
# (docs/load.md shows the section, docs/result-schema.md every field).


@dataclass(frozen=True, kw_only=True)
class LoadHop:
    """RTT to one hop during one step, against its idle RTT just before the ramp."""

    target: str
    role: str = ""
    method: str = ""
    p50_ms: Optional[float] = None
    """Median of the step's samples, its first quarter left out (the queue is still filling)."""
    p95_ms: Optional[float] = None
    loss_pct: Optional[float] = None
    idle_p50_ms: Optional[float] = None
    increase_ms: Optional[float] = None
    """``p50_ms - idle_p50_ms``; None when either is missing."""
    grade: Optional[str] = None
    """Bufferbloat grade of the increase (A+ ... F)."""
    rtts_ms: tuple[Optional[float], ...] = ()
    """Every sample of the step, in order; None is a lost probe."""
    error: Optional[str] = None


@dataclass(frozen=True, kw_only=True)
class LoadStep:
    """One step of the ramp: ``devices`` emulated devices doing the activity for ``duration_s``."""

    devices: int
    connections: int
    """Devices x connections per device: what a session table must hold."""
    complete: bool = True
    """False for a step cut short (Ctrl-C, a cap); it never counts for the knee."""
    stopped: Optional[str] = None
    """Why the step was cut: ``interrupted``, ``byte-cap``, ``time-cap``."""
    duration_s: float = 0.0
    met: int = 0
    """Devices whose activity was served."""
    judged: int = 0
    """Devices that had something to judge."""
    met_share: Optional[float] = None
    """``met / judged``; None when nothing was judged."""
    goodput_mbps: float = 0.0
    down_mbps: float = 0.0
    up_mbps: float = 0.0
    bytes: int = 0
    samples_mbps: tuple[float, ...] = ()
    """Goodput every 0.5 s."""
    peak_open_connections: int = 0
    connections_opened: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    """Connection errors by kind (``refused``, ``reset``, ``timeout`` ...)."""
    devices_with_errors: int = 0
    error_examples: tuple[str, ...] = ()
    activity: dict[str, Any] = field(default_factory=dict)
    """The activity's own figures for the step (segments and stalls, pages, items ...; docs/load.md)."""
    rpm: Optional[float] = None
    working_rtt_ms: Optional[float] = None
    foreign_rtts_ms: tuple[float, ...] = ()
    self_rtt_count: int = 0
    latency: tuple[LoadHop, ...] = ()

    def failed_connections(self, kinds: tuple[str, ...]) -> int:
        """Connection errors of these kinds in this step."""
        return sum(int(self.errors.get(k, 0)) for k in kinds)

    def worst_hop(self) -> Optional[LoadHop]:
        """The hop whose RTT rose most in this step (the first of equals), if any rose at all."""
        hops = [h for h in self.latency if h.increase_ms is not None]
        return max(hops, key=lambda h: h.increase_ms or 0.0) if hops else None


@dataclass(frozen=True, kw_only=True)
class LoadIdle:
    """A hop's idle RTT taken just before the ramp: the baseline of the increase under load."""

    p50_ms: Optional[float]
    method: str
    rtts_ms: tuple[Optional[float], ...] = ()


@dataclass(frozen=True, kw_only=True)
class LoadClassroom:
    """The classroom the ramp emulates."""

    name: str
    devices_needed: int
    profile: str
    """The profile whose activity the devices do (for a mix, its largest part)."""


@dataclass(frozen=True, kw_only=True)
class LoadCaps:
    """The hard limits the ramp ran under, shown before the first device started."""

    max_devices: int
    steps: int
    step_s: float
    max_duration_s: float
    max_bytes: int


@dataclass(frozen=True, kw_only=True)
class LoadKnee:
    """The capacity knee: the largest device count carried before the first step that is not."""

    devices: int
    connections: int
    goodput_mbps: Optional[float]
    met_share: float
    first_failing_devices: Optional[int]
    beyond_ramp: bool
    """No step failed: the capacity is this or more."""


@dataclass(frozen=True, kw_only=True)
class LoadSupports:
    """How many of the devices the classroom needs the ramp showed carried."""

    devices: int
    needed: int
    enough: bool
    at_least: bool
    """No step failed: the capacity is ``devices`` or more."""
    first_failing_devices: Optional[int]


@dataclass(frozen=True, kw_only=True)
class LoadResponsiveness:
    """Responsiveness under load at the largest complete step (draft-ietf-ippm-responsiveness)."""

    rpm: Optional[float]
    working_rtt_ms: Optional[float]
    rating: Optional[str]
    """``poor``, ``fair``, ``good`` or ``excellent``."""
    at_devices: int


@dataclass(frozen=True, kw_only=True)
class LoadBufferbloat:
    """The largest RTT increase at any hop in any complete step, graded."""

    grade: Optional[str]
    increase_ms: float
    target: str
    at_devices: int


@dataclass(frozen=True, kw_only=True)
class LoadResult:
    """The load probe's section of the result (``measurements.load``, docs/load.md)."""

    format: int = 1
    """Version of this section's shape."""
    target: str
    url: str
    verified_server: bool
    classroom: LoadClassroom
    activity: dict[str, Any]
    """The emulated activity as the probe ran it: ``kind`` and the kind's own parameters and pass
    condition (``bitrate_mbps``, ``page_limit_s``, ``limits`` ...; docs/load.md)."""
    caps: LoadCaps
    planned_devices: tuple[int, ...]
    meet_share: float
    """A step carries its devices when at least this share of the judged ones met their activity."""
    stopped: Optional[str] = None
    idle: dict[str, LoadIdle] = field(default_factory=dict)
    steps: tuple[LoadStep, ...] = ()
    knee: Optional[LoadKnee] = None
    supports: LoadSupports
    responsiveness: Optional[LoadResponsiveness] = None
    bufferbloat: Optional[LoadBufferbloat] = None

    @property
    def activity_kind(self) -> str:
        """``video``, ``video-call``, ``web-apps``, ``textbook`` or ``cbt``."""
        return str(self.activity.get("kind", "activity"))

    @property
    def activity_rate_mbps(self) -> Optional[float]:
        """The per-device rate the activity ran at (video and calls: bitrate; CBT: download), if it has one."""
        rate = self.activity.get("bitrate_mbps") or self.activity.get("down_mbps")
        return float(rate) if isinstance(rate, (int, float)) else None


@dataclass(frozen=True)
class Measurements:
    bandwidth: tuple[BandwidthMeasurement, ...] = ()
    latency: tuple[LatencySeries, ...] = ()
    dns: tuple[DnsSeries, ...] = ()
    dns_agreement: tuple[DnsAgreement, ...] = ()
    load: Optional[LoadResult] = None
    families: tuple[FamilyPath, ...] = ()
    paths: tuple[DiscoveredPath, ...] = ()
    """Traceroutes to the internet targets where the site file does not name the hops."""
    proxy: Optional[ProxyReport] = None


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
    """Where the threshold comes from (profile name and citation), in English."""
    detail: Optional[str] = None
    """How the threshold or the figure was arrived at, in English (or recorded text)."""
    estimate: bool = False
    source_key: Optional[str] = None
    """Message key of ``source`` (reports translate it; citations from profiles stay values)."""
    source_args: dict[str, Any] = field(default_factory=dict)
    detail_key: Optional[str] = None
    """Message key of ``detail``; None: ``detail`` is recorded text (or from an older result)."""
    detail_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _take_key(self, "source", "source_key", "source_args")
        _take_key(self, "detail", "detail_key", "detail_args")


@dataclass(frozen=True)
class Evidence:
    """One fact that supports a cause, in terms a reader can check against the result."""

    metric: str
    value: Optional[float]
    unit: str
    target: Optional[str] = None
    check_id: Optional[str] = None
    note: Optional[str] = None
    """The note in English (the text of ``note_key``), or a data value (a DNS name, an error text)."""
    note_key: Optional[str] = None
    """Message-catalogue key of the note (reports translate it); None: ``note`` is data or old."""
    note_args: dict[str, Any] = field(default_factory=dict)
    """Values of the key's placeholders."""

    def __post_init__(self) -> None:
        _take_key(self, "note", "note_key", "note_args")


def _take_key(obj: Any, text: str, key: str, args: str) -> None:
    """A field given an ``i18n.Text`` records its key and values beside the English text."""
    value = getattr(obj, text)
    if getattr(obj, key) is None and getattr(value, "key", None):
        object.__setattr__(obj, key, value.key)
        object.__setattr__(obj, args, encode_args(value.args))


@dataclass(frozen=True)
class NotMeasured:
    """One ``not_measured`` sentence as a catalogue key, so reports can say it in any language."""

    text: str
    """The sentence exactly as it stands in ``not_measured`` (English)."""
    key: str
    args: dict[str, Any] = field(default_factory=dict)
    subject: Optional[str] = None
    """What was not measured: ``gateway``, ``center``, ``internet``, ``dns`` or a probe name."""


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
    not_measured_messages: tuple[NotMeasured, ...] = ()
    """Catalogue keys of the ``not_measured`` sentences that have one (matched by ``text``)."""
    missing: tuple[NotMeasured, ...] = ()
    """What the classrooms' profiles need that the run did not measure, and why: ``subject`` is
    the need (``bandwidth``, ``latency``, ``dns``), one entry per reason (status ``incomplete``)."""
    context: dict[str, str] = field(default_factory=dict)
    """The site file's ``context:`` (board, region, isp, line_type, contract, ipv4_method,
    connection_model), so any result file can be batched without its site file."""

    def __post_init__(self) -> None:
        # sentences given as i18n.Text record their keys here, whoever appended them
        known = {n.text for n in self.not_measured_messages}
        add = tuple(
            NotMeasured(str(t), t.key, dict(t.args), getattr(t, "subject", None))
            for t in self.not_measured
            if isinstance(t, Text) and t.key and str(t) not in known
        )
        if add:
            object.__setattr__(self, "not_measured_messages", self.not_measured_messages + add)


# --------------------------------------------------------------------------- (de)serialising


def to_dict(obj: Any) -> Any:
    """Dataclass tree -> plain JSON-ready data (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, str):
        return str(obj)  # an i18n.Text is written as its English sentence (its key has its own field)
    return obj


def from_dict(cls: Any, data: Any) -> Any:
    """Plain data -> dataclass tree of type ``cls``, guided by the type hints.

    Unknown keys are ignored (a newer minor writer may add fields); missing keys take the
    field default. Raises ValueError/TypeError on shapes that do not fit.
    """
    return _convert(cls, data)


@functools.cache
def _hints(tp: type) -> dict[str, Any]:
    """A dataclass's resolved type hints, once per class: typing.get_type_hints evaluates every
    string annotation again on each call, and was two thirds of the collector's CPU per upload."""
    return typing.get_type_hints(tp)


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
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise TypeError(f"{tp.__name__}: expected an object, got {type(data).__name__}")
        hints = _hints(tp)
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
    "SCHEMA_VERSION",
    "Target",
    "LatencyStats",
    "LatencySeries",
    "BandwidthMeasurement",
    "DnsSeries",
    "DnsAgreement",
    "ProbeRecord",
    "PathHop",
    "DiscoveredPath",
    "LoadResult",
    "LoadClassroom",
    "LoadCaps",
    "LoadIdle",
    "LoadStep",
    "LoadHop",
    "LoadKnee",
    "LoadSupports",
    "LoadResponsiveness",
    "LoadBufferbloat",
    "FamilyPath",
    "ProxyPath",
    "ProxyReport",
    "Measurements",
    "Check",
    "Evidence",
    "NotMeasured",
    "Cause",
    "School",
    "Classroom",
    "RunResult",
    "to_dict",
    "from_dict",
    "claims",
    "field",
]
