"""parse_ping on real captured ping outputs from Linux, macOS and Windows (en, ja)."""

from __future__ import annotations

from typing import Optional

import pytest

from giga_netcheck.measure.hostinfo import parse_ping
from giga_netcheck.measure.hostinfo.commands import decode_console

from ._support import crlf, load

CENTOS_O_RTTS = (29.6, 30.1, 35.5, 35.5, 34.9, 29.9, 27.6, 28.6, 35.2, 34.4, 35.9, 35.8, 34.4, 35.5, 36.6, 34.6, 34.6, 36.7, 34.3)

CASES = [
    # os, file, sent, received, loss_pct, errors, (min, avg, max) or None, rtts (None: check length only)
    ("linux", "ping-ip-O-ubuntu1804.txt", 20, 20, 0.0, 0, (0.020, 0.047, 0.057), None),
    ("linux", "ping-hostname-O-centos7.txt", 20, 19, 5.0, 0, (27.656, 33.717, 36.758), CENTOS_O_RTTS),
    ("linux", "ping-quiet-debian.txt", 60, 60, 0.0, 0, (61.425, 99.731, 212.597), ()),
    ("linux", "ping-dest-unreachable.txt", 3, 0, 100.0, 3, None, ()),
    ("macos", "ping-hostname.txt", 3, 3, 0.0, 0, (28.042, 34.670, 41.182), (28.042, 34.786, 41.182)),
    ("macos", "ping-ip-unreachable.txt", 8, 0, 100.0, 6, None, ()),
    ("windows", "ping-en-win7.txt", 10, 10, 0.0, 0, (56.0, 107.0, 194.0), (87.0, 97.0, 56.0, 95.0, 194.0, 98.0, 93.0, 96.0, 96.0, 165.0)),
    ("windows", "ping-ja-success-ctrlc.txt", 3, 3, 0.0, 0, (0.0, 4.0, 11.0), (11.0, 0.0, 1.0)),
    ("windows", "ping-ja-timeout.txt", 4, 0, 100.0, 0, None, ()),
    # Windows says "Received = 4, Lost = 0 (0% loss)" for four "destination net unreachable"
    # replies from a router; none is an echo reply, so we report 0 received, 100 % loss.
    ("windows", "ping-ja-dest-net-unreachable.txt", 4, 0, 100.0, 4, None, ()),
]


@pytest.mark.parametrize(("os_name", "name", "sent", "received", "loss", "errors", "stats", "rtts"), CASES)
def test_parse_ping(
    os_name: str,
    name: str,
    sent: int,
    received: int,
    loss: float,
    errors: int,
    stats: Optional[tuple[float, float, float]],
    rtts: Optional[tuple[float, ...]],
) -> None:
    summary = parse_ping(load(os_name, name))
    assert summary is not None
    assert (summary.sent, summary.received, summary.loss_pct, summary.errors) == (sent, received, loss, errors)
    assert (summary.min_ms, summary.avg_ms, summary.max_ms) == (stats or (None, None, None))
    if rtts is not None:
        assert summary.rtts_ms == rtts
    else:
        assert len(summary.rtts_ms) == received


def test_parse_ping_linux_rtts_in_order() -> None:
    summary = parse_ping(load("linux", "ping-ip-O-ubuntu1804.txt"))
    assert summary is not None
    assert summary.rtts_ms[:3] == (0.020, 0.043, 0.050)
    assert summary.rtts_ms[-1] == 0.049


@pytest.mark.parametrize(
    "name", ["ping-ja-success-ctrlc.txt", "ping-ja-timeout.txt", "ping-ja-dest-net-unreachable.txt", "ping-en-win7.txt"]
)
def test_parse_ping_windows_console_bytes(name: str) -> None:
    """The same result from what a Japanese cmd.exe really emits: CRLF and CP932."""
    text = load("windows", name)
    assert parse_ping(decode_console(crlf(text).encode("cp932"))) == parse_ping(text)


def test_parse_ping_without_summary_counts_lines() -> None:
    # ping killed before its statistics: the reply and timeout lines still tell the story.
    text = load("macos", "ping-hostname.txt").split("\n\n")[0] + "\nRequest timeout for icmp_seq 3\n"
    summary = parse_ping(text)
    assert summary is not None
    assert (summary.sent, summary.received, summary.loss_pct) == (4, 3, 25.0)
    assert (summary.min_ms, summary.max_ms) == (28.042, 41.182)


def test_parse_ping_duplicates_not_counted() -> None:
    text = load("linux", "ping-ip-O-ubuntu1804.txt").replace(
        "icmp_seq=2 ttl=64 time=0.043 ms\n",
        "icmp_seq=2 ttl=64 time=0.043 ms\n64 bytes from 127.0.0.1: icmp_seq=2 ttl=64 time=0.090 ms (DUP!)\n",
    )
    summary = parse_ping(text)
    assert summary is not None and len(summary.rtts_ms) == 20 and 0.090 not in summary.rtts_ms


def test_parse_ping_rejects_other_text() -> None:
    assert parse_ping(load("linux", "ip-route-ubuntu1804.txt")) is None
    assert parse_ping("") is None
