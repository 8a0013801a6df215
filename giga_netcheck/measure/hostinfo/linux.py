"""Linux: iproute2, resolv.conf / systemd-resolved, ethtool / sysfs, iw, NetworkManager.

The ``parse_*`` functions are pure (text in, values out) and tested on captured outputs;
:func:`detect_linux` runs the commands through a :class:`CommandRunner` and reads files
through ``read_text`` so a test can replace both.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

from giga_netcheck.measure.hostinfo.commands import CommandRunner
from giga_netcheck.measure.hostinfo.common import (
    Notes,
    ProbeIcmp,
    band_for_frequency,
    channel_for_frequency,
    is_ip,
    leading_int,
    leading_number,
    pick_default_route,
    platform_facts,
    probe_icmp_sockets,
    proxy_from_env,
    run,
    usable_gateway,
)
from giga_netcheck.measure.hostinfo.models import HostInfo, ProxySettings, Route, WifiInfo

ReadText = Callable[[str], Optional[str]]

# systemd-resolved listens on these; resolv.conf pointing at them means "ask resolvectl".
RESOLVED_STUBS = {"127.0.0.53", "127.0.0.54"}


# --- routes ------------------------------------------------------------------------------


def _route_from_tokens(tokens: list[str]) -> Optional[Route]:
    if not tokens:
        return None
    # A leading route type (unicast, local, broadcast ...) is optional in `ip route` output.
    if tokens[0] in {"unicast", "local", "broadcast", "multicast", "unreachable", "blackhole", "prohibit", "throw"}:
        if tokens[0] != "unicast":
            return None
        tokens = tokens[1:]
    if not tokens:
        return None
    dest = "default" if tokens[0] in {"default", "0.0.0.0/0", "0/0", "::/0"} else tokens[0]
    fields: dict[str, str] = {}
    # First "via"/"dev" wins: for a multipath route that is the first nexthop.
    for key, value in zip(tokens[1:], tokens[2:]):
        if key in {"via", "dev", "metric"} and key not in fields:
            fields[key] = value
    gateway = fields.get("via")
    if gateway and gateway in {"inet", "inet6"}:  # `via inet6 fe80::1` (IPv4 via IPv6 nexthop)
        idx = tokens.index("via")
        gateway = tokens[idx + 2] if idx + 2 < len(tokens) else None
    metric = int(fields["metric"]) if fields.get("metric", "").isdigit() else 0
    return Route(destination=dest, gateway=gateway, interface=fields.get("dev"), metric=metric)


def parse_ip_route(text: str) -> tuple[Route, ...]:
    """Routes from ``ip route`` / ``ip route list default`` / ``ip -o route ...`` text."""
    routes = []
    # `ip -o` joins a multipath route's lines with a backslash; treat it as one line.
    for line in text.replace("\\", " ").splitlines():
        route = _route_from_tokens(line.split())
        if route is not None:
            routes.append(route)
    return tuple(routes)


def parse_ip_route_json(text: str) -> tuple[Route, ...]:
    """Routes from ``ip -j route`` (or ``ip -d -j route``) JSON; () if it is not that JSON."""
    try:
        data = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(data, list):
        return ()
    routes = []
    for item in data:
        if not isinstance(item, dict) or item.get("type", "unicast") != "unicast":
            continue
        dst = str(item.get("dst", ""))
        gateway, dev = item.get("gateway"), item.get("dev")
        hops = item.get("nexthops")
        if gateway is None and isinstance(hops, list) and hops and isinstance(hops[0], dict):
            gateway, dev = hops[0].get("gateway"), hops[0].get("dev", dev)
        metric = item.get("metric", 0)
        routes.append(
            Route(
                destination="default" if dst in {"default", "0.0.0.0/0", "::/0"} else dst,
                gateway=str(gateway) if gateway else None,
                interface=str(dev) if dev else None,
                metric=metric if isinstance(metric, int) else 0,
            )
        )
    return tuple(routes)


# --- DNS ---------------------------------------------------------------------------------


def parse_resolv_conf(text: str) -> tuple[str, ...]:
    """``nameserver`` addresses from /etc/resolv.conf, in file order."""
    servers = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            servers.append(parts[1])
    return tuple(servers)


@dataclass(frozen=True)
class ResolvedLink:
    """One ``Link N (name)`` block of ``resolvectl status``."""

    index: int
    name: str
    servers: tuple[str, ...]
    current_server: Optional[str]
    default_route: Optional[bool]
    """Whether resolved sends queries for any domain to this link; None if not printed."""


@dataclass(frozen=True)
class ResolvedStatus:
    """``resolvectl status`` (or ``systemd-resolve --status``) reduced to its DNS servers."""

    global_servers: tuple[str, ...]
    fallback_servers: tuple[str, ...]
    links: tuple[ResolvedLink, ...]


def _server_list(value: str) -> list[str]:
    # resolved prints DoT servers as "1.1.1.1#cloudflare-dns.com"; the name is only for TLS.
    return [tok.split("#", 1)[0] for tok in value.split()]


_RESOLVED_KEY = re.compile(r"^\s*([A-Z][A-Za-z0-9 ./-]*?):(?:\s+(.*))?$")
_RESOLVED_LINK = re.compile(r"^Link (\d+) \(([^)]+)\)")


def parse_resolvectl_status(text: str) -> ResolvedStatus:
    """Parse ``resolvectl status``: global, fallback and per-link DNS servers."""
    blocks: list[tuple[Optional[tuple[int, str]], dict[str, str]]] = []
    current: dict[str, str] = {}
    key: Optional[str] = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("Global"):
            current = {}
            blocks.append((None, current))
            key = None
            continue
        link = _RESOLVED_LINK.match(line)
        if link:
            current = {}
            blocks.append(((int(link.group(1)), link.group(2)), current))
            key = None
            continue
        kv = _RESOLVED_KEY.match(line)
        if kv:
            key = kv.group(1).strip()
            current[key] = (kv.group(2) or "").strip()
        elif key is not None:  # continuation of a wrapped server list
            current[key] = f"{current[key]} {line.strip()}"
    global_servers: list[str] = []
    fallback: list[str] = []
    links = []
    for ident, fields in blocks:
        if ident is None:
            global_servers += _server_list(fields.get("DNS Servers", ""))
            fallback += _server_list(fields.get("Fallback DNS Servers", ""))
            continue
        default_route: Optional[bool] = None
        for k in ("Default Route", "DefaultRoute setting"):
            if k in fields:
                default_route = fields[k].lower() == "yes"
        if default_route is None and "Protocols" in fields:
            default_route = "+DefaultRoute" in fields["Protocols"].split()
        current_server = fields.get("Current DNS Server")
        links.append(
            ResolvedLink(
                index=ident[0],
                name=ident[1],
                servers=tuple(_server_list(fields.get("DNS Servers", ""))),
                current_server=current_server.split("#", 1)[0] if current_server else None,
                default_route=default_route,
            )
        )
    return ResolvedStatus(tuple(global_servers), tuple(fallback), tuple(links))


def resolved_upstream(status: ResolvedStatus, interface: Optional[str] = None) -> tuple[str, ...]:
    """The servers systemd-resolved forwards ordinary queries to.

    Order: the default-route interface's link, then global servers, then other links that
    take default-route queries. Links with ``Default Route: no`` only answer their own
    domains, so they are left out. Fallback servers are used only when nothing else is
    configured, which is also when resolved itself uses them.
    """
    ordered: list[str] = []
    routed = [ln for ln in status.links if ln.default_route is not False]
    own = [ln for ln in routed if ln.name == interface]
    for group in ([s for ln in own for s in ln.servers], status.global_servers, [s for ln in routed for s in ln.servers]):
        for server in group:
            if server not in ordered:
                ordered.append(server)
    return tuple(ordered) if ordered else status.fallback_servers


# --- link speed --------------------------------------------------------------------------


def parse_ethtool_speed(text: str) -> Optional[int]:
    """``Speed: 1000Mb/s`` from ``ethtool IFACE``, in Mbit/s; None for ``Unknown!``."""
    match = re.search(r"^\s*Speed:\s*(\d+)\s*Mb/s", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def parse_sysfs_speed(text: str) -> Optional[int]:
    """/sys/class/net/IFACE/speed (Mbit/s); the kernel writes -1 when the link is down."""
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value > 0 else None


# --- Wi-Fi -------------------------------------------------------------------------------


def _unescape_iw(text: str) -> str:
    """iw prints non-ASCII SSID bytes as ``\\xNN``; decode them (UTF-8, e.g. Japanese SSIDs)."""
    if "\\x" not in text:
        return text
    raw = re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", errors="replace")


def parse_iw_link(text: str) -> Optional[WifiInfo]:
    """``iw dev IFACE link``; None when it says ``Not connected.`` or prints no association."""
    head = re.search(r"^Connected to (\S+)(?: \(on (\S+)\))?", text, re.MULTILINE)
    if not head:
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        key, sep, value = line.strip().partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    freq_mhz = leading_int(fields.get("freq"))  # "5280" or, in newer iw, "5280.0"
    return WifiInfo(
        ssid=_unescape_iw(fields["ssid"]) if "ssid" in fields else None,
        bssid=head.group(1),
        frequency_mhz=freq_mhz,
        band=band_for_frequency(freq_mhz) if freq_mhz else None,
        channel=channel_for_frequency(freq_mhz) if freq_mhz else None,
        signal_dbm=leading_int(fields.get("signal")),
        tx_rate_mbps=leading_number(fields.get("tx bitrate")),
        interface=head.group(2),
    )


@dataclass(frozen=True)
class NmcliDevice:
    """One device block of ``nmcli device show``."""

    name: str
    type: Optional[str]
    gateway_ipv4: Optional[str]
    gateway_ipv6: Optional[str]
    dns: tuple[str, ...]
    """IP4.DNS then IP6.DNS entries, in order."""


def parse_nmcli_device_show(text: str) -> tuple[NmcliDevice, ...]:
    """``nmcli device show [IFACE]`` (the tabular, non-terse form)."""
    devices = []
    block: dict[str, str] = {}

    def flush() -> None:
        if "GENERAL.DEVICE" in block:
            dns = [v for k, v in block.items() if re.match(r"IP[46]\.DNS\[\d+\]$", k)]
            devices.append(
                NmcliDevice(
                    name=block["GENERAL.DEVICE"],
                    type=block.get("GENERAL.TYPE"),
                    gateway_ipv4=usable_gateway(block.get("IP4.GATEWAY")),
                    gateway_ipv6=usable_gateway(block.get("IP6.GATEWAY")),
                    dns=tuple(dns),
                )
            )

    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if not line.strip():
                flush()
                block = {}
            continue
        if key == "GENERAL.DEVICE" and "GENERAL.DEVICE" in block:
            flush()
            block = {}
        block[key.strip()] = value.strip()
    flush()
    return tuple(devices)


def split_nmcli_terse(line: str) -> list[str]:
    """Split one ``nmcli -t`` line on ``:``, honouring its ``\\:`` and ``\\\\`` escapes."""
    fields, buf, chars = [], [], iter(line)
    for ch in chars:
        if ch == "\\":
            buf.append(next(chars, ""))
        elif ch == ":":
            fields.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    fields.append("".join(buf))
    return fields


def parse_nmcli_wifi_list(text: str, fields: tuple[str, ...]) -> tuple[dict[str, str], ...]:
    """``nmcli -t -f F1,F2,... device wifi list``: one dict per access point, keyed by the
    upper-cased field names the command was given (nmcli does not print a header in -t)."""
    names = [f.upper() for f in fields]
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        values = split_nmcli_terse(line)
        if len(values) == len(names):
            rows.append(dict(zip(names, values)))
    return tuple(rows)


NMCLI_WIFI_FIELDS = ("ACTIVE", "SSID", "BSSID", "FREQ", "CHAN", "RATE", "SIGNAL")


def wifi_from_nmcli(rows: tuple[dict[str, str], ...], interface: Optional[str]) -> Optional[WifiInfo]:
    """The active row of a :data:`NMCLI_WIFI_FIELDS` listing, as WifiInfo (signal in %)."""
    for row in rows:
        if row.get("ACTIVE", "").lower() not in {"yes", "*"}:
            continue
        freq_mhz = leading_int(row.get("FREQ"))  # "5180 MHz"
        return WifiInfo(
            ssid=row.get("SSID") or None,
            bssid=row.get("BSSID") or None,
            frequency_mhz=freq_mhz,
            band=band_for_frequency(freq_mhz) if freq_mhz else None,
            channel=leading_int(row.get("CHAN")),
            tx_rate_mbps=leading_number(row.get("RATE")),
            signal_pct=leading_int(row.get("SIGNAL")),
            interface=interface,
        )
    return None


# --- detection ---------------------------------------------------------------------------


def read_text_file(path: str) -> Optional[str]:
    """Default ``read_text``: a file's text, or None if it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def _default_route(runner: CommandRunner, family: str, notes: Notes) -> tuple[Optional[Route], bool]:
    """(lowest-metric default route or None, whether `ip` answered at all)."""
    topic = "gateway" if family == "-4" else "gateway_ipv6"
    # JSON first (unambiguous); its failure is not worth a note if the text form works.
    text = run(runner, ["ip", "-j", family, "route", "list", "default"], Notes(), topic)
    routes = parse_ip_route_json(text) if text else ()
    if text is None or (not routes and text.strip() not in {"", "[]"}):
        # Old iproute2 without -j: fall back to the one-line text form.
        text = run(runner, ["ip", "-o", family, "route", "list", "default"], notes, topic)
        routes = parse_ip_route(text) if text else ()
    return pick_default_route(routes), text is not None


