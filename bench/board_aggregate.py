"""Board aggregation: DuckDB over the Parquet layout vs the same summaries as a plain Python loop.

    python bench/board_aggregate.py                    # 1,000,000 runs (the issue's target)
    python bench/board_aggregate.py --runs 100000      # a quick check
    flock /tmp/gnc-bench.lock python bench/board_aggregate.py --wait-idle 300   # as recorded

Run records are made from the real result documents (tests/golden/results, flattened by
batch.flatten_result) with varied values: 3,000 schools in 30 boards, 12 weeks of runs between
07:30 and 17:30, lesson-time dips, a share of failed runs (bench/board_data.make_rows). They are
written with ``batch.write_dataset`` as the dataset ``batch`` writes (partitioned by board and
month by default; ``--partition day`` for daily folders), then:

- **DuckDB, cold**: a fresh Python process (nothing cached in DuckDB), with the Parquet files
  evicted from the OS page cache first (fsync + posix_fadvise DONTNEED on each file, checked
  with fincore), times ``batch.connect_parquet`` + ``batch.aggregate``: every file in
  giga_netcheck/board_sql (school summary with latest, worst and lesson-hour medians, pass rates
  per check, causes per school, board compliance, worst-first ranking, causes by frequency,
  weekly trends, weekly causes, context breakdown) read from the files and fetched into Python.
  Then ``--repeat`` warm runs (files in the page cache). The process's peak RSS is reported.
- **DuckDB, in memory**: the same SQL over the Arrow tables already in memory.
- **Python loop**: the same nine summaries as straightforward Python over the same rows,
  already in memory as Python lists (the loop is not charged for reading; what reading the
  Parquet into lists costs is printed beside it).

The two are compared value by value before any figure is printed. Targets: DuckDB (cold, from
Parquet) <= 3 s for 1M runs on a 2-core machine, and >= 10x faster than the loop.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import rss_mb  # noqa: E402

from giga_netcheck.board import batch  # noqa: E402


def rss() -> float:
    return rss_mb(os.getpid())


def peak_mb() -> float:
    """This process's peak RSS in MB: VmHWM, which starts again at exec (ru_maxrss would carry
    the parent's peak into the DuckDB child)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def median(xs: list[float]) -> Optional[float]:
    return statistics.median(xs) if xs else None


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def to_lists(table: Any, columns: tuple[str, ...]) -> dict[str, list]:
    """Columns as Python lists; times as integer microseconds (cheaper to make and compare than
    datetime objects, so the loop is not slowed by its input)."""
    import pyarrow as pa

    t = table.select(list(columns))
    for i, f in enumerate(t.schema):
        if pa.types.is_timestamp(f.type):
            t = t.set_column(i, f.name, t.column(i).cast(pa.int64()))
    return t.to_pydict()


def _time(us: Optional[int]) -> Optional[dt.datetime]:
    return None if us is None else EPOCH + dt.timedelta(microseconds=us)


# ------------------------------------------------------------------------------ the Python loop

LESSON_METRICS = ("down_mbps", "up_mbps", "rtt_gateway_ms", "rtt_internet_ms", "dns_p50_ms", "knee_mbps")
RUN_FIELDS = (
    "school_id",
    "board",
    "school_name",
    "students",
    "mext_mbps",
    *batch.CONTEXT_FIELDS,
    "started_at",
    "run_id",
    "status",
    "lesson",
    "week",
    "mext_ok",
    "down_mbps",
    "up_mbps",
    "rtt_gateway_ms",
    "rtt_internet_ms",
    "loss_pct",
    "dns_p50_ms",
    "knee_mbps",
)


def _lo(cur: Optional[float], v: Optional[float]) -> Optional[float]:
    return cur if v is None else (v if cur is None or v < cur else cur)


def _hi(cur: Optional[float], v: Optional[float]) -> Optional[float]:
    return cur if v is None else (v if cur is None or v > cur else cur)


def _share(num: int, den: int) -> Optional[float]:
    return num / den if den else None


