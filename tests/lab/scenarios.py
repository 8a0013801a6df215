"""The scenario catalogue: ``scenarios.yaml`` loaded into frozen dataclasses.

Every scenario is a delta over ``healthy``: a scenario names only what differs, and the loader
deep-merges it onto ``healthy``. A link's ``both:`` block applies to its ``up`` and ``down``
directions alike; ``up:``/``down:`` then override per direction, and ``null`` removes a
setting (``rate_mbit: null`` means uncapped). Unknown keys are errors that name their key path,
so a typo cannot silently produce a healthy lab.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

import yaml

from .topology import HOSTS, LINKS

__all__ = [
    "Direction",
    "LinkSpec",
    "HostSpec",
    "Resolver",
    "Scenario",
    "ScenarioError",
    "load_scenarios",
    "get_scenario",
    "CATALOGUE",
    "NOT_IN_LAB",
    "BASE",
]

CATALOGUE = Path(__file__).with_name("scenarios.yaml")
BASE = "healthy"

NOT_IN_LAB: dict[str, str] = {
    "peak-congestion": "needs history over lesson hours: tested with generated run histories",
    "measuring-device": "the device itself is the limit: tested with recorded host info and synthetic results",
}
"""Causes of the vocabulary (domain.md section 5) the lab does not produce, and how they are tested."""


class ScenarioError(ValueError):
    """A scenario file or entry is malformed; the message names the key path."""


@dataclass(frozen=True)
class Direction:
    """Impairments of one direction of a link, applied where that direction leaves its sender."""

    rate_mbit: Optional[float] = None
    """tc tbf rate; None is uncapped. Counts IP bytes on TUN links, IP + 14 on veth links."""
    burst_kb: Optional[float] = None
    """tbf bucket size; None picks max(32 KiB, 1 ms at the rate)."""
    queue_ms: Optional[float] = None
    """Queue in front of the shaper as time at the rate (tbf ``latency``); deep -> bufferbloat."""
    queue_kb: Optional[float] = None
    """Queue as bytes (tbf ``limit``); wins over ``queue_ms``."""
    delay_ms: float = 0.0
    """One-way base delay added by the TUN forwarder."""
    jitter_ms: float = 0.0
    """Uniform +- jitter around ``delay_ms`` (order kept: no reordering)."""
    loss_pct: float = 0.0
    """Random loss in percent (iptables statistic), per packet."""
    flow_rate_mbit: Optional[float] = None
    """Per-flow cap (a per-flow shaper: HTB class per flow hash); None is none."""
    ipv4_rate_mbit: Optional[float] = None
    """Cap on IPv4 alone (HTB class picked by a ``protocol ip`` filter), IPv6 keeps ``rate_mbit``:
    PPPoE congestion, where IPv4 crosses a congested terminator and IPv6 (IPoE) does not."""

    @property
    def shaped(self) -> bool:
        """True when this direction needs a qdisc."""
        return self.rate_mbit is not None or self.flow_rate_mbit is not None or self.ipv4_rate_mbit is not None

    @property
    def needs_forwarder(self) -> bool:
        """Delay and jitter need the TUN forwarder; so does loss (see :attr:`LinkSpec.kind`)."""
        return self.delay_ms > 0 or self.jitter_ms > 0 or self.loss_pct > 0


@dataclass(frozen=True)
class LinkSpec:
    """One link's settings: both directions, whether it is up, and its kind."""

    up: Direction = field(default_factory=Direction)
    down: Direction = field(default_factory=Direction)
    state: str = "up"
    """``down`` cuts the link (no-connectivity): its upper end is set down, packets vanish."""
    kind: str = "auto"
    """``veth``, ``tun`` or ``auto``: a TUN pair with the forwarder when delay, jitter or loss
    is set, else a veth pair. Loss needs TUN because a veth carries TSO super-packets from a
    local sender, and dropping one drops ~40 segments at once, not one packet."""

    @property
    def uses_tun(self) -> bool:
        """Whether this link is a TUN pair joined by the forwarder."""
        if self.kind == "auto":
            return self.up.needs_forwarder or self.down.needs_forwarder
        return self.kind == "tun"

    def direction(self, name: str) -> Direction:
        """``up`` or ``down``."""
        if name not in ("up", "down"):
            raise ValueError(f"direction must be 'up' or 'down', got {name!r}")
        return self.up if name == "up" else self.down


