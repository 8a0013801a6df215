"""What the host tells us about its network: frozen dataclasses, units in field names.

Every value the OS may not give is ``None`` (or an empty tuple); the reason it is missing
goes into :attr:`HostInfo.notes`, never into an exception.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional


def _plain(value: Any) -> Any:
    """Dataclass tree -> JSON-ready data; tuples become lists so a JSON round trip is stable."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


class _ToDict:
    """Mixin giving each model the same ``to_dict``."""

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready dict of this object (nested objects included)."""
        return _plain(self)


@dataclass(frozen=True)
class Route(_ToDict):
    """One routing-table entry, as far as the default-gateway choice needs it."""

    destination: str
    """``default`` for a default route (any OS spelling is normalised to it), else a prefix."""
    gateway: Optional[str]
    """Next hop; None for an on-link route (e.g. ``default dev ppp0``)."""
    interface: Optional[str]
    """Interface name (Linux, macOS) or the interface's own address (Windows ``route print``)."""
    metric: int = 0
    """Route metric; the lowest wins. Missing metrics count as 0, as the kernel does."""


@dataclass(frozen=True)
class ProxySettings(_ToDict):
    """Proxy configuration as the host states it. URLs always carry a scheme."""

    http: Optional[str] = None
    """Proxy URL for plain HTTP, e.g. ``http://127.0.0.1:8118``."""
    https: Optional[str] = None
    """Proxy URL for HTTPS (the proxy itself is usually still spoken to over http://)."""
    no_proxy: tuple[str, ...] = ()
    """Hosts/patterns that bypass the proxy, in the OS's own syntax (``*.local``, ``<local>``)."""
    pac_url: Optional[str] = None
    """Proxy auto-config script URL, when one is configured and enabled."""
    source: Optional[str] = None
    """Where this came from: ``env``, ``scutil``, ``winhttp``; None if nothing was found."""


@dataclass(frozen=True)
class WifiInfo(_ToDict):
    """The current Wi-Fi association. Fields the OS tool does not print are None."""

    ssid: Optional[str] = None
    bssid: Optional[str] = None
    """Access point MAC as printed (tools or sources sometimes mask it, e.g. ``xx:xx``)."""
    frequency_mhz: Optional[int] = None
    """Centre frequency of the primary channel; derived from channel+band where the OS gives only those."""
    band: Optional[str] = None
    """``2.4GHz``, ``5GHz`` or ``6GHz``."""
    channel: Optional[int] = None
    """Primary channel number."""
    signal_dbm: Optional[int] = None
    """Received signal strength (RSSI) in dBm."""
    noise_dbm: Optional[int] = None
    """Noise floor in dBm (macOS only; Linux ``iw link`` and Windows do not print it)."""
    tx_rate_mbps: Optional[float] = None
    """Last transmit PHY rate; an upper bound for throughput, not a measurement of it."""
    signal_pct: Optional[int] = None
    """Signal quality 0-100 % where the OS reports only that (Windows ``netsh``, ``nmcli``)."""
    interface: Optional[str] = None
    """The wireless interface, when the tool names it."""


@dataclass(frozen=True)
class HostInfo(_ToDict):
    """Network facts about the machine giga-netcheck runs on, saved with every result."""

    os_name: str
    """``Linux``, ``Darwin`` (macOS) or ``Windows``, as ``platform.system()`` says."""
    os_version: str
    """Distribution/release string, e.g. ``Ubuntu 24.04.1 LTS``, ``14.4.1``, ``10.0.22631``."""
    hostname: str
    interface: Optional[str]
    """Interface of the default route (Windows: adapter name as ``ipconfig`` shows it)."""
    gateway_ipv4: Optional[str]
    gateway_ipv6: Optional[str]
    """May be a link-local address with a zone, e.g. ``fe80::1%en0``."""
    resolvers: tuple[str, ...]
    """DNS servers the host forwards to, in order. Behind a local stub (systemd-resolved),
    these are the stub's upstream servers; the stub itself is in :attr:`stub_resolver`."""
    proxy: ProxySettings
    link_speed_mbps: Optional[int]
    """Negotiated wired link speed; None for Wi-Fi (see ``wifi.tx_rate_mbps``) or when unknown."""
    wifi: Optional[WifiInfo]
    raw_icmp: bool
    """This process may open a raw ICMP socket (root / CAP_NET_RAW / Administrator)."""
    dgram_icmp: bool
    """Unprivileged ICMP "ping sockets" (SOCK_DGRAM, IPPROTO_ICMP) work here."""
    notes: tuple[str, ...] = ()
    """What could not be detected and why, one short plain string each (``wifi: iw not found``)."""
    stub_resolver: Optional[str] = None
    """Local stub the system resolver actually sends queries to (``127.0.0.53``), if any.
    Kept separately because it is what applications experience (cache included), while
    :attr:`resolvers` are what the stub depends on."""


@dataclass(frozen=True)
class PingSummary(_ToDict):
    """One run of the system ``ping``, reduced the same way on every OS.

    ``received`` counts echo *replies* only. Windows counts ICMP errors ("Destination host
    unreachable" from a router) as "Received"; we subtract them (they are in ``errors``) so
    the figure compares with our own ICMP probe. ``loss_pct`` is then recomputed.
    """

    sent: int
    received: int
    loss_pct: float
    rtts_ms: tuple[float, ...]
    """One entry per echo reply, in order (duplicates dropped). Windows prints whole
    milliseconds and ``<1ms`` for less; that is recorded as 0.0, as Windows' own Minimum does."""
    min_ms: Optional[float]
    """From ping's own summary line when it printed one (more digits), else from ``rtts_ms``."""
    avg_ms: Optional[float]
    max_ms: Optional[float]
    errors: int = 0
    """ICMP error replies seen (destination unreachable, TTL exceeded)."""
