"""Linux parsers on real captured outputs, and detect_linux over a fake runner."""

from __future__ import annotations

import pytest

from giga_netcheck.measure.hostinfo import linux
from giga_netcheck.measure.hostinfo.common import pick_default_route
from giga_netcheck.measure.hostinfo.models import Route, WifiInfo

from ._support import FakeRunner, fake_files, load, no_icmp

# --- routes ------------------------------------------------------------------------------

ROUTE_TEXT_CASES = [
    # file, (gateway, interface, metric) of the chosen default, number of routes parsed
    ("ip-route-list-0slash0-ubuntu1804.txt", ("192.168.16.2", "ens33", 100), 1),
    ("ip-route-list-default-two-gateways.txt", ("192.168.1.254", "eth0", 100), 2),
    ("ip-route-list-default-wlan0.txt", ("192.168.1.254", "wlan0", 600), 1),
    ("ip-route-show-dhcp.txt", ("10.16.112.1", "ens192", 100), 3),
    ("ip-route-ubuntu1804.txt", ("10.0.2.2", "enp0s3", 100), 4),
]


@pytest.mark.parametrize(("name", "expected", "count"), ROUTE_TEXT_CASES)
def test_parse_ip_route_default(name: str, expected: tuple[str, str, int], count: int) -> None:
    routes = linux.parse_ip_route(load("linux", name))
    assert len(routes) == count
    best = pick_default_route(routes)
    assert best is not None
    assert (best.gateway, best.interface, best.metric) == expected


def test_parse_ip_route_keeps_non_default_routes() -> None:
    routes = linux.parse_ip_route(load("linux", "ip-route-ubuntu1804.txt"))
    assert routes[3] == Route("172.17.0.0/16", None, "docker0", 0)
    assert routes[2] == Route("169.254.0.0/16", None, "enp0s3", 1000)


def test_parse_ip_route_json_picks_lowest_metric() -> None:
    routes = linux.parse_ip_route_json(load("linux", "ip-d-j-route-two-defaults.json.txt"))
    assert len(routes) == 6
    defaults = [r for r in routes if r.destination == "default"]
    assert [(r.interface, r.metric) for r in defaults] == [("enp0s31f6", 100), ("wlan0", 600)]
    assert pick_default_route(routes) == Route("default", "192.168.178.1", "enp0s31f6", 100)


def test_parse_ip_route_json_rejects_text() -> None:
    assert linux.parse_ip_route_json(load("linux", "ip-route-ubuntu1804.txt")) == ()


# --- DNS ---------------------------------------------------------------------------------


def test_parse_resolv_conf_stub() -> None:
    assert linux.parse_resolv_conf(load("linux", "resolv.conf-systemd-resolved-stub.txt")) == ("127.0.0.53",)


def test_resolvectl_single_link_ubuntu() -> None:
    status = linux.parse_resolvectl_status(load("linux", "resolvectl-status-link-ubuntu2604.txt"))
    assert status.global_servers == ()
    (link,) = status.links
    assert (link.index, link.name) == (2, "enp0s3")
    assert link.servers == ("8.8.8.8", "8.8.4.4", "1.1.1.1")
    assert link.current_server == "8.8.8.8"
    assert link.default_route is True
    assert linux.resolved_upstream(status, "enp0s3") == ("8.8.8.8", "8.8.4.4", "1.1.1.1")


def test_resolvectl_multilink_nixos() -> None:
    status = linux.parse_resolvectl_status(load("linux", "resolvectl-status-multilink-nixos.txt"))
    # The fallback list wraps over three lines; DoT server names after '#' are dropped.
    assert len(status.fallback_servers) == 12
    assert status.fallback_servers[:2] == ("1.1.1.1", "8.8.8.8")
    assert status.fallback_servers[-1] == "2620:fe::9"
    assert [(ln.name, ln.default_route) for ln in status.links] == [("eno2", False), ("eno1", True), ("wlan0", False)]
    assert status.links[1].current_server == "fd64::fffe"
    assert status.links[2].servers == ()
    # eno2 has the same servers but "Default Route: no"; wlan0 has none: only eno1 counts,
    # and the fallback servers are not used while a link has servers.
    assert linux.resolved_upstream(status, "eno1") == ("10.64.0.254", "fd64::fffe")
    assert linux.resolved_upstream(status, None) == ("10.64.0.254", "fd64::fffe")


def test_resolved_upstream_skips_links_without_default_route() -> None:
    text = load("linux", "resolvectl-status-multilink-nixos.txt").replace(
        "       DNS Servers: 10.64.0.254 fd64::fffe\n     Default Route: no", "       DNS Servers: 192.0.2.53\n     Default Route: no", 1
    )
    status = linux.parse_resolvectl_status(text)
    assert status.links[0].servers == ("192.0.2.53",)
    assert linux.resolved_upstream(status, "eno2") == ("10.64.0.254", "fd64::fffe")


