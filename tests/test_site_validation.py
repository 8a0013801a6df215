"""Site files: impossible addresses, ports and names are refused when the file loads (#15 item 4).

Each bad value gets a one-line ConfigError naming the file and the key; values that work (IPv4
and IPv6 literals, host names, internationalised names, ports 1-65535) still load.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from giga_netcheck.config.site import load_site
from giga_netcheck.core.errors import ConfigError
from tests.conftest import clean_env

LONG_LABEL = "a" * 64
LONG_NAME = ".".join(["b" * 63] * 4)  # 255 characters: over 253
COLD_NAME = ".".join(["c" * 63] * 3 + ["d" * 47])  # 239 characters: with the cold label, over 253


def _load(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "school-site.yaml"
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


BAD = [
    pytest.param("dns: {resolvers: ['999.1.1.1:99999']}", "dns.resolvers[0]", "999", id="resolver-octet-and-port"),
    pytest.param("dns: {resolvers: [system, '1.1.1.1:99999']}", "dns.resolvers[1]", "bad port 99999", id="resolver-port-high"),
    pytest.param("dns: {resolvers: ['1.1.1.1:0']}", "dns.resolvers[0]", "bad port 0", id="resolver-port-zero"),
    pytest.param("dns: {resolvers: ['1.1.1.1:dns']}", "dns.resolvers[0]", "bad port", id="resolver-port-text"),
    pytest.param("dns: {resolvers: ['1.1.1']}", "dns.resolvers[0]", "IPv4", id="resolver-three-octets"),
    pytest.param("dns: {resolvers: ['[2001:db8::zz]:53']}", "dns.resolvers[0]", "IPv6", id="resolver-bad-v6"),
    pytest.param("dns: {resolvers: ['[2001:db8::1]:70000']}", "dns.resolvers[0]", "bad port 70000", id="resolver-v6-port"),
    pytest.param("dns: {resolvers: [dns.google]}", "dns.resolvers[0]", "IP address, not by name", id="resolver-name"),
    pytest.param("dns: {names: ['..']}", "dns.names[0]", "empty label", id="name-dots"),
    pytest.param("dns: {names: [www..mext.go.jp]}", "dns.names[0]", "empty label", id="name-empty-label"),
    pytest.param("dns: {names: [.mext.go.jp]}", "dns.names[0]", "empty label", id="name-leading-dot"),
    pytest.param("dns: {names: ['.']}", "dns.names[0]", "empty name", id="name-root"),
    pytest.param(f"dns: {{names: [{LONG_LABEL}.example]}}", "dns.names[0]", "over 63", id="name-label-64"),
    pytest.param(f"dns: {{names: [{LONG_NAME}]}}", "dns.names[0]", "over 238", id="name-over-253"),
    pytest.param(f"dns: {{names: [{COLD_NAME}]}}", "dns.names[0]", "cold query", id="name-no-room-for-cold-label"),
    pytest.param("dns: {names: ['www mext.go.jp']}", "dns.names[0]", "letters, digits", id="name-space"),
    pytest.param("dns: {names: [-bad.example]}", "dns.names[0]", "not at its ends", id="name-leading-hyphen"),
    pytest.param("dns: {names: [203.0.113.999]}", "dns.names[0]", "IPv4", id="name-numeric"),
    pytest.param("targets: {gateway: 999.1.1.1}", "targets.gateway", "IPv4", id="gateway-octet"),
    pytest.param("targets: {gateway: '192.168.1.1:80'}", "targets.gateway", "no port", id="gateway-port"),
    pytest.param("targets: {gateway: 'router..local'}", "targets.gateway", "empty label", id="gateway-empty-label"),
    pytest.param("targets: {gateway: '2001:db8::1::2'}", "targets.gateway", "IPv6", id="gateway-bad-v6"),
    pytest.param("targets: {center: 'http://999.1.1.1:8080'}", "targets.center", "IPv4", id="center-url-host"),
    pytest.param("targets: {center: 'http://board..local:8080'}", "targets.center", "empty label", id="center-url-name"),
    pytest.param("targets: {center: 'http://10.0.0.5:0/'}", "targets.center", "bad port 0", id="center-port-zero"),
    pytest.param("targets: {center: 'http://10.0.0.5:80:80/'}", "targets.center", "bad port", id="center-two-ports"),
    pytest.param("targets: {center: 'http://[2001:db8::zz]:8080/'}", "targets.center", "2001:db8::zz", id="center-bad-v6"),
    pytest.param("targets: {center: 10.0.0.256}", "targets.center", "IPv4", id="center-bare-octet"),
    pytest.param("targets: {internet: [203.0.113.5, '203.0.113.7:8080']}", "targets.internet[1]", "http://host:port", id="bare-host-port"),
    pytest.param(f"targets: {{internet: [{LONG_LABEL}.example]}}", "targets.internet[0]", "over 63", id="internet-label"),
    pytest.param(
        "targets: {internet: [{engine: librespeed, url: 'http://ls.example:65536/backend'}]}",
        "targets.internet[0].url",
        "bad port",
        id="engine-url-port",
    ),
    pytest.param(
        "targets: {internet: [{engine: librespeed, server_list: 'https://x..example/list.json'}]}",
        "targets.internet[0].server_list",
        "empty label",
        id="server-list-url",
    ),
    pytest.param("proxy: {url: 'proxy.board.local:99999'}", "proxy.url", "bad port 99999", id="proxy-port"),
    pytest.param("proxy: {url: 'http://999.0.0.1:8080'}", "proxy.url", "IPv4", id="proxy-host"),
    pytest.param("proxy: {pac: 'http://wpad.local:0/proxy.pac'}", "proxy.pac", "bad port 0", id="pac-port"),
]


@pytest.mark.parametrize("text, key, reason", BAD)
def test_impossible_value_is_refused_naming_file_and_key(tmp_path, text, key, reason):
    p = _load(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_site(p)
    msg = str(info.value)
    assert "\n" not in msg
    assert info.value.key == key, msg
    assert msg.startswith(f"{p}: {key}: "), msg
    assert reason in msg, msg


GOOD = [
    pytest.param("dns: {resolvers: [system, 10.0.0.53, '10.0.0.53:5353', '2001:db8::53', '[2001:db8::53]:53', '[::1]']}", id="resolvers"),
    pytest.param("dns: {resolvers: ['1.1.1.1:65535', '1.1.1.1:1']}", id="resolver-port-bounds"),
    pytest.param(
        "dns: {names: [www.mext.go.jp, 'classroom.google.com.', 港区.example.jp, _dmarc.example.org, xn--eckwd4c7c.jp]}", id="names"
    ),
    pytest.param(f"dns: {{names: [{'a' * 63}.example]}}", id="label-63"),
    pytest.param("targets: {gateway: auto}", id="gateway-auto"),
    pytest.param("targets: {gateway: 192.168.10.1}", id="gateway-v4"),
    pytest.param("targets: {gateway: 'fe80::1'}", id="gateway-v6"),
    pytest.param("targets: {gateway: router.school.local}", id="gateway-name"),
    pytest.param("targets: {gateway: router}", id="gateway-single-label"),
    pytest.param(
        "targets: {center: 'http://[2001:db8::5]:8080/', internet: ['https://speed.example:443/x', 'http://203.0.113.5:65535', 2001:db8::9]}",
        id="targets",
    ),
    pytest.param("targets: {internet: [{engine: speedtest}, {engine: librespeed, url: 'http://10.0.0.5/backend'}]}", id="engines"),
    pytest.param("proxy: {url: 'proxy.board.local:8080', pac: 'http://wpad.board.local/wpad.dat'}", id="proxy"),
]


@pytest.mark.parametrize("text", GOOD)
def test_possible_values_still_load(tmp_path, text):
    load_site(_load(tmp_path, text))


@pytest.mark.parametrize("resolver", ["999.1.1.1:99999", "[fe80::zz]:53"])
def test_cli_refuses_an_impossible_resolver_in_one_line(tmp_path, resolver):
    """The line quotes the value as written (a bracketed value is text, not terminal markup)."""
    # gateway on loopback: were the file let through, the run would still send nothing beyond it
    site = _load(tmp_path, f"targets: {{gateway: 127.0.0.1}}\ndns: {{resolvers: ['{resolver}'], names: ['..']}}")
    env = clean_env()
    proc = subprocess.run(
        [sys.executable, "-m", "giga_netcheck", "run", "--site", str(site), "--no-progress", "--lang", "en"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "school-site.yaml" in lines[0] and "dns.resolvers[0]" in lines[0] and f"'{resolver}'" in lines[0]
