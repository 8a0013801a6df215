"""Site and profile files: load, merge (``extends:``, ``mix:``), validate with key paths.

A *site file* says what school this is, its classrooms and where to measure; a *profile* says
what a classroom needs (bandwidth per device, share active at once), the quality limits, and
the school-level bandwidth rule. Both are YAML; errors name the file, the key path, the bad
value and what was expected. Nothing here touches the network.

Profiles compose two ways (docs/profiles.md):

- ``extends: parent`` merges the parent's keys under the child's, key by key;
- a *mix* combines activities: a profile's ``mix:`` gives shares of the classroom's devices,
  a site classroom's ``mix:`` gives device counts. Needed bandwidth is the sum over the mix;
  quality limits are the strictest of the mix. A site classroom's mix travels in
  ``Classroom.profile`` as a *mix spec*, ``web-apps*30+video-lesson*5``, so a saved result
  re-evaluates the same way (``report``).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence
from urllib.parse import urlsplit

import yaml

from giga_netcheck.config.load import LOAD_SCHEMA, LoadSettings, load_settings
from giga_netcheck.config.schema import Either, ListOf, Num, Obj, Str, printable, validate
from giga_netcheck.core.errors import ConfigError, UnknownProfileError
from giga_netcheck.core.models import Classroom, School, Target
from giga_netcheck.measure.engines import ENGINES

PROFILES_ENV = "GIGA_NETCHECK_PROFILES"
SERVERS_ENV = "GIGA_NETCHECK_SERVERS"

MAX_FILE_BYTES = 1 << 20
"""Site and profile files are hand-written; anything larger is a mistake (or /dev/zero)."""

# A profile named inside a mix: a name or a path, but never the mix spec's own separators.
_MIX_REF = Str(pattern=r"[^*+]+", expect="a profile name or path without '+' or '*'")
_DEVICES = Num(1, 10000, integer=True)

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


def _schedule_settings(raw: dict, path: str | Path) -> ScheduleSettings:
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

# A target measured by another throughput engine (docs/engines.md): a mapping instead of a URL.
_ENGINE_TARGET = Obj(
    {
        "url": Str(),
        "engine": Str(choices=ENGINES),
        "server_id": Str(),
        "secure": bool,
        "server_list": Str(),
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
                "gateway": Str(),
                "center": Either((Str(), _ENGINE_TARGET)),
                "internet": Either((ListOf(Either((Str(), _ENGINE_TARGET))), Str(), _ENGINE_TARGET)),
            }
        ),
        "dns": Obj(
            {
                "resolvers": ListOf(Str()),
                "names": ListOf(Str()),
            }
        ),
        "probes": _PROBE_TUNING,
        "schedule": _SCHEDULE,
        "load": LOAD_SCHEMA,  # the load probe (docs/load.md)
        # the HTTP proxy browsers here use (docs/site-file.md): wins over the environment and system settings
        "proxy": Obj({"url": Str(), "pac": Str(), "no_proxy": ListOf(Str()), "direct": bool}),
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
        return out


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
    )


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; errors name the file, line and column. Never raises anything but ConfigError."""
    p = Path(path)
    try:
        if not p.exists():
            raise FileNotFoundError(str(p))
        if p.is_dir():
            raise IsADirectoryError(str(p))
        if not p.is_file():
            raise _error("not a regular file", path=str(p))
        with p.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise _error(f"larger than {MAX_FILE_BYTES // 1024} KiB: not a hand-written YAML file", path=str(p))
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise _error("file not found", path=str(p)) from None
    except IsADirectoryError:
        raise _error("is a folder, not a file", path=str(p)) from None
    except UnicodeDecodeError as exc:
        raise _error(f"not UTF-8 text (byte {exc.start})", path=str(p)) from None
    except (OSError, ValueError) as exc:
        raise _error(f"cannot read: {exc}", path=str(p)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise _error(f"YAML syntax error: {_one_line(problem)}", path=str(p), key=where) from None
    except RecursionError:
        raise _error("YAML nested too deeply", path=str(p)) from None
    except (ValueError, TypeError, OverflowError) as exc:
        # PyYAML lets some constructor errors through: a date like 2024-13-45, an integer too long
        raise _error(f"YAML value cannot be read: {_one_line(str(exc))}", path=str(p)) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _error(message: str, *, path: Optional[str] = None, key: Optional[str] = None) -> ConfigError:
    """A ConfigError whose text stays on one line whatever names and paths the file held."""
    return ConfigError(printable(message), path=None if path is None else printable(path), key=None if key is None else printable(key))


def mix_spec(parts: Sequence[tuple[str, int]]) -> str:
    """``[("web-apps", 30), ("video-lesson", 5)]`` -> ``web-apps*30+video-lesson*5``."""
    return "+".join(f"{name}*{devices}" for name, devices in parts)


_SPEC_PART = re.compile(r"\s*([^*+]+?)\s*\*\s*([0-9]{1,5})\s*")


def parse_mix_spec(text: str) -> Optional[list[tuple[str, int]]]:
    """The parts of a mix spec, or None when ``text`` is a plain profile name or path."""
    if "*" not in text:
        return None
    out = []
    for piece in text.split("+"):
        m = _SPEC_PART.fullmatch(piece)
        if not m or int(m.group(2)) < 1:
            return None
        out.append((m.group(1), int(m.group(2))))
    return out


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
        _check_target(internet[i], path, f"targets.internet[{i}]")
    if targets.get("center"):
        targets = dict(targets, center=_engine_target(targets["center"], path, "targets.center", target_options, "center"))
        _check_target(targets["center"], path, "targets.center")
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
    )


