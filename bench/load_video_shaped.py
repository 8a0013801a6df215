"""Benchmark: 300 emulated devices streaming video from ONE client process through a shaped lab link.

    sudo python bench/load_video_shaped.py [--scenario healthy] [--devices 300] [--bitrate 2.5] [--seconds 20]

Builds the lab (tests/lab; `healthy` = a 300 Mbit/s tbf-shaped uplink with 30 ms RTT, or
`uplink-capacity` = 50 Mbit/s), then runs, inside the client namespace, one load step of N
devices playing video at the bitrate against the center's `serve`. When N x bitrate exceeds the
link, the link is the bottleneck and the players fetch back to back: the aggregate goodput
(steady part: the first 3 s of start-up are left out) should be at least 95% of what iperf3
reads through the same shaper (tools.path_goodput_mbit, packet arithmetic). Prints goodput vs
the link, stalls, and the client's own CPU (% of one core) and peak memory beside them, so the
tool is shown not to be the bottleneck. Everything stays in 198.18.0.0/15; the lab is torn down.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time

import _common  # noqa: F401  (puts the repository on sys.path)


def child(args: argparse.Namespace) -> None:
    """Runs inside the client namespace: one step, then a JSON line with the client's own figures."""
    from giga_netcheck.loadgen.activities import Video
    from giga_netcheck.loadgen.ramp import Budget, RampTarget, run_ramp

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.devices + 256)), hard))
    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    steps, stopped = run_ramp([args.devices], Video(args.bitrate), RampTarget("center", args.host, 8080), step_s=args.seconds,
                              stop=threading.Event(), budget=Budget(50 * 10**9, args.seconds + 60))
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"step": steps[0], "stopped": stopped, "cpu_s": cpu, "wall_s": wall, "maxrss_mb": after.ru_maxrss / 1024}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="healthy")
    ap.add_argument("--devices", type=int, default=300)
    ap.add_argument("--bitrate", type=float, default=2.5)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--host", default="198.18.2.2", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    _common.need("ip", "tc", "iptables")
    from tests.lab import Lab, tools

    with Lab(args.scenario) as lab:
        if not lab.serve_ok:
            sys.exit(f"bench: serve did not start in the lab: {lab.serve_errors}")
        link = tools.path_goodput_mbit(lab.scenario, "center")
        proc = lab.run("client", [sys.executable, __file__, "--child", "--devices", str(args.devices), "--bitrate", str(args.bitrate),
                                  "--seconds", str(args.seconds), "--host", lab.addr("center")], timeout=args.seconds + 120)
        if proc.returncode != 0:
            sys.exit(f"bench: client failed: {proc.stderr[-2000:]}")
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
    s = doc["step"]
    steady = s["samples_mbps"][6:]  # 0.5 s samples: the first 3 s are the players' start-up
    steady_mbps = sum(steady) / len(steady) if steady else s["goodput_mbps"]
    demand = args.devices * args.bitrate
    print(f"scenario {args.scenario}: {args.devices} devices x {args.bitrate:g} Mbit/s video = {demand:g} Mbit/s demand, "
          f"{args.seconds:g} s step, link reads {link if link else 'uncapped'} Mbit/s (iperf3 arithmetic)")
    print(f"goodput steady {steady_mbps:.1f} Mbit/s, whole step {s['goodput_mbps']:.1f}"
          + (f"  = {100 * steady_mbps / link:.1f}% of the link (target >= 95% when the link is the bottleneck)" if link else ""))
    print(f"met {s['met']}/{s['judged']}, stalls {s['activity']['stalls']} of {s['activity']['segments']} segments, "
          f"errors {sum(s['errors'].values())}, peak open connections {s['peak_open_connections']}, RPM {s['rpm']}")
    print(f"client: CPU {doc['cpu_s']:.1f} s over {doc['wall_s']:.1f} s = {100 * doc['cpu_s'] / doc['wall_s']:.0f}% of one core; "
          f"peak RSS {doc['maxrss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
