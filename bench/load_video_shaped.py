"""Benchmark: 300 emulated devices streaming video from ONE client process through a shaped lab link.

    sudo python bench/load_video_shaped.py [--scenarios healthy,uplink-capacity] [--devices 300]
                                           [--bitrate 2.5] [--seconds 15] [--iperf-s 6]

For each scenario it builds the lab (tests/lab), then, inside the client namespace and in the
same lab:

1. iperf3 -R -P 4 from the center (the reference reading of the path, with iperf3's own CPU);
2. one load step of N devices playing video at the bitrate against the center's `serve`, all
   in one process and one asyncio event loop, each device on its own TCP connection.

The links are the lab's (docs/lab.md), shaped as a real school uplink is: `healthy` is a
300 Mbit/s line with a 20 ms tbf queue and 15 ms each way (30 ms RTT to the center),
`uplink-capacity` a 50 Mbit/s line with a 10 ms queue; TCP congestion control is the lab's
(Reno on this host). 300 x 2.5 Mbit/s = 750 Mbit/s of demand, so the link is the bottleneck and
the players fetch back to back. The aggregate goodput (steady part: the first 3 s of start-up
left out; the whole step is printed too) should be at least 95% of the link's packet arithmetic
(tools.path_goodput_mbit) and close to iperf3 on the same path. The client's own CPU (% of one
core) and peak memory are printed beside each figure, so the tool is shown not to be the
bottleneck. Everything stays in 198.18.0.0/15; the lab is torn down after each scenario.
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
    from giga_netcheck.core.models import to_dict
    from giga_netcheck.measure.loadgen.activities import Video
    from giga_netcheck.measure.loadgen.ramp import Budget, RampTarget, run_ramp

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.devices + 256)), hard))
    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    steps, stopped = run_ramp(
        [args.devices],
        Video(args.bitrate),
        RampTarget("center", args.host, 8080),
        step_s=args.seconds,
        stop=threading.Event(),
        budget=Budget(50 * 10**9, args.seconds + 60),
    )
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"step": to_dict(steps[0]), "stopped": stopped, "cpu_s": cpu, "wall_s": wall, "maxrss_mb": after.ru_maxrss / 1024}))


def one(args: argparse.Namespace, scenario: str) -> dict:
    from tests.lab import Lab, tools

    with Lab(scenario) as lab:
        if not lab.serve_ok:
            sys.exit(f"bench: serve did not start in the lab: {lab.serve_errors}")
        link = tools.path_goodput_mbit(lab.scenario, "center")
        ip = tools.iperf3(lab, "client", lab.addr("center"), seconds=args.iperf_s, streams=4, reverse=True)
        cpu = ip.raw.get("end", {}).get("cpu_utilization_percent", {})
        proc = lab.run(
            "client",
            [
                sys.executable,
                __file__,
                "--child",
                "--devices",
                str(args.devices),
                "--bitrate",
                str(args.bitrate),
                "--seconds",
                str(args.seconds),
                "--host",
                lab.addr("center"),
            ],
            timeout=args.seconds + 120,
        )
        if proc.returncode != 0:
            sys.exit(f"bench: client failed: {proc.stderr[-2000:]}")
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
    s = doc["step"]
    steady = s["samples_mbps"][6:]  # 0.5 s samples: the first 3 s are the players' start-up
    return {
        "scenario": scenario,
        "link": link,
        "iperf": ip.mbit,
        "iperf_cpu": cpu.get("host_total"),
        "steady": sum(steady) / len(steady) if steady else s["goodput_mbps"],
        "step": s,
        "doc": doc,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default="healthy,uplink-capacity")
    ap.add_argument("--scenario", help="one scenario (same as --scenarios NAME)")
    ap.add_argument("--devices", type=int, default=300)
    ap.add_argument("--bitrate", type=float, default=2.5)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--iperf-s", type=float, default=6.0)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--host", default="198.18.2.2", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    _common.need("ip", "tc", "iptables", "iperf3")
    scenarios = [args.scenario] if args.scenario else [x for x in args.scenarios.split(",") if x]
    demand = args.devices * args.bitrate
    print(
        f"{args.devices} devices x {args.bitrate:g} Mbit/s video = {demand:g} Mbit/s demand; one {args.seconds:g} s load step "
        f"after iperf3 -R -P 4 for {args.iperf_s:g} s, same lab, same path (client <- center)"
    )
    rows = []
    for sc in scenarios:
        r = one(args, sc)
        s, doc, link = r["step"], r["doc"], r["link"]
        rows.append(
            [
                sc,
                f"{link:.1f}" if link else "uncapped",
                f"{r['iperf']:.1f}" + (f" (iperf3 CPU {r['iperf_cpu']:.0f}%)" if r["iperf_cpu"] is not None else ""),
                f"{r['steady']:.1f} / {s['goodput_mbps']:.1f}",
                f"{100 * r['steady'] / link:.1f}%" if link else "-",
                f"{100 * r['steady'] / r['iperf']:.1f}%" if r["iperf"] else "-",
                f"{100 * doc['cpu_s'] / doc['wall_s']:.0f}%",
                f"{doc['maxrss_mb']:.0f}",
                f"{s['met']}/{s['judged']}",
                f"{s['activity']['stalls']}/{s['activity']['segments']}",
                sum(s["errors"].values()),
                s["peak_open_connections"],
                s["rpm"],
            ]
        )
    print()
    _common.table(
        rows,
        [
            "scenario",
            "link Mbit/s (arith.)",
            "iperf3 -P4 Mbit/s",
            "load steady / step",
            "of link",
            "of iperf3",
            "client CPU (1 core)",
            "client RSS MB",
            "met",
            "stalls/segs",
            "errors",
            "peak conns",
            "RPM",
        ],
    )
    print(
        "\ntarget: load steady >= 95% of the link when the link is the bottleneck (demand above the link); "
        "client CPU and RSS show the tool is not the limit"
    )


if __name__ == "__main__":
    main()
