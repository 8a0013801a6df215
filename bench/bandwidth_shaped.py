"""Benchmark: the own engine against iperf3 through a tbf-shaped veth pair.

    sudo flock /tmp/gnc-bench.lock python bench/bandwidth_shaped.py [--rates 1 2 5 20 100 500] [--seconds 8]

Two network namespaces made here (``gncb-<id>-a`` with the client, ``gncb-<id>-b`` with
`giga-netcheck serve` and `iperf3 -s`), joined by a veth pair shaped with `tc tbf` in both
directions at each rate. For each rate, download and upload are measured by `giga-netcheck
run` (4 streams, its normal warm-up discard) and by iperf3 (-P 4, -O the same warm-up) on the
same path in the same run. Target: ours within 3% of iperf3. Everything is torn down at the end.

Per rate and direction it prints our goodput, iperf3's, their ratio, and the p50 and p90 of our
100 ms samples (after the warm-up) divided by our goodput: on a steady shaped link both sit near
1.0 when the samples count bytes as they arrive (target: p50 within 10% of the goodput). The
default rates run from a classroom's share (1 Mbit/s) to 500 Mbit/s; ``--rates`` picks any.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import yaml
from _common import gap_pct, iperf3, need, table

A_IP, B_IP = "198.18.200.1", "198.18.200.2"


def sh(*cmd: str, check: bool = True) -> None:
    subprocess.run(cmd, check=check, capture_output=True)


class Pair:
    def __init__(self) -> None:
        rid = secrets.token_hex(2)
        self.a, self.b = f"gncb-{rid}-a", f"gncb-{rid}-b"
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> Pair:
        sh("ip", "netns", "add", self.a)
        sh("ip", "netns", "add", self.b)
        sh("ip", "-n", self.a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", self.b)
        sh("ip", "-n", self.a, "addr", "add", f"{A_IP}/30", "dev", "va")
        sh("ip", "-n", self.b, "addr", "add", f"{B_IP}/30", "dev", "vb")
        for ns, dev in ((self.a, "va"), (self.b, "vb")):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        return self

    def shape(self, mbit: int) -> None:
        burst_kb = max(32, mbit * 1000 // 8 // 250 // 1024 * 2)  # >= two ticks' worth at HZ=250
        for ns, dev in ((self.a, "va"), (self.b, "vb")):
            sh(
                "ip",
                "netns",
                "exec",
                ns,
                "tc",
                "qdisc",
                "replace",
                "dev",
                dev,
                "root",
                "tbf",
                "rate",
                f"{mbit}mbit",
                "burst",
                f"{burst_kb}kb",
                "latency",
                "20ms",
            )

    def start(self, ns: str, *cmd: str) -> subprocess.Popen:
        p = subprocess.Popen(
            ["ip", "netns", "exec", ns, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        self.procs.append(p)
        return p

    def wait_port(self, host: str, port: int, timeout: float = 30.0) -> None:
        """Until a server in the pair listens (a loaded machine starts `serve` slowly)."""
        probe = f"import socket; socket.create_connection(({host!r}, {port}), 1).close()"
        deadline = time.monotonic() + timeout
        while subprocess.run(["ip", "netns", "exec", self.a, sys.executable, "-c", probe], capture_output=True).returncode:
            if time.monotonic() > deadline:
                sys.exit(f"bench: nothing listens on {host}:{port} after {timeout:.0f} s")
            time.sleep(0.3)

    def __exit__(self, *exc) -> None:
        for p in self.procs:
            try:
                os.killpg(p.pid, 15)
            except ProcessLookupError:
                pass
            p.wait(5)
        sh("ip", "netns", "del", self.a, check=False)
        sh("ip", "netns", "del", self.b, check=False)


def ours(pair: Pair, seconds: float, warmup: float, streams: int, workdir: Path) -> dict[str, dict]:
    site = {
        "school": {"id": "bench", "name": "bench"},
        "targets": {"gateway": B_IP, "internet": [f"http://{B_IP}:8080"]},
        "dns": {"resolvers": [], "names": []},
        "probes": {
            "bandwidth": {"streams": streams, "duration_s": seconds, "warmup_s": warmup},
            "latency": {"count": 3, "interval_s": 0.05},
        },
    }
    site_file = workdir / "site.yaml"
    site_file.write_text(yaml.safe_dump(site))
    out = workdir / "result.json"
    subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            pair.a,
            sys.executable,
            "-m",
            "giga_netcheck",
            "run",
            "--site",
            str(site_file),
            "--json",
            str(out),
            "--out",
            str(workdir),
            "--no-progress",
        ],
        capture_output=True,
        timeout=seconds * 4 + 60,
    )
    doc = json.loads(out.read_text())
    return {b["direction"]: b for b in doc["measurements"]["bandwidth"] if b["streams"] == streams}


def ratio(a: Optional[float], b: Optional[float]) -> str:
    return f"{a / b:.2f}" if a is not None and b else "n/a"


def row(rate: int, direction: str, got: Optional[dict], ref: float) -> tuple:
    """One table row: ours, iperf3, ours/iperf3, gap, then p50 and p90 of our samples over our goodput."""
    g = (got or {}).get("goodput_mbps")
    p50, p90 = (got or {}).get("p50_mbps"), (got or {}).get("p90_mbps")
    return (
        rate,
        direction,
        "n/a" if g is None else f"{g:.2f}",
        f"{ref:.2f}",
        ratio(g, ref),
        gap_pct(g, ref),
        "n/a" if p50 is None else f"{p50:.2f}",
        ratio(p50, g),
        "n/a" if p90 is None else f"{p90:.2f}",
        ratio(p90, g),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rates", type=int, nargs="+", default=[1, 2, 5, 20, 100, 500])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=1.5)
    ap.add_argument("--streams", type=int, default=4)
    args = ap.parse_args()
    need("ip", "tc", "iperf3")
    rows = []
    with Pair() as pair, tempfile.TemporaryDirectory() as tmp:
        pair.start(pair.b, sys.executable, "-m", "giga_netcheck", "serve", "--host", B_IP, "--port", "8080")
        pair.start(pair.b, "iperf3", "-s", "-B", B_IP)
        pair.wait_port(B_IP, 8080)  # iperf3 -s is up long before our run ends
        for rate in args.rates:
            pair.shape(rate)
            got = ours(pair, args.seconds, args.warmup, args.streams, Path(tmp))
            ref_down = iperf3(B_IP, seconds=args.seconds - args.warmup, streams=args.streams, reverse=True, omit=args.warmup, netns=pair.a)
            ref_up = iperf3(B_IP, seconds=args.seconds - args.warmup, streams=args.streams, omit=args.warmup, netns=pair.a)
            rows.append(row(rate, "download", got.get("download"), ref_down))
            rows.append(row(rate, "upload", got.get("upload"), ref_up))
    print(f"tbf-shaped veth between two namespaces; {args.streams} streams; warm-up {args.warmup} s discarded by both")
    print("p50, p90: of our 100 ms samples after the warm-up; /g: divided by our goodput")
    table(rows, ("tbf Mbit/s", "direction", "giga-netcheck", "iperf3", "ratio", "gap", "p50", "p50/g", "p90", "p90/g"))


if __name__ == "__main__":
    main()