def _classroom(raw: dict, i: int, site_profile: str, path: str | Path) -> Classroom:
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
            from giga_netcheck.measure.engines.librespeed import load_server_list

            try:
                servers = load_server_list(slist)
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


def _check_target(value: Any, path: str | Path, key: str) -> None:
    text = str(value)
    if "://" in text:
        try:
            parts = urlsplit(text)
            host = parts.hostname
        except ValueError as exc:
            raise _error(f"expected http(s)://host:port of a measurement server, got {text!r} ({exc})", path=str(path), key=key) from None
        if parts.scheme not in ("http", "https") or not host:
            raise _error(f"expected http(s)://host:port of a measurement server, got {text!r}", path=str(path), key=key)
        try:
            _ = parts.port
        except ValueError:
            raise _error(f"bad port in {text!r}", path=str(path), key=key) from None


# ------------------------------------------------------------------------------ profiles

_LIMIT = Obj({"warn": Num(0), "fail": Num(0), "source": Str()}, required=("fail", "source"))
_VALUE = Obj({"value": Num(0), "source": Str()}, required=("value", "source"))

SCHOOL_RULES = ("mext-2024", "table", "per_user", "fixed")
"""School-level bandwidth rules (``school.recommended_bandwidth.rule``); docs/profiles.md."""

USER_COUNTS = ("students", "students_and_staff")

_SCHOOL_RULE = Obj(
    {
        "rule": Str(choices=SCHOOL_RULES),
        "source": Str(),
        "points": ListOf(
            Obj({"students": Num(1, 1000000, integer=True), "down_mbps": Num(0)}, required=("students", "down_mbps")), nonempty=True
        ),
        "users": Str(choices=USER_COUNTS),
        "down_mbps_per_user": _VALUE,
        "minimum_mbps": _VALUE,
        "down_mbps": _VALUE,
        "up_mbps": _VALUE,
        "goodput_factor": Obj({"value": Num(0.5, 1), "source": Str()}, required=("value", "source")),
    },
    required=("rule",),
)

# rule -> (keys it may have, keys it must have) besides ``rule``
_RULE_KEYS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "mext-2024": (frozenset({"source", "points"}), ()),
    "table": (frozenset({"source", "points"}), ("source", "points")),
    "per_user": (frozenset({"source", "users", "down_mbps_per_user", "minimum_mbps", "goodput_factor"}), ("down_mbps_per_user",)),
    "fixed": (frozenset({"source", "down_mbps", "up_mbps", "goodput_factor"}), ("down_mbps",)),
}

