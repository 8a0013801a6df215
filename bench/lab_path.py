"""Benchmark: giga-netcheck on the lab's healthy school path (about 30 ms RTT, 300 Mbit/s
uplink) against iperf3, ping and dig on the same path in the same run.

    sudo python bench/lab_path.py [--scenario healthy] [--seconds 10]

Prints:
- download/upload to the internet host, ours (4 streams) vs iperf3 -P 4 (target: within 3%);
- idle RTT p50 to gateway, center and internet: our ICMP vs `ping` (target: within 0.5 ms),
  and our unprivileged method (CAP_NET_RAW dropped with setpriv) vs `ping` (within 2 ms);
- DNS p50 against the center's resolver: ours (warm) vs `dig` (within 2 ms);
- wall-clock time of `giga-netcheck run` on the lab's two-target site, default and --quick
  (targets: under 60 s and under 20 s).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import ROOT, gap_pct, iperf3, need, table

from giga_netcheck.measure.hostinfo import parse_ping
from tests.lab.netlab import Lab

PY = sys.executable


def run_tool(lab: Lab, site: dict, workdir: Path, *extra: str, prefix: tuple[str, ...] = ()) -> tuple[dict, float]:
    site_file = workdir / f"site-{time.monotonic_ns()}.yaml"
    site_file.write_text(yaml.safe_dump(site))
    out = workdir / "result.json"
    t0 = time.monotonic()
    proc = lab.run(
        "client",
        [
            *prefix,
            PY,
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
            *extra,
        ],
        timeout=300,
    )
    took = time.monotonic() - t0
    if not out.exists():
        raise RuntimeError(f"giga-netcheck run wrote no result: {proc.stderr[-500:]}")
    return json.loads(out.read_text()), took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenario", default="healthy")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--pings", type=int, default=50)
    args = ap.parse_args()
    need("ip", "tc", "iperf3", "ping", "dig", "setpriv")
    with Lab(args.scenario) as lab, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        site = yaml.safe_load(lab.site_file.read_text())
        inet = lab.addr("internet")

        # --- bandwidth: ours vs iperf3, 4 streams, same warm-up discarded
        bw_site = {
            **site,
            "targets": {"gateway": site["targets"]["gateway"], "internet": site["targets"]["internet"]},
            "dns": {"resolvers": [], "names": []},
            "probes": {"bandwidth": {"streams": 4, "duration_s": args.seconds, "warmup_s": args.warmup}, "latency": {"count": 3}},
        }
        doc, _ = run_tool(lab, bw_site, work)
        ours = {b["direction"]: b["goodput_mbps"] for b in doc["measurements"]["bandwidth"] if b["streams"] == 4}
        ref_down = iperf3(inet, seconds=args.seconds - args.warmup, streams=4, reverse=True, omit=args.warmup, netns=lab.ns("client"))
        ref_up = iperf3(inet, seconds=args.seconds - args.warmup, streams=4, omit=args.warmup, netns=lab.ns("client"))
        print(f"scenario {args.scenario}: client -> internet ({inet}), 4 streams, {args.warmup} s warm-up discarded by both")
        table(
            [
                ("download", f"{ours['download']:.1f}", f"{ref_down:.1f}", gap_pct(ours["download"], ref_down)),
                ("upload", f"{ours['upload']:.1f}", f"{ref_up:.1f}", gap_pct(ours["upload"], ref_up)),
            ],
            ("Mbit/s", "giga-netcheck", "iperf3", "gap"),
        )

        # --- latency: ours (icmp, and unprivileged) vs ping, and DNS vs dig
        lat_site = {
            **site,
            "probes": {"bandwidth": {"enabled": False}, "latency": {"count": args.pings, "interval_s": 0.05}, "dns": {"queries": 20}},
        }
        priv, _ = run_tool(lab, lat_site, work)
        unpriv = {"auto (no CAP_NET_RAW)": run_tool(lab, lat_site, work, prefix=("setpriv", "--bounding-set", "-net_raw"))[0]}
        for method in ("udp-echo", "tcp-connect"):
            forced = {**lat_site, "probes": {**lat_site["probes"], "latency": {**lat_site["probes"]["latency"], "method": method}}}
            unpriv[method] = run_tool(lab, forced, work, prefix=("setpriv", "--bounding-set", "-net_raw"))[0]
        rows = []
        for target in ("gateway", "center", "internet"):
            host = lab.addr(target)
            ping = lab.run("client", ["ping", "-c", str(args.pings), "-i", "0.05", "-n", host], timeout=60)
            summary = parse_ping(ping.stdout)
            p50_ping = statistics.median(summary.rtts_ms) if summary and summary.rtts_ms else None

            def cell(doc: dict, target: str = target, p50_ping: float | None = p50_ping) -> tuple[str, str]:
                s = next(x for x in doc["measurements"]["latency"] if x["target"] == target and x["phase"] == "idle")
                if s["stats"]["p50_ms"] is None or p50_ping is None:
                    return f"n/a ({s['method']})", "n/a"
                return f"{s['stats']['p50_ms']:.2f} ({s['method']})", f"{s['stats']['p50_ms'] - p50_ping:+.2f}"

            row = [target, f"{p50_ping:.2f}" if p50_ping else "n/a", *cell(priv)]
            for doc in unpriv.values():
                row += cell(doc)
            rows.append(row)
        print()
        print(f"idle RTT p50, {args.pings} probes each, same path, same run (ms); unprivileged = CAP_NET_RAW dropped")
        header = ["target", "ping", "ours (root)", "diff"]
        for label in unpriv:
            header += [f"unprivileged {label}", "diff"]
        table(rows, header)

        resolver = site["dns"]["resolvers"][0]
        name = site["dns"]["names"][0]
        dig_ms = []
        lab.run("client", ["dig", f"@{resolver}", name, "+tries=1", "+time=2"])  # warm the name
        for _ in range(20):
            out = lab.run("client", ["dig", f"@{resolver}", name, "+tries=1", "+time=2"]).stdout
            m = re.search(r"Query time: (\d+) msec", out)
            if m:
                dig_ms.append(float(m.group(1)))
        ours_dns = next(d for d in priv["measurements"]["dns"] if d["kind"] == "warm" and d["name"] == name)
        dig_p50 = statistics.median(dig_ms) if dig_ms else None
        print()
        print(f"DNS p50 against {resolver} for {name} (warm, 20 queries each)")
        table(
            [
                (
                    f"{ours_dns['p50_ms']:.2f}",
                    f"{dig_p50:.1f}" if dig_p50 is not None else "n/a",
                    f"{ours_dns['p50_ms'] - dig_p50:+.2f}" if dig_p50 is not None else "n/a",
                )
            ],
            ("ours ms", "dig ms (1 ms resolution)", "diff"),
        )

        # --- wall-clock of the whole run on the lab's two-target site
        _, full_s = run_tool(lab, site, work)
        _, quick_s = run_tool(lab, site, work, "--quick")
        print()
        print(f"giga-netcheck run on the lab site (center + internet): default {full_s:.1f} s, --quick {quick_s:.1f} s")


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    main()
