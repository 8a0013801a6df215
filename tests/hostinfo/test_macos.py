"""macOS parsers on real captured outputs, and detect_macos over a fake runner."""

from __future__ import annotations

import pytest

from giga_netcheck.measure.hostinfo import macos
from giga_netcheck.measure.hostinfo.models import ProxySettings, Route, WifiInfo

from ._support import FakeRunner, load, no_icmp


@pytest.mark.parametrize(
    ("name", "gateway"),
    [
        ("route-n-get-default.txt", "10.160.24.1"),
        ("route-n-get-default-10.12.txt", "10.0.2.2"),
    ],
)
def test_parse_route_get(name: str, gateway: str) -> None:
    assert macos.parse_route_get(load("macos", name)) == Route("default", gateway, "en0")


def test_parse_route_get_not_in_table() -> None:
    assert macos.parse_route_get("route: writing to routing socket: not in table\n") is None


def test_parse_netstat_rn_1012() -> None:
    text = load("macos", "netstat-rn-10.12.txt")
    v4 = macos.parse_netstat_rn(text, "inet")
    assert len(v4) == 12
    assert v4[0] == Route("default", "10.0.2.2", "en0")
    assert v4[1] == Route("10.0.2/24", None, "en0")  # link#4: on-link, no gateway
    v6 = macos.parse_netstat_rn(text, "inet6")
    assert len(v6) == 9
    assert not [r for r in v6 if r.destination == "default"]


def test_parse_netstat_rnl_with_mtu_column() -> None:
    text = load("macos", "netstat-rnl.txt")
    v4 = macos.parse_netstat_rn(text, "inet")
    assert v4[0] == Route("default", "192.168.1.254", "en0")
    assert v4[-1] == Route("255.255.255.255/32", None, "en0")
    assert [r.interface for r in v4 if r.destination.startswith("192.168.71")] == ["vmnet8"] * 3
    v6_defaults = [r for r in macos.parse_netstat_rn(text, "inet6") if r.destination == "default"]
    assert [(r.gateway, r.interface) for r in v6_defaults] == [
        ("fe80::feae:34ff:fea1:3a80%en0", "en0"),
        ("fe80::%utun0", "utun0"),
        ("fe80::%utun1", "utun1"),
        ("fe80::%utun2", "utun2"),
        ("fe80::%utun3", "utun3"),
    ]


def test_parse_scutil_dns_split_dns() -> None:
    resolvers = macos.parse_scutil_dns(load("macos", "scutil-dns-tailscale-split.txt"))
    assert len(resolvers) == 11
    assert sum(r.scoped for r in resolvers) == 2
    first = resolvers[0]
    assert (first.nameservers, first.interface, first.domain) == (("100.100.100.100",), "utun12", None)
    assert "Supplemental" in first.flags
    assert resolvers[3].domain == "local" and resolvers[3].nameservers == ()
    # The Tailscale resolver is supplemental (split DNS): the default is en0's 1.1.1.1, 8.8.8.8.
    assert macos.scutil_default_resolvers(resolvers) == ("1.1.1.1", "8.8.8.8")


def test_scutil_default_resolvers_falls_back_to_scoped() -> None:
    resolvers = macos.parse_scutil_dns(load("macos", "scutil-dns-tailscale-split.txt"))
    scoped_only = tuple(r for r in resolvers if r.scoped)
    assert macos.scutil_default_resolvers(scoped_only, "utun12") == ("100.100.100.100",)
    assert macos.scutil_default_resolvers(scoped_only, "en0") == ("1.1.1.1", "8.8.8.8")


def test_parse_scutil_proxy_http_enabled() -> None:
    assert macos.parse_scutil_proxy(load("macos", "scutil-proxy-http-enabled.txt")) == ProxySettings(
        http="http://127.0.0.1:8118", https=None, no_proxy=("*.local", "169.254/16"), pac_url=None, source="scutil"
    )


def test_parse_scutil_proxy_disabled_and_pac() -> None:
    disabled = load("macos", "scutil-proxy-http-enabled.txt").replace("HTTPEnable : 1", "HTTPEnable : 0")
    assert macos.parse_scutil_proxy(disabled) == ProxySettings()
    pac = disabled.replace(
        "  HTTPPort", "  ProxyAutoConfigEnable : 1\n  ProxyAutoConfigURLString : http://wpad.school/proxy.pac\n  HTTPPort"
    )
    settings = macos.parse_scutil_proxy(pac)
    assert settings.pac_url == "http://wpad.school/proxy.pac" and settings.http is None


@pytest.mark.parametrize(
    ("name", "iface", "mbps"),
    [
        ("ifconfig-en0-10.12.txt", "en0", 1000),
        ("ifconfig-all.txt", "en0", None),  # Wi-Fi: "media: autoselect"
        ("ifconfig-all.txt", "en1", None),  # "autoselect <full-duplex>", no speed
        ("ifconfig-all.txt", "en9", None),  # no such interface
    ],
)
def test_parse_ifconfig_speed(name: str, iface: str, mbps: int | None) -> None:
    assert macos.parse_ifconfig_speed(load("macos", name), iface) == mbps


