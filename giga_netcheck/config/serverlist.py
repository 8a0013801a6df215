"""LibreSpeed server list files (LibreSpeed's JSON format): parsed when a site file names one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import urljoin

MAX_LIST_BYTES = 1 << 20
KEYS = ("name", "server", "dlURL", "ulURL", "pingURL", "getIpURL")


@dataclass(frozen=True)
class LibreSpeedServer:
    """One entry of a LibreSpeed server list."""

    name: str
    server: str
    dlURL: str  # noqa: N815 - LibreSpeed's key names, kept so a list round-trips
    ulURL: str  # noqa: N815
    pingURL: str  # noqa: N815
    getIpURL: str  # noqa: N815
    id: Optional[str] = None

    def url(self, key: str, secure: bool = False) -> str:
        """Absolute URL of one of the paths; ``//host/`` takes http or https from ``secure``."""
        base = self.server
        if base.startswith("//"):
            base = ("https:" if secure else "http:") + base
        if not base.endswith("/"):
            base += "/"
        return urljoin(base, str(getattr(self, key)))


def parse_server_list(text: str, source: str) -> list[LibreSpeedServer]:
    """LibreSpeed's JSON server list; ValueError naming the entry and key that do not fit."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(data, list) or not data:
        raise ValueError(f"{source}: expected a JSON array of servers (LibreSpeed's server list format)")
    out = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise ValueError(f"{source}: [{i}]: expected an object with {', '.join(KEYS)}")
        for k in KEYS:
            if not isinstance(entry.get(k), str) or not entry[k].strip():
                raise ValueError(f"{source}: [{i}].{k}: missing or not a string (LibreSpeed: none of the keys can be omitted)")
        sid = entry.get("id")
        name, server, dl, ul, ping, getip = (entry[k].strip() for k in KEYS)
        out.append(LibreSpeedServer(name, server, dl, ul, ping, getip, id=None if sid is None else str(sid)))
    return out


def read_server_list_file(source: str) -> list[LibreSpeedServer]:
    """A server list from a file (at most 1 MiB); OSError or ValueError naming the file."""
    p = Path(source)
    if p.stat().st_size > MAX_LIST_BYTES:
        raise ValueError(f"{source}: larger than {MAX_LIST_BYTES // 1024} KiB: not a server list")
    return parse_server_list(p.read_text(encoding="utf-8"), source)
