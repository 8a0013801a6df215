"""Benchmark: triage verdicts across the lab catalogue with varied parameters, as a confusion table.

    sudo python bench/triage_matrix.py [--repeat 1] [--only lan-loss,dns-slow] [--full]

Each scenario of tests/lab/scenarios.yaml is run as catalogued and with its main parameter
moved across a range (a different cap, delay, loss rate, queue depth, resolver delay); for each
variant `giga-netcheck run --quick` (or full with --full) runs in the client namespace and its
top claim is compared with the cause the scenario expects. Prints one line per run and a
confusion table (rows: expected cause; columns: top claim, "-" for no claim).
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import yaml
from _common import ROOT, need

from tests.lab.netlab import Lab
from tests.lab.scenarios import CATALOGUE, load_scenarios
from tests.lab.test_triage_lab import FULL_RUN
from tests.lab.triage_run import diagnose


def link(name: str, **both) -> dict:
    return {"links": {name: {"both": both}}}


VARIANTS: dict[str, list[tuple[str, dict]]] = {
    "healthy": [("uplink 500", link("uplink", rate_mbit=500, queue_ms=20, delay_ms=15))],
    "lan-capacity": [("LAN 50", link("lan", rate_mbit=50, queue_ms=20)), ("LAN 100, queue 40 ms", link("lan", rate_mbit=100, queue_ms=40))],
    "lan-loss": [("LAN 2%", link("lan", loss_pct=2, delay_ms=2, jitter_ms=2)), ("LAN 6%", link("lan", loss_pct=6, delay_ms=2, jitter_ms=2))],
    "uplink-capacity": [("uplink 30", link("uplink", rate_mbit=30, queue_ms=10, delay_ms=15)), ("uplink 120", link("uplink", rate_mbit=120, queue_ms=10, delay_ms=15))],
    "uplink-loss": [("uplink 1.5%", link("uplink", loss_pct=1.5)), ("uplink 5%", link("uplink", loss_pct=5))],
    "bufferbloat": [("20 Mbit/s, 150 ms queue", link("uplink", rate_mbit=20, queue_ms=150, delay_ms=15)), ("40 Mbit/s, 500 ms queue", link("uplink", rate_mbit=40, queue_ms=500, delay_ms=15))],
    "center-capacity": [("upstream 30", link("upstream", rate_mbit=30, queue_ms=10)), ("upstream 90", link("upstream", rate_mbit=90, queue_ms=10))],
    "per-flow-limit": [("10 per flow", link("uplink", flow_rate_mbit=10)), ("15 per flow", link("uplink", flow_rate_mbit=15))],
    "high-latency": [("40 ms each way", link("upstream", delay_ms=40)), ("90 ms each way", link("upstream", delay_ms=90))],
    "dns-slow": [("+110 ms", {"dns": {"center": {"delay_ms": 110, "miss_delay_ms": 0}}}), ("+300 ms", {"dns": {"center": {"delay_ms": 300, "miss_delay_ms": 300}}})],
    "dns-failure": [("50% SERVFAIL", {"dns": {"center": {"timeout_rate": 0, "servfail_rate": 0.5}}}), ("20% timeouts", {"dns": {"center": {"timeout_rate": 0.2, "servfail_rate": 0}}})],
    "no-connectivity": [("upstream cut", {"segment": "center", "links": {"uplink": {"state": "up"}, "upstream": {"state": "down"}}})],
}


def merged(base: dict, delta: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in delta.items():
        out[k] = merged(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", default="")
    ap.add_argument("--full", action="store_true", help="full runs instead of --quick")
    args = ap.parse_args()
    need("ip", "tc", "iptables", "iperf3")
    raw = yaml.safe_load(CATALOGUE.read_text())
    only = {x for x in args.only.split(",") if x}
    cases: list[tuple[str, str, dict]] = []
    for name, entry in raw.items():
        if only and name not in only:
            continue
        cases.append((name, "as catalogued", {}))
        for label, delta in VARIANTS.get(name, []):
            cases.append((name, label, delta))
    confusion: dict[str, Counter] = defaultdict(Counter)
    correct = total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, label, delta in cases:
            variant = {"healthy": raw["healthy"], name: merged(raw.get(name) or {}, delta)} if name != "healthy" else {"healthy": merged(raw["healthy"], delta)}
            cat = Path(tmp) / f"{name}.yaml"
            cat.write_text(yaml.safe_dump(variant, allow_unicode=True))
            scenario = load_scenarios(cat)[name]
            for _ in range(args.repeat):
                t0 = time.monotonic()
                with Lab(scenario) as lab:
                    v = diagnose(lab, quick=not args.full and name not in FULL_RUN)
                got = v.top or "-"
                confusion[v.expected or "(healthy)"][got] += 1
                total += 1
                correct += v.correct
                print(f"{'ok ' if v.correct else 'BAD'} {name:16} {label:26} top={got}/{v.top_segment or '-'} "
                      f"claims={[(c, round(p, 2)) for c, _, p in v.claims]} {time.monotonic() - t0:.0f}s", flush=True)
    cols = sorted({c for row in confusion.values() for c in row})
    print()
    print(f"confusion table: {correct}/{total} runs named the expected cause on top ({'full' if args.full else 'quick'} runs)")
    width = max(len(c) for c in cols + list(confusion)) + 1
    print("expected \\ top".ljust(width) + "".join(c[:14].rjust(15) for c in cols))
    for exp, row in confusion.items():
        print(exp.ljust(width) + "".join(str(row.get(c, "")).rjust(15) for c in cols))


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    main()