def test_resolved_upstream_uses_fallback_only_when_nothing_else() -> None:
    status = linux.parse_resolvectl_status(load("linux", "resolvectl-status-multilink-nixos.txt"))
    bare = linux.ResolvedStatus(status.global_servers, status.fallback_servers, ())
    assert linux.resolved_upstream(bare, None) == status.fallback_servers


# --- link speed --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mbps"),
    [
        ("ethtool-enp0s3-1000baseT.txt", 1000),
        ("ethtool-enp1s0-40G-fibre.txt", 40000),
    ],
)
def test_parse_ethtool_speed(name: str, mbps: int) -> None:
    assert linux.parse_ethtool_speed(load("linux", name)) == mbps


@pytest.mark.parametrize(("text", "mbps"), [("1000\n", 1000), ("-1\n", None), ("", None), ("2500", 2500)])
def test_parse_sysfs_speed(text: str, mbps: int | None) -> None:
    assert linux.parse_sysfs_speed(text) == mbps


def test_parse_ethtool_unknown_speed() -> None:
    text = load("linux", "ethtool-enp0s3-1000baseT.txt").replace("Speed: 1000Mb/s", "Speed: Unknown!")
    assert linux.parse_ethtool_speed(text) is None


# --- Wi-Fi -------------------------------------------------------------------------------

IW_CASES = [
    (
        "iw-dev-link-vht80.txt",
        WifiInfo(
            ssid="HOME5",
            bssid="64:d1:54:68:93:ae",
            frequency_mhz=5280,
            band="5GHz",
            channel=56,
            signal_dbm=-44,
            tx_rate_mbps=866.7,
            interface="wlp0s20f3",
        ),
    ),
    (
        "iw-dev-link-full-bssflags.txt",
        WifiInfo(
            ssid="xxx", bssid="xx:xx", frequency_mhz=5300, band="5GHz", channel=60, signal_dbm=-60, tx_rate_mbps=173.3, interface="wlan0"
        ),
    ),
    (
        "iw-dev-link-minimal-rtl8812au.txt",
        WifiInfo(
            ssid="xxx", bssid="xx:xx", frequency_mhz=5300, band="5GHz", channel=60, signal_dbm=-45, tx_rate_mbps=216.7, interface="wlx00"
        ),
    ),
]


@pytest.mark.parametrize(("name", "expected"), IW_CASES)
def test_parse_iw_link(name: str, expected: WifiInfo) -> None:
    assert linux.parse_iw_link(load("linux", name)) == expected


def test_parse_iw_link_not_connected_and_escaped_ssid() -> None:
    assert linux.parse_iw_link("Not connected.\n") is None
    # iw escapes non-ASCII SSID bytes; a Japanese school SSID must come back readable.
    text = load("linux", "iw-dev-link-vht80.txt").replace("SSID: HOME5", "SSID: \\xe5\\xad\\xa6\\xe6\\xa0\\xa1-5G")
    info = linux.parse_iw_link(text)
    assert info is not None and info.ssid == "学校-5G"


def test_parse_nmcli_device_show() -> None:
    (dev,) = linux.parse_nmcli_device_show(load("linux", "nmcli-device-show-ens33.txt"))
    assert dev == linux.NmcliDevice(name="ens33", type="ethernet", gateway_ipv4="192.168.71.2", gateway_ipv6=None, dns=("192.168.71.2",))


def test_parse_nmcli_wifi_list_terse_escapes() -> None:
    rows = linux.parse_nmcli_wifi_list(load("linux", "nmcli-t-wifi-list-masked.txt"), ("ssid", "bssid", "signal", "security"))
    assert len(rows) == 9
    assert rows[0] == {"SSID": "XXXXXXXXX", "BSSID": "00:00:XX:00:0X:X0", "SIGNAL": "00", "SECURITY": "WPA1"}
    assert rows[5]["SSID"] == "XXXX XX-XX XXXXX "  # trailing space kept
    assert rows[5]["SECURITY"] == ""
    assert rows[6]["SECURITY"] == "WPA2 802.1X"
    assert [r["BSSID"] for r in rows][-1] == "0X:X0:0X:00:X0:00"


def test_wifi_from_nmcli_active_row() -> None:
    text = (
        "no:Other:AA\\:BB\\:CC\\:DD\\:EE\\:01:2437 MHz:6:130 Mbit/s:40\nyes:School:AA\\:BB\\:CC\\:DD\\:EE\\:02:5180 MHz:36:540 Mbit/s:75\n"
    )
    rows = linux.parse_nmcli_wifi_list(text, linux.NMCLI_WIFI_FIELDS)
    assert linux.wifi_from_nmcli(rows, "wlan0") == WifiInfo(
        ssid="School",
        bssid="AA:BB:CC:DD:EE:02",
        frequency_mhz=5180,
        band="5GHz",
        channel=36,
        tx_rate_mbps=540.0,
        signal_pct=75,
        interface="wlan0",
    )


# --- detect_linux with a fake runner -----------------------------------------------------


