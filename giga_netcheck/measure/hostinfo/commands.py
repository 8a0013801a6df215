"""Running OS commands: one small protocol, so tests swap in recorded outputs.

A :class:`CommandRunner` is any callable ``(argv, timeout_s) -> (returncode, text) | None``.
``None`` means the command could not give output at all (missing, not executable, timed
out); a non-zero return code is still returned with its text so callers can say why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Optional, Protocol, Sequence

DEFAULT_TIMEOUT_S = 2.0
"""Host facts come from local commands that answer in milliseconds; anything slower is
stuck (a hung NFS mount, a wedged NetworkManager) and must not delay the diagnosis."""

CommandResult = Optional[tuple[int, str]]


class CommandRunner(Protocol):
    """Runs one command; never raises."""

    def __call__(self, argv: Sequence[str], timeout_s: float = DEFAULT_TIMEOUT_S) -> CommandResult:
        """Return ``(returncode, text)``, or None if the command is missing or timed out."""
        ...


def decode_console(data: bytes) -> str:
    """Decode console output: UTF-8 first, then CP932 (Japanese ``cmd.exe``), never raising.

    Japanese Windows prints ``ipconfig``/``ping`` in CP932 unless ``chcp 65001`` is active.
    UTF-8 is tried first because valid CP932 text with Japanese in it is almost never valid
    UTF-8, while the reverse often decodes to mojibake. A BOM selects UTF-16 (PowerShell
    redirections). Anything else falls back to UTF-8 with replacement characters.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    if sys.platform != "win32":
        # Parsers match English labels; Unix tools honour the locale, so pin it. C.UTF-8
        # keeps non-ASCII SSIDs intact; where it does not exist tools fall back to C.
        env["LC_ALL"] = "C.UTF-8"
    return env


def run_command(argv: Sequence[str], timeout_s: float = DEFAULT_TIMEOUT_S) -> CommandResult:
    """Default :class:`CommandRunner`: run ``argv`` without a shell and without stdin.

    Returns stdout, or stderr when stdout is blank (error messages, and tools such as
    macOS ``airport`` that print their deprecation notice there), decoded with
    :func:`decode_console`. Returns None if the program is missing, not runnable, or
    exceeds ``timeout_s`` (the child is killed).
    """
    try:
        proc = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,  # a command that prompts (sudo, wdutil) must not hang
            capture_output=True,
            timeout=timeout_s,
            env=_child_env(),
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    out = proc.stdout if proc.stdout.strip() else proc.stderr
    return proc.returncode, decode_console(out)