def python_loop(runs: dict[str, list], checks: dict[str, list], causes: dict[str, list]) -> dict[str, Any]:
    """The nine summaries of board_sql/*.sql, column for column, as straightforward Python."""
    school: dict[str, dict[str, Any]] = {}
    weekly: dict[tuple[str, str], dict[str, Any]] = {}
    cols = [
        runs[k]
        for k in (
            "school_id",
            "board",
            "started_at",
            "run_id",
            "status",
            "lesson",
            "week",
            "mext_ok",
            "down_mbps",
            "up_mbps",
            "rtt_gateway_ms",
            "rtt_internet_ms",
            "loss_pct",
            "dns_p50_ms",
            "knee_mbps",
        )
    ]
    for i, (sid, board, started, run_id, status, lesson, week, mext_ok, down, up, rtt_gw, rtt_in, loss, dns, knee) in enumerate(zip(*cols)):
        s = school.get(sid)
        if s is None:
            s = school[sid] = {
                "runs": 0,
                "lesson_runs": 0,
                "failed": 0,
                "first": started,
                "latest": (started, run_id),
                "li": i,
                "down": [],
                "lesson": {m: [] for m in LESSON_METRICS},
                "w_down": None,
                "w_up": None,
                "w_rtt_gw": None,
                "w_rtt_in": None,
                "w_loss": None,
                "w_dns": None,
                "w_knee": None,
            }
        s["runs"] += 1
        failed = status in ("fail", "error")
        s["failed"] += failed
        if started < s["first"]:
            s["first"] = started
        if (started, run_id) > s["latest"]:
            s["latest"] = (started, run_id)
            s["li"] = i
        if down is not None:
            s["down"].append(down)
        s["w_down"] = _lo(s["w_down"], down)
        s["w_up"] = _lo(s["w_up"], up)
        s["w_rtt_gw"] = _hi(s["w_rtt_gw"], rtt_gw)
        s["w_rtt_in"] = _hi(s["w_rtt_in"], rtt_in)
        s["w_loss"] = _hi(s["w_loss"], loss)
        s["w_dns"] = _hi(s["w_dns"], dns)
        s["w_knee"] = _lo(s["w_knee"], knee)
        if lesson:
            s["lesson_runs"] += 1
            for m, v in zip(LESSON_METRICS, (down, up, rtt_gw, rtt_in, dns, knee)):
                if v is not None:
                    s["lesson"][m].append(v)
        w = weekly.get((board, week))
        if w is None:
            w = weekly[(board, week)] = {
                "runs": 0,
                "schools": set(),
                "down": [],
                "lesson_down": [],
                "lesson_rtt": [],
                "dns": [],
                "failed": 0,
                "ok": 0,
                "ok_n": 0,
            }
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

    # causes: per school, per board, week and cause (runs and distinct schools)
    school_causes: dict[str, Counter] = defaultdict(Counter)
    weekly_causes: dict[tuple[str, str, str], list] = {}
    for board, week, sid, cid in zip(causes["board"], causes["week"], causes["school_id"], causes["cause_id"]):
        school_causes[sid][cid] += 1
        wc = weekly_causes.get((board, week, cid))
        if wc is None:
            wc = weekly_causes[(board, week, cid)] = [0, set()]
        wc[0] += 1
        wc[1].add(sid)
    school_causes_out = {}
    for sid, counter in school_causes.items():
        ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        school_causes_out[sid] = [(cid, n, n / school[sid]["runs"], rank) for rank, (cid, n) in enumerate(ranked, 1)]

    # pass rates per school and check
    tallies: dict[tuple[str, str], list[int]] = {}
    for sid, cid, status in zip(checks["school_id"], checks["check_id"], checks["status"]):
        c = tallies.get((sid, cid))
        if c is None:
            c = tallies[(sid, cid)] = [0, 0, 0, 0, 0]
        c[0] += 1
        if status == "pass":
            c[1] += 1
        elif status == "warn":
            c[2] += 1
        elif status == "fail":
            c[3] += 1
        elif status == "not-measured":
            c[4] += 1
    school_checks = {
        k: {"checks": c[0], "passed": c[1], "warned": c[2], "failed": c[3], "not_measured": c[4], "pass_rate": _share(c[1], c[0] - c[4])}
        for k, c in tallies.items()
    }

    summary = []
    for sid, s in school.items():
        li = s["li"]
        lesson_med = {m: median(v) for m, v in s["lesson"].items()}
        down_p50 = median(s["down"])
        comp = lesson_med["down_mbps"] if lesson_med["down_mbps"] is not None else down_p50
        mext = runs["mext_mbps"][li]
        top = school_causes_out.get(sid)
        summary.append(
            {
                "board": runs["board"][li],
                "school_id": sid,
                "school_name": runs["school_name"][li],
                **{k: runs[k][li] for k in batch.CONTEXT_FIELDS},
                "students": runs["students"][li],
                "mext_mbps": mext,
                "runs": s["runs"],
                "lesson_runs": s["lesson_runs"],
                "failed_runs": s["failed"],
                "failed_share": s["failed"] / s["runs"],
                "first_run_at": _time(s["first"]),
                "latest_at": _time(runs["started_at"][li]),
                "latest_status": runs["status"][li],
                "latest_down_mbps": runs["down_mbps"][li],
                "latest_up_mbps": runs["up_mbps"][li],
                "latest_rtt_internet_ms": runs["rtt_internet_ms"][li],
                "latest_dns_p50_ms": runs["dns_p50_ms"][li],
                "worst_down_mbps": s["w_down"],
                "worst_up_mbps": s["w_up"],
                "worst_rtt_gateway_ms": s["w_rtt_gw"],
                "worst_rtt_internet_ms": s["w_rtt_in"],
                "worst_loss_pct": s["w_loss"],
                "worst_dns_p50_ms": s["w_dns"],
                "worst_knee_mbps": s["w_knee"],
                "down_mbps_p50": down_p50,
                **{("lesson_dns_p50_ms" if m == "dns_p50_ms" else f"lesson_{m}_p50"): v for m, v in lesson_med.items()},
                "compliance_down_mbps": comp,
                "mext_ratio": None if comp is None or not mext else comp / mext,
                "mext_compliant": None if comp is None or mext is None else int(comp >= mext),
                "top_cause": top[0][0] if top else None,
                "top_cause_runs": top[0][1] if top else None,
            }
        )
    by_id = {r["school_id"]: r for r in summary}

    boards: dict[str, list[dict]] = defaultdict(list)
    for row in summary:
        boards[row["board"]].append(row)

    def group(rows: list[dict]) -> dict[str, Any]:
        assessed = [r["mext_compliant"] for r in rows if r["mext_compliant"] is not None]
        return {
            "schools": len(rows),
            "runs": sum(r["runs"] for r in rows),
            "schools_assessed": len(assessed),
            "schools_compliant": sum(assessed),
            "share_compliant": _share(sum(assessed), len(assessed)),
            "school_down_mbps_p50": median([r["compliance_down_mbps"] for r in rows if r["compliance_down_mbps"] is not None]),
            "mext_ratio_p50": median([r["mext_ratio"] for r in rows if r["mext_ratio"] is not None]),
            "lesson_rtt_internet_ms_p50": median(
                [r["lesson_rtt_internet_ms_p50"] for r in rows if r["lesson_rtt_internet_ms_p50"] is not None]
            ),
            "failed_share": sum(r["failed_runs"] for r in rows) / sum(r["runs"] for r in rows),
        }

    board_summary, ranking = {}, {}
    for b, rows in boards.items():
        board_summary[b] = {
            **group(rows),
            "lesson_dns_p50_ms": median([r["lesson_dns_p50_ms"] for r in rows if r["lesson_dns_p50_ms"] is not None]),
        }
        ranking[b] = sorted(
            rows,
            key=lambda r: (
                r["mext_ratio"] is None,
                r["mext_ratio"] or 0.0,
                r["compliance_down_mbps"] is None,
                r["compliance_down_mbps"] or 0.0,
                -r["failed_share"],
                r["school_id"],
            ),
        )
    board_causes: dict[tuple[str, str], list] = {}
    for sid, ranked in school_causes_out.items():
        b = by_id[sid]["board"]
        for cid, n, _, _ in ranked:
            bc = board_causes.setdefault((b, cid), [0, 0])
            bc[0] += n
            bc[1] += 1
    board_causes_out = {
        (b, cid): {
            "runs": n,
            "schools": k,
            "share_of_runs": n / board_summary[b]["runs"],
            "share_of_schools": k / board_summary[b]["schools"],
        }
        for (b, cid), (n, k) in board_causes.items()
    }
    weekly_out = {
        k: {
            "runs": w["runs"],
            "schools": len(w["schools"]),
            "down_mbps_p50": median(w["down"]),
            "lesson_down_mbps_p50": median(w["lesson_down"]),
            "lesson_rtt_internet_ms_p50": median(w["lesson_rtt"]),
            "dns_p50_ms": median(w["dns"]),
            "failed_share": w["failed"] / w["runs"],
            "mext_ok_share": _share(w["ok"], w["ok_n"]),
        }
        for k, w in weekly.items()
    }
    context: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for row in summary:
        for f in batch.CONTEXT_FIELDS:
            v = row[f] or "-"
            context[(row["board"], f, v)].append(row)
            context[("*", f, v)].append(row)
    return {
        "school_summary": by_id,
        "school_checks": school_checks,
        "school_causes": school_causes_out,
        "board_summary": board_summary,
        "board_ranking": ranking,
        "board_causes": board_causes_out,
        "board_weekly": weekly_out,
        "board_weekly_causes": {k: {"runs": n, "schools": len(ss)} for k, (n, ss) in weekly_causes.items()},
        "context_breakdown": {k: {c: v for c, v in group(rows).items() if c != "runs"} for k, rows in context.items()},
    }


