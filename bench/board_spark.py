"""Board aggregation: DuckDB against Spark local (``batch --engine spark``) on this machine.

    python bench/board_spark.py                           # 1,000,000 runs
    python bench/board_spark.py --runs 1000000 10000000   # both sizes, as recorded
    flock /tmp/gnc-bench.lock python bench/board_spark.py --runs 1000000 10000000

Rows come from bench/board_data.make_rows (real result documents varied: 3,000 schools in 30
boards, 12 weeks) and are written with ``batch.write_dataset`` (board and month folders), the
dataset ``batch`` writes. Each engine then runs in a fresh Python process:
``batch.aggregate_dataset(root, engine=...)``: all nine SQL files from the Parquet files to rows
in Python. For Spark the time includes starting the JVM (``local[*]``, batch's settings), which
is also printed on its own. Peak memory is each process's peak resident set (VmHWM): the Python
process, plus for Spark the JVM it starts (read before the session stops). Both engines'
results are compared row for row (relative tolerance 1e-9 on floats) before figures are printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402

from giga_netcheck.board import batch  # noqa: E402


def hwm_mb(pid: int | str) -> float:
    """A process's peak resident set in MB (VmHWM, Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def child(engine: str, root: Path, out: Path) -> None:
    """Runs in a fresh process: time one aggregation, dump the rows (pickled by JSON) for the check."""
    t0 = time.perf_counter()
    figures: dict[str, Any] = {"engine": engine}
    if engine == "spark":
        from giga_netcheck.board import spark

        session = spark.session()
        figures["jvm_start_s"] = time.perf_counter() - t0
        figures["spark"] = session.version
        t1 = time.perf_counter()
        tables = batch.aggregate_spark(batch.connect_spark(root, session=session))
        figures["aggregate_s"] = time.perf_counter() - t1
        figures["total_s"] = time.perf_counter() - t0
        jvms = children(os.getpid())
        figures["peak_jvm_mb"] = sum(hwm_mb(p) for p in jvms)
        figures["threads"] = session.sparkContext.defaultParallelism
        session.stop()
    else:
        import duckdb

        tables = batch.aggregate_dataset(root, engine="duckdb")
        figures["aggregate_s"] = figures["total_s"] = time.perf_counter() - t0
        figures["peak_jvm_mb"] = 0.0
        figures["duckdb"] = duckdb.__version__
    figures["peak_python_mb"] = hwm_mb("self")
    out.write_text(json.dumps({"figures": figures, "tables": {k: [t.columns, t.rows] for k, t in tables.items()}}, default=str))


def run_child(engine: str, root: Path, out: Path) -> dict[str, Any]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", engine, str(root), str(out)], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"bench: the {engine} process failed:\n{proc.stderr[-4000:]}")
    data = json.loads(out.read_text())
    data["figures"]["process_wall_s"] = wall
    return data


def same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return a == b


def agree(x: dict[str, Any], y: dict[str, Any]) -> int:
    n = 0
    for name in batch.QUERIES:
        (ca, ra), (cb, rb) = x[name], y[name]
        assert ca == cb and len(ra) == len(rb), name
        for i, (r1, r2) in enumerate(zip(ra, rb)):
            for c, v1, v2 in zip(ca, r1, r2):
                if not same(v1, v2):
                    raise AssertionError(f"{name} row {i} {c}: duckdb {v1!r} != spark {v2!r}")
                n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--schools", type=int, default=3000)
    ap.add_argument("--boards", type=int, default=30)
    ap.add_argument("--child", nargs=3, metavar=("ENGINE", "ROOT", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return

    from board_data import make_rows

    print(
        f"board aggregation, DuckDB vs Spark local: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.2f}"
    )
    rows = []
    for n in args.runs:
        tmp = Path(tempfile.mkdtemp(prefix="gnc-spark-"))
        try:
            t = time.perf_counter()
            batch.write_dataset(make_rows(n, args.schools, args.boards), tmp / "ds")
            size = sum(p.stat().st_size for p in (tmp / "ds").rglob("*.parquet")) / 1e6
            print(f"{n:,} runs: generated and written in {time.perf_counter() - t:.1f} s ({size:.0f} MB of Parquet)", flush=True)
            got = {}
            for engine in ("duckdb", "spark"):
                load = os.getloadavg()[0]
                got[engine] = run_child(engine, tmp / "ds", tmp / f"{engine}.json")
                f = got[engine]["figures"]
                f["load"] = load
                print(f"  {engine}: {json.dumps(f)}", flush=True)
            compared = agree(got["duckdb"]["tables"], got["spark"]["tables"])
            print(f"  check: DuckDB and Spark agree on all {compared:,} values", flush=True)
            for engine in ("duckdb", "spark"):
                f = got[engine]["figures"]
                rows.append(
                    [
                        f"{n:,}",
                        engine,
                        f"{f['total_s']:.1f}",
                        f"{f['jvm_start_s']:.1f}" if "jvm_start_s" in f else "-",
                        f"{f['aggregate_s']:.1f}",
                        f"{f['peak_python_mb']:.0f}",
                        f"{f['peak_jvm_mb']:.0f}" if f["peak_jvm_mb"] else "-",
                        f"{f['peak_python_mb'] + f['peak_jvm_mb']:.0f}",
                        f"{f['load']:.1f}",
                    ]
                )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    table(rows, ["runs", "engine", "wall s", "JVM start s", "queries s", "python MB", "JVM MB", "peak MB", "load"])


if __name__ == "__main__":
    main()
