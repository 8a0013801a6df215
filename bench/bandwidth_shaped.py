"""Benchmark: the own engine against iperf3 through a tbf-shaped veth pair.

    sudo python bench/bandwidth_shaped.py [--rates 20 100 500] [--seconds 8]

Two network namespaces made here (``gncb-<id>-a`` with the client, ``gncb-<id>-b`` with
`giga-netcheck serve` and `iperf3 -s`), joined by a veth pair shaped with `tc tbf` in both
directions at each rate. For each rate, download and upload are measured by `giga-netcheck
run` (4 streams, its normal warm-up discard) and by iperf3 (-P 4, -O the same warm-up) on the
same path in the same run. Target: ours within 3% of iperf3. Everything is torn down at the end.
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

    def __exit__(self, *exc) -> None:
        for p in self.procs:
            try:
                os.killpg(p.pid, 15)
            except ProcessLookupError:
                pass
            p.wait(5)
        sh("ip", "netns", "del", self.a, check=False)
        sh("ip", "netns", "del", self.b, check=False)


def ours(pair: Pair, seconds: float, warmup: float, streams: int, workdir: Path) -> dict[str, float]:
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
    return {b["direction"]: b["goodput_mbps"] for b in doc["measurements"]["bandwidth"] if b["streams"] == streams}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rates", type=int, nargs="+", default=[20, 100, 500])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=1.5)
    ap.add_argument("--streams", type=int, default=4)
    args = ap.parse_args()
    need("ip", "tc", "iperf3")
    rows = []
    with Pair() as pair, tempfile.TemporaryDirectory() as tmp:
        pair.start(pair.b, sys.executable, "-m", "giga_netcheck", "serve", "--host", B_IP, "--port", "8080")
        pair.start(pair.b, "iperf3", "-s", "-B", B_IP)
        time.sleep(1.5)
        for rate in args.rates:
            pair.shape(rate)
            got = ours(pair, args.seconds, args.warmup, args.streams, Path(tmp))
            ref_down = iperf3(B_IP, seconds=args.seconds - args.warmup, streams=args.streams, reverse=True, omit=args.warmup, netns=pair.a)
            ref_up = iperf3(B_IP, seconds=args.seconds - args.warmup, streams=args.streams, omit=args.warmup, netns=pair.a)
            rows.append((rate, "download", f"{got.get('download', 0):.1f}", f"{ref_down:.1f}", gap_pct(got.get("download"), ref_down)))
            rows.append((rate, "upload", f"{got.get('upload', 0):.1f}", f"{ref_up:.1f}", gap_pct(got.get("upload"), ref_up)))
    print(f"tbf-shaped veth between two namespaces; {args.streams} streams; warm-up {args.warmup} s discarded by both")
    table(rows, ("tbf Mbit/s", "direction", "giga-netcheck", "iperf3", "gap"))


if __name__ == "__main__":
    main()
