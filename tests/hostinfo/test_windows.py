"""Windows parsers on real captured outputs (English and Japanese, LF and CRLF, UTF-8 and
CP932), and detect_windows over a fake runner."""

from __future__ import annotations

from typing import Callable

import pytest

from giga_netcheck.measure.hostinfo import windows
from giga_netcheck.measure.hostinfo.commands import decode_console
from giga_netcheck.measure.hostinfo.common import pick_default_route
from giga_netcheck.measure.hostinfo.models import ProxySettings, Route, WifiInfo

from ._support import FakeRunner, crlf, load, no_icmp


def _as_is(text: str) -> str:
    return text


def _via_cp932(text: str) -> str:
    """What a Japanese cmd.exe hands us: CRLF, CP932 bytes, decoded by decode_console."""
    return decode_console(crlf(text).encode("cp932"))


# Every Windows parser must read the text as stored, with CRLF, and after a CP932 round trip.
VARIANTS: list[Callable[[str], str]] = [_as_is, crlf, _via_cp932]


@pytest.fixture(params=VARIANTS, ids=["stored", "crlf", "cp932"])
def variant(request: pytest.FixtureRequest) -> Callable[[str], str]:
    return request.param


# --- routes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected", "count"),
    [
        ("route-print-en-win10.txt", Route("default", "192.168.31.1", "192.168.31.221", 30), 47),
        ("route-print-4-en-win10.txt", Route("default", "10.0.0.1", "10.0.0.185", 25), 41),
    ],
)
def test_parse_route_print(name: str, expected: Route, count: int, variant: Callable[[str], str]) -> None:
    routes = windows.parse_route_print(variant(load("windows", name)))
    v4 = [r for r in routes if "." in (r.interface or "")]
    assert len(v4) == count
    assert pick_default_route(v4) == expected


def test_parse_route_print_skips_persistent_and_reads_ipv6_table() -> None:
    routes = windows.parse_route_print(load("windows", "route-print-en-win10.txt"))
    # 157.0.0.0 is listed as both active (via 127.0.0.1) and persistent; counted once.
    assert [r.destination for r in routes].count("157.0.0.0/255.0.0.0") == 1
    v6 = [r for r in routes if r.interface and r.interface.isdigit()]
    assert len(v6) == 26  # eight of them wrapped over two lines
    assert Route("fe80::244e:2f1e:2096:62b2/128", None, "9", 286) in v6
    assert not [r for r in v6 if r.destination == "default"]  # this host has no IPv6 default


def test_parse_route_print_ignores_persistent_ipv6_default() -> None:
    stored = load("windows", "route-print-en-win10.txt")
    tail = "Persistent Routes:\r\n  None\r\n"
    assert stored.endswith(tail)
    text = stored[: -len(tail)] + (
        "Persistent Routes:\r\n If Metric Network Destination      Gateway\r\n  0 4294967295 ::/0                     fe80::1\r\n"
    )
    assert not [r for r in windows.parse_route_print(text) if r.destination == "default" and r.gateway == "fe80::1"]
    active = text.replace("  1    331 ::1/128                  On-link", "  9    256 ::/0                     fe80::1", 1)
    assert Route("default", "fe80::1", "9", 256) in windows.parse_route_print(active)


def test_parse_netsh_ipv4_routes(variant: Callable[[str], str]) -> None:
    routes = windows.parse_netsh_ipv4_routes(variant(load("windows", "netsh-int-ipv4-show-route-en-win10.txt")))
    assert len(routes) == 47
    # The gateway row names no interface; index 5 is "Ethernet 4" in the other rows.
    assert pick_default_route(routes) == Route("default", "10.0.0.1", "Ethernet 4", 0)
    assert Route("172.17.112.0/20", None, "vEthernet (WSL)", 256) in routes


# --- ipconfig ----------------------------------------------------------------------------

IPCONFIG_CASES = [
    # file, hostname, adapter count, chosen adapter name, gw4, gw6, dns
    ("ipconfig-all-en-win10.txt", "DESKTOP-WIN10-PRO", 3, "Ethernet 2", "10.50.13.1", None, ("10.50.13.1",)),
    ("ipconfig-all-en-win10-b.txt", "Supercomputer-14", 4, "Ethernet 3", "10.0.0.1", None, ("8.8.8.8", "208.67.220.220")),
    ("ipconfig-all-en-win11.txt", "DESKTOP-WIN11-HOME", 10, "Wi-Fi", "192.168.1.1", None, ("192.168.1.1",)),
    ("ipconfig-all-en-win7.txt", "DESKTOP-WIN7", 2, "Local Area Connection", "192.168.22.1", None, ("192.168.22.151",)),
    ("ipconfig-ja-win.txt", None, 6, "Wi-Fi", "192.168.0.1", None, ()),
]


