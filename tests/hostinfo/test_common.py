"""Shared helpers: Wi-Fi channel arithmetic and proxy environment variables."""

from __future__ import annotations

from typing import Optional

import pytest

from giga_netcheck.measure.hostinfo import common
from giga_netcheck.measure.hostinfo.models import ProxySettings


@pytest.mark.parametrize(
    ("freq", "band", "channel"),
    [
        (2412, "2.4GHz", 1),
        (2462, "2.4GHz", 11),
        (2484, "2.4GHz", 14),
        (5180, "5GHz", 36),
        (5280, "5GHz", 56),
        (5825, "5GHz", 165),
        (5955, "6GHz", 1),
        (5935, "6GHz", 2),
        (6135, "6GHz", 37),
        (7115, "6GHz", 233),
    ],
)
def test_frequency_channel_round_trip(freq: int, band: str, channel: int) -> None:
    assert common.band_for_frequency(freq) == band
    assert common.channel_for_frequency(freq) == channel
    assert common.frequency_for_channel(channel, band) == freq


def test_frequency_for_channel_without_band_guesses_2_4_or_5() -> None:
    assert common.frequency_for_channel(6) == 2437
    assert common.frequency_for_channel(149) == 5745
    assert common.band_for_frequency(900) is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"HTTP_PROXY": "http://p:8080"}, ProxySettings(http="http://p:8080", source="env")),
        # lower case wins over upper case (curl, urllib)
        (
            {"http_proxy": "low:1", "HTTP_PROXY": "up:2", "HTTPS_PROXY": "https://s:3"},
            ProxySettings(http="http://low:1", https="https://s:3", source="env"),
        ),
        (
            {"all_proxy": "socks5://s:1080", "NO_PROXY": "localhost, .school.example,"},
            ProxySettings(http="socks5://s:1080", https="socks5://s:1080", no_proxy=("localhost", ".school.example"), source="env"),
        ),
        ({"no_proxy": "localhost"}, None),  # a bypass list alone is no proxy
        ({"http_proxy": "   "}, None),
    ],
)
def test_proxy_from_env(env: dict[str, str], expected: Optional[ProxySettings]) -> None:
    assert common.proxy_from_env(env) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.1", "192.168.1.1"),
        ("fe80::1%en0", "fe80::1%en0"),
        ("::", None),
        ("0.0.0.0", None),
        ("--", None),
        ("", None),
        (None, None),
    ],
)
def test_usable_gateway(text: Optional[str], expected: Optional[str]) -> None:
    assert common.usable_gateway(text) == expected