@dataclass(frozen=True)
class HostSpec:
    """Per-host settings of a forwarding host (gateway, center)."""

    session_limit: Optional[int] = None
    """Concurrent TCP connections forwarded before new ones are reset (iptables connlimit)."""
    proxy_delay_ms: Optional[float] = None
    """Run an HTTP forward proxy (tests/lab/proxy.py) on port 3128 that waits this long before
    forwarding each request; the client's site file then names it (``proxy: {url: ...}``)."""


@dataclass(frozen=True)
class Resolver:
    """The DNS resolver a host runs (tests/lab/dnsserver.py)."""

    delay_ms: float = 0.0
    miss_delay_ms: float = 0.0
    timeout_rate: float = 0.0
    servfail_rate: float = 0.0


@dataclass(frozen=True)
class Scenario:
    """A named lab configuration and the cause it should make giga-netcheck name."""

    name: str
    cause: Optional[str]
    """Cause id from the vocabulary (domain.md section 5); None for ``healthy``."""
    segment: Optional[str]
    """Segment the cause is expected in: device, lan, gateway, uplink, center, internet, dns."""
    description: str
    links: dict[str, LinkSpec]
    hosts: dict[str, HostSpec]
    dns: dict[str, Resolver]
    site: dict[str, Any]
    """Overrides of the client's site file (e.g. ``students``)."""

    def link(self, name: str) -> LinkSpec:
        """Settings of the link called ``name``."""
        return self.links[name]

    def direction(self, link_name: str, direction: str) -> Direction:
        """Settings of one direction of one link."""
        return self.links[link_name].direction(direction)

    def path_links(self, host: str) -> list[str]:
        """Names of the links between the client and ``host``, client side first."""
        return [lk.name for lk in LINKS[: HOSTS.index(host)]]

    def base_rtt_ms(self, host: str) -> float:
        """The RTT from the client to ``host`` the forwarders add (delays both ways, no load)."""
        return sum(self.links[n].up.delay_ms + self.links[n].down.delay_ms for n in self.path_links(host))


_DIRECTION_KEYS = {f.name for f in fields(Direction)}
_LINK_KEYS = {"both", "up", "down", "state", "kind"}
_TOP_KEYS = {"cause", "segment", "description", "links", "hosts", "dns", "site"}
_SITE_KEYS = {"students", "name", "id", "devices", "hostnames"}


