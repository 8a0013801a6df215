"""Collector ingestion bench (issue 19 item 6): how many uploads a second `serve --collect` stores.

    flock /tmp/gnc-bench.lock python bench/collect_ingest.py [--uploads 2000] [--clients 50]
                                                             [--workers 1,2] [--retries 100]

For each worker count, starts `giga-netcheck serve --collect DIR --tokens FILE --workers N` (a real
subprocess on 127.0.0.1, port picked by the server) and ``--clients`` concurrent clients (asyncio,
keep-alive HTTP/1.1, one school token each) that upload ``--uploads`` distinct results of about
27 KiB, built like the tests build them (bench/board_data.py: the golden results varied per school
and run). ``--retries`` of those results are then sent again at once, as a spool whose answer was
lost would (each must be answered 200 ``duplicate``), half of them twice at the same moment.

Prints, per worker count: uploads/s over the distinct uploads (first request sent to last answer),
p50/p99/max latency, every status seen, the server processes' peak RSS (VmHWM, summed), and the
commits the server reports at its stop (batches, file fsyncs, folder fsyncs, the largest batch).
Then checks that every result is stored exactly once (one file per run id, no temporary file left)
and that `batch.read_inputs` reads every file without skipping one. Exits 1 if a check fails.
Loopback only; bounded counts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import yaml
from _common import ROOT, table
from board_data import JST, make_doc, make_schools, templates

from giga_netcheck.board import batch

PORT_LINE = re.compile(r"measurement server on [^ ]+:(\d+)")
STATS_LINE = re.compile(
    r"collector pid (\d+): stored (\d+), duplicates (\d+), refused (\d+); (\d+) commits, (\d+) file fsyncs, (\d+) folder fsyncs, largest batch (\d+)"
)


def _token(school_id: str) -> str:
    return f"tok-{school_id}-0123456789"


def _bodies(n: int, schools: list) -> list[tuple[str, str, bytes]]:
    """(token, run id, body) for ``n`` distinct results spread over ``schools``."""
    tpls = templates()
    out = []
    start = dt.datetime(2026, 6, 1, 8, 0, tzinfo=JST)
    for i in range(n):
        s = schools[i % len(schools)]
        doc = make_doc(tpls, s, start + dt.timedelta(minutes=15 * (i // len(schools))), i)
        doc["run_id"] = f"bench-{s.id}-{i:06d}"
        out.append((_token(s.id), doc["run_id"], json.dumps(doc, ensure_ascii=False).encode()))
    return out


class Server:
    """`serve --collect` in a subprocess; its stderr is kept (the port, the commit figures)."""

    def __init__(self, store: Path, tokens: Path, workers: int) -> None:
        cmd = [sys.executable, "-m", "giga_netcheck.cli.main", "serve", "--host", "127.0.0.1", "--port", "0"]
        cmd += ["--collect", str(store), "--tokens", str(tokens), "--workers", str(workers), "--lang", "en"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.port: int = 0
        self.workers = workers
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(30):
            self.stop()
            sys.exit("bench: the server did not start:\n" + "\n".join(self.lines[-20:]))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        listening = 0
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            m = PORT_LINE.search(line)
            if m:
                self.port = int(m.group(1))
                listening += 1
                if listening >= self.workers:
                    self._ready.set()

    def pids(self) -> list[int]:
        """The server's processes: the parent and its workers."""
        pids = [self.proc.pid]
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            pids += [int(k) for k in kids]
        except OSError:
            pass
        return pids

    def peak_rss_mb(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) / 1024
            except OSError:
                pass
        return total

    def stop(self) -> list[tuple[int, ...]]:
        """SIGTERM, wait, and return each process's commit figures."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        time.sleep(0.2)
        return [tuple(int(g) for g in m.groups()) for line in self.lines if (m := STATS_LINE.search(line))]


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: str, body: bytes) -> tuple[int, dict]:
    head = (
        f"POST /results HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    writer.write(head + body)
    await writer.drain()
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    answer = json.loads(await reader.readexactly(length)) if length else {}
    return status, answer


async def _clients(port: int, jobs: list[tuple[str, str, bytes]], clients: int) -> tuple[list[float], Counter, float]:
    """Send ``jobs`` over ``clients`` keep-alive connections; (latencies, statuses, seconds)."""
    queue: asyncio.Queue[tuple[str, str, bytes]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    latencies: list[float] = []
    statuses: Counter = Counter()

    async def client() -> None:
        conn = None
        while not queue.empty():
            token, run_id, body = queue.get_nowait()
            for _attempt in range(3):
                if conn is None:
                    conn = await asyncio.open_connection("127.0.0.1", port)
                t0 = time.perf_counter()
                try:
                    status, answer = await asyncio.wait_for(_post(*conn, token, body), 120)
                except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError) as exc:
                    statuses[f"error:{type(exc).__name__}"] += 1
                    conn[1].close()
                    conn = None
                    continue
                latencies.append(time.perf_counter() - t0)
                statuses[f"{status} {answer.get('status') or answer.get('error')}"] += 1
                if status >= 400:
                    conn[1].close()
                    conn = None
                break
        if conn is not None:
            conn[1].close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, statuses, time.perf_counter() - t0


async def _retries(port: int, jobs: list[tuple[str, str, bytes]]) -> Counter:
    """Each job sent again; half of them on two connections at the same moment."""
    statuses: Counter = Counter()

    async def once(job: tuple[str, str, bytes]) -> None:
        conn = await asyncio.open_connection("127.0.0.1", port)
        try:
            status, answer = await asyncio.wait_for(_post(*conn, job[0], job[2]), 120)
            statuses[f"{status} {answer.get('status') or answer.get('error')}"] += 1
        finally:
            conn[1].close()

    sends = [once(j) for j in jobs] + [once(j) for j in jobs[: len(jobs) // 2]]
    await asyncio.gather(*sends)
    return statuses


def _verify(store: Path, run_ids: set[str]) -> list[str]:
    problems = []
    files = [p for p in store.rglob("*") if p.is_file()]
    temps = [p for p in files if p.name.startswith(".")]
    results = [p for p in files if p.suffix == ".json" and not p.name.startswith(".")]
    stems = Counter(p.stem for p in results)
    if temps:
        problems.append(f"{len(temps)} temporary files left")
    if set(stems) != run_ids:
        problems.append(f"stored run ids differ from sent: {len(set(stems) - run_ids)} extra, {len(run_ids - set(stems))} missing")
    twice = [k for k, n in stems.items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} run ids stored more than once")
    inputs = batch.read_inputs([store])
    if len(inputs.runs) != len(run_ids) or inputs.skipped:
        problems.append(f"batch.read_inputs: {len(inputs.runs)} runs, {len(inputs.skipped)} skipped (want {len(run_ids)}, 0)")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uploads", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    ap.add_argument("--retries", type=int, default=100, help="results sent again after the run (duplicates)")
    ap.add_argument("--dir", type=Path, default=None, help="where the collection folders go (default: a temporary folder)")
    args = ap.parse_args()
    if not 1 <= args.uploads <= 100_000 or not 1 <= args.clients <= 1000:
        sys.exit("bench: --uploads 1..100000, --clients 1..1000")

    schools = make_schools(args.clients, boards=3)
    jobs = _bodies(args.uploads, schools)
    sizes = [len(b) for _, _, b in jobs]
    print(
        f"{len(jobs)} distinct results, {statistics.mean(sizes) / 1024:.1f} KiB on average; {args.clients} clients; {args.retries} retried"
    )
    rows = []
    failed = False
    base = Path(tempfile.mkdtemp(prefix="gnc-ingest-", dir=args.dir))
    tokens = base / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"tokens": [{"token": _token(s.id), "school": s.id, "board": s.board} for s in schools]}))
    tokens.chmod(0o600)
    for workers in [int(w) for w in args.workers.split(",")]:
        store = base / f"store-w{workers}"
        server = Server(store, tokens, workers)
        try:
            latencies, statuses, seconds = asyncio.run(_clients(server.port, jobs, args.clients))
            retried = asyncio.run(_retries(server.port, jobs[: args.retries])) if args.retries else Counter()
            rss = server.peak_rss_mb()
        finally:
            stats = server.stop()
        problems = _verify(store, {r for _, r, _ in jobs})
        want_retry = {"200 duplicate": args.retries + args.retries // 2} if args.retries else {}
        if dict(retried) != want_retry:
            problems.append(f"retries answered {dict(retried)}, want {want_retry}")
        if statuses != Counter({"201 stored": len(jobs)}):
            problems.append(f"uploads answered {dict(statuses)}")
        lat = sorted(latencies)
        commits = [sum(s[i] for s in stats) for i in range(4, 7)] if stats else ["?"] * 3
        largest = max((s[7] for s in stats), default="?")
        per_worker = "/".join(str(s[1]) for s in stats) or "?"
        rows.append(
            (
                workers,
                f"{len(jobs) / seconds:.0f}",
                f"{seconds:.1f}",
                f"{lat[len(lat) // 2] * 1000:.0f}",
                f"{lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000:.0f}",
                f"{lat[-1] * 1000:.0f}",
                ", ".join(f"{k}: {v}" for k, v in sorted((statuses + retried).items())),
                f"{rss:.0f}",
                f"{commits[0]} / {commits[1]} / {commits[2]} (max {largest})",
                per_worker,
                "ok" if not problems else "; ".join(problems),
            )
        )
        failed = failed or bool(problems)
    table(
        rows,
        (
            "workers",
            "uploads/s",
            "seconds",
            "p50 ms",
            "p99 ms",
            "max ms",
            "statuses (uploads + retries)",
            "peak RSS MB",
            "commits / file fsyncs / dir fsyncs",
            "stored per worker",
            "exactly once, batch reads all",
        ),
    )
    if args.dir is None:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
