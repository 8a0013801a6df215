"""macOS: route / netstat, scutil (DNS, proxy), ifconfig, airport and wdutil.

The ``parse_*`` functions are pure and tested on captured outputs; :func:`detect_macos`
runs the commands through a :class:`CommandRunner`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Optional

from giga_netcheck.measure.hostinfo.commands import CommandRunner
from giga_netcheck.measure.hostinfo.common import (
    Notes,
    ProbeIcmp,
    as_proxy_url,
    band_for_channel,
    frequency_for_channel,
    is_ip,
    leading_int,
    leading_number,
    platform_facts,
    probe_icmp_sockets,
    proxy_from_env,
    run,
)
from giga_netcheck.measure.hostinfo.models import HostInfo, ProxySettings, Route, WifiInfo

AIRPORT = "/System/Library/PrivateFrameworks/Apple80211.framework/Versions/Current/Resources/airport"

# --- routes ------------------------------------------------------------------------------


def parse_route_get(text: str) -> Optional[Route]:
    """``route -n get default`` (or ``-inet6 default``); None if there is no such route."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in {"destination", "gateway", "interface"}:
            fields[key.strip()] = value.strip()
    if "gateway" not in fields and "interface" not in fields:
        return None
    return Route(destination="default", gateway=fields.get("gateway"), interface=fields.get("interface"))


def parse_netstat_rn(text: str, family: str = "inet") -> tuple[Route, ...]:
    """Routes of one family (``inet`` or ``inet6``) from ``netstat -rn`` / ``netstat -rnl``.

    Columns differ between releases and flags (``-l`` adds Mtu; the IPv6 table may lack
    Refs/Use), so the interface column is found by its header name, ``Netif``.
    """
    wanted = "Internet:" if family == "inet" else "Internet6:"
    routes: list[Route] = []
    in_section = False
    netif_col: Optional[int] = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in {"Internet:", "Internet6:"}:
            in_section = stripped == wanted
            netif_col = None
            continue
        if not in_section or not stripped:
            continue
        tokens = stripped.split()
        if tokens[0] == "Destination":
            netif_col = tokens.index("Netif") if "Netif" in tokens else None
            continue
        if netif_col is None or len(tokens) <= netif_col:
            continue
        dest = "default" if tokens[0] == "default" else tokens[0]
        # macOS has no per-route metric here; the table lists the preferred default first,
        # so keep the order and leave every metric at 0 (pick_default_route keeps the first).
        gateway = tokens[1] if is_ip(tokens[1]) else None  # "link#4" means on-link
        routes.append(Route(destination=dest, gateway=gateway, interface=tokens[netif_col]))
    return tuple(routes)


# --- DNS ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScutilResolver:
    """One ``resolver #N`` block of ``scutil --dns``."""

    nameservers: tuple[str, ...]
    domain: Optional[str]
    """Set for resolvers that answer only one domain (split DNS, mDNS zones)."""
    interface: Optional[str]
    flags: tuple[str, ...]
    scoped: bool
    """From the "for scoped queries" section (per-interface, not the system default)."""


def parse_scutil_dns(text: str) -> tuple[ScutilResolver, ...]:
    """All resolvers of ``scutil --dns``, default section first, then the scoped section."""
    resolvers: list[ScutilResolver] = []
    scoped = False
    block: Optional[dict[str, list[str]]] = None

    def flush() -> None:
        if block is not None:
            iface = re.search(r"\((\S+)\)", " ".join(block.get("if_index", [])))
            flags = " ".join(block.get("flags", []))
            resolvers.append(
                ScutilResolver(
                    nameservers=tuple(block.get("nameserver", [])),
                    domain=(block.get("domain") or [None])[0],
                    interface=iface.group(1) if iface else None,
                    flags=tuple(f.strip() for f in flags.split(",") if f.strip()),
                    scoped=scoped,
                )
            )

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("DNS configuration"):
            flush()
            block = None
            scoped = "scoped" in stripped
            continue
        if stripped.startswith("resolver #"):
            flush()
            block = {}
            continue
        key, sep, value = stripped.partition(" : ")
        if block is None or not sep:
            continue
        key = re.sub(r"\[\d+\]$", "", key.strip())  # nameserver[0] -> nameserver
        block.setdefault(key, []).append(value.strip())
    flush()
    return tuple(resolvers)


def scutil_default_resolvers(resolvers: tuple[ScutilResolver, ...], interface: Optional[str] = None) -> tuple[str, ...]:
    """Servers of the default resolver: the first unscoped one that is not bound to a domain
    and not "Supplemental" (VPN split-DNS entries such as Tailscale's carry that flag).
    Falls back to the scoped resolver of ``interface``."""
    for res in resolvers:
        if not res.scoped and res.nameservers and res.domain is None and "Supplemental" not in res.flags:
            return res.nameservers
    for res in resolvers:
        if res.scoped and res.nameservers and res.interface == interface:
            return res.nameservers
    return ()