def _check_keys(data: Any, allowed: set[str], path: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a mapping, got {type(data).__name__}")
    for key in data:
        if key not in allowed:
            raise ScenarioError(f"{path}.{key}: unknown key (known: {', '.join(sorted(allowed))})")
    return data


def _normalise_link(raw: Any, path: str) -> dict[str, Any]:
    """``both`` folded into ``up`` and ``down``; keys checked."""
    raw = _check_keys(raw, _LINK_KEYS, path)
    both = _check_keys(raw.get("both"), _DIRECTION_KEYS, f"{path}.both")
    out: dict[str, Any] = {k: v for k, v in raw.items() if k in ("state", "kind")}
    for name in ("up", "down"):
        own = _check_keys(raw.get(name), _DIRECTION_KEYS, f"{path}.{name}")
        out[name] = {**both, **own}
    return out


def _merge(base: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in delta.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _number(value: Any, path: str, *, optional: bool, lo: float = 0.0, hi: Optional[float] = None) -> Any:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{path}: expected a number, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise ScenarioError(f"{path}: {value} is outside {lo}..{hi if hi is not None else 'inf'}")
    return value


def _direction(raw: dict[str, Any], path: str) -> Direction:
    optional = {"rate_mbit", "burst_kb", "queue_ms", "queue_kb", "flow_rate_mbit", "ipv4_rate_mbit"}
    values = {}
    for key, value in raw.items():
        hi = 100.0 if key == "loss_pct" else None
        value = _number(value, f"{path}.{key}", optional=key in optional, hi=hi)
        if key in ("rate_mbit", "flow_rate_mbit", "ipv4_rate_mbit") and value is not None and value <= 0:
            raise ScenarioError(f"{path}.{key}: must be > 0 (use null for uncapped)")
        values[key] = value
    return Direction(**values)


def _build(name: str, raw: dict[str, Any], path: str) -> Scenario:
    links = {}
    for lk in LINKS:
        spec = raw["links"].get(lk.name, {})
        lpath = f"{path}.links.{lk.name}"
        state = spec.get("state", "up")
        kind = spec.get("kind", "auto")
        if state not in ("up", "down"):
            raise ScenarioError(f"{lpath}.state: expected up or down, got {state!r}")
        if kind not in ("auto", "veth", "tun"):
            raise ScenarioError(f"{lpath}.kind: expected auto, veth or tun, got {kind!r}")
        up = _direction(spec.get("up", {}), f"{lpath}.up")
        down = _direction(spec.get("down", {}), f"{lpath}.down")
        link_spec = LinkSpec(up=up, down=down, state=state, kind=kind)
        if kind == "veth" and (up.needs_forwarder or down.needs_forwarder):
            raise ScenarioError(f"{lpath}.kind: veth cannot add delay, jitter or loss; use tun or auto")
        links[lk.name] = link_spec
    hosts = {}
    for host, spec in _check_keys(raw.get("hosts"), {"gateway", "center"}, f"{path}.hosts").items():
        spec = _check_keys(spec, {"session_limit", "proxy_delay_ms"}, f"{path}.hosts.{host}")
        limit = spec.get("session_limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise ScenarioError(f"{path}.hosts.{host}.session_limit: expected a positive integer, got {limit!r}")
        delay = _number(spec.get("proxy_delay_ms"), f"{path}.hosts.{host}.proxy_delay_ms", optional=True)
        hosts[host] = HostSpec(session_limit=limit, proxy_delay_ms=delay)
    dns = {}
    resolver_keys = {f.name for f in fields(Resolver)}
    for host, spec in _check_keys(raw.get("dns"), {"center", "internet"}, f"{path}.dns").items():
        spec = _check_keys(spec, resolver_keys, f"{path}.dns.{host}")
        values = {}
        for key, value in spec.items():
            hi = 1.0 if key.endswith("_rate") else None
            values[key] = _number(value, f"{path}.dns.{host}.{key}", optional=False, hi=hi)
        dns[host] = Resolver(**values)
    for host in ("center", "internet"):
        dns.setdefault(host, Resolver())
    for host in ("gateway", "center"):
        hosts.setdefault(host, HostSpec())
    return Scenario(
        name=name,
        cause=raw.get("cause"),
        segment=raw.get("segment"),
        description=str(raw.get("description", "")).strip(),
        links=links,
        hosts=hosts,
        dns=dns,
        site=dict(_check_keys(raw.get("site"), _SITE_KEYS, f"{path}.site")),
    )


def load_scenarios(path: Path = CATALOGUE) -> dict[str, Scenario]:
    """Every scenario in ``path``, each merged onto ``healthy``, in file order."""
    raw_all = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw_all, dict) or BASE not in raw_all:
        raise ScenarioError(f"{path.name}: expected a mapping of scenarios including {BASE!r}")

    def normalised(name: str, raw: Any) -> dict[str, Any]:
        raw = _check_keys(raw, _TOP_KEYS, f"{path.name}: {name}")
        out = dict(raw)
        links = _check_keys(raw.get("links"), {lk.name for lk in LINKS}, f"{path.name}: {name}.links")
        out["links"] = {k: _normalise_link(v, f"{path.name}: {name}.links.{k}") for k, v in links.items()}
        return out

    base = normalised(BASE, raw_all[BASE])
    scenarios = {}
    for name, raw in raw_all.items():
        merged = base if name == BASE else _merge(base, normalised(name, raw))
        # description, cause and segment belong to each scenario; never inherited from healthy
        if name != BASE:
            for key in ("cause", "segment", "description"):
                merged[key] = (raw or {}).get(key)
        scenarios[name] = _build(name, merged, f"{path.name}: {name}")
    return scenarios


def get_scenario(name: str, path: Path = CATALOGUE) -> Scenario:
    """The scenario called ``name``; KeyError lists the known names."""
    scenarios = load_scenarios(path)
    try:
        return scenarios[name]
    except KeyError:
        raise KeyError(f"no scenario {name!r}; known: {', '.join(scenarios)}") from None