# ------------------------------------------------------------------------------ agreement


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def agree(duck: dict[str, batch.Table], py: dict[str, Any]) -> int:
    """Every value the loop computed equals DuckDB's; returns how many values were compared."""
    n = 0

    def check(where: str, mine: dict[str, Any], theirs: dict[str, Any]) -> None:
        nonlocal n
        for k, v in mine.items():
            if not _same(v, theirs[k]):
                raise AssertionError(f"{where}.{k}: python {v!r} != duckdb {theirs[k]!r}")
            n += 1

    t = {name: tab.dicts() for name, tab in duck.items()}
    assert len(t["school_summary"]) == len(py["school_summary"])
    for r in t["school_summary"]:
        check(f"school_summary[{r['school_id']}]", py["school_summary"][r["school_id"]], r)
    assert len(t["school_checks"]) == len(py["school_checks"])
    for r in t["school_checks"]:
        check("school_checks", py["school_checks"][(r["school_id"], r["check_id"])], r)
    assert len(t["school_causes"]) == sum(len(v) for v in py["school_causes"].values())
    for r in t["school_causes"]:
        cid, runs, share, rank = py["school_causes"][r["school_id"]][r["cause_rank"] - 1]
        check("school_causes", {"cause_id": cid, "runs": runs, "share_of_runs": share}, r)
    for r in t["board_summary"]:
        check(f"board_summary[{r['board']}]", py["board_summary"][r["board"]], r)
    for r in t["board_ranking"]:
        assert py["board_ranking"][r["board"]][r["worst_rank"] - 1]["school_id"] == r["school_id"], r
        n += 1
    assert len(t["board_causes"]) == len(py["board_causes"])
    for r in t["board_causes"]:
        check("board_causes", py["board_causes"][(r["board"], r["cause_id"])], r)
    assert len(t["board_weekly"]) == len(py["board_weekly"])
    for r in t["board_weekly"]:
        check("board_weekly", py["board_weekly"][(r["board"], r["week"])], r)
    assert len(t["board_weekly_causes"]) == len(py["board_weekly_causes"])
    for r in t["board_weekly_causes"]:
        check("board_weekly_causes", py["board_weekly_causes"][(r["board"], r["week"], r["cause_id"])], r)
    assert len(t["context_breakdown"]) == len(py["context_breakdown"])
    for r in t["context_breakdown"]:
        check("context_breakdown", py["context_breakdown"][(r["board"], r["field"], r["value"])], r)
    return n