PROFILE_SCHEMA = Obj(
    {
        "name": Str(),
        "description": Str(),
        "source": Obj({"title": Str(), "published": Str(), "url": Str(), "note": Str()}, required=("title", "published")),
        "extends": Str(),
        "classroom": Obj(
            {
                "down_mbps_per_device": _VALUE,
                "up_mbps_per_device": _VALUE,
                "active_share": Obj({"value": Num(0, 1), "source": Str()}, required=("value", "source")),
                "warn_margin": Obj({"value": Num(1, 10), "source": Str()}, required=("value", "source")),
                "devices": Obj({"value": _DEVICES, "source": Str()}, required=("value", "source")),
            }
        ),
        "mix": ListOf(
            Obj({"profile": _MIX_REF, "share": Num(0, 1), "source": Str()}, required=("profile", "share", "source")), nonempty=True
        ),
        "limits": Obj(
            {
                "rtt_ms": _LIMIT,
                "jitter_ms": _LIMIT,
                "loss_pct": _LIMIT,
                "gateway_loss_pct": _LIMIT,
                "loaded_rtt_increase_ms": _LIMIT,
                "dns_p50_ms": _LIMIT,
                "dns_timeout_pct": _LIMIT,
            }
        ),
        "school": Obj({"recommended_bandwidth": Either((Str(choices=("mext-2024", "none")), _SCHOOL_RULE))}),
    }
)

LIMIT_KEYS = ("rtt_ms", "jitter_ms", "loss_pct", "gateway_loss_pct", "loaded_rtt_increase_ms", "dns_p50_ms", "dns_timeout_pct")
FIGURE_KEYS = ("down_mbps_per_device", "up_mbps_per_device", "active_share")
MAX_DEPTH = 16
"""How deep ``extends:`` and ``mix:`` may nest; deeper is a mistake, not a design."""


@dataclass(frozen=True)
class Limit:
    """A quality limit: lower is better; at or above ``warn`` warns, at or above ``fail`` fails.

    Sources state limits as "RTT < 100 ms", so a value equal to the limit is already outside it.
    """

    fail: float
    source: str
    warn: Optional[float] = None

    def warn_or_fail(self) -> float:
        """The first level that is no longer fine."""
        return self.warn if self.warn is not None else self.fail


@dataclass(frozen=True)
class SchoolRule:
    """A school-level bandwidth rule as data; ``thresholds`` turns it into ``school.bandwidth.*`` checks.

    - ``mext-2024`` / ``table``: piecewise-linear over ``points`` (students -> Mbps);
    - ``per_user``: ``down_mbps_per_user`` x users (students, or students and staff), at least
      ``minimum_mbps``;
    - ``fixed``: ``down_mbps`` (and ``up_mbps``) whatever the school's size.

    ``goodput_factor`` turns a line rate (what a standard or contract states) into the TCP
    goodput a measurement can show: a 100 Mbit/s line carries about 94 Mbit/s of payload.
    """

    rule: str
    source: str = ""
    """The rule's citation; each number also has its own in ``sources``."""
    points: tuple[tuple[int, float], ...] = ()
    users: str = "students"
    down_mbps_per_user: Optional[float] = None
    minimum_mbps: Optional[float] = None
    down_mbps: Optional[float] = None
    up_mbps: Optional[float] = None
    goodput_factor: float = 1.0
    sources: dict[str, str] = field(default_factory=dict)
    """Citation per number key (``down_mbps_per_user`` ...)."""


@dataclass(frozen=True)
class MixPart:
    """One activity in a mix: a share of the classroom's devices (profile) or a device count (site)."""

    profile: Profile
    share: Optional[float] = None
    devices: Optional[int] = None
    source: str = ""


@dataclass(frozen=True)
class Profile:
    """What one classroom needs, the quality limits it is held to, and the school-level rule."""

    name: str
    description: str
    down_mbps_per_device: float
    up_mbps_per_device: float
    active_share: float
    warn_margin: float
    sources: dict[str, str]
    limits: dict[str, Limit]
    school_recommendation: str = "mext-2024"
    """``mext-2024``, ``none``, or the rule of ``school_rule``."""
    path: Optional[str] = None
    citation: str = ""
    """The document the profile reproduces and its date (the file's ``source:``)."""
    extends: tuple[str, ...] = ()
    """Files this one extends, nearest parent first."""
    mix: tuple[MixPart, ...] = ()
    """Parts of a mixed classroom; empty for a single activity. Figures above are then per-device averages."""
    school_rule: Optional[SchoolRule] = None
    """The school-level rule; None means ``school_recommendation`` decides (``mext-2024`` or none)."""
    default_devices: Optional[int] = None
    """Devices a classroom on this profile has when nobody says (``home-online-lesson``: 1)."""
    shadows: Optional[str] = None
    """A profile file of the same name that this one hides (a user profile over a shipped one)."""

    def need_down_mbps(self, devices: float) -> float:
        if self._counted():
            return sum(part.profile.need_down_mbps(part.devices or 0) for part in self.mix)
        return self.down_mbps_per_device * devices * self.active_share

    def need_up_mbps(self, devices: float) -> float:
        if self._counted():
            return sum(part.profile.need_up_mbps(part.devices or 0) for part in self.mix)
        return self.up_mbps_per_device * devices * self.active_share

    def _counted(self) -> bool:
        return any(part.devices is not None for part in self.mix)

    def leaves(self, devices: float) -> list[tuple[Profile, float]]:
        """The single-activity profiles behind this one, each with the devices it covers."""
        if not self.mix:
            return [(self, float(devices))]
        out: list[tuple[Profile, float]] = []
        for part in self.mix:
            n = float(part.devices) if part.devices is not None else (part.share or 0.0) * devices
            out += part.profile.leaves(n)
        return out

    def school_bandwidth_rule(self) -> Optional[SchoolRule]:
        """The school-level rule this profile holds a school to, or None."""
        if self.school_rule is not None:
            return self.school_rule
        if self.school_recommendation == "mext-2024":
            return mext_2024_rule()
        return None


