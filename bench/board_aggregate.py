"""Board aggregation: DuckDB over the Parquet layout vs the same summaries as a plain Python loop.

    python bench/board_aggregate.py                    # 1,000,000 runs (the issue's target)
    python bench/board_aggregate.py --runs 100000      # a quick check

Run records are made from the real result documents (tests/golden/results, flattened by
batch.flatten_result) with varied values: 3,000 schools in 30 boards, 12 weeks of runs between
07:30 and 17:30, lesson-time dips, a share of failed runs (bench/board_data.make_rows). They are
written as the Parquet dataset ``batch`` writes (partitioned by board and day), then:

- DuckDB runs every file in giga_netcheck/board_sql (school summary with lesson-hour medians,
  pass rates per check, causes per school, board compliance, worst-first ranking, causes by
  frequency, weekly trends, weekly causes, context breakdown) over that layout;
- a plain Python loop computes the same summaries from the same rows, already in memory as
  Python lists (the loop is not charged for reading Parquet).

Prints wall times, the speed-up, and memory (peak RSS, and RSS growth in each phase). Targets:
DuckDB <= 3 s for 1M runs on a 2-core machine, and >= 10x faster than the loop.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import rss_mb  # noqa: E402
from board_data import make_rows  # noqa: E402

from giga_netcheck import batch  # noqa: E402


def rss() -> float:
    return rss_mb(os.getpid())


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median(xs: list[float]) -> Optional[float]:
    return statistics.median(xs) if xs else None


# ------------------------------------------------------------------------------ the Python loop

METRICS = ("down_mbps", "up_mbps", "rtt_gateway_ms", "rtt_internet_ms", "dns_p50_ms", "knee_mbps")


def python_loop(runs: dict[str, list], checks: dict[str, list], causes: dict[str, list]) -> dict[str, Any]:
    """The same summaries as board_sql/*.sql, as straightforward Python over lists of values."""
    n = len(runs["run_id"])
    school: dict[str, dict[str, Any]] = {}
    weekly: dict[tuple[str, str], dict[str, Any]] = {}
    cols = [runs[k] for k in ("school_id", "board", "started_at", "run_id", "status", "lesson", "week", "mext_ok",
                              "down_mbps", "up_mbps", "rtt_gateway_ms", "rtt_internet_ms", "loss_pct", "dns_p50_ms", "knee_mbps")]
    for i in range(n):
        sid, board, started, run_id, status, lesson, week, mext_ok, down, up, rtt_gw, rtt_in, loss, dns, knee = (c[i] for c in cols)
        s = school.get(sid)
        if s is None:
            s = school[sid] = {"runs": 0, "lesson_runs": 0, "failed": 0, "latest": None, "all_down": [],
                               "lesson": {m: [] for m in METRICS}, "worst_down": None, "worst_up": None,
                               "worst_rtt_gw": None, "worst_rtt_in": None, "worst_loss": None, "worst_dns": None,
                               "worst_knee": None, "row": i}
        s["runs"] += 1
        failed = status in ("fail", "error")
        s["failed"] += failed
        if s["latest"] is None or (started, run_id) > s["latest"][0]:
            s["latest"] = ((started, run_id), i)
        if down is not None:
            s["all_down"].append(down)
            s["worst_down"] = down if s["worst_down"] is None else min(s["worst_down"], down)
        if up is not None:
            s["worst_up"] = up if s["worst_up"] is None else min(s["worst_up"], up)
        for key, v, fn in (("worst_rtt_gw", rtt_gw, max), ("worst_rtt_in", rtt_in, max), ("worst_loss", loss, max),
                           ("worst_dns", dns, max), ("worst_knee", knee, min)):
            if v is not None:
                s[key] = v if s[key] is None else fn(s[key], v)
        if lesson:
            s["lesson_runs"] += 1
            for m, v in zip(METRICS, (down, up, rtt_gw, rtt_in, dns, knee)):
                if v is not None:
                    s["lesson"][m].append(v)
        w = weekly.get((board, week))
        if w is None:
            w = weekly[(board, week)] = {"runs": 0, "schools": set(), "down": [], "lesson_down": [], "lesson_rtt": [],
                                         "dns": [], "failed": 0, "ok": 0, "ok_n": 0}
        w["runs"] += 1
        w["schools"].add(sid)
        w["failed"] += failed
        if down is not None:
            w["down"].append(down)
            if lesson:
                w["lesson_down"].append(down)
        if lesson and rtt_in is not None:
            w["lesson_rtt"].append(rtt_in)
        if dns is not None:
            w["dns"].append(dns)
        if mext_ok is not None:
            w["ok_n"] += 1
            w["ok"] += mext_ok

    # causes per school, per board, per board and week
    school_causes: dict[str, Counter] = defaultdict(Counter)
    board_causes: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    board_cause_schools: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    weekly_causes: Counter = Counter()
    for run_id, board, week, sid, cid in zip(causes["run_id"], causes["board"], causes["week"], causes["school_id"], causes["cause_id"]):
        school_causes[sid][cid] += 1
        board_causes[board][cid].add(run_id)
        board_cause_schools[board][cid].add(sid)
        weekly_causes[(board, week, cid)] += 1

    # pass rates per school and check
    pass_rates: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for sid, cid, status in zip(checks["school_id"], checks["check_id"], checks["status"]):
        c = pass_rates[(sid, cid)]
        c[0] += 1
        c[1] += status == "pass"
        c[2] += status != "not-measured"
    rates = {k: (c[1] / c[2] if c[2] else None) for k, c in pass_rates.items()}

    summary = []
    for sid, s in school.items():
        lesson_med = {m: median(v) for m, v in s["lesson"].items()}
        comp = lesson_med["down_mbps"] if lesson_med["down_mbps"] is not None else median(s["all_down"])
        li = s["latest"][1]
        mext = runs["mext_mbps"][li]
        top = school_causes[sid].most_common(1)
        summary.append({
            "school_id": sid, "board": runs["board"][li], "runs": s["runs"], "lesson_runs": s["lesson_runs"],
            "failed_share": s["failed"] / s["runs"], "latest_status": runs["status"][li], "latest_down": runs["down_mbps"][li],
            "worst_down": s["worst_down"], "worst_rtt_in": s["worst_rtt_in"], "worst_dns": s["worst_dns"],
            **{f"lesson_{m}_p50": v for m, v in lesson_med.items()}, "compliance_down": comp,
            "mext_ratio": None if comp is None or not mext else comp / mext,
            "mext_compliant": None if comp is None or not mext else int(comp >= mext),
            "top_cause": top[0][0] if top else None,
            **{k: runs[k][li] for k in batch.CONTEXT_FIELDS},
        })

    boards: dict[str, list[dict]] = defaultdict(list)
    for row in summary:
        boards[row["board"]].append(row)
    board_summary, ranking = {}, {}
    for b, rows in boards.items():
        assessed = [r for r in rows if r["mext_compliant"] is not None]
        board_summary[b] = {
            "schools": len(rows), "assessed": len(assessed),
            "share_compliant": sum(r["mext_compliant"] for r in assessed) / len(assessed) if assessed else None,
            "down_p50": median([r["compliance_down"] for r in rows if r["compliance_down"] is not None]),
        }
        ranking[b] = sorted(rows, key=lambda r: (r["mext_ratio"] is None, r["mext_ratio"] or 0.0,
                                                 r["compliance_down"] is None, r["compliance_down"] or 0.0, -r["failed_share"], r["school_id"]))
    weekly_out = {k: {"runs": w["runs"], "schools": len(w["schools"]), "down_p50": median(w["down"]),
                      "lesson_down_p50": median(w["lesson_down"]), "lesson_rtt_p50": median(w["lesson_rtt"]),
                      "dns_p50": median(w["dns"]), "failed_share": w["failed"] / w["runs"],
                      "ok_share": w["ok"] / w["ok_n"] if w["ok_n"] else None} for k, w in weekly.items()}
    context: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for row in summary:
        for f in batch.CONTEXT_FIELDS:
            v = row[f] or "-"
            context[(row["board"], f, v)].append(row)
            context[("*", f, v)].append(row)
    context_out = {}
    for k, rows in context.items():
        assessed = [r for r in rows if r["mext_compliant"] is not None]
        context_out[k] = {"schools": len(rows), "share": sum(r["mext_compliant"] for r in assessed) / len(assessed) if assessed else None,
                          "down_p50": median([r["compliance_down"] for r in rows if r["compliance_down"] is not None])}
    return {"school_summary": summary, "board_summary": board_summary, "ranking": ranking, "weekly": weekly_out,
            "weekly_causes": weekly_causes, "board_causes": {b: {c: len(r) for c, r in d.items()} for b, d in board_causes.items()},
            "pass_rates": rates, "context": context_out}


# ------------------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--schools", type=int, default=3000)
    ap.add_argument("--boards", type=int, default=30)
    ap.add_argument("--partition", choices=("day", "month"), default="day",
                    help="date granularity of the Parquet folders (batch --partition); day makes boards x days files")
    ap.add_argument("--dir", type=Path, default=None, help="where to write the Parquet dataset (default: a temporary folder)")
    args = ap.parse_args()

    import duckdb
    import pyarrow as pa

    print(f"board aggregation bench: {args.runs:,} runs, {args.schools:,} schools, {args.boards} boards; "
          f"{os.cpu_count()} CPUs; duckdb {duckdb.__version__}, pyarrow {pa.__version__}, Python {sys.version.split()[0]}")
    base_rss = rss()
    t = time.perf_counter()
    tables = make_rows(args.runs, args.schools, args.boards)
    print(f"generate   {time.perf_counter() - t:7.2f} s  runs={tables['runs'].num_rows:,} checks={tables['checks'].num_rows:,} "
          f"causes={tables['causes'].num_rows:,}  (rss {rss():.0f} MB)")

    tmp = args.dir or Path(tempfile.mkdtemp(prefix="gnc-board-"))
    try:
        t = time.perf_counter()
        batch.write_dataset(tables, tmp, partition=args.partition)
        size = sum(p.stat().st_size for p in tmp.rglob("*.parquet"))
        files = sum(1 for _ in tmp.rglob("*.parquet"))
        print(f"parquet    {time.perf_counter() - t:7.2f} s  {size / 1e6:.1f} MB in {files:,} files under {tmp} (partition: board, {args.partition})")

        # ---- DuckDB over the Parquet layout (what `batch` does), every SQL file
        gc.collect()
        before = rss()
        t = time.perf_counter()
        con = batch.connect_parquet(tmp)
        t_load = time.perf_counter() - t
        t = time.perf_counter()
        out = batch.aggregate(con)
        t_agg = time.perf_counter() - t
        t_duck = t_load + t_agg
        con.close()
        rows = {k: len(v.rows) for k, v in out.items()}
        print(f"duckdb     {t_duck:7.2f} s  = read parquet {t_load:.2f} s + aggregate {t_agg:.2f} s "
              f"(rss {rss() - before:+.0f} MB; {', '.join(f'{k}={v:,}' for k, v in rows.items())})")

        # ---- DuckDB over the same rows in memory (Arrow tables, zero-copy): like for like with the loop
        gc.collect()
        con = batch.connect_arrow(tables)
        t = time.perf_counter()
        mem = batch.aggregate(con)
        t_mem = time.perf_counter() - t
        con.close()
        assert {k: len(v.rows) for k, v in mem.items()} == rows
        print(f"duckdb mem {t_mem:7.2f} s  (the same SQL over the Arrow tables in memory)")

        # ---- the Python loop, from lists already in memory
        gc.collect()
        t = time.perf_counter()
        runs = tables["runs"].to_pydict()
        checks = tables["checks"].select(["school_id", "check_id", "status"]).to_pydict()
        causes = tables["causes"].select(["run_id", "board", "week", "school_id", "cause_id"]).to_pydict()
        print(f"to python  {time.perf_counter() - t:7.2f} s  (not charged to the loop; rss {rss():.0f} MB)")
        before = rss()
        t = time.perf_counter()
        py = python_loop(runs, checks, causes)
        t_py = time.perf_counter() - t
        print(f"python     {t_py:7.2f} s  (rss {rss() - before:+.0f} MB)")

        # ---- the two agree
        duck_share = {r["board"]: r["share_compliant"] for r in out["board_summary"].dicts()}
        for b, s in py["board_summary"].items():
            assert (s["share_compliant"] is None and duck_share[b] is None) or abs(s["share_compliant"] - duck_share[b]) < 1e-9, b
        duck_school = {r["school_id"]: r for r in out["school_summary"].dicts()}
        for r in py["school_summary"]:
            d = duck_school[r["school_id"]]
            for a, b in (("lesson_down_mbps_p50", d["lesson_down_mbps_p50"]), ("compliance_down", d["compliance_down_mbps"])):
                assert (r[a] is None and b is None) or abs(r[a] - b) < 1e-6, (r["school_id"], a, r[a], b)
        duck_rank = {(r["board"], r["worst_rank"]): r["school_id"] for r in out["board_ranking"].dicts()}
        for b, rs in py["ranking"].items():
            assert [duck_rank[(b, i + 1)] for i in range(len(rs))] == [r["school_id"] for r in rs], b
        print("check      DuckDB and the Python loop agree (board compliance, lesson medians, rankings)")

        speedup = t_py / t_mem if t_mem else float("inf")
        print(f"result     from memory: duckdb {t_mem:.2f} s vs python loop {t_py:.2f} s = {speedup:.1f}x faster; "
              f"from parquet: duckdb {t_duck:.2f} s ({t_py / t_duck:.1f}x the loop, which reads nothing); "
              f"peak rss {peak_mb():.0f} MB (start {base_rss:.0f} MB)")
        print(f"targets    duckdb from parquet <= 3 s: {'yes' if t_duck <= 3 else 'NO'}; "
              f">= 10x the loop (memory vs memory): {'yes' if speedup >= 10 else 'NO'}"
              + ("" if args.runs >= 1_000_000 else "  (reduced size: the targets are for 1,000,000 runs)"))
    finally:
        if args.dir is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