def _resolvers(runner: CommandRunner, read_text: ReadText, interface: Optional[str], notes: Notes) -> tuple[tuple[str, ...], Optional[str]]:
    """(upstream resolvers, local stub or None). See HostInfo.stub_resolver for why both."""
    conf = read_text("/etc/resolv.conf")
    if conf is None:
        notes.add("dns: /etc/resolv.conf not readable")
        return (), None
    servers = parse_resolv_conf(conf)
    if not servers:
        notes.add("dns: no nameserver in /etc/resolv.conf")
        return (), None
    if not all(is_ip(s) and s.startswith("127.") for s in servers):
        return servers, None
    stub = servers[0]
    upstream: tuple[str, ...] = ()
    if stub in RESOLVED_STUBS:
        text = run(runner, ["resolvectl", "status"], notes, "dns")
        if text is None:  # systemd < 239 spells it differently
            text = run(runner, ["systemd-resolve", "--status"], notes, "dns")
        if text is not None:
            upstream = resolved_upstream(parse_resolvectl_status(text), interface)
    if not upstream and interface:
        # dnsmasq run by NetworkManager (127.0.0.1 / 127.0.1.1), or resolvectl missing.
        text = run(runner, ["nmcli", "device", "show", interface], notes, "dns")
        devices = parse_nmcli_device_show(text) if text else ()
        upstream = devices[0].dns if devices else ()
    if not upstream:
        notes.add(f"dns: resolv.conf points at local stub {stub}; its upstream servers are unknown")
        return (stub,), stub
    return upstream, stub