def shipped_profiles_dir() -> Path:
    """profiles/ at the top of the repository (editable install) or inside the wheel."""
    repo = Path(__file__).resolve().parents[2] / "profiles"
    if repo.is_dir():
        return repo
    from importlib import resources

    return Path(str(resources.files("giga_netcheck.profiles")))


def profile_dirs(extra: Optional[str] = None, env: Optional[dict[str, str]] = None, cli: Optional[str] = None) -> list[Path]:
    """Where profiles are looked up, first match wins.

    ``--profiles-dir`` (``cli``), then the site file's ``profiles_dir`` (``extra``), then the
    folders in ``$GIGA_NETCHECK_PROFILES`` (separated like PATH), then the shipped profiles.
    A user profile with a shipped profile's name wins, and says so (``Profile.shadows``).
    """
    env = dict(os.environ if env is None else env)
    found = [Path(d) for d in (cli, extra) if d]
    found += [Path(d) for d in env.get(PROFILES_ENV, "").split(os.pathsep) if d]
    found.append(shipped_profiles_dir())
    dirs: list[Path] = []
    for d in found:
        if not any(_same(d, other) for other in dirs):
            dirs.append(d)
    return dirs


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, ValueError, RuntimeError):
        return a == b


def _is_path(ref: str) -> bool:
    return "/" in ref or os.sep in ref or bool(os.altsep and os.altsep in ref) or ref.endswith((".yaml", ".yml"))


def _candidates(name: str, d: Path) -> list[Path]:
    out = []
    for ext in (".yaml", ".yml"):
        p = d / f"{name}{ext}"
        try:
            if p.is_file():
                out.append(p)
        except (OSError, ValueError):
            pass
    return out


def find_profile(name: str, dirs: list[Path], skip: Sequence[Path] = ()) -> Path:
    """The file a profile name (or path) stands for; ``skip`` leaves out files already in use."""
    if _is_path(name):
        return Path(name).expanduser()
    skipped = {_resolved(p) for p in skip}
    for d in dirs:
        for p in _candidates(name, d):
            if _resolved(p) not in skipped:
                return p
    known = sorted(known_profile_names(dirs))
    hint = difflib.get_close_matches(name, known, n=1)
    tip = f" (did you mean '{hint[0]}'?)" if hint else f" (known: {', '.join(known)})"
    raise UnknownProfileError(f"unknown profile '{printable(name)}'{tip}", key="profile")


def _resolved(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, ValueError, RuntimeError):
        return p


def known_profile_names(dirs: list[Path]) -> set[str]:
    out: set[str] = set()
    for d in dirs:
        try:
            out |= {p.stem for p in d.glob("*.y*ml") if p.suffix in (".yaml", ".yml")}
        except OSError:
            pass
    return out


@dataclass(frozen=True)
class ProfileFile:
    """A profile file in one of the folders, and what it hides or what hides it."""

    name: str
    path: Path
    shipped: bool
    shadows: Optional[Path] = None
    """The next file of the same name further down the precedence (this one wins over it)."""
    shadowed_by: Optional[Path] = None
    """The file of the same name that wins over this one."""


