"""Site and profile files: load, merge (``extends:``), validate with key paths.

A *site file* says what school this is, its classrooms and where to measure; a *profile* says
what a classroom needs (bandwidth per device, share active at once) and the quality limits.
Both are YAML; errors name the file and the key path. Nothing here touches the network.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

import yaml

from .errors import ConfigError, UnknownProfileError
from .models import Classroom, School, Target
from .schema import Either, ListOf, Num, Obj, Str, validate

PROFILES_ENV = "GIGA_NETCHECK_PROFILES"
SERVERS_ENV = "GIGA_NETCHECK_SERVERS"

# --------------------------------------------------------------------------------- site

_PROBE_TUNING = Obj({
    "bandwidth": Obj({
        "streams": Num(1, 64, integer=True),
        "duration_s": Num(1, 120),
        "warmup_s": Num(0, 30),
        "enabled": bool,
    }),
    "latency": Obj({
        "count": Num(1, 1000, integer=True),
        "interval_s": Num(0.01, 10),
        "timeout_s": Num(0.1, 10),
        "method": Str(choices=("auto", "icmp", "icmp-dgram", "udp-echo", "tcp-connect")),
    }),
    "dns": Obj({
        "queries": Num(1, 100, integer=True),
        "timeout_s": Num(0.1, 10),
    }),
})

SITE_SCHEMA = Obj({
    "school": Obj({"id": Str(), "name": Str(), "students": Num(1, 100000, integer=True)}),
    "profile": Str(),
    "profiles_dir": Str(),
    "classrooms": ListOf(Obj({
        "name": Str(),
        "devices": Num(1, 10000, integer=True),
        "profile": Str(),
    }, required=("name", "devices"))),
    "targets": Obj({
        "gateway": Str(),
        "center": Str(),
        "internet": Either((ListOf(Str()), Str())),
    }),
    "dns": Obj({
        "resolvers": ListOf(Str()),
        "names": ListOf(Str()),
    }),
    "probes": _PROBE_TUNING,
})


@dataclass(frozen=True)
class ProbeSettings:
    """Probe tuning; ``quick`` shortens every probe."""

    bandwidth_enabled: bool = True
    streams: int = 4
    duration_s: float = 7.0
    warmup_s: float = 1.5
    latency_count: int = 20
    latency_interval_s: float = 0.1
    latency_timeout_s: float = 1.0
    latency_method: str = "auto"
    dns_queries: int = 5
    dns_timeout_s: float = 2.0

    def quick(self) -> "ProbeSettings":
        return ProbeSettings(
            bandwidth_enabled=self.bandwidth_enabled,
            streams=self.streams,
            duration_s=min(self.duration_s, 2.5),
            warmup_s=min(self.warmup_s, 0.8),
            latency_count=min(self.latency_count, 10),
            latency_interval_s=min(self.latency_interval_s, 0.05),
            latency_timeout_s=min(self.latency_timeout_s, 1.0),
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

    def targets(self, detected_gateway: Optional[str]) -> list[Target]:
        """The path's measurement points, nearest first."""
        out: list[Target] = []
        gw = detected_gateway if self.gateway in (None, "auto") else self.gateway
        if gw:
            out.append(Target("gateway", "gateway", gw))
        if self.center:
            out.append(_target("center", "center", self.center))
        for i, item in enumerate(self.internet, 1):
            out.append(_target(f"internet-{i}" if len(self.internet) > 1 else "internet", "internet", item))
        return out


def _target(name: str, role: str, spec: str) -> Target:
    """A URL names a measurement server; a bare host is probed for latency only."""
    if "://" in spec:
        parts = urlsplit(spec)
        return Target(name, role, parts.hostname or spec, spec.rstrip("/"))
    return Target(name, role, spec)


DEFAULT_NAMES = ("www.mext.go.jp", "classroom.google.com")