def _link_speed(runner: CommandRunner, read_text: ReadText, interface: str, notes: Notes) -> Optional[int]:
    # sysfs needs no extra tool and no privileges; ethtool covers drivers sysfs leaves blank.
    text = read_text(f"/sys/class/net/{interface}/speed")
    speed = parse_sysfs_speed(text) if text else None
    if speed is None:
        scratch = Notes()
        out = run(runner, ["ethtool", interface], scratch, "link_speed")
        speed = parse_ethtool_speed(out) if out else None
        if speed is None:
            why = scratch.items[0].split(": ", 1)[1] if scratch.items else "ethtool gives none"
            notes.add(f"link_speed: unknown for {interface} (sysfs gives none; {why})")
    return speed


def _wifi(runner: CommandRunner, interface: str, notes: Notes) -> Optional[WifiInfo]:
    text = run(runner, ["iw", "dev", interface, "link"], notes, "wifi")
    if text is not None:
        info = parse_iw_link(text)
        if info is None:
            notes.add(f"wifi: {interface} is not associated")
        return info
    text = run(
        runner,
        ["nmcli", "-t", "-f", ",".join(NMCLI_WIFI_FIELDS), "device", "wifi", "list", "ifname", interface, "--rescan", "no"],
        notes,
        "wifi",
    )
    if text is None:
        return None
    info = wifi_from_nmcli(parse_nmcli_wifi_list(text, NMCLI_WIFI_FIELDS), interface)
    if info is None:
        notes.add(f"wifi: nmcli shows no active network on {interface}")
    else:
        notes.add("wifi: signal from nmcli is a percentage; dBm unknown")
    return info


