"""Site files: what school this is, its classrooms and where to measure; validated with key paths.

Errors name the file, the key path, the bad value and what was expected. Nothing here touches
the network. Profiles (what a classroom needs) are :mod:`giga_netcheck.config.profiles`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

from giga_netcheck.config.load import LOAD_SCHEMA, LoadSettings, load_settings
from giga_netcheck.config.profiles import _DEVICES, _MIX_REF, load_profile, mix_spec, profile_dirs
from giga_netcheck.config.schema import (
    MAX_NAME,
    Either,
    ListOf,
    Num,
    Obj,
    Str,
    host_problem,
    name_problem,
    resolver_problem,
    target_problem,
    url_problem,
    validate,
)
from giga_netcheck.config.serverlist import read_server_list_file
from giga_netcheck.config.yamlfile import config_error as _error, one_line as _one_line, read_yaml
from giga_netcheck.core.models import Classroom, School, Target

SERVERS_ENV = "GIGA_NETCHECK_SERVERS"
NO_PUBLIC_ENV = "GIGA_NETCHECK_NO_PUBLIC"
"""Set (to anything but ``0``): every run as with ``--no-public`` (a board's scheduled runs)."""


def _public_allowed(env: Optional[dict[str, str]] = None) -> bool:
    return (os.environ if env is None else env).get(NO_PUBLIC_ENV, "") in ("", "0")


ENGINES = ("http", "speedtest", "librespeed", "cloudflare", "ndt7")
"""Throughput engines a target may name (``measure.engines.registry`` has one class per name)."""

# --------------------------------------------------------------------------------- site

_PROBE_TUNING = Obj(
    {
        "bandwidth": Obj(
            {
                "streams": Num(1, 64, integer=True),
                "duration_s": Num(1, 120),
                "warmup_s": Num(0, 30),
                "enabled": bool,
            }
        ),
        "latency": Obj(
            {
                "count": Num(1, 1000, integer=True),
                "interval_s": Num(0.01, 10),
                "timeout_s": Num(0.1, 10),
                "method": Str(choices=("auto", "icmp", "icmp-dgram", "udp-echo", "tcp-connect")),
            }
        ),
        "dns": Obj(
            {
                "queries": Num(1, 100, integer=True),
                "timeout_s": Num(0.1, 10),
            }
        ),
    }
)

# Scheduled runs (docs/scheduled.md). A range never crosses midnight; 24:00 may end one.
_HHMM = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"
_TIME_RANGE = Str(pattern=rf"{_HHMM}-(?:{_HHMM}|24:00)", expect="a time range HH:MM-HH:MM within one day, e.g. 08:30-15:30")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_SCHEDULE = Obj(
    {
        "every": Str(pattern=r"(?:[1-9][0-9]?m|[1-9][0-9]?h)", expect="an interval like 15m or 1h"),
        "window": _TIME_RANGE,
        "lesson_hours": _TIME_RANGE,
        "lesson_days": ListOf(Str(choices=WEEKDAYS), nonempty=True),
        "full_every": Num(0, 10000, integer=True),
        "full_window": _TIME_RANGE,
        "budget_mb": Num(0.5, 50),
        "splay_s": Num(0, 3600),
        "time_limit_s": Num(10, 3600),
        "history": Str(),
        "retention_days": Num(1, 3660, integer=True),
        "retention_mb": Num(0.1, 1000),
    }
)


@dataclass(frozen=True)
class ScheduleSettings:
    """The site file's ``schedule:`` section: how unattended runs behave (docs/scheduled.md)."""

    every: str = "15m"
    """How often ``schedule`` makes cron or systemd start a run."""
    window: Optional[str] = None
    """When runs start (HH:MM-HH:MM); None: the lesson hours widened by an hour each side."""
    lesson_hours: str = "08:30-15:30"
    """Lesson time, for the history's peak-congestion analysis."""
    lesson_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    full_every: int = 0
    """Full bandwidth probe every Nth scheduled run (0: never by count)."""
    full_window: Optional[str] = None
    """The first scheduled run in this window each day is a full run."""
    budget_mb: float = 5.0
    """Data one light run may use, in MB (10^6 bytes), everything included."""
    splay_s: float = 120.0
    time_limit_s: float = 240.0
    history: Optional[str] = None
    """History file (JSON Lines); relative paths are taken from the site file's folder."""
    retention_days: int = 400
    retention_mb: float = 20.0


def _schedule_settings(raw: dict[str, Any], path: str | Path) -> ScheduleSettings:
    """The validated ``schedule:`` mapping as settings; ranges must end after they start."""
    for key in ("window", "lesson_hours", "full_window"):
        if raw.get(key) is not None:
            start, end = (int(t[:2]) * 60 + int(t[3:]) for t in str(raw[key]).split("-"))
            if end <= start:
                raise _error(f"{raw[key]!r} ends before it starts (a range stays within one day)", path=str(path), key=f"schedule.{key}")
    d = ScheduleSettings()
    history = raw.get("history")
    if history is not None and not os.path.isabs(str(history)):
        history = str(Path(path).resolve().parent / str(history))
    return ScheduleSettings(
        every=str(raw.get("every", d.every)),
        window=None if raw.get("window") is None else str(raw["window"]),
        lesson_hours=str(raw.get("lesson_hours", d.lesson_hours)),
        lesson_days=tuple(str(x) for x in raw.get("lesson_days", d.lesson_days)),
        full_every=int(raw.get("full_every", d.full_every)),
        full_window=None if raw.get("full_window") is None else str(raw["full_window"]),
        budget_mb=float(raw.get("budget_mb", d.budget_mb)),
        splay_s=float(raw.get("splay_s", d.splay_s)),
        time_limit_s=float(raw.get("time_limit_s", d.time_limit_s)),
        history=None if history is None else str(history),
        retention_days=int(raw.get("retention_days", d.retention_days)),
        retention_mb=float(raw.get("retention_mb", d.retention_mb)),
    )


_SCHOOL_FIELDS = {"id": Str(), "name": Str(), "students": Num(1, 100000, integer=True)}
if "staff" in {f.name for f in dataclasses.fields(School)}:
    # Per-user rules (FCC, SETDA) count students and staff; the key opens once the model has it.
    _SCHOOL_FIELDS["staff"] = Num(0, 100000, integer=True)

# Addresses, ports and names that cannot work are refused here, naming the key (schema.py).
COLD_LABEL = len("gnc-0123456789.")
"""The random label the DNS probe's cold queries put in front of a name (measure/probes/dns.py)."""


def _gateway_problem(text: str) -> Optional[str]:
    return None if text == "auto" else host_problem(text)


def _dns_name_problem(text: str) -> Optional[str]:
    why = name_problem(text, limit=MAX_NAME - COLD_LABEL)
    if why and why.endswith(f"over {MAX_NAME - COLD_LABEL}"):
        why += f" (a cold query puts a {COLD_LABEL}-character label in front, and a name ends at {MAX_NAME})"
    return why


def _server_list_problem(text: str) -> Optional[str]:
    return url_problem(text) if "://" in text else None


def _proxy_url_problem(text: str) -> Optional[str]:
    return url_problem(text if "://" in text else f"http://{text}", ("http", "https", "socks5", "socks5h"))


def _pac_problem(text: str) -> Optional[str]:
    return url_problem(text) if text.startswith(("http://", "https://")) else None


_URL = Str(check=url_problem, expect="a URL http(s)://host[:port]/...")
_TARGET = Str(check=target_problem, expect="a measurement server's URL http(s)://host[:port] or a host name or address")

# A target measured by another throughput engine (docs/engines.md): a mapping instead of a URL.
_ENGINE_TARGET = Obj(
    {
        "url": _URL,
        "engine": Str(choices=ENGINES),
        "server_id": Str(),
        "secure": bool,
        "server_list": Str(check=_server_list_problem, expect="a file path or a URL http(s)://host[:port]/..."),
    }
)

SITE_SCHEMA = Obj(
    {
        "school": Obj(_SCHOOL_FIELDS),
        "profile": Str(),
        "profiles_dir": Str(),
        "classrooms": ListOf(
            Obj(
                {
                    "name": Str(),
                    "devices": _DEVICES,
                    "profile": Str(),
                    "mix": ListOf(Obj({"profile": _MIX_REF, "devices": _DEVICES}, required=("profile", "devices")), nonempty=True),
                },
                required=("name",),
            )
        ),
        "targets": Obj(
            {
                "gateway": Str(check=_gateway_problem, expect="auto, an IPv4 or IPv6 address, or a host name"),
                "center": Either((_TARGET, _ENGINE_TARGET)),
                "internet": Either((ListOf(Either((_TARGET, _ENGINE_TARGET))), _TARGET, _ENGINE_TARGET)),
                # false: no public speed-test infrastructure when no internet target is given
                "public": bool,
            }
        ),
        "dns": Obj(
            {
                "resolvers": ListOf(Str(check=resolver_problem, expect="system, an IP address, address:port or [IPv6]:port")),
                "names": ListOf(Str(check=_dns_name_problem, expect="a DNS name")),
            }
        ),
        "probes": _PROBE_TUNING,
        "schedule": _SCHEDULE,
        "load": LOAD_SCHEMA,  # the load probe (docs/load.md)
        # the HTTP proxy browsers here use (docs/site-file.md): wins over the environment and system settings
        "proxy": Obj(
            {
                "url": Str(check=_proxy_url_problem, expect="a proxy host:port or http://host:port"),
                "pac": Str(check=_pac_problem, expect="a PAC script URL"),
                "no_proxy": ListOf(Str()),
                "direct": bool,
            }
        ),
        # Context a board breaks its results down by (docs/boards.md); uploads carry it with the result.
        "context": Obj(
            {
                "board": Str(),
                "region": Str(),
                "isp": Str(),
                "line_type": Str(),
                "contract": Str(choices=("best-effort", "guaranteed")),
                "ipv4_method": Str(choices=("pppoe", "ipoe", "v4-over-v6")),
                "connection_model": Str(choices=("center", "local-breakout")),
            }
        ),
    }
)


@dataclass(frozen=True)
class ProbeSettings:
    """Probe tuning; ``quick`` shortens every probe."""

    bandwidth_enabled: bool = True
    streams: int = 4
    duration_s: float = 6.0
    warmup_s: float = 1.5
    latency_count: int = 40
    latency_interval_s: float = 0.05
    latency_timeout_s: float = 1.0
    latency_method: str = "auto"
    dns_queries: int = 5
    dns_timeout_s: float = 2.0

    def quick(self) -> ProbeSettings:
        return ProbeSettings(
            bandwidth_enabled=self.bandwidth_enabled,
            streams=self.streams,
            duration_s=min(self.duration_s, 2.2),  # six tests on a two-server site: --quick stays under 20 s
            warmup_s=min(self.warmup_s, 0.8),
            # loss is a count: fewer than ~30 probes cannot see a few percent of it
            latency_count=min(self.latency_count, 30),
            latency_interval_s=min(self.latency_interval_s, 0.02),
            latency_timeout_s=min(self.latency_timeout_s, 0.5),
            latency_method=self.latency_method,
            dns_queries=min(self.dns_queries, 3),
            dns_timeout_s=min(self.dns_timeout_s, 1.0),
        )


@dataclass(frozen=True)
class Site:
    """A validated site file (or the embedded default)."""

    school: School
    profile: str
    classrooms: tuple[Classroom, ...]
    gateway: Optional[str]
    """Address, or "auto" to take the OS default gateway."""
    center: Optional[str]
    internet: tuple[str, ...]
    resolvers: tuple[str, ...]
    names: tuple[str, ...]
    probes: ProbeSettings = field(default_factory=ProbeSettings)
    profiles_dir: Optional[str] = None
    path: Optional[str] = None
    profiles_cli_dir: Optional[str] = None
    """``--profiles-dir`` from the command line: searched before ``profiles_dir``."""
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    load: LoadSettings = field(default_factory=LoadSettings)
    """The ``load:`` section: how the load probe ramps (docs/load.md)."""
    proxy: dict[str, Any] = field(default_factory=dict)
    """The ``proxy:`` section (url, pac, no_proxy, direct); empty: the host's settings apply."""
    context: dict[str, str] = field(default_factory=dict)
    """The ``context:`` section (board, region, isp, line_type, contract, ipv4_method, connection_model)."""
    target_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``center`` / ``internet[i]`` -> engine, server_id, secure, server_list of targets given as mappings."""
    engine: Optional[str] = None
    """``run --engine``: every center and internet target uses this engine."""
    public: bool = True
    """With no internet target, measure against public speed-test infrastructure
    (:func:`public_target`); false (``targets.public: false``, ``run --no-public``) keeps a run to
    the board's own servers."""

    def _engine(self, key: str, t: Target) -> Target:
        opts = self.target_options.get(key, {})
        engine = self.engine or opts.get("engine") or "http"
        if engine == "http" and not opts:
            return t
        return dataclasses.replace(
            t, engine=engine, server_id=opts.get("server_id"), secure=bool(opts.get("secure", False)), server_list=opts.get("server_list")
        )

    def targets(self, detected_gateway: Optional[str]) -> list[Target]:
        """The path's measurement points, nearest first."""
        out: list[Target] = []
        gw = detected_gateway if self.gateway in (None, "auto") else self.gateway
        if gw:
            out.append(Target("gateway", "gateway", gw))
        if self.center:
            out.append(self._engine("center", _target("center", "center", self.center)))
        for i, item in enumerate(self.internet, 1):
            out.append(
                self._engine(f"internet[{i - 1}]", _target(f"internet-{i}" if len(self.internet) > 1 else "internet", "internet", item))
            )
        if not self.internet and self.public:
            out.append(public_target(self.engine))
        return out


PUBLIC_URLS = {
    "cloudflare": "https://speed.cloudflare.com",
    "ndt7": "https://locate.measurementlab.net/v2/nearest/ndt/ndt7",
}
"""Public speed-test infrastructure by engine: Cloudflare's speed-test endpoints (anycast, near
every Japanese ISP, dual-stack), and M-Lab's locate API, which names the nearest ndt7 server."""

PUBLIC_ENGINE = "cloudflare"
"""The zero-configuration internet target's engine, unless ``run --engine`` names another public one."""


def public_target(engine: Optional[str] = None) -> Target:
    """The internet target a run takes when none is configured (docs/engines.md says who
    measures and what they keep)."""
    name = engine if engine in PUBLIC_URLS else PUBLIC_ENGINE
    url = PUBLIC_URLS[name]
    return Target("internet", "internet", urlsplit(url).hostname or url, url, engine=name)


def _target(name: str, role: str, spec: str) -> Target:
    """A URL names a measurement server; a bare host is probed for latency only."""
    if "://" in spec:
        parts = urlsplit(spec)
        return Target(name, role, parts.hostname or spec, spec.rstrip("/"))
    return Target(name, role, spec)


DEFAULT_NAMES = ("www.mext.go.jp", "classroom.google.com")
DEFAULT_DEVICES = 35


def default_site(env: Optional[dict[str, str]] = None, profile: str = "default", dirs: Optional[list[Path]] = None) -> Site:
    """The embedded default: OS gateway and resolvers, one classroom, servers from the env.

    With a ``profile`` other than ``default`` the classroom takes that profile and, when the
    profile says how many devices it covers (``classroom.devices``, e.g. 1 for
    ``home-online-lesson``), that many devices; raises ConfigError for a bad profile.
    """
    env = dict(os.environ if env is None else env)
    servers = tuple(s for s in env.get(SERVERS_ENV, "").replace(",", " ").split() if s)
    devices = DEFAULT_DEVICES
    if profile != "default":
        devices = load_profile(profile, dirs if dirs is not None else profile_dirs(env=env)).default_devices or DEFAULT_DEVICES
    return Site(
        school=School(),
        profile=profile,
        classrooms=(Classroom("classroom", devices, profile),),
        gateway="auto",
        center=None,
        internet=servers,
        resolvers=("system",),
        names=DEFAULT_NAMES,
        public=_public_allowed(env),
    )


def load_site(path: str | Path) -> Site:
    """Read and validate a site file."""
    data = read_yaml(path)
    if data is None:
        data = {}
    validate(data, SITE_SCHEMA, path=str(path))
    school = data.get("school") or {}
    profile = str(data.get("profile") or "default")
    rooms = tuple(_classroom(r, i, profile, path) for i, r in enumerate(data.get("classrooms") or [])) or (
        Classroom("classroom", DEFAULT_DEVICES, profile),
    )
    targets = data.get("targets") or {}
    internet = targets.get("internet") or []
    if isinstance(internet, (str, dict)):
        internet = [internet]
    target_options: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(internet):
        internet[i] = _engine_target(item, path, f"targets.internet[{i}]", target_options, f"internet[{i}]")
    if targets.get("center"):
        targets = dict(targets, center=_engine_target(targets["center"], path, "targets.center", target_options, "center"))
    dns = data.get("dns") or {}
    tuning = data.get("probes") or {}
    bw, lat, dq = tuning.get("bandwidth") or {}, tuning.get("latency") or {}, tuning.get("dns") or {}
    d = ProbeSettings()
    probes = ProbeSettings(
        bandwidth_enabled=bool(bw.get("enabled", d.bandwidth_enabled)),
        streams=int(bw.get("streams", d.streams)),
        duration_s=float(bw.get("duration_s", d.duration_s)),
        warmup_s=float(bw.get("warmup_s", d.warmup_s)),
        latency_count=int(lat.get("count", d.latency_count)),
        latency_interval_s=float(lat.get("interval_s", d.latency_interval_s)),
        latency_timeout_s=float(lat.get("timeout_s", d.latency_timeout_s)),
        latency_method=str(lat.get("method", d.latency_method)),
        dns_queries=int(dq.get("queries", d.dns_queries)),
        dns_timeout_s=float(dq.get("timeout_s", d.dns_timeout_s)),
    )
    if probes.warmup_s >= probes.duration_s:
        raise _error("must be shorter than probes.bandwidth.duration_s", path=str(path), key="probes.bandwidth.warmup_s")
    profiles_dir = data.get("profiles_dir")
    if profiles_dir is not None:
        profiles_dir = str(profiles_dir)
        if not os.path.isabs(profiles_dir):
            profiles_dir = str(Path(path).resolve().parent / profiles_dir)
    school_kw: dict[str, Any] = dict(
        id=str(school.get("id", "unknown")),
        name=str(school.get("name", "unnamed site")),
        students=int(school["students"]) if school.get("students") is not None else None,
    )
    if school.get("staff") is not None:
        school_kw["staff"] = int(school["staff"])
    return Site(
        school=School(**school_kw),
        profile=profile,
        classrooms=rooms,
        gateway=str(targets["gateway"]) if targets.get("gateway") else "auto",
        center=str(targets["center"]) if targets.get("center") else None,
        internet=tuple(str(x) for x in internet),
        resolvers=tuple(str(x) for x in dns.get("resolvers", ["system"])),
        names=tuple(str(x) for x in dns.get("names", DEFAULT_NAMES)),
        probes=probes,
        profiles_dir=profiles_dir,
        path=str(path),
        schedule=_schedule_settings(data.get("schedule") or {}, path),
        load=load_settings(data.get("load")),
        context={str(k): str(v) for k, v in (data.get("context") or {}).items()},
        proxy=dict(data.get("proxy") or {}),
        target_options=target_options,
        public=bool(targets.get("public", True)) and _public_allowed(),
    )


def _classroom(raw: dict[str, Any], i: int, site_profile: str, path: str | Path) -> Classroom:
    """One ``classrooms[i]`` entry; a ``mix:`` becomes a mix spec in ``Classroom.profile``."""
    key = f"classrooms[{i}]"
    mix = raw.get("mix")
    if not mix:
        if raw.get("devices") is None:
            raise _error("missing required key 'devices' (or give mix: with devices per profile)", path=str(path), key=f"{key}.devices")
        return Classroom(str(raw["name"]), int(raw["devices"]), str(raw.get("profile") or site_profile))
    if raw.get("profile") is not None:
        raise _error("give either profile: or mix:, not both (a mix names a profile per part)", path=str(path), key=f"{key}.profile")
    parts = [(str(m["profile"]).strip(), int(m["devices"])) for m in mix]
    total = sum(n for _, n in parts)
    if raw.get("devices") is not None and int(raw["devices"]) != total:
        raise _error(
            f"{int(raw['devices'])} differs from the mix's devices, which add up to {total}; leave devices out or make them agree",
            path=str(path),
            key=f"{key}.devices",
        )
    return Classroom(str(raw["name"]), total, mix_spec(parts))


SPEEDTEST_HOST = "www.speedtest.net"
"""The host a speedtest target without a url stands for (latency is measured to it)."""


def _engine_target(raw: Any, path: str | Path, key: str, options: dict[str, dict[str, Any]], name: str) -> str:
    """A target mapping (docs/engines.md) -> its URL or host; its engine options go to ``options[name]``."""
    if not isinstance(raw, dict):
        return str(raw)
    engine = str(raw.get("engine", "http"))
    url = str(raw["url"]) if raw.get("url") is not None else None
    sid = str(raw["server_id"]) if raw.get("server_id") is not None else None
    slist = str(raw["server_list"]) if raw.get("server_list") is not None else None
    if slist is not None and engine != "librespeed":
        raise _error("server_list is a LibreSpeed server list: only with engine: librespeed", path=str(path), key=f"{key}.server_list")
    if engine in PUBLIC_URLS and not url:
        url = PUBLIC_URLS[engine]  # the public infrastructure (Cloudflare; M-Lab's locate API for ndt7)
    if engine == "http" and not url:
        raise _error("missing required key 'url' (a giga-netcheck serve URL) for engine http", path=str(path), key=f"{key}.url")
    if engine == "speedtest":
        if url and sid:
            raise _error(
                "give url (a speedtest mini server) or server_id (an Ookla server), not both", path=str(path), key=f"{key}.server_id"
            )
        if sid is not None and not sid.isdigit():
            raise _error(f"expected an Ookla server id (digits), got {sid!r}", path=str(path), key=f"{key}.server_id")
    if engine == "librespeed":
        if not url and not slist:
            raise _error(
                "missing 'url' (a LibreSpeed backend) or 'server_list' (LibreSpeed's JSON list) for engine librespeed",
                path=str(path),
                key=f"{key}.url",
            )
        if slist and not slist.startswith(("http://", "https://")):
            if not os.path.isabs(slist):
                slist = str(Path(path).resolve().parent / slist)
            try:
                servers = read_server_list_file(slist)
            except OSError as exc:
                raise _error(f"cannot read the server list: {exc.strerror or exc}", path=str(path), key=f"{key}.server_list") from None
            except ValueError as exc:
                raise _error(_one_line(str(exc)), path=str(path), key=f"{key}.server_list") from None
            if sid and not any(s.id == sid or s.name == sid for s in servers):
                raise _error(f"no server with id or name {sid!r} in {slist}", path=str(path), key=f"{key}.server_id")
            host = urlsplit(servers[0].url("dlURL", bool(raw.get("secure")))).hostname or "localhost"
        elif slist:
            host = urlsplit(slist).hostname or slist
    options[name] = {"engine": engine, "server_id": sid, "secure": bool(raw.get("secure", False)), "server_list": slist}
    if url:
        return url
    return SPEEDTEST_HOST if engine == "speedtest" else host