# ------------------------------------------------------------------------------ the DuckDB process


def evict(root: Path) -> None:
    """Drop this dataset's files (only these) from the OS page cache, so the next read is cold."""
    for p in root.rglob("*.parquet"):
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cached_mb(root: Path) -> Optional[float]:
    """How much of the dataset sits in the page cache (fincore), or None without fincore."""
    files = [str(p) for p in root.rglob("*.parquet")]
    if not shutil.which("fincore") or not files:
        return None
    total = 0
    for i in range(0, len(files), 500):
        out = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES", *files[i : i + 500]], capture_output=True, text=True
        )
        total += sum(int(x) for x in out.stdout.split() if x.isdigit())
    return total / 1e6


def duckdb_child(root: Path, repeat: int) -> None:
    """Runs in a fresh process: the first run reads cold files; prints JSON figures."""
    import duckdb

    base = rss()
    times = []
    for i in range(1 + repeat):
        t = time.perf_counter()
        con = batch.connect_parquet(root)
        out = batch.aggregate(con)
        times.append(time.perf_counter() - t)
        if i == 0:
            peak_cold = peak_mb()
        threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
        con.close()
    # per query, after the timed runs (warm files): where the time goes
    con = batch.connect_parquet(root)
    per_query = {}
    for name in batch.QUERIES:
        t = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {batch.sql_text(name)}")
        con.execute(f"SELECT * FROM {name} ORDER BY {batch.ORDER[name]}").fetchall()
        per_query[name] = time.perf_counter() - t
    con.close()
    print(
        json.dumps(
            {
                "times": times,
                "threads": threads,
                "rss_after_import_mb": base,
                "peak_rss_mb": peak_mb(),
                "peak_rss_cold_mb": peak_cold,
                "rows": {k: len(v.rows) for k, v in out.items()},
                "per_query": per_query,
                "duckdb": duckdb.__version__,
            }
        )
    )


