"""Pieces every OS backend shares: running a command into a note, Wi-Fi band arithmetic,
proxy environment variables, the ICMP socket check and the basic platform facts."""

from __future__ import annotations

import ipaddress
import platform
import re
import socket
from typing import Callable, Iterable, Mapping, Optional, Sequence

from giga_netcheck.measure.hostinfo.commands import DEFAULT_TIMEOUT_S, CommandRunner
from giga_netcheck.measure.hostinfo.models import ProxySettings, Route

DEFAULT_DESTINATIONS = {"default", "0.0.0.0/0", "0/0", "::/0", "0.0.0.0"}


class Notes:
    """Collects the short "what could not be detected and why" strings for HostInfo.notes."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, note: str) -> None:
        """Record one note (duplicates are dropped: fallbacks can fail the same way twice)."""
        if note not in self.items:
            self.items.append(note)


def run(runner: CommandRunner, argv: Sequence[str], notes: Notes, topic: str) -> Optional[str]:
    """Run ``argv``; return its text on success, else add a note under ``topic`` and return None.

    Also guards against a runner that breaks its promise not to raise (a test fake, or a
    future runner), so detection never raises.
    """
    shown = " ".join(argv)
    try:
        result = runner(list(argv), DEFAULT_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any failure here is a note, by design
        notes.add(f"{topic}: `{shown}` raised {type(exc).__name__}: {exc}")
        return None
    if result is None:
        notes.add(f"{topic}: {argv[0]} not found or timed out")
        return None
    code, text = result
    if code != 0:
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "no output")
        notes.add(f"{topic}: `{shown}` failed (rc={code}): {first[:120]}")
        return None
    return text


def pick_default_route(routes: Iterable[Route]) -> Optional[Route]:
    """The default route with the lowest metric (the one the kernel uses); first one on ties."""
    best: Optional[Route] = None
    for route in routes:
        if route.destination != "default":
            continue
        if best is None or route.metric < best.metric:
            best = route
    return best


def is_ip(text: str, version: Optional[int] = None) -> bool:
    """True if ``text`` is an IP address (a ``%zone`` suffix allowed) of the given version."""
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return version is None or addr.version == version


def usable_gateway(text: Optional[str]) -> Optional[str]:
    """Drop the placeholders OSes print for "no gateway" (``::``, ``0.0.0.0``, ``--``)."""
    if not text or not is_ip(text):
        return None
    if ipaddress.ip_address(text.strip()).is_unspecified:
        return None
    return text.strip()


def leading_number(value: Optional[str]) -> Optional[float]:
    """The number a value starts with: ``"-44 dBm"`` -> -44.0, ``"866.7 MBit/s"`` -> 866.7."""
    match = re.match(r"\s*(-?\d+(?:\.\d+)?)", value or "")
    return float(match.group(1)) if match else None


def leading_int(value: Optional[str]) -> Optional[int]:
    """The integer a value starts with: ``"48,80"`` -> 48, ``"88%"`` -> 88."""
    match = re.match(r"\s*(-?\d+)", value or "")
    return int(match.group(1)) if match else None


# --- Wi-Fi channel arithmetic (IEEE 802.11 channel numbering) ---------------------------


def band_for_frequency(freq_mhz: int) -> Optional[str]:
    """``2.4GHz``/``5GHz``/``6GHz`` for a centre frequency, None outside Wi-Fi bands."""
    if 2400 <= freq_mhz <= 2500:
        return "2.4GHz"
    if 4900 <= freq_mhz < 5925:
        return "5GHz"
    if 5925 <= freq_mhz <= 7125:
        return "6GHz"
    return None


def channel_for_frequency(freq_mhz: int) -> Optional[int]:
    """Primary channel number for a centre frequency."""
    if freq_mhz == 2484:
        return 14
    if 2412 <= freq_mhz <= 2472:
        return (freq_mhz - 2407) // 5
    if freq_mhz == 5935:  # 6 GHz channel 2 is the one exception to the 6 GHz formula
        return 2
    if 5950 < freq_mhz <= 7125:
        return (freq_mhz - 5950) // 5
    if 5000 <= freq_mhz < 5925:
        return (freq_mhz - 5000) // 5
    return None


def frequency_for_channel(channel: int, band: Optional[str] = None) -> Optional[int]:
    """Centre frequency of ``channel``. Without a band, 1-14 is taken as 2.4 GHz and
    higher numbers as 5 GHz (6 GHz channel numbers overlap both, so it needs the band)."""
    if band is None:
        band = "2.4GHz" if channel <= 14 else "5GHz"
    if band == "2.4GHz":
        return 2484 if channel == 14 else 2407 + 5 * channel
    if band == "5GHz":
        return 5000 + 5 * channel
    if band == "6GHz":
        return 5935 if channel == 2 else 5950 + 5 * channel
    return None


def band_for_channel(channel: int) -> str:
    """Band guess from a channel number alone (see :func:`frequency_for_channel`)."""
    return "2.4GHz" if channel <= 14 else "5GHz"


# --- proxies -----------------------------------------------------------------------------


def as_proxy_url(value: str) -> str:
    """``host:port`` -> ``http://host:port``; a value with a scheme is kept as is.
    (Proxies are spoken to over plain HTTP unless stated otherwise, as curl assumes.)"""
    value = value.strip()
    return value if "://" in value else f"http://{value}"


def _env_get(env: Mapping[str, str], name: str) -> Optional[str]:
    # Lower case wins, as in curl and Python's urllib: it is the older, de-facto spelling.
    for key in (name.lower(), name.upper()):
        value = env.get(key)
        if value and value.strip():
            return value.strip()
    return None


def proxy_from_env(env: Mapping[str, str]) -> Optional[ProxySettings]:
    """Proxy settings from ``http_proxy``/``https_proxy``/``all_proxy``/``no_proxy`` (either
    case); None if none of the proxy variables is set."""
    every = _env_get(env, "all_proxy")
    http = _env_get(env, "http_proxy") or every
    https = _env_get(env, "https_proxy") or every
    if not http and not https:
        return None
    no_proxy = _env_get(env, "no_proxy") or ""
    return ProxySettings(
        http=as_proxy_url(http) if http else None,
        https=as_proxy_url(https) if https else None,
        no_proxy=tuple(p.strip() for p in no_proxy.split(",") if p.strip()),
        source="env",
    )


# --- ICMP sockets and platform facts -----------------------------------------------------


def probe_icmp_sockets() -> tuple[bool, bool]:
    """(raw ICMP allowed, ICMP datagram "ping socket" allowed), by opening and closing each.

    Creating a socket sends nothing, so this is safe anywhere. Windows has no ICMP
    datagram sockets; the attempt fails there and is reported as False.
    """
    results = []
    for kind in (socket.SOCK_RAW, socket.SOCK_DGRAM):
        try:
            sock = socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP)
        except (OSError, AttributeError, ValueError):
            results.append(False)
        else:
            sock.close()
            results.append(True)
    return results[0], results[1]


def platform_facts(notes: Notes) -> tuple[str, str, str]:
    """(os_name, os_version, hostname) from the standard library, never raising."""
    try:
        os_name = platform.system() or "unknown"
    except Exception:  # noqa: BLE001
        os_name = "unknown"
    os_version = _os_version(os_name, notes)
    try:
        hostname = socket.gethostname()
    except OSError as exc:
        notes.add(f"hostname: {exc}")
        hostname = ""
    return os_name, os_version, hostname


def _os_version(os_name: str, notes: Notes) -> str:
    try:
        if os_name == "Linux":
            try:
                info = platform.freedesktop_os_release()
            except OSError:
                info = {}
            pretty = info.get("PRETTY_NAME") or info.get("NAME")
            kernel = platform.release()
            return f"{pretty} (kernel {kernel})" if pretty else kernel
        if os_name == "Darwin":
            return platform.mac_ver()[0] or platform.release()
        if os_name == "Windows":
            return platform.version()
        return platform.release()
    except Exception as exc:  # noqa: BLE001
        notes.add(f"os_version: {exc}")
        return ""


ProbeIcmp = Callable[[], tuple[bool, bool]]