def detect_linux(
    runner: CommandRunner, env: Mapping[str, str], read_text: ReadText = read_text_file, probe_icmp: ProbeIcmp = probe_icmp_sockets
) -> HostInfo:
    """Collect HostInfo on Linux. Never raises; every gap becomes a note."""
    notes = Notes()
    os_name, os_version, hostname = platform_facts(notes)

    route4, ip_ok = _default_route(runner, "-4", notes)
    route6, _ = _default_route(runner, "-6", notes)
    if route4 is None and ip_ok:
        notes.add("gateway: no IPv4 default route")
    interface = (route4 or route6).interface if (route4 or route6) else None

    resolvers, stub = _resolvers(runner, read_text, interface, notes)

    link_speed = wifi = None
    if interface:
        # Wireless netdevs carry DEVTYPE=wlan in their uevent file; no tool needed to tell.
        uevent = read_text(f"/sys/class/net/{interface}/uevent") or ""
        if "DEVTYPE=wlan" in uevent:
            wifi = _wifi(runner, interface, notes)
        else:
            link_speed = _link_speed(runner, read_text, interface, notes)

    # Desktop (GNOME/KDE) proxy settings are not read: command-line tools ignore them too.
    proxy = proxy_from_env(env) or ProxySettings()
    raw_icmp, dgram_icmp = probe_icmp()
    return HostInfo(
        os_name=os_name,
        os_version=os_version,
        hostname=hostname,
        interface=interface,
        gateway_ipv4=route4.gateway if route4 else None,
        gateway_ipv6=route6.gateway if route6 else None,
        resolvers=resolvers,
        stub_resolver=stub,
        proxy=proxy,
        link_speed_mbps=link_speed,
        wifi=wifi,
        raw_icmp=raw_icmp,
        dgram_icmp=dgram_icmp,
        notes=tuple(notes.items),
    )