def list_profile_files(dirs: list[Path]) -> list[ProfileFile]:
    """Every profile file in ``dirs``, by name, winners first."""
    shipped = shipped_profiles_dir()
    by_name: dict[str, list[Path]] = {}
    for d in dirs:
        try:
            files = sorted(p for p in d.glob("*.y*ml") if p.suffix in (".yaml", ".yml") and p.is_file())
        except OSError:
            continue
        for p in files:
            if p not in by_name.setdefault(p.stem, []):
                by_name[p.stem].append(p)
    out = []
    for name in sorted(by_name):
        paths = by_name[name]
        for i, p in enumerate(paths):
            out.append(
                ProfileFile(
                    name=name,
                    path=p,
                    shipped=_same(p.parent, shipped),
                    shadows=paths[i + 1] if i + 1 < len(paths) else None,
                    shadowed_by=paths[i - 1] if i > 0 else None,
                )
            )
    return out


def _shadowed(path: Path, dirs: list[Path]) -> Optional[Path]:
    """The first other file named like ``path`` in a folder after ``path``'s own (or in any, for a lone path)."""
    home = next((i for i, d in enumerate(dirs) if _same(d, path.parent)), None)
    for d in dirs[(home + 1 if home is not None else 0) :]:
        for p in _candidates(path.stem, d):
            if _resolved(p) != _resolved(path):
                return p
    return None


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _merge_profile(base: dict, over: dict) -> dict:
    """``extends:``: the child's keys over the parent's; a school rule of another kind replaces, never blends."""
    base = {k: v for k, v in base.items() if k not in ("name", "description", "source")}  # a child speaks for itself
    merged = _merge(base, {k: v for k, v in over.items() if k != "extends"})
    rule_over = (over.get("school") or {}).get("recommended_bandwidth")
    rule_base = (base.get("school") or {}).get("recommended_bandwidth")
    if isinstance(rule_over, dict) and (not isinstance(rule_base, dict) or rule_base.get("rule") != rule_over.get("rule")):
        merged["school"]["recommended_bandwidth"] = copy.deepcopy(rule_over)
    return merged


def _raw_profile(path: Path, dirs: list[Path], chain: tuple[Path, ...] = ()) -> tuple[dict, tuple[str, ...]]:
    """The data of the profile file at ``path`` with ``extends:`` resolved, and the parents' paths."""
    if len(chain) > MAX_DEPTH:
        raise _error(f"extends nests deeper than {MAX_DEPTH} profiles", path=str(path), key="extends")
    data = read_yaml(path)
    if data is None:
        data = {}
    validate(data, PROFILE_SCHEMA, path=str(path))
    _check_school_rule(data, path)
    me = _resolved(path)
    seen = chain + (me,)
    parent = data.get("extends")
    merged, parents = data, ()
    if parent is not None:
        ref = str(parent).strip()
        same_name = not _is_path(ref) and ref == path.stem
        try:
            ppath = _locate(ref, dirs, near=path.parent, skip=seen if same_name else ())
        except UnknownProfileError as exc:
            if same_name:
                raise _error(
                    f"profile extends itself ('{ref}'): no folder after this one holds another '{ref}' "
                    "to extend (a user profile may extend the shipped profile it shadows)",
                    path=str(path),
                    key="extends",
                ) from None
            raise _error(str(exc).split(": ", 1)[-1], path=str(path), key="extends") from None
        if not ppath.is_file():
            raise _error(f"no profile file {ppath}", path=str(path), key="extends")
        if _resolved(ppath) in seen:
            names = " -> ".join(p.stem for p in seen + (_resolved(ppath),))
            raise _error(f"profile extends itself through {names}", path=str(path), key="extends")
        base, grand = _raw_profile(ppath, dirs, seen)
        merged, parents = _merge_profile(base, data), (str(ppath),) + grand
    if merged.get("mix"):
        own = data.get("classroom") or {}
        for k in FIGURE_KEYS:
            if k in own:
                whose = "" if data.get("mix") else f" (it inherits mix: through extends: {data.get('extends')})"
                raise _error(
                    f"a profile with mix: takes its need from the mix{whose}; remove this key or the mix",
                    path=str(path),
                    key=f"classroom.{k}",
                )
    return merged, parents


def _locate(ref: str, dirs: list[Path], *, near: Optional[Path], skip: Sequence[Path] = ()) -> Path:
    """A profile reference inside a file: a path (relative to that file) or a name in ``dirs``."""
    if _is_path(ref):
        p = Path(ref).expanduser()
        return p if p.is_absolute() or near is None else near / p
    return find_profile(ref, dirs, skip)