@pytest.mark.parametrize(("name", "hostname", "count", "adapter", "gw4", "gw6", "dns"), IPCONFIG_CASES)
def test_parse_ipconfig(
    name: str,
    hostname: str | None,
    count: int,
    adapter: str,
    gw4: str,
    gw6: str | None,
    dns: tuple[str, ...],
    variant: Callable[[str], str],
) -> None:
    config = windows.parse_ipconfig(variant(load("windows", name)))
    assert config.hostname == hostname
    assert len(config.adapters) == count
    chosen = windows.pick_adapter(config)
    assert chosen is not None
    assert (chosen.name, chosen.gateway_ipv4, chosen.gateway_ipv6, chosen.dns) == (adapter, gw4, gw6, dns)


def test_parse_ipconfig_multiline_dns_and_media_state() -> None:
    config = windows.parse_ipconfig(load("windows", "ipconfig-all-en-win10-b.txt"))
    vmnet1 = config.adapters[1]
    assert vmnet1.name == "VMware Network Adapter VMnet1"
    assert vmnet1.dns == ("fec0:0:0:ffff::1%1", "fec0:0:0:ffff::2%1", "fec0:0:0:ffff::3%1")
    assert vmnet1.ipv4 == ("192.168.21.1",)  # "(Preferred)" stripped
    assert vmnet1.gateways == ()
    teredo = config.adapters[3]
    assert (teredo.kind, teredo.connected) == ("Tunnel", False)


def test_parse_ipconfig_japanese_labels() -> None:
    config = windows.parse_ipconfig(load("windows", "ipconfig-ja-win.txt"))
    names = [a.name for a in config.adapters]
    assert names == [
        "イーサネット 4",
        "イーサネット 2",
        "ローカル エリア接続* 1",
        "ローカル エリア接続* 2",
        "Wi-Fi",
        "Bluetooth ネットワーク接続",
    ]
    eth4 = config.adapters[0]
    assert eth4.kind == "イーサネット"
    assert eth4.ipv4 == ("10.145.8.50",)
    assert eth4.gateways == ()  # "::" is a placeholder, not a gateway
    assert [a.connected for a in config.adapters] == [True, True, False, False, True, False]
    assert config.adapters[4].wireless and not eth4.wireless


def test_pick_adapter_by_route_interface_address() -> None:
    config = windows.parse_ipconfig(load("windows", "ipconfig-all-en-win11.txt"))
    chosen = windows.pick_adapter(config, "192.168.213.1")
    assert chosen is not None and chosen.name == "VMware Network Adapter VMnet8"
    assert chosen.description == "VMware Virtual Ethernet Adapter for VMnet8"


def test_parse_ipconfig_ipv6_gateway_continuation() -> None:
    # Dual-stack adapters print the IPv6 gateway first and the IPv4 one on the next line.
    text = load("windows", "ipconfig-all-en-win11.txt").replace(
        "   Default Gateway . . . . . . . . . : 192.168.1.1",
        "   Default Gateway . . . . . . . . . : fe80::1%11\n                                       192.168.1.1",
    )
    chosen = windows.pick_adapter(windows.parse_ipconfig(crlf(text)))
    assert chosen is not None
    assert (chosen.gateway_ipv4, chosen.gateway_ipv6) == ("192.168.1.1", "fe80::1%11")


# --- netsh config, DNS client, proxy -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "netsh-interface-ip-show-config-en.txt",
            windows.NetshIpConfig(
                name="Ethernet 2", ip=("10.0.0.4",), gateway="10.0.0.1", dns=("192.168.0.4", "192.168.0.5"), interface_metric=15
            ),
        ),
        (
            "netsh-interface-ip-show-config-en-virtualbox.txt",
            windows.NetshIpConfig(name="Ethernet", ip=("10.0.2.15",), gateway="10.0.2.2", dns=("10.0.2.3",), interface_metric=25),
        ),
    ],
)
def test_parse_netsh_ip_config(name: str, expected: windows.NetshIpConfig, variant: Callable[[str], str]) -> None:
    assert windows.parse_netsh_ip_config(variant(load("windows", name))) == (expected,)


def test_parse_winhttp_proxy(variant: Callable[[str], str]) -> None:
    assert windows.parse_winhttp_proxy(variant(load("windows", "netsh-winhttp-set-proxy-en.txt"))) == ProxySettings(
        http="http://testProxy:8999", https="http://testProxy:8999", no_proxy=(), source="winhttp"
    )


def test_parse_winhttp_proxy_direct_and_per_scheme() -> None:
    direct = "\nCurrent WinHTTP proxy settings:\n\n    Direct access (no proxy server).\n\n"
    assert windows.parse_winhttp_proxy(direct) == ProxySettings()
    per_scheme = (
        load("windows", "netsh-winhttp-set-proxy-en.txt")
        .replace("testProxy:8999", "http=p1:80;https=p2:443")
        .replace("(none)", "<local>;*.school.example")
    )
    assert windows.parse_winhttp_proxy(per_scheme) == ProxySettings(
        http="http://p1:80", https="http://p2:443", no_proxy=("<local>", "*.school.example"), source="winhttp"
    )


