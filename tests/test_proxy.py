"""Proxies: which proxy a URL takes (site file, environment, no_proxy, PAC), and the proxy probe
through the lab's delaying forward proxy on loopback."""

from __future__ import annotations

import asyncio
import threading

import pytest

from giga_netcheck.config.site import load_site
from giga_netcheck.core.models import Target
from giga_netcheck.measure.probes.base import ProbeContext
from giga_netcheck.measure.probes.proxy import ProxyProbe
from giga_netcheck.measure.proxy_discovery import PacError, PacScript, ProxyConfig, no_proxy_matches, parse_pac_result
from tests.conftest import loopback_site
from tests.lab import proxy as lab_proxy

PAC = """
// the board's PAC file
function FindProxyForURL(url, host) {
    if (isPlainHostName(host) || dnsDomainIs(host, ".board.local")) return "DIRECT";
    if (isInNet(host, "10.0.0.0", "255.0.0.0")) { return "DIRECT"; }
    if (shExpMatch(host, "*.video.example") && !(host == "slow.video.example")) return "DIRECT";
    if (host == "old.example") return "PROXY legacy:3128";
    else if (shExpMatch(url, "https:*")) return "PROXY tls-proxy:8443; DIRECT";
    return "PROXY proxy.board.local:8080; DIRECT";
}
"""


@pytest.mark.parametrize(
    "url, want",
    [
        ("http://intranet/x", None),
        ("http://www.board.local/", None),
        ("http://10.1.2.3:8080/", None),
        ("http://a.video.example/", None),
        ("http://slow.video.example/", "http://proxy.board.local:8080"),
        ("http://old.example/", "http://legacy:3128"),
        ("https://classroom.example/", "http://tls-proxy:8443"),
        ("http://www.mext.go.jp/", "http://proxy.board.local:8080"),
    ],
)
def test_pac_common_forms(url, want):
    from urllib.parse import urlsplit

    result = PacScript(PAC).find(url, urlsplit(url).hostname)
    assert parse_pac_result(result) == want


@pytest.mark.parametrize(
    "text",
    [
        "function FindProxyForURL(url, host) { var p = 'PROXY a:1'; return p; }",
        "function FindProxyForURL(url, host) { if (weekdayRange('MON', 'FRI')) return 'DIRECT'; return 'PROXY a:1'; }",
        "function FindProxyForURL(url, host) { if (isPlainHostName(host)) return 'DIRECT'; }",
        "not javascript at all",
    ],
)
def test_pac_beyond_the_reader_is_refused_not_guessed(text):
    with pytest.raises(PacError):
        PacScript(text)


def test_pac_dns_resolve_uses_the_given_resolver():
    pac = PacScript(
        'function FindProxyForURL(url, host) { if (isInNet(dnsResolve(host), "198.18.0.0", "255.254.0.0")) return "DIRECT"; return "PROXY p:1"; }'
    )
    assert pac.find("http://lab/", "lab", lambda h: "198.18.3.2") == "DIRECT"
    assert pac.find("http://far/", "far", lambda h: "203.0.113.9") == "PROXY p:1"
    assert pac.find("http://nx/", "nx", lambda h: None) == "PROXY p:1"


@pytest.mark.parametrize(
    "patterns, host, port, bypass",
    [
        (("*",), "anything", 80, True),
        (("example.com",), "www.example.com", 80, True),
        ((".example.com",), "example.com", 80, True),
        (("example.com",), "badexample.com", 80, False),
        (("*.local",), "printer.local", 80, True),
        (("<local>",), "intranet", 80, True),
        (("<local>",), "intranet.board.jp", 80, False),
        (("10.0.0.0/8",), "10.2.3.4", 80, True),
        (("10.0.0.0/8",), "11.2.3.4", 80, False),
        (("example.com:8080",), "example.com", 80, False),
        (("example.com:8080",), "example.com", 8080, True),
        (("::1",), "[::1]", 80, True),
    ],
)
def test_no_proxy_matching(patterns, host, port, bypass):
    assert no_proxy_matches(patterns, host, port) is bypass