def _check_school_rule(data: dict, path: Path) -> None:
    """Per-rule keys: what each rule needs, and keys that belong to another rule."""
    rule = (data.get("school") or {}).get("recommended_bandwidth")
    if not isinstance(rule, dict):
        return
    key = "school.recommended_bandwidth"
    kind = str(rule["rule"])
    allowed, required = _RULE_KEYS[kind]
    for k in rule:
        if k != "rule" and k not in allowed:
            owner = next((r for r, (keys, _) in _RULE_KEYS.items() if k in keys), None)
            why = f"belongs to rule {owner}" if owner else "is not a rule key"
            raise _error(f"'{k}' {why}, not to rule {kind} (which takes: {', '.join(sorted(allowed))})", path=str(path), key=f"{key}.{k}")
    for k in required:
        if k not in rule:
            raise _error(f"missing required key '{k}' for rule {kind}", path=str(path), key=f"{key}.{k}")
    if "points" in rule:
        if "source" not in rule:
            raise _error("missing required key 'source' (a table of points needs its citation)", path=str(path), key=f"{key}.source")
        pts = rule["points"]
        if len(pts) < 2:
            raise _error("expected at least two points to interpolate between", path=str(path), key=f"{key}.points")
        for i in range(1, len(pts)):
            if pts[i]["students"] <= pts[i - 1]["students"]:
                raise _error(
                    f"expected more students than the previous point ({pts[i - 1]['students']:g}), got {pts[i]['students']!r}",
                    path=str(path),
                    key=f"{key}.points[{i}].students",
                )


def _school_rule(raw: dict) -> SchoolRule:
    num = {k: float(raw[k]["value"]) for k in ("down_mbps_per_user", "minimum_mbps", "down_mbps", "up_mbps", "goodput_factor") if k in raw}
    return SchoolRule(
        rule=str(raw["rule"]),
        source=str(raw.get("source", "")),
        points=tuple((int(p["students"]), float(p["down_mbps"])) for p in raw.get("points") or ()),
        users=str(raw.get("users", "students")),
        sources={k: str(raw[k]["source"]) for k in num},
        **num,
    )


@functools.lru_cache(maxsize=1)
def mext_2024_rule() -> SchoolRule:
    """The MEXT 2024 recommended-bandwidth table, read from the shipped ``mext-2024`` profile.

    ``recommended_bandwidth: mext-2024`` in any profile means this table; the numbers live in
    profiles/mext-2024.yaml (data, with their citation) and the interpolation in thresholds.
    """
    path = shipped_profiles_dir() / "mext-2024.yaml"
    data = read_yaml(path) or {}
    validate(data, PROFILE_SCHEMA, path=str(path))
    _check_school_rule(data, path)
    raw = (data.get("school") or {}).get("recommended_bandwidth")
    if not isinstance(raw, dict) or raw.get("rule") != "mext-2024" or not raw.get("points"):
        raise _error(
            "the shipped mext-2024 profile must carry the MEXT table (rule: mext-2024 with points)",
            path=str(path),
            key="school.recommended_bandwidth",
        )
    return _school_rule(raw)


def strictest(candidates: Sequence[tuple[str, Limit]], own: str = "") -> Limit:
    """The strictest of several limits for one measurement: the lowest fail and the lowest warn below it.

    Each part of the source names the profile it came from (unless it is ``own``).
    """

    def cite(origin: str, text: str) -> str:
        if origin == own:
            return text
        tied = list(dict.fromkeys(o for o, lim in candidates if lim == by_origin[origin]))  # every part with this very limit
        return f"{', '.join(tied)}: {text}"

    by_origin = {}
    for o, lim in candidates:
        by_origin.setdefault(o, lim)
    fail_origin, fail = min(candidates, key=lambda c: c[1].fail)
    warns = [(o, lim) for o, lim in candidates if lim.warn is not None and lim.warn < fail.fail]
    if fail.warn is not None and all(fail.warn <= lim.warn for _, lim in warns):
        return Limit(fail.fail, cite(fail_origin, fail.source), fail.warn)
    if not warns:
        return Limit(fail.fail, cite(fail_origin, fail.source), None)
    warn_origin, warn = min(warns, key=lambda c: c[1].warn)  # type: ignore[arg-type, return-value]
    source = f"fail: {cite(fail_origin, fail.source)}; warn: {cite(warn_origin, warn.source)}"
    return Limit(fail.fail, source, warn.warn)


