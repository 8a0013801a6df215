"""Shared helpers for the benchmark scripts: reference tools, process memory, printing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        sys.exit(f"bench: missing tools: {', '.join(missing)} (Debian: iperf3 dnsutils iputils-ping iproute2)")
    if os.geteuid() != 0 and any(t in ("ip", "tc") for t in tools):
        sys.exit("bench: needs root (network namespaces)")


def iperf3(
    server: str,
    *,
    seconds: float,
    streams: int = 1,
    reverse: bool = False,
    omit: float = 1.0,
    port: int = 5201,
    netns: Optional[str] = None,
) -> float:
    """iperf3 client goodput in Mbit/s (received side), omitting the first ``omit`` seconds."""
    cmd = ["iperf3", "-c", server, "-p", str(port), "-t", str(seconds), "-O", str(omit), "-P", str(streams), "-J"]
    if reverse:
        cmd.append("-R")
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + omit + 30)
    doc = json.loads(out.stdout)
    if "error" in doc:
        raise RuntimeError(f"iperf3: {doc['error']}")
    return doc["end"]["sum_received"]["bits_per_second"] / 1e6


def gap_pct(ours: Optional[float], ref: Optional[float]) -> str:
    if not ours or not ref:
        return "n/a"
    return f"{(ours - ref) / ref * 100:+.1f}%"


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> None:
    cols = list(zip(*([header] + [[str(c) for c in r] for r in rows])))
    widths = [max(len(str(c)) for c in col) for col in cols]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


def wait_http(url: str, timeout: float = 10.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")