# --- proxy -------------------------------------------------------------------------------


def parse_scutil_proxy(text: str) -> ProxySettings:
    """``scutil --proxy`` -> ProxySettings (source ``scutil``; None if nothing is enabled)."""
    values: dict[str, str] = {}
    arrays: dict[str, list[str]] = {}
    array_key: Optional[str] = None
    for line in text.splitlines():
        stripped = line.strip()
        if array_key is not None:
            if stripped == "}":
                array_key = None
            else:
                _, sep, item = stripped.partition(" : ")
                if sep:
                    arrays[array_key].append(item.strip())
            continue
        key, sep, value = stripped.partition(" : ")
        if not sep:
            continue
        if value.strip().startswith("<array>"):
            array_key = key.strip()
            arrays[array_key] = []
        else:
            values[key.strip()] = value.strip()

    def proxy(prefix: str) -> Optional[str]:
        host = values.get(f"{prefix}Proxy")
        if values.get(f"{prefix}Enable") != "1" or not host:
            return None
        port = values.get(f"{prefix}Port")
        return as_proxy_url(f"{host}:{port}" if port else host)

    http, https = proxy("HTTP"), proxy("HTTPS")
    pac = values.get("ProxyAutoConfigURLString") if values.get("ProxyAutoConfigEnable") == "1" else None
    if not (http or https or pac):
        return ProxySettings()
    return ProxySettings(http=http, https=https, no_proxy=tuple(arrays.get("ExceptionsList", [])), pac_url=pac, source="scutil")


# --- link speed --------------------------------------------------------------------------


def parse_ifconfig_speed(text: str, interface: str) -> Optional[int]:
    """Speed in Mbit/s from the ``media:`` line of ``interface`` in ``ifconfig`` output,
    e.g. ``media: autoselect (1000baseT <full-duplex>)``; None for Wi-Fi (``autoselect``)."""
    block = re.search(rf"^{re.escape(interface)}:.*?(?=^\S|\Z)", text, re.MULTILINE | re.DOTALL)
    if not block:
        return None
    media = re.search(r"^\s*media:.*\((\d+)(G?)base", block.group(0), re.MULTILINE | re.IGNORECASE)
    if not media:
        return None
    return int(media.group(1)) * (1000 if media.group(2).upper() == "G" else 1)


# --- Wi-Fi -------------------------------------------------------------------------------


def is_airport_deprecated(text: str) -> bool:
    """True for the stub Apple ships since macOS 14.4, which prints only a warning."""
    return "airport command line tool is deprecated" in text


