"""Benchmark: triage verdicts across the lab catalogue, repeated and with varied parameters.

    sudo flock /tmp/gnc-bench.lock python bench/triage_matrix.py --repeat 3 --catalogue-only
    sudo flock /tmp/gnc-bench.lock python bench/triage_matrix.py --only lan-loss,dns-slow --variants-only
    python bench/triage_matrix.py --from-jsonl runs.jsonl          # tables from saved runs only

Each scenario of tests/lab/scenarios.yaml is run as catalogued and with its main parameter
moved across a range (a different cap, delay, loss rate, queue depth, session cap, resolver
delay); for each variant `giga-netcheck run --quick` (full for FULL_RUN scenarios, or every
run with --full) runs in the client namespace and its top claim is compared with the cause
the scenario expects. ``--repeat N`` runs every case N times, each in a freshly built lab.

Prints one line per run, then per case its stability (runs, runs correct, the distinct top
claims seen: stable when every run named the same top claim), and a confusion table (rows:
expected cause; columns: top claim, "-" for no claim). ``--jsonl PATH`` appends one record per
run, so a long matrix can be run a few scenarios at a time (each holding the bench lock
briefly) and summarised at the end with ``--from-jsonl PATH [PATH ...]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import yaml
from _common import ROOT

from tests.lab.scenarios import CATALOGUE


def link(name: str, **both) -> dict:
    return {"links": {name: {"both": both}}}


VARIANTS: dict[str, list[tuple[str, dict]]] = {
    "healthy": [("uplink 500", link("uplink", rate_mbit=500, queue_ms=20, delay_ms=15))],
    "lan-capacity": [("LAN 50", link("lan", rate_mbit=50, queue_ms=20)), ("LAN 100, queue 40 ms", link("lan", rate_mbit=100, queue_ms=40))],
    "lan-loss": [
        ("LAN 2%", link("lan", loss_pct=2, delay_ms=2, jitter_ms=2)),
        ("LAN 6%", link("lan", loss_pct=6, delay_ms=2, jitter_ms=2)),
    ],
    "uplink-capacity": [
        ("uplink 30", link("uplink", rate_mbit=30, queue_ms=10, delay_ms=15)),
        ("uplink 120", link("uplink", rate_mbit=120, queue_ms=10, delay_ms=15)),
    ],
    "uplink-loss": [("uplink 1.5%", link("uplink", loss_pct=1.5)), ("uplink 5%", link("uplink", loss_pct=5))],
    "bufferbloat": [
        ("20 Mbit/s, 150 ms queue", link("uplink", rate_mbit=20, queue_ms=150, delay_ms=15)),
        ("40 Mbit/s, 500 ms queue", link("uplink", rate_mbit=40, queue_ms=500, delay_ms=15)),
    ],
    "center-capacity": [
        ("upstream 30", link("upstream", rate_mbit=30, queue_ms=10)),
        ("upstream 90", link("upstream", rate_mbit=90, queue_ms=10)),
    ],
    "session-limit": [
        ("connlimit 25", {"hosts": {"gateway": {"session_limit": 25}}}),
        ("connlimit 30", {"hosts": {"gateway": {"session_limit": 30}}}),
    ],
    "per-flow-limit": [("10 per flow", link("uplink", flow_rate_mbit=10)), ("15 per flow", link("uplink", flow_rate_mbit=15))],
    "high-latency": [("40 ms each way", link("upstream", delay_ms=40)), ("90 ms each way", link("upstream", delay_ms=90))],
    "dns-slow": [
        ("+110 ms", {"dns": {"center": {"delay_ms": 110, "miss_delay_ms": 0}}}),
        ("+300 ms", {"dns": {"center": {"delay_ms": 300, "miss_delay_ms": 300}}}),
    ],
    "dns-failure": [
        ("50% SERVFAIL", {"dns": {"center": {"timeout_rate": 0, "servfail_rate": 0.5}}}),
        ("20% timeouts", {"dns": {"center": {"timeout_rate": 0.2, "servfail_rate": 0}}}),
    ],
    "no-connectivity": [("upstream cut", {"segment": "center", "links": {"uplink": {"state": "up"}, "upstream": {"state": "down"}}})],
}


def merged(base: dict, delta: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in delta.items():
        out[k] = merged(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


def cases_for(raw: dict, only: set[str], catalogue: bool, variants: bool) -> list[tuple[str, str, dict]]:
    cases: list[tuple[str, str, dict]] = []
    for name in raw:
        if only and name not in only:
            continue
        if catalogue:
            cases.append((name, "as catalogued", {}))
        if variants:
            cases.extend((name, label, delta) for label, delta in VARIANTS.get(name, []))
    return cases


def run_cases(cases: list[tuple[str, str, dict]], raw: dict, repeat: int, full: bool, jsonl: Path | None) -> list[dict]:
    from tests.lab.netlab import Lab
    from tests.lab.scenarios import load_scenarios
    from tests.lab.test_triage_lab import FULL_RUN
    from tests.lab.triage_run import diagnose

    records: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, label, delta in cases:
            variant = (
                {"healthy": raw["healthy"], name: merged(raw.get(name) or {}, delta)}
                if name != "healthy"
                else {"healthy": merged(raw["healthy"], delta)}
            )
            cat = Path(tmp) / f"{name}.yaml"
            cat.write_text(yaml.safe_dump(variant, allow_unicode=True))
            scenario = load_scenarios(cat)[name]
            quick = not full and name not in FULL_RUN
            for i in range(repeat):
                t0 = time.monotonic()
                try:
                    with Lab(scenario) as lab:
                        v = diagnose(lab, quick=quick)
                    rec = {
                        "scenario": name,
                        "variant": label,
                        "repeat": i,
                        "quick": quick,
                        "expected": v.expected,
                        "expected_segment": v.expected_segment,
                        "top": v.top,
                        "top_segment": v.top_segment,
                        "correct": v.correct,
                        "claims": [[c, s, p] for c, s, p in v.claims],
                        "status": v.status,
                        "figures": figures(v.result),
                        "seconds": round(time.monotonic() - t0, 1),
                    }
                except Exception as exc:  # a lab that did not come up is a run without a verdict
                    rec = {
                        "scenario": name,
                        "variant": label,
                        "repeat": i,
                        "quick": quick,
                        "expected": scenario.cause,
                        "expected_segment": scenario.segment,
                        "top": None,
                        "top_segment": None,
                        "correct": False,
                        "claims": [],
                        "status": "error",
                        "error": f"{type(exc).__name__}: {exc}"[:300],
                        "seconds": round(time.monotonic() - t0, 1),
                    }
                records.append(rec)
                if jsonl:
                    with jsonl.open("a") as fh:
                        fh.write(json.dumps(rec) + "\n")
                print(line(rec), flush=True)
    return records


def figures(doc: dict) -> dict:
    """The figures the capacity and queue rules weigh: multi- and single-stream downloads per
    target, idle p50 and the largest loaded p50 per target, failing bandwidth checks' needs."""
    m = doc.get("measurements") or {}
    out: dict = {}
    for b in m.get("bandwidth") or []:
        if b.get("direction") == "download" and b.get("goodput_mbps") is not None:
            out[f"down{'1' if b.get('streams') == 1 else ''}:{b['target']}"] = round(b["goodput_mbps"], 1)
    for s in m.get("latency") or []:
        p50 = (s.get("stats") or {}).get("p50_ms")
        if p50 is None:
            continue
        key = f"{'idle' if s['phase'] == 'idle' else 'loaded'}:{s['target']}"
        out[key] = round(max(p50, out.get(key, p50)), 1)
    for i, st in enumerate((m.get("load") or {}).get("steps") or []):
        errs = sum(int(v) for k, v in (st.get("errors") or {}).items() if k in ("refused", "reset", "timeout"))
        out[f"load{i}"] = (
            f"{st.get('connections_opened')} conns, {errs} failed, peak {st.get('peak_open_connections')}, {st.get('goodput_mbps')} Mbps"
        )
    for c in doc.get("checks") or []:
        if c.get("status") == "fail" and c.get("metric") == "download_mbps":
            out[f"need:{c['id']}"] = c.get("threshold")
    return out