def test_site_file_wins_over_host_settings_and_direct_overrides_all():
    host = {"http": "http://env-proxy:3128", "https": "http://env-proxy:3128", "no_proxy": ["localhost"], "source": "env"}
    assert ProxyConfig.from_settings(None, host).choose("http://www.example/").proxy == "http://env-proxy:3128"
    assert ProxyConfig.from_settings(None, host).choose("http://localhost/").decided_by == "no_proxy"
    site = ProxyConfig.from_settings({"url": "198.18.2.2:3128"}, host)
    assert site.choose("http://www.example/").proxy == "http://198.18.2.2:3128" and site.source == "site"
    direct = ProxyConfig.from_settings({"direct": True}, host)
    assert not direct.detected and direct.choose("http://www.example/").proxy is None
    assert not ProxyConfig.from_settings(None, {}).detected


def test_unreachable_or_unreadable_pac_means_direct_and_says_so():
    cfg = ProxyConfig.from_settings({"pac": "http://198.18.2.2/proxy.pac"}, None)

    def down(url):
        raise ConnectionRefusedError("refused")

    gone = cfg.with_pac(down)
    assert gone.pac_status == "unreachable" and gone.choose("http://x/").proxy is None
    odd = cfg.with_pac(lambda url: "function FindProxyForURL(url, host) { return myIpAddress(); }")
    assert odd.pac_status == "not-understood" and odd.choose("http://x/").proxy is None
    ok = cfg.with_pac(lambda url: PAC)
    assert ok.pac_status == "evaluated" and ok.choose("http://www.mext.go.jp/").proxy == "http://proxy.board.local:8080"


def test_site_file_proxy_section_is_validated(write_site):
    site = load_site(write_site(loopback_site("http://127.0.0.1:9", proxy={"url": "http://127.0.0.1:3128", "no_proxy": ["10.0.0.0/8"]})))
    assert site.proxy == {"url": "http://127.0.0.1:3128", "no_proxy": ["10.0.0.0/8"]}
    from giga_netcheck.core.errors import ConfigError

    with pytest.raises(ConfigError, match="proxy"):
        load_site(write_site(loopback_site("http://127.0.0.1:9", proxy={"uri": "x"})))


# ------------------------------------------------------------------ the probe, on loopback


