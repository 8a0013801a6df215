"""The public detect(): dispatch by platform, never raising, and a live run on this Linux host."""

from __future__ import annotations

import json
import sys
from typing import Optional, Sequence

import pytest

from giga_netcheck.measure import hostinfo
from giga_netcheck.measure.hostinfo import HostInfo, detect

from ._support import FakeRunner, load


def _raising_runner(argv: Sequence[str], timeout_s: float = 2.0) -> Optional[tuple[int, str]]:
    raise RuntimeError("runner bug")


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
def test_detect_with_every_command_missing_gives_notes(monkeypatch: pytest.MonkeyPatch, platform: str) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    runner = FakeRunner({})
    info = detect(runner=runner, env={})
    assert info.gateway_ipv4 is None and info.interface is None and info.wifi is None
    assert info.proxy.source is None
    assert any(n.startswith("gateway:") for n in info.notes)
    assert runner.calls, "the backend should have tried commands"
    first = {"linux": "ip", "darwin": "route", "win32": "route"}[platform]
    assert runner.calls[0][0] == first


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
def test_detect_survives_a_raising_runner(monkeypatch: pytest.MonkeyPatch, platform: str) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    info = detect(runner=_raising_runner, env={})
    assert info.gateway_ipv4 is None
    assert any("raised RuntimeError: runner bug" in n for n in info.notes)


def test_detect_unsupported_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "sunos5")
    info = detect(runner=FakeRunner({}), env={})
    assert info.notes[0] == "hostinfo: platform sunos5 is not supported"


def test_detect_turns_backend_bug_into_note(monkeypatch: pytest.MonkeyPatch) -> None:
    import giga_netcheck.measure.hostinfo as hostinfo_pkg

    def broken(*args: object, **kwargs: object) -> HostInfo:
        raise KeyError("oops")

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(hostinfo_pkg, "detect_linux", broken)  # detect() calls the name it imported
    info = detect(runner=FakeRunner({}), env={})
    assert info.notes[0] == "hostinfo: detection failed: KeyError: 'oops'"


def test_detect_darwin_dispatch_uses_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    runner = FakeRunner({("route", "-n", "get", "default"): (0, load("macos", "route-n-get-default-10.12.txt"))})
    info = detect(runner=runner, env={"https_proxy": "http://p:1"})
    assert (info.gateway_ipv4, info.interface, info.proxy.https) == ("10.0.2.2", "en0", "http://p:1")


def test_to_dict_is_json_ready() -> None:
    info = hostinfo.HostInfo(
        os_name="Linux",
        os_version="x",
        hostname="h",
        interface="wlan0",
        gateway_ipv4="192.168.1.1",
        gateway_ipv6=None,
        resolvers=("1.1.1.1",),
        proxy=hostinfo.ProxySettings(no_proxy=("a",)),
        link_speed_mbps=None,
        wifi=hostinfo.WifiInfo(ssid="s", channel=36),
        raw_icmp=False,
        dgram_icmp=True,
        notes=("n",),
    )
    data = json.loads(json.dumps(info.to_dict()))
    assert data["resolvers"] == ["1.1.1.1"]
    assert data["proxy"]["no_proxy"] == ["a"]
    assert data["wifi"]["channel"] == 36 and data["wifi"]["band"] is None
    assert data["notes"] == ["n"] and data["stub_resolver"] is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="live check of the Linux backend")
def test_detect_live_linux() -> None:
    info = detect()
    assert isinstance(info, HostInfo)
    assert info.os_name == "Linux"
    assert info.hostname
    if info.gateway_ipv4 is None:
        assert any(n.startswith("gateway:") for n in info.notes)
    else:
        assert info.interface
    json.dumps(info.to_dict())  # serialisable as run metadata
