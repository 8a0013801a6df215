"""Host information from the operating system, behind one call: :func:`detect`.

The OS-specific work (which commands to run, how to read them) lives in ``linux``,
``macos`` and ``windows``; each has pure ``parse_*`` functions tested on real captured
outputs and one ``detect_*`` function. Commands run through a :class:`CommandRunner`, so a
test passes a fake that returns recorded text. Detection never raises: what could not be
found is written to :attr:`HostInfo.notes`.

    >>> info = detect()                       # doctest: +SKIP
    >>> info.gateway_ipv4, info.resolvers     # doctest: +SKIP
    ('192.168.1.1', ('192.168.1.1',))
"""

from __future__ import annotations

import os
import sys
from typing import Mapping, Optional

from giga_netcheck.measure.hostinfo.commands import DEFAULT_TIMEOUT_S, CommandRunner, decode_console, run_command
from giga_netcheck.measure.hostinfo.common import Notes, platform_facts
from giga_netcheck.measure.hostinfo.linux import detect_linux
from giga_netcheck.measure.hostinfo.macos import detect_macos
from giga_netcheck.measure.hostinfo.models import HostInfo, PingSummary, ProxySettings, Route, WifiInfo
from giga_netcheck.measure.hostinfo.ping import parse_ping
from giga_netcheck.measure.hostinfo.windows import detect_windows

__all__ = [
    "detect",
    "parse_ping",
    "decode_console",
    "run_command",
    "CommandRunner",
    "DEFAULT_TIMEOUT_S",
    "HostInfo",
    "ProxySettings",
    "WifiInfo",
    "PingSummary",
    "Route",
]


def detect(runner: Optional[CommandRunner] = None, env: Optional[Mapping[str, str]] = None) -> HostInfo:
    """Detect this host's network facts with the backend for ``sys.platform``.

    ``runner`` runs the OS commands (default: :func:`run_command`, 2 s timeout each);
    ``env`` supplies the proxy variables (default: ``os.environ``). Never raises.
    """
    runner = runner or run_command
    env = os.environ if env is None else env
    try:
        if sys.platform.startswith("linux"):
            return detect_linux(runner, env)
        if sys.platform == "darwin":
            return detect_macos(runner, env)
        if sys.platform in {"win32", "cygwin"}:
            return detect_windows(runner, env)
        return _empty(f"hostinfo: platform {sys.platform} is not supported")
    except Exception as exc:  # noqa: BLE001 - a bug in a backend must not stop a diagnosis
        return _empty(f"hostinfo: detection failed: {type(exc).__name__}: {exc}")


def _empty(note: str) -> HostInfo:
    notes = Notes()
    os_name, os_version, hostname = platform_facts(notes)
    return HostInfo(
        os_name=os_name,
        os_version=os_version,
        hostname=hostname,
        interface=None,
        gateway_ipv4=None,
        gateway_ipv6=None,
        resolvers=(),
        proxy=ProxySettings(),
        link_speed_mbps=None,
        wifi=None,
        raw_icmp=False,
        dgram_icmp=False,
        notes=(note, *notes.items),
    )