def load_profile(name: str, dirs: Optional[list[Path]] = None, *, _stack: tuple[Path, ...] = ()) -> Profile:
    """Load a profile by name, path or mix spec, resolving ``extends:`` and ``mix:``; every key must end up set."""
    dirs = list(dirs) if dirs is not None else profile_dirs()
    spec = parse_mix_spec(name)
    if spec is not None:
        return compose(spec, dirs, name=name)
    path = find_profile(name, dirs)
    return _load_path(path, dirs, lookup=name, stack=_stack)


def _load_path(path: Path, dirs: list[Path], *, lookup: str, stack: tuple[Path, ...]) -> Profile:
    if not any(_same(d, path.parent) for d in dirs):
        dirs = [path.parent] + dirs  # a profile loaded by path finds its neighbours first
    if len(stack) > MAX_DEPTH:
        raise _error(f"mix nests deeper than {MAX_DEPTH} profiles", path=str(path), key="mix")
    data, parents = _raw_profile(path, dirs)
    room = data.get("classroom") or {}
    sources = {k: str(v["source"]) for k, v in room.items()}
    own_limits: dict[str, Limit] = {}
    for key, lim in (data.get("limits") or {}).items():
        if lim.get("warn") is not None and lim["warn"] > lim["fail"]:
            raise _error(f"warn ({lim['warn']}) must not exceed fail ({lim['fail']})", path=str(path), key=f"limits.{key}")
        own_limits[key] = Limit(float(lim["fail"]), str(lim["source"]), None if lim.get("warn") is None else float(lim["warn"]))
    display = str(data.get("name") or (path.stem if _is_path(lookup) else lookup))
    margin = room.get("warn_margin")

    parts: list[MixPart] = []
    if data.get("mix"):
        me = _resolved(path)
        for i, entry in enumerate(data["mix"]):
            ref = str(entry["profile"]).strip()
            key = f"mix[{i}].profile"
            try:
                ppath = _locate(ref, dirs, near=path.parent)
            except UnknownProfileError as exc:
                raise _error(str(exc).split(": ", 1)[-1], path=str(path), key=key) from None
            if _resolved(ppath) in stack + (me,):
                raise _error(f"mix includes this profile again through '{ref}'", path=str(path), key=key)
            if not ppath.is_file():
                raise _error(f"no profile file {ppath}", path=str(path), key=key)
            part = _load_path(ppath, dirs, lookup=ref, stack=stack + (me,))
            parts.append(MixPart(part, share=float(entry["share"]), source=str(entry["source"])))
        total = sum(p.share or 0.0 for p in parts)
        if total > 1 + 1e-9:
            raise _error(f"shares add up to {total:g}; they are shares of the classroom's devices, so at most 1", path=str(path), key="mix")
        down = sum((p.share or 0.0) * p.profile.need_down_mbps(1.0) for p in parts)
        up = sum((p.share or 0.0) * p.profile.need_up_mbps(1.0) for p in parts)
        share = 1.0
        mix_text = " + ".join(f"{p.share:g} of devices on {p.profile.name}" for p in parts)
        sources = {
            "down_mbps_per_device": " + ".join(
                f"{p.share:g} x {p.profile.name} ({p.profile.sources.get('down_mbps_per_device', '')})" for p in parts
            ),
            "up_mbps_per_device": " + ".join(
                f"{p.share:g} x {p.profile.name} ({p.profile.sources.get('up_mbps_per_device', '')})" for p in parts
            ),
            "active_share": f"mix: {mix_text}; each part at its own share active at once",
            "mix": "; ".join(f"{p.profile.name} {p.share:g}: {p.source}" for p in parts),
            **({"warn_margin": sources["warn_margin"]} if "warn_margin" in sources else {}),
        }
        limits = {
            k: strictest(
                ([(display, own_limits[k])] if k in own_limits else []) + [(p.profile.name, p.profile.limits[k]) for p in parts],
                own=display,
            )
            for k in LIMIT_KEYS
        }
        warn_margin = float(margin["value"]) if margin else max(p.profile.warn_margin for p in parts)
    else:
        for key in FIGURE_KEYS:
            if key not in room:
                raise _error("missing (set it here or in the profile this one extends)", path=str(path), key=f"classroom.{key}")
        for key in LIMIT_KEYS:
            if key not in own_limits:
                raise _error("missing (set it here or in the profile this one extends)", path=str(path), key=f"limits.{key}")
        down, up = float(room["down_mbps_per_device"]["value"]), float(room["up_mbps_per_device"]["value"])
        share = float(room["active_share"]["value"])
        limits = {k: own_limits[k] for k in LIMIT_KEYS}
        warn_margin = float(margin["value"]) if margin else 1.0

    rule = (data.get("school") or {}).get("recommended_bandwidth", "mext-2024")
    if isinstance(rule, dict) and rule["rule"] == "mext-2024" and not rule.get("points"):
        rule = "mext-2024"  # the mapping form without its own table: the shipped table
    cite = data.get("source") or {}
    citation = f"{cite['title']} ({cite['published']})" if cite else ""
    return Profile(
        name=display,
        description=" ".join(str(data.get("description") or "").split()),
        down_mbps_per_device=down,
        up_mbps_per_device=up,
        active_share=share,
        warn_margin=warn_margin,
        sources=sources,
        limits=limits,
        school_recommendation=str(rule["rule"]) if isinstance(rule, dict) else str(rule),
        path=str(path),
        citation=citation,
        extends=parents,
        mix=tuple(parts),
        school_rule=_school_rule(rule) if isinstance(rule, dict) else None,
        default_devices=int(room["devices"]["value"]) if "devices" in room else None,
        shadows=str(s) if (s := _shadowed(path, dirs)) else None,
    )


