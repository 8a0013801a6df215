"""Benchmark: every throughput engine against the same tbf-shaped link, beside iperf3, in one run.

    sudo flock /tmp/gnc-bench.lock python bench/engines_shaped.py [--rates 20 100 500 1000] [--seconds 8]

The link is bandwidth_shaped.py's: two network namespaces joined by a veth pair shaped with
`tc tbf` in both directions, `giga-netcheck serve` and `iperf3 -s` on the far side. At each rate,
download and upload are measured from the near side by iperf3 (-P N, -O warm-up) and by each
engine with the same streams, duration and warm-up discard:

- http        the own engine (target: within 3% of iperf3)
- speedtest   speedtest-cli 2.1.3 through the ``speedtest`` engine, in mini mode against serve:
              "ours" is its transfers counted and reduced like every engine's; "own" is the figure
              speedtest-cli itself reports (all bytes over all the time, slow start and tail included)
- librespeed  the ``librespeed`` engine against serve's LibreSpeed backend paths

Each engine runs in its own process inside the client namespace (``--one``), so engines never
share a Python interpreter with each other or with the server.

``--delay-ms D`` replaces the veth by the lab's user-space delay line (tests/lab/forwarder.py,
TUN devices, D/2 each way, TSO offload), shaped the same way: a round trip like a real path to
a server, which is where speedtest-cli's one-new-connection-per-file design costs it (every file
starts in slow start, and its small files never leave it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _common import ROOT, gap_pct, iperf3, need, table
from bandwidth_shaped import A_IP, B_IP, Pair

ENGINES = ("http", "speedtest", "librespeed")
FORWARDER = ROOT / "tests" / "lab" / "forwarder.py"


class DelayedPair(Pair):
    """Two namespaces joined by the lab's TUN delay line instead of a veth (devices va / vb)."""

    def __init__(self, delay_ms: float) -> None:
        super().__init__()
        self.delay_ms = delay_ms

    def __enter__(self) -> DelayedPair:
        subprocess.run(["ip", "netns", "add", self.a], check=True)
        subprocess.run(["ip", "netns", "add", self.b], check=True)
        half = f"{self.delay_ms / 2:g}"
        fwd = subprocess.Popen(
            [
                sys.executable,
                str(FORWARDER),
                "--a",
                f"{self.a}:va",
                "--b",
                f"{self.b}:vb",
                "--delay-ab-ms",
                half,
                "--delay-ba-ms",
                half,
                "--offload",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.procs.append(fwd)
        if fwd.stdout.readline().strip() != "READY":
            raise RuntimeError("delay forwarder did not start (needs /dev/net/tun)")
        for ns, dev, ip in ((self.a, "va", A_IP), (self.b, "vb", B_IP)):
            subprocess.run(["ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", dev], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up", "mtu", "1500", "txqueuelen", "10000"], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        return self


def one(engine: str, url: str, direction: str, streams: int, seconds: float, warmup: float) -> None:
    """Measure once in this process and print the measurement as JSON (run inside the namespace)."""
    import threading

    from giga_netcheck.core.models import Target, to_dict
    from giga_netcheck.measure.engines import ThroughputPlan, registry

    target = Target("bench", "internet", url.split("//", 1)[1].split(":")[0], url, engine=engine)
    plan = ThroughputPlan(direction, streams, seconds, warmup)
    m = registry()[engine]().measure(target, plan, threading.Event())
    print(json.dumps(to_dict(m)))


def measure(pair: Pair, engine: str, direction: str, args: argparse.Namespace) -> dict:
    cmd = [
        "ip",
        "netns",
        "exec",
        pair.a,
        sys.executable,
        str(ROOT / "bench" / "engines_shaped.py"),
        "--one",
        engine,
        f"http://{B_IP}:8080",
        direction,
        str(args.streams),
        str(args.seconds),
        str(args.warmup),
    ]
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=args.seconds * 6 + 60,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    if out.returncode != 0:
        raise RuntimeError(f"{engine} {direction}: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def fmt(v) -> str:
    return "—" if v is None else f"{v:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rates", type=int, nargs="+", default=[20, 100, 500, 1000])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=1.5)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--delay-ms", type=float, default=0.0, help="round-trip delay through the lab's TUN delay line (default: none, a veth)")
    ap.add_argument("--one", nargs=6, metavar=("ENGINE", "URL", "DIRECTION", "STREAMS", "SECONDS", "WARMUP"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        e, url, d, n, s, w = args.one
        one(e, url, d, int(n), float(s), float(w))
        return
    need("ip", "tc", "iperf3")
    rows, notes = [], set()
    with DelayedPair(args.delay_ms) if args.delay_ms else Pair() as pair:
        pair.start(pair.b, sys.executable, "-m", "giga_netcheck", "serve", "--host", B_IP, "--port", "8080")
        pair.start(pair.b, "iperf3", "-s", "-B", B_IP)
        time.sleep(1.5)
        for rate in args.rates:
            pair.shape(rate)
            for direction in ("download", "upload"):
                ref = iperf3(
                    B_IP,
                    seconds=args.seconds - args.warmup,
                    streams=args.streams,
                    reverse=direction == "download",
                    omit=args.warmup,
                    netns=pair.a,
                )
                got = {e: measure(pair, e, direction, args) for e in ENGINES}
                for e, m in got.items():
                    if m.get("error"):
                        notes.add(f"{rate} {direction} {e}: {m['error']}")
                    notes.update(m.get("notes") or ())
                st = got["speedtest"]
                own = (st.get("engine_raw") or {}).get("speedtest_mbps")
                rows.append(
                    (
                        rate,
                        direction,
                        f"{ref:.1f}",
                        fmt(got["http"]["goodput_mbps"]),
                        gap_pct(got["http"]["goodput_mbps"], ref),
                        fmt(st["goodput_mbps"]),
                        gap_pct(st["goodput_mbps"], ref),
                        fmt(own),
                        gap_pct(own, ref),
                        fmt(got["librespeed"]["goodput_mbps"]),
                        gap_pct(got["librespeed"]["goodput_mbps"], ref),
                    )
                )
                print(*rows[-1], flush=True, file=sys.stderr)
    link = f"TUN delay line, {args.delay_ms:g} ms round trip" if args.delay_ms else "veth"
    print(
        f"tbf-shaped {link} between two namespaces; {args.streams} streams each; {args.seconds:g} s, first "
        f"{args.warmup:g} s discarded (iperf3 -O); gaps are against iperf3"
    )
    table(
        rows,
        ("tbf Mbit/s", "direction", "iperf3", "http", "gap", "speedtest (ours)", "gap", "speedtest-cli own", "gap", "librespeed", "gap"),
    )
    for n in sorted(notes):
        print(f"note: {n}")


if __name__ == "__main__":
    main()