def test_parse_ifconfig_speed_10g_in_multi_interface_text() -> None:
    text = load("macos", "ifconfig-all.txt").replace(
        "\tmedia: autoselect <full-duplex>\n\tstatus: inactive\nen2:",
        "\tmedia: autoselect (10Gbase-T <full-duplex>)\n\tstatus: active\nen2:",
        1,
    )
    assert macos.parse_ifconfig_speed(text, "en1") == 10000
    assert macos.parse_ifconfig_speed(text, "en2") is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "airport-I.txt",
            WifiInfo(
                ssid="SnazzleDazzle",
                bssid="3c:37:86:15:ad:f9",
                frequency_mhz=5240,
                band="5GHz",
                channel=48,
                signal_dbm=-66,
                noise_dbm=-90,
                tx_rate_mbps=195.0,
            ),
        ),
        (
            "airport-getinfo-5ghz.txt",
            WifiInfo(
                ssid="Linksys01227_5GHz",
                bssid="31:23:3:1a:9f:1d",
                frequency_mhz=5180,
                band="5GHz",
                channel=36,
                signal_dbm=-50,
                noise_dbm=-92,
                tx_rate_mbps=650.0,
            ),
        ),
    ],
)
def test_parse_airport_info(name: str, expected: WifiInfo) -> None:
    text = load("macos", name)
    assert not macos.is_airport_deprecated(text)
    assert macos.parse_airport_info(text) == expected


def test_airport_sonoma_deprecation_stub() -> None:
    text = load("macos", "airport-I-deprecated-sonoma-14.4.txt")
    assert macos.is_airport_deprecated(text)
    assert macos.parse_airport_info(text) is None


def test_parse_wdutil_info() -> None:
    assert macos.parse_wdutil_info(load("macos", "wdutil-info.txt")) == WifiInfo(
        ssid=None,
        bssid=None,  # "<redacted>" by wdutil itself
        frequency_mhz=2462,
        band="2.4GHz",
        channel=11,
        signal_dbm=-63,
        noise_dbm=-97,
        tx_rate_mbps=162.0,
        interface="en0",
    )


def test_parse_wdutil_info_6ghz_channel() -> None:
    text = load("macos", "wdutil-info.txt").replace("Channel              : 2g11/20", "Channel              : 6g37/160")
    info = macos.parse_wdutil_info(text)
    assert info is not None and (info.band, info.channel, info.frequency_mhz) == ("6GHz", 37, 6135)


# --- detect_macos with a fake runner -----------------------------------------------------


def test_detect_macos_sonoma_wifi_via_wdutil() -> None:
    runner = FakeRunner(
        {
            ("route", "-n", "get", "default"): (0, load("macos", "route-n-get-default.txt")),
            ("route", "-n", "get", "-inet6", "default"): (1, "route: writing to routing socket: not in table\n"),
            ("scutil", "--dns"): (0, load("macos", "scutil-dns-tailscale-split.txt")),
            ("scutil", "--proxy"): (0, load("macos", "scutil-proxy-http-enabled.txt")),
            (macos.AIRPORT, "-I"): (0, load("macos", "airport-I-deprecated-sonoma-14.4.txt")),
            ("wdutil", "info"): (0, load("macos", "wdutil-info.txt")),
            ("ifconfig", "en0"): (0, load("macos", "ifconfig-all.txt")),
        }
    )
    info = macos.detect_macos(runner, {}, no_icmp)
    assert (info.interface, info.gateway_ipv4, info.gateway_ipv6) == ("en0", "10.160.24.1", None)
    assert info.resolvers == ("1.1.1.1", "8.8.8.8")
    assert info.proxy.http == "http://127.0.0.1:8118" and info.proxy.source == "scutil"
    assert info.wifi is not None and info.wifi.signal_dbm == -63 and info.wifi.noise_dbm == -97
    assert info.link_speed_mbps is None
    assert info.notes == (
        "wifi: airport unavailable (removed or deprecated since macOS 14.4)",
        "wifi: SSID/BSSID redacted by wdutil",
    )


def _utun_defaults_first(text: str) -> str:
    """netstat-rnl with en0's IPv6 default moved below the VPN (utun) defaults."""
    lines = text.split("\n")
    en0 = next(i for i, ln in enumerate(lines) if ln.startswith("default") and "%en0" in ln)
    utun3 = next(i for i, ln in enumerate(lines) if ln.startswith("default") and "%utun3" in ln)
    moved = lines.pop(en0)
    lines.insert(utun3, moved)  # utun3's index shifted down by one after the pop
    return "\n".join(lines)


def test_detect_macos_netstat_fallback_and_env_proxy() -> None:
    runner = FakeRunner(
        {
            ("netstat", "-rn"): (0, _utun_defaults_first(load("macos", "netstat-rnl.txt"))),
            ("scutil", "--proxy"): (0, load("macos", "scutil-proxy-http-enabled.txt")),
            (macos.AIRPORT, "-I"): (0, load("macos", "airport-I.txt")),
            ("ifconfig", "en0"): (0, load("macos", "ifconfig-en0-10.12.txt")),
        }
    )
    info = macos.detect_macos(runner, {"HTTP_PROXY": "http://10.0.0.8:3128"}, no_icmp)
    assert info.gateway_ipv4 == "192.168.1.254"
    assert info.gateway_ipv6 == "fe80::feae:34ff:fea1:3a80%en0"  # en0's, not a utun's
    assert info.proxy.http == "http://10.0.0.8:3128" and info.proxy.source == "env"
    assert info.wifi is not None and info.wifi.ssid == "SnazzleDazzle"
    assert info.link_speed_mbps == 1000
    assert info.resolvers == ()
    assert "gateway: route not found or timed out" in info.notes
    assert "dns: scutil not found or timed out" in info.notes
    assert "proxy: system (scutil) proxy settings differ from the environment's" in info.notes


def test_detect_macos_nothing_available() -> None:
    info = macos.detect_macos(FakeRunner({}), {}, no_icmp)
    assert info.gateway_ipv4 is None and info.resolvers == () and info.wifi is None
    assert info.notes == (
        "gateway: route not found or timed out",
        "gateway: netstat not found or timed out",
        "dns: scutil not found or timed out",
        "proxy: scutil not found or timed out",
        "wifi: airport unavailable (removed or deprecated since macOS 14.4)",
        "wifi: wdutil not found or timed out",
    )
