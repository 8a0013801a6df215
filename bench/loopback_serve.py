"""Benchmark: `serve` plus the own engine on loopback, and the server's memory under 200
concurrent downloads.

    python bench/loopback_serve.py [--seconds 6]

Prints our goodput next to iperf3's on the same loopback in the same run (target: at least
4 Gbit/s for ours), and the server's resident memory before, during (peak) and after 200
concurrent downloads (target: flat, i.e. not growing with the number of clients' bytes).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import threading
import time

from _common import gap_pct, iperf3, rss_mb, table, wait_http

from giga_netcheck.core.models import Target
from giga_netcheck.measure.engines import ThroughputPlan
from giga_netcheck.measure.engines.http import HttpEngine

PORT = 18080


async def _one_download(port: int, nbytes: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /download?bytes={nbytes} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    got = 0
    while True:
        data = await reader.read(1 << 16)
        if not data:
            break
        got += len(data)
        await asyncio.sleep(0.0005)  # slow readers: the server must not buffer for them
    writer.close()
    return got


async def _many(port: int, clients: int, nbytes: int) -> list[int]:
    return await asyncio.gather(*(_one_download(port, nbytes) for _ in range(clients)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--clients", type=int, default=200)
    args = ap.parse_args()

    srv = subprocess.Popen(
        [sys.executable, "-m", "giga_netcheck", "serve", "--host", "127.0.0.1", "--port", str(PORT)], stderr=subprocess.DEVNULL
    )
    ipf = subprocess.Popen(["iperf3", "-s", "-B", "127.0.0.1", "-p", "15201"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{PORT}/id")
        time.sleep(0.5)
        target = Target("loopback", "internet", "127.0.0.1", f"http://127.0.0.1:{PORT}")
        rows = []
        for streams in (1, 4):
            ours = HttpEngine().measure(target, ThroughputPlan("download", streams, args.seconds, 1.0), threading.Event())
            ref = iperf3("127.0.0.1", seconds=args.seconds, streams=streams, reverse=True, port=15201)
            rows.append((f"download x{streams}", f"{ours.goodput_mbps / 1000:.2f}", f"{ref / 1000:.2f}", gap_pct(ours.goodput_mbps, ref)))
        for streams in (1, 4):
            ours = HttpEngine().measure(target, ThroughputPlan("upload", streams, args.seconds, 1.0), threading.Event())
            ref = iperf3("127.0.0.1", seconds=args.seconds, streams=streams, port=15201)
            rows.append((f"upload x{streams}", f"{ours.goodput_mbps / 1000:.2f}", f"{ref / 1000:.2f}", gap_pct(ours.goodput_mbps, ref)))
        print("serve + own engine on loopback (Gbit/s; iperf3 -O 1 on the same loopback, same run)")
        table(rows, ("test", "ours", "iperf3", "gap"))

        before = rss_mb(srv.pid)
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak.append(rss_mb(srv.pid))
                time.sleep(0.05)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        t0 = time.monotonic()
        nbytes = 32 * 1024 * 1024
        got = asyncio.run(_many(PORT, args.clients, nbytes))
        done.set()
        th.join()
        after = rss_mb(srv.pid)
        moved = sum(got) / 1e9
        print()
        print(
            f"{args.clients} concurrent downloads of {nbytes >> 20} MiB each: {moved:.2f} GB in {time.monotonic() - t0:.1f} s, "
            f"{sum(1 for g in got if g >= nbytes)} complete"
        )
        print(
            f"server RSS: before {before:.1f} MB, peak during {max(peak):.1f} MB, after {after:.1f} MB "
            f"(growth {max(peak) - before:+.1f} MB while {moved:.2f} GB passed through)"
        )
    finally:
        srv.terminate()
        ipf.terminate()
        srv.wait(5)
        ipf.wait(5)


if __name__ == "__main__":
    main()