def compose(parts: Sequence[tuple[str, int]], dirs: list[Path], name: Optional[str] = None) -> Profile:
    """A classroom that combines activities by device count (a site classroom's ``mix:``).

    Needed bandwidth is the sum over the parts; each quality limit is the strictest of the
    parts'; the school-level rule is the first part's.
    """
    name = name or mix_spec(parts)
    loaded: list[MixPart] = []
    for i, (ref, n) in enumerate(parts):
        loaded.append(MixPart(load_profile(ref, dirs), devices=int(n), source=f"mix part {i + 1}"))
    devices = sum(p.devices or 0 for p in loaded)
    down = sum(p.profile.need_down_mbps(p.devices or 0) for p in loaded)
    up = sum(p.profile.need_up_mbps(p.devices or 0) for p in loaded)
    first = loaded[0].profile
    citations = list(dict.fromkeys(p.profile.citation for p in loaded if p.profile.citation))
    return Profile(
        name=name,
        description="mixed classroom: " + " + ".join(f"{p.devices} devices on {p.profile.name}" for p in loaded),
        down_mbps_per_device=down / devices if devices else 0.0,
        up_mbps_per_device=up / devices if devices else 0.0,
        active_share=1.0,
        warn_margin=max(p.profile.warn_margin for p in loaded),
        sources={
            "down_mbps_per_device": " + ".join(f"{p.profile.name} ({p.profile.sources.get('down_mbps_per_device', '')})" for p in loaded),
            "up_mbps_per_device": " + ".join(f"{p.profile.name} ({p.profile.sources.get('up_mbps_per_device', '')})" for p in loaded),
            "active_share": "each part at its own share active at once",
        },
        limits={k: strictest([(p.profile.name, p.profile.limits[k]) for p in loaded]) for k in LIMIT_KEYS},
        school_recommendation=first.school_recommendation,
        path=None,
        citation="; ".join(citations),
        mix=tuple(loaded),
        school_rule=first.school_rule,
    )


@dataclass(frozen=True)
class Checked:
    """One file ``profiles validate`` looked at: the profile, or the error (one line)."""

    path: Path
    profile: Optional[Profile] = None
    error: Optional[ConfigError] = None


def validate_profiles(target: str | Path, dirs: Optional[list[Path]] = None) -> list[Checked]:
    """Load every profile file at ``target`` (a file, or the ``*.yaml``/``*.yml`` in a folder).

    A folder's own files are found first by name (``extends: sibling``), then ``dirs``.
    Raises ConfigError only when ``target`` itself is missing or holds no profile file.
    """
    t = Path(target)
    dirs = list(dirs) if dirs is not None else profile_dirs()
    if t.is_dir():
        files = sorted(p for p in t.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise _error("no profile files (*.yaml, *.yml) in this folder", path=str(t))
        dirs = [t] + [d for d in dirs if not _same(d, t)]
    elif t.is_file():
        files = [t]
    else:
        raise _error("file or folder not found", path=str(t))
    out = []
    for f in files:
        try:
            out.append(Checked(f, profile=load_profile(str(f), dirs)))
        except ConfigError as exc:
            out.append(Checked(f, error=exc))
    return out
