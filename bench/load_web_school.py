"""Benchmark: a whole school on web apps from ONE client process, against `serve` on loopback.

    python bench/load_web_school.py [--devices 1000] [--seconds 20]

`giga-netcheck serve` runs as its own process on 127.0.0.1 (so the client's CPU and memory are
its own); the client runs one load step of N emulated devices on web-app activity (two
keep-alive connections each, so about 2N concurrent connections) in one asyncio event loop.
Prints: share of devices meeting their activity (every page within 2 s), page-load p50/p95,
errors by kind, goodput, peak open connections, client CPU (% of one core) and peak memory
(RSS), the server's CPU and RSS, and the machine's load average before and after (the 2-core
machine is shared: a busy neighbour shows up there, not in our own CPU figures). Targets (issue 4): >= 99% of 1,000 devices meet their activity in
under 500 MB of client memory. Loopback only; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import threading
import time

from _common import rss_mb

from giga_netcheck.core.models import to_dict
from giga_netcheck.measure.loadgen.activities import WebApps
from giga_netcheck.measure.loadgen.ramp import Budget, RampTarget, run_ramp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"bench: serve did not start on port {port}")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * args.devices + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "giga_netcheck",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--max-connections",
            str(4 * args.devices + 100),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_listening(port)
        peak_server = [0.0]
        done = threading.Event()

        def watch_server() -> None:
            while not done.wait(0.5):
                peak_server[0] = max(peak_server[0], rss_mb(server.pid))

        threading.Thread(target=watch_server, daemon=True).start()
        load_before = os.getloadavg()
        server_cpu0 = cpu_s(server.pid)
        before = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        steps, stopped = run_ramp(
            [args.devices],
            WebApps(),
            RampTarget("loopback", "127.0.0.1", port),
            step_s=args.seconds,
            stop=threading.Event(),
            budget=Budget(20 * 10**9, args.seconds + 60),
        )
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu = cpu_s(server.pid) - server_cpu0
        load_after = os.getloadavg()
        done.set()
    finally:
        server.terminate()
        server.wait(5)
    s = to_dict(steps[0])  # the step as the result's JSON has it
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    errs = {k: v for k, v in s["errors"].items() if v}
    print(
        f"devices {s['devices']} (connections {s['connections']}, peak open {s['peak_open_connections']}), {args.seconds:g} s step"
        + (f", stopped: {stopped}" if stopped else "")
    )
    print(f"met {s['met']}/{s['judged']} = {100 * (s['met_share'] or 0):.2f}%   (target >= 99%)")
    a = s["activity"]
    print(f"pages {a['pages']}, slow {a['slow_pages']}, page load p50 {a['page_load_p50_s']} s, p95 {a['page_load_p95_s']} s")
    print(f"errors {errs or 0}; examples {s['error_examples'][:2]}")
    print(f"goodput {s['goodput_mbps']:.1f} Mbit/s (down {s['down_mbps']:.1f}, up {s['up_mbps']:.1f})")
    print(
        f"client: CPU {cpu:.1f} s over {wall:.1f} s = {100 * cpu / wall:.0f}% of one core; "
        f"peak RSS {after.ru_maxrss / 1024:.0f} MB (target < 500 MB)"
    )
    print(f"server: CPU {server_cpu:.1f} s = {100 * server_cpu / wall:.0f}% of one core; peak RSS {peak_server[0]:.0f} MB")
    print(f"machine: {os.cpu_count()} cores, load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after")


if __name__ == "__main__":
    main()