def default_site(env: Optional[dict[str, str]] = None) -> Site:
    """The embedded default: OS gateway and resolvers, default profile, servers from the env."""
    env = dict(os.environ if env is None else env)
    servers = tuple(s for s in env.get(SERVERS_ENV, "").replace(",", " ").split() if s)
    return Site(
        school=School(),
        profile="default",
        classrooms=(Classroom("classroom", 35, "default"),),
        gateway="auto",
        center=None,
        internet=servers,
        resolvers=("system",),
        names=DEFAULT_NAMES,
    )


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; errors name the file, line and column."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", path=str(p)) from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a file", path=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(p)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"YAML syntax error: {problem}", path=str(p), key=where) from None


def load_site(path: str | Path) -> Site:
    """Read and validate a site file."""
    data = read_yaml(path)
    if data is None:
        data = {}
    validate(data, SITE_SCHEMA, path=str(path))
    school = data.get("school") or {}
    profile = str(data.get("profile") or "default")
    rooms = tuple(
        Classroom(str(r["name"]), int(r["devices"]), str(r.get("profile") or profile))
        for r in data.get("classrooms") or []
    ) or (Classroom("classroom", 35, profile),)
    targets = data.get("targets") or {}
    internet = targets.get("internet") or []
    if isinstance(internet, str):
        internet = [internet]
    for i, item in enumerate(internet):
        _check_target(item, path, f"targets.internet[{i}]")
    if targets.get("center"):
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
        raise ConfigError("must be shorter than probes.bandwidth.duration_s", path=str(path), key="probes.bandwidth.warmup_s")
    profiles_dir = data.get("profiles_dir")
    if profiles_dir and not os.path.isabs(profiles_dir):
        profiles_dir = str(Path(path).resolve().parent / profiles_dir)
    return Site(
        school=School(str(school.get("id", "unknown")), str(school.get("name", "unnamed site")),
                      int(school["students"]) if school.get("students") is not None else None),
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
    )


def _check_target(value: Any, path: str | Path, key: str) -> None:
    text = str(value)
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"expected http(s)://host:port of a measurement server, got {text!r}", path=str(path), key=key)
        try:
            parts.port
        except ValueError:
            raise ConfigError(f"bad port in {text!r}", path=str(path), key=key) from None


# ------------------------------------------------------------------------------ profiles

_LIMIT = Obj({"warn": Num(0), "fail": Num(0), "source": Str()}, required=("fail", "source"))
_VALUE = Obj({"value": Num(0), "source": Str()}, required=("value", "source"))

PROFILE_SCHEMA = Obj({
    "name": Str(),
    "description": Str(),
    "extends": Str(),
    "classroom": Obj({
        "down_mbps_per_device": _VALUE,
        "up_mbps_per_device": _VALUE,
        "active_share": Obj({"value": Num(0, 1), "source": Str()}, required=("value", "source")),
        "warn_margin": Obj({"value": Num(1, 10), "source": Str()}, required=("value", "source")),
    }),
    "limits": Obj({
        "rtt_ms": _LIMIT,
        "jitter_ms": _LIMIT,
        "loss_pct": _LIMIT,
        "gateway_loss_pct": _LIMIT,
        "loaded_rtt_increase_ms": _LIMIT,
        "dns_p50_ms": _LIMIT,
        "dns_timeout_pct": _LIMIT,
    }),
    "school": Obj({"recommended_bandwidth": Str(choices=("mext-2024", "none"))}),
})

LIMIT_KEYS = ("rtt_ms", "jitter_ms", "loss_pct", "gateway_loss_pct", "loaded_rtt_increase_ms", "dns_p50_ms", "dns_timeout_pct")


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
class Profile:
    """What one classroom needs, and the quality limits it is held to."""

    name: str
    description: str
    down_mbps_per_device: float
    up_mbps_per_device: float
    active_share: float
    warn_margin: float
    sources: dict[str, str]
    limits: dict[str, Limit]
    school_recommendation: str = "mext-2024"
    path: Optional[str] = None

    def need_down_mbps(self, devices: int) -> float:
        return self.down_mbps_per_device * devices * self.active_share

    def need_up_mbps(self, devices: int) -> float:
        return self.up_mbps_per_device * devices * self.active_share