def _colon_fields(lines: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip():
            fields.setdefault(key.strip(), value.strip())
    return fields


def parse_airport_info(text: str) -> Optional[WifiInfo]:
    """``airport -I`` (a.k.a. ``--getinfo``); None if not associated or deprecated stub."""
    fields = _colon_fields(text.splitlines())
    if "SSID" not in fields and "BSSID" not in fields:
        return None
    channel = leading_int(fields.get("channel"))  # "48,80": primary channel, then width
    return WifiInfo(
        ssid=fields.get("SSID") or None,
        bssid=fields.get("BSSID") or None,
        # airport predates 6 GHz, so the channel number alone settles the band.
        frequency_mhz=frequency_for_channel(channel) if channel else None,
        band=band_for_channel(channel) if channel else None,
        channel=channel,
        signal_dbm=leading_int(fields.get("agrCtlRSSI")),
        noise_dbm=leading_int(fields.get("agrCtlNoise")),
        tx_rate_mbps=leading_number(fields.get("lastTxRate")),
    )


def _wdutil_sections(text: str) -> dict[str, list[str]]:
    """Split ``wdutil info`` into its titled sections (titles sit between rule lines)."""
    sections: dict[str, list[str]] = {}
    current: Optional[list[str]] = None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        is_rule = bool(line.strip()) and set(line.strip()) <= {"\u2014", "-"}
        if is_rule:
            continue
        prev_rule = i > 0 and bool(lines[i - 1].strip()) and set(lines[i - 1].strip()) <= {"\u2014", "-"}
        if prev_rule and line.strip() and not line.startswith(" "):
            current = sections.setdefault(line.strip(), [])
            continue
        if current is not None:
            current.append(line)
    return sections


_REDACTED = {"<redacted>", ""}


def parse_wdutil_info(text: str) -> Optional[WifiInfo]:
    """The WIFI section of ``wdutil info`` (root only). wdutil itself prints ``<redacted>``
    for SSID/BSSID unless location access is granted; those become None."""
    wifi = _wdutil_sections(text).get("WIFI")
    if not wifi:
        return None
    fields = _colon_fields(wifi)
    ssid, bssid = fields.get("SSID", ""), fields.get("BSSID", "")
    chan = re.match(r"(\d)g(\d+)", fields.get("Channel", ""))  # "2g11/20", "5g36/80", "6g37/160"
    band = channel = freq = None
    if chan:
        band = {"2": "2.4GHz", "5": "5GHz", "6": "6GHz"}.get(chan.group(1))
        channel = int(chan.group(2))
        freq = frequency_for_channel(channel, band)
    if ssid in _REDACTED and bssid in _REDACTED and channel is None:
        return None  # not associated
    return WifiInfo(
        ssid=None if ssid in _REDACTED else ssid,
        bssid=None if bssid in _REDACTED else bssid,
        frequency_mhz=freq,
        band=band,
        channel=channel,
        signal_dbm=leading_int(fields.get("RSSI")),
        noise_dbm=leading_int(fields.get("Noise")),
        tx_rate_mbps=leading_number(fields.get("Tx Rate")),  # "162.0 Mbps"
        interface=fields.get("Interface Name") or None,
    )


# --- detection ---------------------------------------------------------------------------


def _wifi(runner: CommandRunner, notes: Notes) -> Optional[WifiInfo]:
    scratch = Notes()
    text = run(runner, [AIRPORT, "-I"], scratch, "wifi")
    if text is not None and not is_airport_deprecated(text):
        info = parse_airport_info(text)
        if info is None:
            notes.add("wifi: airport reports no association")
        return info
    notes.add("wifi: airport unavailable (removed or deprecated since macOS 14.4)")
    text = run(runner, ["wdutil", "info"], notes, "wifi")  # needs root
    if text is None:
        return None
    info = parse_wdutil_info(text)
    if info is None:
        notes.add("wifi: wdutil reports no association")
    elif info.ssid is None:
        notes.add("wifi: SSID/BSSID redacted by wdutil")
    return info


def detect_macos(runner: CommandRunner, env: Mapping[str, str], probe_icmp: ProbeIcmp = probe_icmp_sockets) -> HostInfo:
    """Collect HostInfo on macOS. Never raises; every gap becomes a note."""
    notes = Notes()
    os_name, os_version, hostname = platform_facts(notes)

    text = run(runner, ["route", "-n", "get", "default"], notes, "gateway")
    route4 = parse_route_get(text) if text else None
    # No IPv6 default is normal, so its "not in table" error is not worth a note.
    text6 = run(runner, ["route", "-n", "get", "-inet6", "default"], Notes(), "gateway_ipv6")
    route6 = parse_route_get(text6) if text6 else None
    if route4 is None:
        table = run(runner, ["netstat", "-rn"], notes, "gateway")
        if table is not None:
            route4 = next((r for r in parse_netstat_rn(table, "inet") if r.destination == "default"), None)
            if route6 is None:
                v6 = [r for r in parse_netstat_rn(table, "inet6") if r.destination == "default"]
                same = [r for r in v6 if route4 and r.interface == route4.interface]
                route6 = (same or v6 or [None])[0]
            if route4 is None:
                notes.add("gateway: no IPv4 default route")
    interface = (route4 or route6).interface if (route4 or route6) else None

    dns = run(runner, ["scutil", "--dns"], notes, "dns")
    resolvers = scutil_default_resolvers(parse_scutil_dns(dns), interface) if dns else ()
    if dns is not None and not resolvers:
        notes.add("dns: scutil lists no default resolver")

    # Environment first: it is what command-line HTTP clients (and ours) obey.
    proxy = proxy_from_env(env)
    sys_proxy_text = run(runner, ["scutil", "--proxy"], notes, "proxy")
    sys_proxy = parse_scutil_proxy(sys_proxy_text) if sys_proxy_text else ProxySettings()
    if proxy is None:
        proxy = sys_proxy
    elif sys_proxy.source and sys_proxy != proxy:
        notes.add("proxy: system (scutil) proxy settings differ from the environment's")

    wifi = _wifi(runner, notes)
    link_speed = None
    if interface:
        ifc = run(runner, ["ifconfig", interface], notes, "link_speed")
        link_speed = parse_ifconfig_speed(ifc, interface) if ifc else None
        # Wi-Fi shows only "media: autoselect"; its rate is wifi.tx_rate_mbps, not a gap.
        if ifc is not None and link_speed is None and wifi is None:
            notes.add(f"link_speed: not reported for {interface}")

    raw_icmp, dgram_icmp = probe_icmp()
    return HostInfo(
        os_name=os_name,
        os_version=os_version,
        hostname=hostname,
        interface=interface,
        gateway_ipv4=route4.gateway if route4 else None,
        gateway_ipv6=route6.gateway if route6 else None,
        resolvers=resolvers,
        proxy=proxy,
        link_speed_mbps=link_speed,
        wifi=wifi,
        raw_icmp=raw_icmp,
        dgram_icmp=dgram_icmp,
        notes=tuple(notes.items),
    )
