"""The default command runner and console decoding (local processes only, no network)."""

from __future__ import annotations

import sys

import pytest

from giga_netcheck.measure.hostinfo import decode_console, run_command
from giga_netcheck.measure.hostinfo.windows import parse_ipconfig

from ._support import crlf, load


def test_decode_console_cp932_fixture() -> None:
    text = crlf(load("windows", "ipconfig-ja-win.txt"))
    raw = text.encode("cp932")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the case decode_console exists for
    decoded = decode_console(raw)
    assert decoded == text
    assert parse_ipconfig(decoded).adapters[4].gateway_ipv4 == "192.168.0.1"


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("デフォルト ゲートウェイ".encode(), "デフォルト ゲートウェイ"),  # chcp 65001
        ("\ufeffDNS サーバー".encode("utf-8"), "DNS サーバー"),  # UTF-8 BOM dropped
        ("要求がタイムアウトしました。".encode("utf-16"), "要求がタイムアウトしました。"),  # PowerShell redirect
        (b"plain ascii\r\n", "plain ascii\r\n"),
    ],
)
def test_decode_console_encodings(raw: bytes, text: str) -> None:
    assert decode_console(raw) == text


def test_decode_console_never_raises() -> None:
    # A trailing 0x81 is neither UTF-8 nor CP932 (a CP932 lead byte with no trail byte).
    assert decode_console(b"abc\x81") == "abc\ufffd"


def test_run_command_success_and_failure_codes() -> None:
    assert run_command([sys.executable, "-c", "print('hi')"]) == (0, "hi\n")
    # Blank stdout: stderr is returned instead, so a failure can be explained in a note.
    result = run_command([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"])
    assert result == (3, "boom")


def test_run_command_missing_and_timeout() -> None:
    assert run_command(["giga-netcheck-no-such-command-xyz"]) is None
    assert run_command([sys.executable, "-c", "import time; time.sleep(5)"], timeout_s=0.2) is None
