"""Windows: route print, netsh, ipconfig (English and Japanese), WinHTTP proxy, WLAN.

Windows localises these tools and a Japanese school laptop prints ``デフォルト ゲートウェイ``
where an English one prints ``Default Gateway``; label tables below carry both. Text may
come with CRLF line ends and, from a real console, in CP932 (see ``decode_console``).
The ``parse_*`` functions are pure; :func:`detect_windows` runs the commands.
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
    pick_default_route,
    platform_facts,
    probe_icmp_sockets,
    proxy_from_env,
    run,
    usable_gateway,
)
from giga_netcheck.measure.hostinfo.models import HostInfo, ProxySettings, Route, WifiInfo

# --- routes ------------------------------------------------------------------------------


def parse_route_print(text: str) -> tuple[Route, ...]:
    """Active routes of ``route print`` / ``route print -4`` (IPv4 and, if present, IPv6).

    IPv4 routes name their interface by its address (``Interface`` column); IPv6 routes
    by interface index (``If``). ``On-link`` routes have no gateway. Rows are recognised
    by their shape, not by the localised headings; only "Persistent Routes" must be known
    (skipped: they are configuration, and the active ones are listed already).
    """
    routes: list[Route] = []
    persistent = False
    pending_v6: Optional[list[str]] = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(("Persistent Routes", "固定ルート")):
            persistent = True
        elif line.startswith(("Active Routes", "アクティブ ルート")) or "Route Table" in line or "ルート テーブル" in line:
            persistent = False
        if persistent or not line:
            continue
        tokens = line.split()
        if len(tokens) == 5 and is_ip(tokens[0], 4) and is_ip(tokens[1], 4) and tokens[4].isdigit():
            dest, mask, gateway, iface, metric = tokens
            routes.append(
                Route(
                    destination="default" if dest == "0.0.0.0" and mask == "0.0.0.0" else f"{dest}/{mask}",
                    gateway=gateway if is_ip(gateway) else None,  # "On-link"
                    interface=iface,
                    metric=int(metric),
                )
            )
            continue
        # IPv6 rows: "If Metric Destination Gateway"; a long destination pushes the
        # gateway onto the next line ("9 286 fe80::x/128" then "On-link").
        if pending_v6 is not None and len(tokens) == 1:
            tokens, pending_v6 = pending_v6 + tokens, None
        if len(tokens) in (3, 4) and tokens[0].isdigit() and tokens[1].isdigit() and ":" in tokens[2]:
            if len(tokens) == 3:
                pending_v6 = tokens
                continue
            idx, metric, dest, gateway = tokens
            routes.append(
                Route(
                    destination="default" if dest == "::/0" else dest,
                    gateway=gateway if is_ip(gateway) else None,
                    interface=idx,
                    metric=int(metric),
                )
            )
    return tuple(routes)


_NETSH_ROUTE = re.compile(r"^\s*(\S+)\s+(\S+)\s+(\d+)\s+(\S+/\d+)\s+(\d+)\s+(.+?)\s*$")


def parse_netsh_ipv4_routes(text: str) -> tuple[Route, ...]:
    """``netsh int ipv4 show route``. The last column is a gateway or an interface name;
    gateway rows are given the name seen on the same interface index in other rows."""
    rows = [m.groups() for m in map(_NETSH_ROUTE.match, text.splitlines()) if m]
    names = {idx: last for _, _, _, _, idx, last in rows if not is_ip(last)}
    routes = []
    for _, _, metric, prefix, idx, last in rows:
        gateway = last if is_ip(last) else None
        routes.append(
            Route(
                destination="default" if prefix == "0.0.0.0/0" else prefix,
                gateway=gateway,
                interface=names.get(idx, last if gateway is None else idx),
                metric=int(metric),
            )
        )
    return tuple(routes)


# --- ipconfig ----------------------------------------------------------------------------

_IPCONFIG_LABELS = {
    "hostname": ("Host Name", "ホスト名"),
    "description": ("Description", "説明"),
    "ipv4": ("IPv4 Address", "IP Address", "Autoconfiguration IPv4 Address", "IPv4 アドレス", "自動構成 IPv4 アドレス"),
    "gateway": ("Default Gateway", "デフォルト ゲートウェイ"),
    "dns": ("DNS Servers", "DNS サーバー"),
    "media": ("Media State", "メディアの状態"),
}
_LABEL_TO_FIELD = {label: field for field, labels in _IPCONFIG_LABELS.items() for label in labels}
_IPCONFIG_KV = re.compile(r"^\s{1,8}(\S.*?)[\s.]*:\s?(.*)$")
_ADAPTER = re.compile(r"^(.*?)\s*(?:adapter|アダプター)\s+(.*):\s*$")


@dataclass(frozen=True)
class IpconfigAdapter:
    """One adapter block of ``ipconfig`` / ``ipconfig /all``."""

    name: str
    """As the header shows it, e.g. ``Wi-Fi``, ``イーサネット 4``."""
    kind: str
    """Header prefix: ``Ethernet``, ``Wireless LAN``, ``イーサネット``, ``Unknown``, ``Tunnel``."""
    description: Optional[str]
    ipv4: tuple[str, ...]
    gateways: tuple[str, ...]
    """IPv6 and IPv4 default gateways, in printed order, placeholders (``::``) dropped."""
    dns: tuple[str, ...]
    connected: bool
    """False when ipconfig says "Media disconnected" / "メディアは接続されていません"."""

    @property
    def gateway_ipv4(self) -> Optional[str]:
        """First IPv4 default gateway."""
        return next((g for g in self.gateways if is_ip(g, 4)), None)

    @property
    def gateway_ipv6(self) -> Optional[str]:
        """First IPv6 default gateway."""
        return next((g for g in self.gateways if is_ip(g, 6)), None)

    @property
    def wireless(self) -> bool:
        """Looks like a Wi-Fi adapter (header kind or description says so)."""
        text = f"{self.kind} {self.description or ''}".lower()
        return any(w in text for w in ("wireless", "wi-fi", "wlan", "ワイヤレス"))


@dataclass(frozen=True)
class Ipconfig:
    """``ipconfig`` output: host name (``/all`` only) and adapters in printed order."""

    hostname: Optional[str]
    adapters: tuple[IpconfigAdapter, ...]


def _address(value: str) -> str:
    # "10.0.0.104(Preferred)", "fe80::1%7(優先)" -> the bare address
    return re.sub(r"\s*\(.*?\)\s*$", "", value.strip())


def parse_ipconfig(text: str) -> Ipconfig:
    """Parse ``ipconfig /all`` or plain ``ipconfig``, English or Japanese."""
    hostname: Optional[str] = None
    blocks: list[dict[str, list[str]]] = []  # one per adapter: field -> values in order
    field: Optional[str] = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            header = _ADAPTER.match(line)
            if header:
                blocks.append({"kind": [header.group(1).strip()], "name": [header.group(2).strip()]})
            field = None
            continue
        if len(line) - len(line.lstrip()) > 8:  # continuation: another gateway/DNS server
            if field in {"gateway", "dns", "ipv4"} and blocks:
                blocks[-1].setdefault(field, []).append(_address(line))
            continue
        kv = _IPCONFIG_KV.match(line)
        if not kv:
            continue
        field = _LABEL_TO_FIELD.get(kv.group(1).strip())
        value = kv.group(2).strip()
        if field == "hostname":
            hostname = value or None
        elif field is not None and blocks and value:
            blocks[-1].setdefault(field, []).append(_address(value) if field in {"gateway", "dns", "ipv4"} else value)
    adapters = []
    for b in blocks:
        media = " ".join(b.get("media", []))
        adapters.append(
            IpconfigAdapter(
                name=b["name"][0],
                kind=b["kind"][0],
                description=(b.get("description") or [None])[0],
                ipv4=tuple(b.get("ipv4", [])),
                gateways=tuple(g for g in b.get("gateway", []) if usable_gateway(g)),
                dns=tuple(b.get("dns", [])),
                connected=not ("disconnected" in media.lower() or "接続されていません" in media),
            )
        )
    return Ipconfig(hostname, tuple(adapters))


def pick_adapter(config: Ipconfig, interface_ip: Optional[str] = None, name: Optional[str] = None) -> Optional[IpconfigAdapter]:
    """The adapter that owns ``interface_ip`` (the default route's interface address) or is
    called ``name``; else the first connected adapter with an IPv4 default gateway."""
    for adapter in config.adapters:
        if (interface_ip and interface_ip in adapter.ipv4) or (name and adapter.name == name):
            return adapter
    return next((a for a in config.adapters if a.connected and a.gateway_ipv4), None)


# --- netsh interface ip show config ------------------------------------------------------


@dataclass(frozen=True)
class NetshIpConfig:
    """One interface block of ``netsh interface ip show config``."""

    name: str
    ip: tuple[str, ...]
    gateway: Optional[str]
    dns: tuple[str, ...]
    interface_metric: Optional[int]


def parse_netsh_ip_config(text: str) -> tuple[NetshIpConfig, ...]:
    """Parse ``netsh interface ip show config``. Labels are matched loosely (any label with
    "DNS" lists DNS servers: DHCP-given or static) so the Japanese edition, for which we
    have no capture, has a chance; only English output is tested."""
    blocks: list[dict[str, list[str]]] = []
    field: Optional[str] = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            name = re.search(r'"([^"]+)"', line)
            if name:
                blocks.append({"name": [name.group(1)]})
            field = None
            continue
        if not blocks:
            continue
        key, sep, value = line.strip().partition(":")
        if sep and not is_ip(line.strip()):
            key = key.strip()
            if "DNS" in key:
                field = "dns"
            elif "Gateway Metric" in key or "ゲートウェイ メトリック" in key:
                field = None
            elif "Gateway" in key or "ゲートウェイ" in key:
                field = "gateway"
            elif key in {"IP Address", "IP アドレス"}:
                field = "ip"
            elif key.replace(" ", "") in {"InterfaceMetric", "インターフェイスメトリック"}:
                field = "metric"
            else:
                field = None
        else:
            value = line
        value = value.strip()
        if field and value and (field == "metric" or is_ip(value)):
            blocks[-1].setdefault(field, []).append(value)
    return tuple(
        NetshIpConfig(
            name=b["name"][0],
            ip=tuple(b.get("ip", [])),
            gateway=usable_gateway((b.get("gateway") or [None])[0]),
            dns=tuple(b.get("dns", [])),
            interface_metric=int(b["metric"][0]) if b.get("metric", [""])[0].isdigit() else None,
        )
        for b in blocks
    )


# --- WinHTTP proxy -------------------------------------------------------------------------


def parse_winhttp_proxy(text: str) -> ProxySettings:
    """``netsh winhttp show proxy`` (also printed by ``set proxy``); source ``winhttp``.

    This is the machine-wide WinHTTP setting (services, Windows Update); browsers use the
    per-user WinINET setting, which this does not read. "Direct access" gives an empty
    ProxySettings. Japanese labels (プロキシ サーバー / バイパス一覧) are untested guesses.
    """
    server = bypass = None
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if not sep:
            continue
        key = key.strip()
        if key.startswith("Proxy Server") or key.startswith("プロキシ サーバー"):
            server = value.strip()
        elif key.startswith("Bypass List") or key.startswith("バイパス一覧"):
            bypass = value.strip()
    if not server:
        return ProxySettings()
    http = https = None
    if "=" in server:  # per-scheme form: "http=proxy:80;https=proxy:443"
        for part in server.split(";"):
            scheme, _, addr = part.partition("=")
            if scheme.strip().lower() == "http":
                http = as_proxy_url(addr)
            elif scheme.strip().lower() == "https":
                https = as_proxy_url(addr)
    else:
        http = https = as_proxy_url(server)
    no_proxy = () if not bypass or bypass == "(none)" or bypass == "(なし)" else tuple(p.strip() for p in bypass.split(";") if p.strip())
    return ProxySettings(http=http, https=https, no_proxy=no_proxy, source="winhttp")


# --- WLAN ------------------------------------------------------------------------------------

# UNTESTED against real output: no attributable capture of `netsh wlan show interfaces`
# exists in the fixtures. Written from the documented English layout ("Name : Wi-Fi",
# "SSID", "BSSID" or "AP BSSID" (Windows 11), "Band" (Windows 11), "Channel",
# "Receive rate (Mbps)", "Transmit rate (Mbps)", "Signal : 88%", "Rssi" (recent builds))
# and the Japanese labels as commonly shown; verify on a real laptop before relying on it.
_WLAN_LABELS = {
    "name": ("Name", "名前"),
    "state": ("State", "状態"),
    "ssid": ("SSID",),
    "bssid": ("BSSID", "AP BSSID"),
    "band": ("Band", "バンド"),
    "channel": ("Channel", "チャネル"),
    "tx_rate": ("Transmit rate (Mbps)", "送信速度 (Mbps)"),
    "signal": ("Signal", "シグナル"),
    "rssi": ("Rssi", "RSSI"),
}
_WLAN_KEY = {label: field for field, labels in _WLAN_LABELS.items() for label in labels}


def parse_netsh_wlan_interfaces(text: str) -> tuple[WifiInfo, ...]:
    """Connected interfaces of ``netsh wlan show interfaces`` (untested, see above)."""
    blocks: list[dict[str, str]] = []
    for line in text.splitlines():
        match = re.match(r"^\s+(\S.*?)\s*:\s(.*)$", line)
        if not match:
            continue
        field = _WLAN_KEY.get(match.group(1))
        if field == "name":
            blocks.append({})
        if field and blocks:
            blocks[-1].setdefault(field, match.group(2).strip())
    found = []
    for b in blocks:
        state = b.get("state", "").lower()
        if not b.get("ssid") or "disconnect" in state or "切断" in state:
            continue
        channel = leading_int(b.get("channel"))
        band_text = b.get("band", "").replace(" ", "")
        band = band_text if band_text in {"2.4GHz", "5GHz", "6GHz"} else (band_for_channel(channel) if channel else None)
        found.append(
            WifiInfo(
                ssid=b["ssid"],
                bssid=b.get("bssid") or None,
                frequency_mhz=frequency_for_channel(channel, band) if channel else None,
                band=band,
                channel=channel,
                signal_dbm=leading_int(b.get("rssi")),
                tx_rate_mbps=leading_number(b.get("tx_rate")),
                signal_pct=leading_int(b.get("signal")),
                interface=b.get("name"),
            )
        )
    return tuple(found)


# --- detection -------------------------------------------------------------------------------


def detect_windows(runner: CommandRunner, env: Mapping[str, str], probe_icmp: ProbeIcmp = probe_icmp_sockets) -> HostInfo:
    """Collect HostInfo on Windows. Never raises; every gap becomes a note."""
    notes = Notes()
    os_name, os_version, hostname = platform_facts(notes)

    route4: Optional[Route] = None
    text = run(runner, ["route", "print", "-4"], notes, "gateway")
    if text is not None:
        route4 = pick_default_route(r for r in parse_route_print(text) if r.gateway is None or is_ip(r.gateway, 4))
    netsh_name: Optional[str] = None
    if route4 is None:
        text = run(runner, ["netsh", "interface", "ipv4", "show", "route"], notes, "gateway")
        if text is not None:
            netsh_route = pick_default_route(parse_netsh_ipv4_routes(text))
            if netsh_route is not None:
                route4 = Route("default", netsh_route.gateway, None, netsh_route.metric)
                netsh_name = netsh_route.interface

    interface = netsh_name
    gateway4 = route4.gateway if route4 else None
    gateway6 = None
    resolvers: tuple[str, ...] = ()
    adapter = None
    text = run(runner, ["ipconfig", "/all"], notes, "dns")
    if text is not None:
        adapter = pick_adapter(parse_ipconfig(text), route4.interface if route4 else None, netsh_name)
    if adapter is not None:
        interface = adapter.name
        gateway4 = gateway4 or adapter.gateway_ipv4
        gateway6 = adapter.gateway_ipv6
        resolvers = adapter.dns
    else:
        text = run(runner, ["netsh", "interface", "ip", "show", "config"], notes, "dns")
        configs = parse_netsh_ip_config(text) if text else ()
        chosen = next((c for c in configs if c.name == interface), None) or next((c for c in configs if c.gateway), None)
        if chosen is not None:
            interface, resolvers = chosen.name, chosen.dns
            gateway4 = gateway4 or chosen.gateway
    if gateway4 is None:
        notes.add("gateway: no IPv4 default route")
    if not resolvers:
        notes.add("dns: no DNS servers found for the default interface")

    proxy = proxy_from_env(env)
    if proxy is None:
        text = run(runner, ["netsh", "winhttp", "show", "proxy"], notes, "proxy")
        proxy = parse_winhttp_proxy(text) if text else ProxySettings()
        notes.add("proxy: per-user (WinINET/PAC) proxy settings are not read")

    wifi = None
    if adapter is not None and adapter.wireless:
        text = run(runner, ["netsh", "wlan", "show", "interfaces"], notes, "wifi")
        if text is not None:
            found = parse_netsh_wlan_interfaces(text)
            wifi = next((w for w in found if w.interface == interface), found[0] if found else None)
            if wifi is None:
                notes.add("wifi: netsh shows no connected wireless interface")
    notes.add("link_speed: not read on Windows")

    raw_icmp, dgram_icmp = probe_icmp()
    return HostInfo(
        os_name=os_name,
        os_version=os_version,
        hostname=hostname,
        interface=interface,
        gateway_ipv4=gateway4,
        gateway_ipv6=gateway6,
        resolvers=resolvers,
        proxy=proxy,
        link_speed_mbps=None,
        wifi=wifi,
        raw_icmp=raw_icmp,
        dgram_icmp=dgram_icmp,
        notes=tuple(notes.items),
    )