def run_duckdb_process(root: Path, repeat: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child-duckdb", str(root), "--repeat", str(repeat)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        sys.exit(f"bench: the DuckDB process failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def wait_idle(limit_s: float, below: float = 1.0) -> None:
    """Wait (at most limit_s) until the 1-minute load average drops below ``below``."""
    t = time.monotonic()
    while os.getloadavg()[0] >= below and time.monotonic() - t < limit_s:
        time.sleep(5)


# ------------------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--schools", type=int, default=3000)
    ap.add_argument("--boards", type=int, default=30)
    ap.add_argument(
        "--partition",
        choices=batch.PARTITIONS,
        default="month",
        help="date granularity of the Parquet folders (batch --partition); day makes boards x days files",
    )
    ap.add_argument("--repeat", type=int, default=3, help="warm DuckDB runs after the cold one")
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        metavar="S",
        help="before each timed phase wait up to S seconds for the 1-minute load average to fall below 1",
    )
    ap.add_argument("--dir", type=Path, default=None, help="where to write the Parquet dataset (default: a temporary folder)")
    ap.add_argument("--duckdb-only", action="store_true", help="time DuckDB over the files only (to compare layouts)")
    ap.add_argument("--child-duckdb", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_duckdb:
        duckdb_child(args.child_duckdb, args.repeat)
        return

    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq
    from board_data import make_rows

    print(
        f"board aggregation bench: {args.runs:,} runs, {args.schools:,} schools, {args.boards} boards; "
        f"{os.cpu_count()} CPUs; duckdb {duckdb.__version__}, pyarrow {pa.__version__}, Python {sys.version.split()[0]}"
    )
    base_rss = rss()
    t = time.perf_counter()
    tables = make_rows(args.runs, args.schools, args.boards)
    print(
        f"generate   {time.perf_counter() - t:7.2f} s  runs={tables['runs'].num_rows:,} checks={tables['checks'].num_rows:,} "
        f"causes={tables['causes'].num_rows:,}  (rss {rss():.0f} MB)"
    )

    tmp = args.dir or Path(tempfile.mkdtemp(prefix="gnc-board-"))
    try:
        t = time.perf_counter()
        batch.write_dataset(tables, tmp, partition=args.partition)
        files = list(tmp.rglob("*.parquet"))
        size = sum(p.stat().st_size for p in files)
        groups = sum(pq.ParquetFile(p).metadata.num_row_groups for p in files)
        print(
            f"parquet    {time.perf_counter() - t:7.2f} s  {size / 1e6:.1f} MB in {len(files):,} files, {groups:,} row groups "
            f"under {tmp} (partitioned by board, {args.partition})"
        )

        # ---- DuckDB over the Parquet layout, in a fresh process, files evicted from the page cache
        if args.wait_idle:
            wait_idle(args.wait_idle)
        evict(tmp)
        cached = cached_mb(tmp)
        load_duck = loadavg()
        d = run_duckdb_process(tmp, args.repeat)
        t_cold, warm = d["times"][0], d["times"][1:]
        t_warm = statistics.median(warm) if warm else t_cold
        rows = d["rows"]
        print(
            f"duckdb     {t_cold:7.2f} s  cold: Parquet files -> all {len(batch.QUERIES)} summaries fetched into Python "
            f"(fresh process, {d['threads']} threads; {f'{cached:.1f} MB' if cached is not None else 'unknown'} of the files "
            f"in the page cache before; load avg {load_duck})"
        )
        print(
            f"           {t_warm:7.2f} s  warm: median of {len(warm)} more runs ({', '.join(f'{x:.2f}' for x in warm)}); "
            f"DuckDB process peak RSS {d['peak_rss_cold_mb']:.0f} MB after the cold run, {d['peak_rss_mb']:.0f} MB after all "
            f"({d['rss_after_import_mb']:.0f} MB after imports)"
        )
        print("           per query (warm): " + ", ".join(f"{k} {v:.2f}" for k, v in d["per_query"].items()))
        print("           rows: " + ", ".join(f"{k}={v:,}" for k, v in rows.items()))
        if args.duckdb_only:
            return

        # ---- DuckDB over the same rows in memory (Arrow tables, zero-copy): like for like with the loop
        gc.collect()
        con = batch.connect_arrow(tables)
        t = time.perf_counter()
        mem = batch.aggregate(con)
        t_mem = time.perf_counter() - t
        con.close()
        assert {k: len(v.rows) for k, v in mem.items()} == rows
        print(f"duckdb mem {t_mem:7.2f} s  the same SQL over the Arrow tables in memory")

        # ---- what a Python implementation would pay to read the same files into lists
        gc.collect()
        t = time.perf_counter()
        for name, cols in (
            ("runs", RUN_FIELDS),
            ("checks", ("school_id", "check_id", "status")),
            ("causes", ("board", "week", "school_id", "cause_id")),
        ):
            to_lists(pq.read_table(tmp / name, columns=list(cols), partitioning="hive"), cols)
        t_read_py = time.perf_counter() - t
        gc.collect()
        print(f"py read    {t_read_py:7.2f} s  pyarrow: the Parquet files -> Python lists (not charged to the loop below)")

        # ---- the Python loop, from lists already in memory
        runs = to_lists(tables["runs"], RUN_FIELDS)
        checks = to_lists(tables["checks"], ("school_id", "check_id", "status"))
        causes = to_lists(tables["causes"], ("board", "week", "school_id", "cause_id"))
        gc.collect()
        if args.wait_idle:
            wait_idle(args.wait_idle)
        load_py = loadavg()
        before = rss()
        t = time.perf_counter()
        py = python_loop(runs, checks, causes)
        t_py = time.perf_counter() - t
        print(
            f"python     {t_py:7.2f} s  the same {len(batch.QUERIES)} summaries as a plain loop over lists in memory "
            f"(rss {rss() - before:+.0f} MB; load avg {load_py})"
        )

        # ---- the two agree, value by value
        full = batch.aggregate(batch.connect_parquet(tmp))
        n = agree(full, py)
        print(f"check      DuckDB and the Python loop agree on all {n:,} values of the {len(batch.QUERIES)} summaries")

        ratio = t_py / t_cold
        print()
        print(
            f"RESULT  {args.runs:,} runs -> full per-school and per-board summaries (causes, weekly trends), "
            f"{os.cpu_count()} CPUs, partitioned by board and {args.partition}"
        )
        print(
            f"  DuckDB from Parquet, cold read included : {t_cold:6.2f} s   (warm {t_warm:.2f} s; target <= 3 s: "
            f"{'met' if t_cold <= 3 else 'NOT met'})"
        )
        print(f"  plain Python loop, rows already in memory: {t_py:6.2f} s   (+ {t_read_py:.2f} s to read the files into lists)")
        print(
            f"  speed-up, DuckDB cold vs the loop        : {ratio:6.1f}x  (target >= 10x: {'met' if ratio >= 10 else 'NOT met'}; "
            f"with the loop's read: {(t_py + t_read_py) / t_cold:.1f}x; in memory vs in memory: {t_py / t_mem:.1f}x)"
        )
        print(
            f"  memory: DuckDB process peak RSS {d['peak_rss_cold_mb']:.0f} MB (cold run; {d['peak_rss_mb']:.0f} MB after "
            f"{1 + args.repeat} runs); this process peak RSS {peak_mb():.0f} MB "
            f"(start {base_rss:.0f} MB; it holds the generated tables and the loop's Python lists)"
            + ("" if args.runs >= 1_000_000 else "\n  (reduced size: the targets are for 1,000,000 runs)")
        )
    finally:
        if args.dir is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