# Synthetic: no real capture of `netsh wlan show interfaces` exists (see tests/data/os/SOURCES.md).
# This checks the parser against the documented layout only.
WLAN_DOCUMENTED = """
There is 1 interface on the system:

    Name                   : Wi-Fi
    Description            : Intel(R) Wi-Fi 6 AX200 160MHz
    State                  : connected
    SSID                   : school-5g
    AP BSSID               : 12:34:56:78:9a:bc
    Band                   : 5 GHz
    Channel                : 44
    Radio type             : 802.11ax
    Receive rate (Mbps)    : 1201
    Transmit rate (Mbps)   : 960.5
    Signal                 : 88%
    Rssi                   : -51
"""


def test_parse_netsh_wlan_interfaces_documented_layout() -> None:
    assert windows.parse_netsh_wlan_interfaces(crlf(WLAN_DOCUMENTED)) == (
        WifiInfo(
            ssid="school-5g",
            bssid="12:34:56:78:9a:bc",
            frequency_mhz=5220,
            band="5GHz",
            channel=44,
            signal_dbm=-51,
            tx_rate_mbps=960.5,
            signal_pct=88,
            interface="Wi-Fi",
        ),
    )
    disconnected = WLAN_DOCUMENTED.replace("State                  : connected", "State : disconnected")
    assert windows.parse_netsh_wlan_interfaces(disconnected) == ()


# --- detect_windows with a fake runner ---------------------------------------------------


def test_detect_windows_japanese_laptop() -> None:
    wlan = WLAN_DOCUMENTED.replace("Transmit rate (Mbps)   : 960.5", "Transmit rate (Mbps)   : 300")
    runner = FakeRunner(
        {
            ("route", "print", "-4"): (1, "The requested operation requires elevation.\r\n"),
            ("netsh", "interface", "ipv4", "show", "route"): (0, crlf(load("windows", "netsh-int-ipv4-show-route-en-win10.txt"))),
            ("ipconfig", "/all"): (0, _via_cp932(load("windows", "ipconfig-ja-win.txt"))),
            ("netsh", "winhttp", "show", "proxy"): (0, crlf(load("windows", "netsh-winhttp-set-proxy-en.txt"))),
            ("netsh", "wlan", "show", "interfaces"): (0, crlf(wlan)),
        }
    )
    info = windows.detect_windows(runner, {}, no_icmp)
    assert info.gateway_ipv4 == "10.0.0.1"  # from netsh: route print failed
    assert info.interface == "Wi-Fi"  # no adapter owns 10.0.0.x here, so the one with a gateway
    assert info.resolvers == ()  # plain ipconfig prints no DNS servers
    assert info.proxy.http == "http://testProxy:8999"
    assert info.wifi is not None and info.wifi.tx_rate_mbps == 300.0
    assert info.link_speed_mbps is None
    assert "gateway: `route print -4` failed (rc=1): The requested operation requires elevation." in info.notes
    assert "dns: no DNS servers found for the default interface" in info.notes


def test_detect_windows_english_route_and_ipconfig() -> None:
    runner = FakeRunner(
        {
            ("route", "print", "-4"): (0, crlf(load("windows", "route-print-4-en-win10.txt"))),
            ("ipconfig", "/all"): (
                0,
                crlf(load("windows", "ipconfig-all-en-win10-b.txt").replace("10.0.0.104(Preferred)", "10.0.0.185(Preferred)")),
            ),
        }
    )
    info = windows.detect_windows(runner, {"no_proxy": "localhost", "http_proxy": "proxy:3128"}, no_icmp)
    assert (info.interface, info.gateway_ipv4) == ("Ethernet 3", "10.0.0.1")
    assert info.resolvers == ("8.8.8.8", "208.67.220.220")
    assert info.proxy == ProxySettings(http="http://proxy:3128", no_proxy=("localhost",), source="env")
    assert info.wifi is None
    assert ("route", "print", "-4") in runner.calls
    assert ("netsh", "wlan", "show", "interfaces") not in runner.calls  # wired adapter


def test_detect_windows_ipconfig_missing_uses_netsh_config() -> None:
    runner = FakeRunner(
        {
            ("netsh", "interface", "ip", "show", "config"): (0, crlf(load("windows", "netsh-interface-ip-show-config-en.txt"))),
        }
    )
    info = windows.detect_windows(runner, {}, no_icmp)
    assert (info.interface, info.gateway_ipv4, info.resolvers) == ("Ethernet 2", "10.0.0.1", ("192.168.0.4", "192.168.0.5"))
    assert "gateway: route not found or timed out" in info.notes
    assert "dns: ipconfig not found or timed out" in info.notes
    assert "proxy: netsh not found or timed out" in info.notes  # winhttp unanswered: a note, not an error
    assert info.proxy == ProxySettings()
