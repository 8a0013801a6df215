"""Shared helpers for the host-information tests: fixture loading and a fake runner."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

DATA = Path(__file__).resolve().parent.parent / "data" / "os"


def load(os_name: str, name: str) -> str:
    """A captured output exactly as stored: bytes decoded as UTF-8, line ends untouched
    (``read_text`` would turn CRLF into LF and hide CRLF bugs)."""
    return (DATA / os_name / name).read_bytes().decode("utf-8")


def crlf(text: str) -> str:
    """The same text with Windows console line ends."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


class FakeRunner:
    """A CommandRunner answering from a table; unknown commands behave as missing (None)."""

    def __init__(self, table: dict[tuple[str, ...], Optional[tuple[int, str]]]) -> None:
        self.table = table
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], timeout_s: float = 2.0) -> Optional[tuple[int, str]]:
        self.calls.append(tuple(argv))
        return self.table.get(tuple(argv))


def fake_files(files: dict[str, str]):
    """A ``read_text`` that knows only ``files`` (path -> text)."""
    return files.get


def no_icmp() -> tuple[bool, bool]:
    """Deterministic ICMP capability for detect_* tests."""
    return False, True