def _ok(text: str) -> tuple[int, str]:
    return 0, text


def test_detect_linux_stub_resolver_and_wired_speed() -> None:
    runner = FakeRunner(
        {
            ("ip", "-j", "-4", "route", "list", "default"): _ok(load("linux", "ip-d-j-route-two-defaults.json.txt")),
            ("ip", "-j", "-6", "route", "list", "default"): _ok("[]\n"),
            ("resolvectl", "status"): _ok(load("linux", "resolvectl-status-multilink-nixos.txt")),
            ("ethtool", "enp0s31f6"): _ok(load("linux", "ethtool-enp0s3-1000baseT.txt")),
        }
    )
    files = fake_files(
        {
            "/etc/resolv.conf": load("linux", "resolv.conf-systemd-resolved-stub.txt"),
            "/sys/class/net/enp0s31f6/uevent": "INTERFACE=enp0s31f6\nIFINDEX=2\n",
            "/sys/class/net/enp0s31f6/speed": "-1\n",  # sysfs blank -> ethtool is asked
        }
    )
    info = linux.detect_linux(runner, {"https_proxy": "proxy.school.example:8080"}, files, no_icmp)
    assert info.interface == "enp0s31f6"
    assert info.gateway_ipv4 == "192.168.178.1"
    assert info.gateway_ipv6 is None
    assert info.stub_resolver == "127.0.0.53"
    assert info.resolvers == ("10.64.0.254", "fd64::fffe")
    assert info.link_speed_mbps == 1000
    assert info.wifi is None
    assert info.proxy.https == "http://proxy.school.example:8080"
    assert info.proxy.http is None and info.proxy.source == "env"
    assert (info.raw_icmp, info.dgram_icmp) == (False, True)
    assert info.notes == ()


def test_detect_linux_wifi_and_text_route_fallback() -> None:
    runner = FakeRunner(
        {
            # Old iproute2 rejects -j; the text form answers.
            ("ip", "-j", "-4", "route", "list", "default"): (255, 'Option "-j" is unknown, try "ip -help".\n'),
            ("ip", "-o", "-4", "route", "list", "default"): _ok(load("linux", "ip-route-list-default-wlan0.txt")),
            ("ip", "-o", "-6", "route", "list", "default"): _ok("default via fe80::1 dev wlan0 proto ra metric 600 pref medium\n"),
            ("iw", "dev", "wlan0", "link"): _ok(load("linux", "iw-dev-link-full-bssflags.txt")),
        }
    )
    files = fake_files(
        {
            "/etc/resolv.conf": "nameserver 192.168.1.254\nnameserver 8.8.8.8\n",
            "/sys/class/net/wlan0/uevent": "DEVTYPE=wlan\nINTERFACE=wlan0\n",
        }
    )
    info = linux.detect_linux(runner, {}, files, no_icmp)
    assert (info.interface, info.gateway_ipv4, info.gateway_ipv6) == ("wlan0", "192.168.1.254", "fe80::1")
    assert info.resolvers == ("192.168.1.254", "8.8.8.8")
    assert info.stub_resolver is None
    assert info.wifi is not None and (info.wifi.signal_dbm, info.wifi.channel) == (-60, 60)
    assert info.link_speed_mbps is None
    assert not any("ethtool" in n for n in info.notes)  # Wi-Fi: no wired speed asked
    assert info.notes == ()


def test_detect_linux_missing_commands_become_notes() -> None:
    files = fake_files({"/etc/resolv.conf": load("linux", "resolv.conf-systemd-resolved-stub.txt")})
    info = linux.detect_linux(FakeRunner({}), {}, files, no_icmp)
    assert info.gateway_ipv4 is None and info.interface is None
    assert info.resolvers == ("127.0.0.53",)
    assert "gateway: ip not found or timed out" in info.notes
    assert "dns: resolvectl not found or timed out" in info.notes
    assert any(n.startswith("dns: resolv.conf points at local stub 127.0.0.53") for n in info.notes)


def test_detect_linux_no_default_route_and_wifi_tools_missing() -> None:
    runner = FakeRunner(
        {
            ("ip", "-j", "-4", "route", "list", "default"): _ok("[]\n"),
            ("ip", "-j", "-6", "route", "list", "default"): _ok(
                '[{"dst":"default","gateway":"fe80::1","dev":"wlan0","metric":1024,"flags":[]}]'
            ),
        }
    )
    files = fake_files({"/sys/class/net/wlan0/uevent": "DEVTYPE=wlan\n"})
    info = linux.detect_linux(runner, {}, files, no_icmp)
    assert info.gateway_ipv4 is None
    assert (info.interface, info.gateway_ipv6) == ("wlan0", "fe80::1")
    assert info.wifi is None
    assert "gateway: no IPv4 default route" in info.notes
    assert "wifi: iw not found or timed out" in info.notes
    assert "wifi: nmcli not found or timed out" in info.notes
    assert "dns: /etc/resolv.conf not readable" in info.notes