def _running(proxy: lab_proxy.Proxy):
    """tests/lab/proxy.py's ``proxy`` serving on 127.0.0.1 in a thread: yields its URL."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict = {}

    async def main():
        box["stop"] = asyncio.Event()
        server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0, limit=lab_proxy.MAX_HEAD)
        box["port"] = server.sockets[0].getsockname()[1]
        started.set()
        async with server:
            await box["stop"].wait()

    t = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    t.start()
    assert started.wait(5)
    yield f"http://127.0.0.1:{box['port']}"
    loop.call_soon_threadsafe(box["stop"].set)
    t.join(5)


@pytest.fixture
def delaying_proxy():
    """The lab proxy with a 200 ms wait per request."""
    yield from _running(lab_proxy.Proxy(200.0))


def _ctx(write_site, server_url, proxy_cfg):
    site = load_site(write_site(loopback_site(server_url)))
    t = Target("internet", "internet", "127.0.0.1", server_url)
    return ProbeContext(site=site, settings=site.probes, targets=[t], servers={"internet": {}}, host={}, resolvers={}, proxy=proxy_cfg)


def test_probe_measures_connect_and_ttfb_through_the_proxy(server, delaying_proxy, write_site):
    cfg = ProxyConfig.from_settings({"url": delaying_proxy}, None)
    out = ProxyProbe().run(_ctx(write_site, server.url, cfg))
    rep = out.proxy
    assert rep.detected and rep.source == "site"
    assert rep.probe_paths["latency"] == "direct" and rep.probe_paths["dns"] == "direct" and rep.probe_paths["proxy"] == "proxy"
    (p,) = rep.paths
    assert p.proxy == delaying_proxy and p.decided_by == "site" and p.error is None
    assert p.connect.method == "tcp-connect" and p.connect.stats.received >= 5
    assert p.ttfb.method == "http-ttfb" and p.ttfb.stats.received >= 5
    assert p.ttfb.stats.p50_ms >= 195.0 > 10 * p.connect.stats.p50_ms  # the proxy's wait, not the network


def test_probe_without_a_proxy_records_direct_paths(server, write_site):
    out = ProxyProbe().run(_ctx(write_site, server.url, None))
    assert out.status == "ok" and not out.proxy.detected
    (p,) = out.proxy.paths
    assert p.proxy is None and p.ttfb is None and p.decided_by == "none"


def test_probe_bypasses_the_proxy_for_no_proxy_hosts(server, delaying_proxy, write_site):
    cfg = ProxyConfig.from_settings({"url": delaying_proxy, "no_proxy": ["127.0.0.0/8"]}, None)
    (p,) = ProxyProbe().run(_ctx(write_site, server.url, cfg)).proxy.paths
    assert p.proxy is None and p.decided_by == "no_proxy"


# ------------------------------------------------------------ bandwidth through the proxy


@pytest.fixture
def counting_proxy():
    """The lab proxy without a wait: (URL, the Proxy and its counters)."""
    proxy = lab_proxy.Proxy(0.0)
    for url in _running(proxy):
        yield url, proxy


def test_bandwidth_goes_through_the_proxy_and_records_it(server, counting_proxy, write_site):
    from giga_netcheck.measure.probes.bandwidth import BandwidthProbe

    url, proxy = counting_proxy
    cfg = ProxyConfig.from_settings({"url": url}, None)
    out = BandwidthProbe().run(_ctx(write_site, server.url, cfg))
    assert out.status == "ok", out.reason
    assert [(m.direction, m.streams) for m in out.bandwidth] == [("download", 2), ("upload", 2), ("download", 1)]
    assert all(m.proxy == url and m.goodput_mbps for m in out.bandwidth)
    assert proxy.requests >= 5  # every stream's requests went through it
    down = sum(m.bytes_total for m in out.bandwidth if m.direction == "download")
    up = sum(m.bytes_total for m in out.bandwidth if m.direction == "upload")
    assert proxy.bytes_down >= down > 0  # the client cannot read more than the proxy relayed
    assert proxy.bytes_up > up // 2 > 0  # uploads relayed as chunked bodies, minus what was in flight
    # the proxy probe says the bandwidth probe took the proxy; ICMP/UDP/DNS stay direct
    paths = ProxyProbe().run(_ctx(write_site, server.url, cfg)).proxy.probe_paths
    assert paths["bandwidth"] == "proxy" and paths["latency"] == paths["dns"] == "direct"


@pytest.mark.parametrize("proxy_section", [None, {"no_proxy": ["127.0.0.0/8"]}])
def test_bandwidth_without_an_applicable_proxy_goes_direct(server, counting_proxy, write_site, proxy_section):
    from giga_netcheck.measure.probes.bandwidth import BandwidthProbe

    url, proxy = counting_proxy
    cfg = None if proxy_section is None else ProxyConfig.from_settings({"url": url, **proxy_section}, None)
    out = BandwidthProbe().run(_ctx(write_site, server.url, cfg))
    assert out.bandwidth and all(m.proxy is None and m.goodput_mbps for m in out.bandwidth)
    assert proxy.requests == 0
    if cfg is not None:
        assert ProxyProbe().run(_ctx(write_site, server.url, cfg)).proxy.probe_paths["bandwidth"] == "direct"


@pytest.mark.parametrize(
    "url, shown",
    [
        ("http://user:s3cret@proxy.example:3128", "http://***@proxy.example:3128"),
        ("http://proxy.example:3128", "http://proxy.example:3128"),
        (None, None),
    ],
)
def test_without_credentials(url, shown):
    from giga_netcheck.measure.proxy_discovery import without_credentials

    assert without_credentials(url) == shown


def test_probe_never_records_the_proxy_password(server, delaying_proxy, write_site):
    with_pw = delaying_proxy.replace("http://", "http://pupil:s3cret@")
    cfg = ProxyConfig.from_settings({"url": with_pw}, None)
    out = ProxyProbe().run(_ctx(write_site, server.url, cfg))
    (p,) = out.proxy.paths
    assert p.error is None and p.ttfb.stats.received >= 5  # the credentials were used to connect
    assert "s3cret" not in repr(out.proxy) and p.proxy == delaying_proxy.replace("http://", "http://***@")


def test_bandwidth_through_a_proxy_with_credentials_records_it_without_them(server, counting_proxy, write_site):
    from giga_netcheck.measure.probes.bandwidth import BandwidthProbe

    url, proxy = counting_proxy
    with_password = url.replace("http://", "http://teacher:s3cret@")
    out = BandwidthProbe().run(_ctx(write_site, server.url, ProxyConfig.from_settings({"url": with_password}, None)))
    assert proxy.requests >= 5 and out.bandwidth
    assert all(m.proxy == url.replace("http://", "http://***@") for m in out.bandwidth)
    assert "s3cret" not in repr(out.bandwidth)
