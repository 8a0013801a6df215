"""Print the lab's own figures: forwarder capacity, delay precision, up/down time.

    python -m tests.lab.measure            # as root; about a minute

Figures, not assertions (the lab tests hold the bounds): docs/lab.md quotes this output.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Optional

from . import tools
from .netlab import Lab
from .netns import pids_in_netns
from .scenarios import Scenario, get_scenario

__all__ = ["main", "uncapped_uplink", "forwarder_cpu_s"]


def uncapped_uplink(base: Optional[Scenario] = None) -> Scenario:
    """``healthy`` with the uplink's tbf removed: only the forwarder (15 ms each way) is left."""
    healthy = base or get_scenario("healthy")
    uplink = healthy.link("uplink")
    free = dataclasses.replace(
        uplink, up=dataclasses.replace(uplink.up, rate_mbit=None), down=dataclasses.replace(uplink.down, rate_mbit=None)
    )
    return dataclasses.replace(healthy, name="uncapped-uplink", links={**healthy.links, "uplink": free})


def forwarder_cpu_s(lab: Lab, link_host: str = "gateway") -> float:
    """CPU seconds used so far by the forwarder processes living in ``link_host``'s namespace."""
    total = 0
    for pid in pids_in_netns([lab.ns(link_host)])[lab.ns(link_host)]:
        try:
            if b"forwarder.py" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / os.sysconf("SC_CLK_TCK")


def _forwarder(seconds: float) -> None:
    for offload in (False, True):
        mode = "TSO/GSO super-packets (--offload)" if offload else "one packet per read/write"
        with Lab(uncapped_uplink(), serve=False, offload=offload) as lab:
            print(f"forwarder, {mode}: TCP {lab.congestion_control}, MTU 1500, 15 ms each way, no tbf, iperf3 -t {seconds:g} -O 1:")
            for reverse in (True, False):
                for streams in (1, 4):
                    r = tools.iperf3(lab, "client", lab.addr("center"), seconds=seconds, streams=streams, reverse=reverse)
                    print(
                        f"  {'down' if reverse else 'up  '} {streams} stream{'s' if streams > 1 else ' '}: "
                        f"{r.mbit:6.0f} Mbit/s  (intervals {', '.join(f'{x:.0f}' for x in r.intervals_mbit)})"
                    )
        with Lab("healthy", serve=False, offload=offload) as lab:
            before, start = forwarder_cpu_s(lab), time.monotonic()
            r = tools.iperf3(lab, "client", lab.addr("internet"), seconds=seconds, streams=4)
            share = (forwarder_cpu_s(lab) - before) / (time.monotonic() - start)
            print(f"  healthy (300 Mbit/s cap), 4 streams down: {r.mbit:.0f} Mbit/s, forwarder CPU {share:.0%} of one core")


def _precision(count: int) -> None:
    for name, host in (("healthy", "center"), ("high-latency", "internet")):
        with Lab(name, serve=False) as lab:
            want = lab.scenario.base_rtt_ms(host)
            result = tools.ping(lab, "client", lab.addr(host), count=count, interval_s=0.01)
            errors = sorted(r - want for r in result.rtts_ms)
            p99 = errors[int(0.99 * (len(errors) - 1))]
            print(
                f"ping {name} client -> {host} ({count} x 10 ms): configured {want:.0f} ms, "
                f"avg {result.avg_ms:.3f}, median {result.median_ms:.3f}, p99 error {p99:+.3f} ms, "
                f"lost {result.lost}"
            )


def _up_down(cycles: int) -> None:
    for serve in (True, False):
        totals, ups, downs = [], [], []
        errors = {}
        for _ in range(cycles):
            lab = Lab("healthy", serve=serve)
            start = time.perf_counter()
            lab.up()
            errors = lab.serve_errors
            lab.down()
            totals.append(time.perf_counter() - start)
            ups.append(lab.timings["up_s"])
            downs.append(lab.timings["down_s"])
        label = "with serve" if serve else "without serve"
        print(
            f"up+down healthy {label} ({cycles} cycles): median up {statistics.median(ups):.2f} s, "
            f"down {statistics.median(downs):.2f} s, max total {max(totals):.2f} s"
            + (f"  [serve failed: {errors}]" if serve and errors else "")
        )


def main(argv: Optional[list[str]] = None) -> int:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(prog="python -m tests.lab.measure", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--pings", type=int, default=500)
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args(argv)
    _forwarder(args.seconds)
    _precision(args.pings)
    _up_down(args.cycles)
    return 0


if __name__ == "__main__":
    sys.exit(main())