def line(rec: dict) -> str:
    got = f"{rec['top'] or '-'}/{rec['top_segment'] or '-'}"
    claims = [(c, round(p, 2)) for c, _, p in rec["claims"]]
    extra = f" ERROR {rec['error']}" if rec.get("error") else ""
    return (
        f"{'ok ' if rec['correct'] else 'BAD'} {rec['scenario']:16} {rec['variant']:26} top={got} "
        f"claims={claims} {rec['seconds']:.0f}s{extra}"
    )


def summarise(records: list[dict]) -> None:
    by_case: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in records:
        by_case[(r["scenario"], r["variant"])].append(r)
    print()
    print("stability per case (tops: distinct top claim/segment seen, with counts)")
    print(f"{'scenario':16} {'variant':26} {'runs':>4} {'ok':>3}  stable  tops")
    for (name, label), rs in by_case.items():
        tops = Counter(f"{r['top'] or '-'}/{r['top_segment'] or '-'}" for r in rs)
        ok = sum(r["correct"] for r in rs)
        stable = "yes" if len(tops) == 1 else "NO"
        print(f"{name:16} {label:26} {len(rs):>4} {ok:>3}  {stable:6}  " + ", ".join(f"{t} x{n}" for t, n in tops.most_common()))
    scen: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        scen[r["scenario"]].append(r)
    print()
    print("per scenario, all variants: runs correct / runs")
    for name, rs in scen.items():
        print(f"  {name:16} {sum(r['correct'] for r in rs)}/{len(rs)}")
    confusion: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        confusion[r["expected"] or "(healthy)"][r["top"] or "-"] += 1
    cols = sorted({c for row in confusion.values() for c in row})
    correct = sum(r["correct"] for r in records)
    modes = sorted({"quick" if r["quick"] else "full" for r in records})
    print()
    print(f"confusion table: {correct}/{len(records)} runs named the expected cause on top, in its segment ({'+'.join(modes)} runs)")
    width = max(len(c) for c in cols + list(confusion)) + 1
    print("expected \\ top".ljust(width) + "".join(c[:14].rjust(15) for c in cols))
    for exp, row in confusion.items():
        print(exp.ljust(width) + "".join(str(row.get(c, "")).rjust(15) for c in cols))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=1, help="runs per case, each in a fresh lab")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--full", action="store_true", help="full runs instead of --quick")
    part = ap.add_mutually_exclusive_group()
    part.add_argument("--catalogue-only", action="store_true", help="only the scenarios as catalogued")
    part.add_argument("--variants-only", action="store_true", help="only the varied parameters")
    ap.add_argument("--jsonl", type=Path, help="append one JSON record per run to this file")
    ap.add_argument("--from-jsonl", type=Path, nargs="+", help="print the tables from saved records; run nothing")
    args = ap.parse_args()
    if args.from_jsonl:
        records = [json.loads(x) for p in args.from_jsonl for x in p.read_text().splitlines() if x.strip()]
        only = {x for x in args.only.split(",") if x}
        records = [r for r in records if not only or r["scenario"] in only]
        for r in records:
            print(line(r))
        summarise(records)
        return
    from _common import need

    need("ip", "tc", "iptables", "iperf3")
    raw = yaml.safe_load(CATALOGUE.read_text())
    only = {x for x in args.only.split(",") if x}
    unknown = only - set(raw)
    if unknown:
        sys.exit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    cases = cases_for(raw, only, catalogue=not args.variants_only, variants=not args.catalogue_only)
    records = run_cases(cases, raw, args.repeat, args.full, args.jsonl)
    summarise(records)


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    main()