def shipped_profiles_dir() -> Path:
    """profiles/ at the top of the repository (editable install) or inside the wheel."""
    repo = Path(__file__).resolve().parent.parent / "profiles"
    if repo.is_dir():
        return repo
    from importlib import resources

    return Path(str(resources.files("giga_netcheck.profiles")))


def profile_dirs(extra: Optional[str] = None, env: Optional[dict[str, str]] = None) -> list[Path]:
    """Where profiles are looked up, first match wins: the site's folder, $GIGA_NETCHECK_PROFILES, shipped."""
    env = dict(os.environ if env is None else env)
    dirs = [Path(d) for d in (extra, env.get(PROFILES_ENV)) if d]
    dirs.append(shipped_profiles_dir())
    return dirs


def find_profile(name: str, dirs: list[Path]) -> Path:
    if os.sep in name or name.endswith((".yaml", ".yml")):
        return Path(name)
    for d in dirs:
        for ext in (".yaml", ".yml"):
            p = d / f"{name}{ext}"
            if p.is_file():
                return p
    known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.y*ml")})
    import difflib

    hint = difflib.get_close_matches(name, known, n=1)
    tip = f" (did you mean '{hint[0]}'?)" if hint else f" (known: {', '.join(known)})"
    raise UnknownProfileError(f"unknown profile '{name}'{tip}", key="profile")


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _raw_profile(name: str, dirs: list[Path], chain: tuple[str, ...] = ()) -> tuple[dict, Path]:
    path = find_profile(name, dirs)
    data = read_yaml(path)
    if data is None:
        data = {}
    validate(data, PROFILE_SCHEMA, path=str(path))
    parent = data.get("extends")
    if parent:
        if parent in chain or parent == name:
            raise ConfigError(f"profile extends itself through {' -> '.join(chain + (name, parent))}", path=str(path), key="extends")
        try:
            base, _ = _raw_profile(str(parent), dirs, chain + (name,))
            base.pop("name", None)  # a child is named after itself, never after its parent
        except UnknownProfileError as exc:
            raise ConfigError(str(exc).split(": ", 1)[-1], path=str(path), key="extends") from None
        data = _merge(base, {k: v for k, v in data.items() if k != "extends"})
    return data, path


def load_profile(name: str, dirs: Optional[list[Path]] = None) -> Profile:
    """Load a profile by name (or path), resolving ``extends:``; every key must end up set."""
    dirs = dirs if dirs is not None else profile_dirs()
    data, path = _raw_profile(name, dirs)
    room = data.get("classroom") or {}
    limits_raw = data.get("limits") or {}
    for key in ("down_mbps_per_device", "up_mbps_per_device", "active_share"):
        if key not in room:
            raise ConfigError("missing (set it here or in the profile this one extends)", path=str(path), key=f"classroom.{key}")
    limits = {}
    for key in LIMIT_KEYS:
        if key not in limits_raw:
            raise ConfigError("missing (set it here or in the profile this one extends)", path=str(path), key=f"limits.{key}")
        lim = limits_raw[key]
        if lim.get("warn") is not None and lim["warn"] > lim["fail"]:
            raise ConfigError(f"warn ({lim['warn']}) must not exceed fail ({lim['fail']})", path=str(path), key=f"limits.{key}")
        limits[key] = Limit(float(lim["fail"]), str(lim["source"]), None if lim.get("warn") is None else float(lim["warn"]))
    margin = room.get("warn_margin", {"value": 1.0, "source": "none"})
    return Profile(
        name=str(data.get("name") or name),
        description=str(data.get("description") or ""),
        down_mbps_per_device=float(room["down_mbps_per_device"]["value"]),
        up_mbps_per_device=float(room["up_mbps_per_device"]["value"]),
        active_share=float(room["active_share"]["value"]),
        warn_margin=float(margin["value"]),
        sources={k: str(v["source"]) for k, v in room.items()},
        limits=limits,
        school_recommendation=str((data.get("school") or {}).get("recommended_bandwidth", "mext-2024")),
        path=str(path),
    )
