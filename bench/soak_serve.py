"""Soak bench (issue 17): `serve` under hundreds of hostile clients while one honest client measures.

    flock /tmp/gnc-bench.lock python bench/soak_serve.py [--clients 500] [--seconds 60]
                                                         [--honest-mbps 100] [--window 8]

Starts `giga-netcheck serve` on 127.0.0.1 (its default limits: idle 30 s, header 10 s, write 30 s,
4096 connections) and, in a separate process, ``--clients`` hostile clients for ``--seconds``,
an equal share of each kind, each reconnecting whenever the server lets go:

- slow-reader      asks for a 1 GiB download and never reads (4 KiB receive buffer)
- slowloris-head   sends its request head one byte a second
- slowloris-body   POSTs a 1 GiB Content-Length body one byte a second
- negative-length  ``Content-Length: -1`` or a chunk size of ``-1`` on a random body route,
                   then 64 KiB of junk; twice a second
- garbage          1-4 KiB of random bytes; twice a second
- huge-chunked     a chunked upload that never ends: one chunk declared 256 MiB, or endless
                   64 KiB chunks, at 256 KiB/s each (huge in size, not a bandwidth flood)

The hostile process runs at nice 19: on a real network the attackers' CPU is their own, and
on one shared machine it must not be taken from the server or the honest client.

Meanwhile the honest client (this process) measures a download and an upload paced at
``--honest-mbps`` (a school line as the bottleneck, so the figure is the line's, and any
shortfall is the server's), alternately in ``--window`` s windows; first alone, then under
attack. Prints the server's peak RSS (VmHWM; target < 200 MB), each honest figure under attack
against the same figure alone (target within 5%), and how long after the hostile clients stop
the server's open file descriptors take to return to their count before the attack (target
<= 35 s). Loopback only; every socket is closed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from _common import ROOT, table, wait_http

KINDS = ("slow-reader", "slowloris-head", "slowloris-body", "negative-length", "garbage", "huge-chunked")
BODY_ROUTES = ("/upload", "/nothing/here", "/backend/empty.php", "/speedtest/upload.php")


# ------------------------------------------------------------------------------ hostile clients


async def _connect(port: int, rcvbuf: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


def _gone(sock: socket.socket, answered: bool = False) -> bool:
    """True once the server closed or reset ``sock`` (or, with ``answered``, sent anything: a 408);
    peeked, so nothing is read and no receive window opens."""
    try:
        # a reset leaves unread data readable: the TCP state says it (1 = established)
        if sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 1:
            return True
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return data == b"" or answered


async def _drain_answer(loop: asyncio.AbstractEventLoop, sock: socket.socket, limit: float = 5.0) -> bytes:
    got = bytearray()

    async def read() -> None:
        while data := await loop.sock_recv(sock, 65536):
            got.extend(data)

    try:
        await asyncio.wait_for(read(), limit)
    except (asyncio.TimeoutError, OSError):
        pass
    return bytes(got)


async def _hostile(kind: str, port: int, stop_at: float, stats: Counter, socks: set[socket.socket]) -> None:
    loop = asyncio.get_running_loop()
    rnd = random.Random()
    junk = os.urandom(1 << 20)
    while loop.time() < stop_at:
        sock = None
        try:
            sock = await _connect(port, rcvbuf=4096 if kind == "slow-reader" else 0)
            socks.add(sock)
            stats[f"{kind}:connections"] += 1
            if kind == "slow-reader":
                await loop.sock_sendall(sock, b"GET /download?bytes=1073741824 HTTP/1.1\r\nHost: x\r\n\r\n")
                while loop.time() < stop_at and not _gone(sock):
                    await asyncio.sleep(1.0)
            elif kind in ("slowloris-head", "slowloris-body"):
                if kind == "slowloris-head":
                    await loop.sock_sendall(sock, b"GET /rtt HTTP/1.1\r\n")
                    piece = b"X"
                else:
                    await loop.sock_sendall(sock, b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n")
                    piece = b"x"
                while loop.time() < stop_at and not _gone(sock, answered=True):
                    await loop.sock_sendall(sock, piece)
                    await asyncio.sleep(1.0)
                stats[f"{kind}:{(await _drain_answer(loop, sock, 1.0))[9:12].decode('latin-1') or 'closed'}"] += 1
            elif kind == "negative-length":
                route = rnd.choice(BODY_ROUTES)
                framing = rnd.choice([b"Content-Length: -1\r\n\r\n", b"Transfer-Encoding: chunked\r\n\r\n-1\r\n"])
                await loop.sock_sendall(sock, f"POST {route} HTTP/1.1\r\nHost: x\r\n".encode() + framing)
                try:
                    await loop.sock_sendall(sock, junk[: 1 << 16])
                except OSError:
                    pass  # refused and closed before taking it
                answer = await _drain_answer(loop, sock)
                stats[f"{kind}:{answer[9:12].decode('latin-1') or 'closed'}"] += 1
                await asyncio.sleep(0.5)
            elif kind == "garbage":
                await loop.sock_sendall(sock, os.urandom(rnd.randint(1024, 4096)) + b"\r\n\r\n")
                answer = await _drain_answer(loop, sock)
                stats[f"{kind}:{answer[9:12].decode('latin-1') or 'closed'}"] += 1
                await asyncio.sleep(0.5)
            elif kind == "huge-chunked":
                await loop.sock_sendall(sock, b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
                one_huge = rnd.random() < 0.5
                if one_huge:
                    await loop.sock_sendall(sock, b"10000000\r\n")  # 256 MiB in one chunk
                chunk = junk[: 1 << 16] if one_huge else b"10000\r\n" + junk[: 1 << 16] + b"\r\n"
                while loop.time() < stop_at and not _gone(sock):
                    await loop.sock_sendall(sock, chunk)
                    await asyncio.sleep(1 / 4)  # 4 x 64 KiB = 256 KiB/s
        except OSError:
            stats[f"{kind}:errors"] += 1
            await asyncio.sleep(0.5)
        finally:
            if sock is not None:
                socks.discard(sock)
                sock.close()


async def _all_hostile(port: int, clients: int, seconds: float) -> Counter:
    stats: Counter = Counter()
    socks: set[socket.socket] = set()
    stop_at = asyncio.get_running_loop().time() + seconds
    tasks = [asyncio.create_task(_hostile(KINDS[i % len(KINDS)], port, stop_at, stats, socks)) for i in range(clients)]
    await asyncio.sleep(seconds)
    for task in tasks:  # the clients stop: every socket closes now
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for sock in list(socks):
        sock.close()
    return stats


def hostile_main(port: int, clients: int, seconds: float) -> None:
    import resource

    os.nice(19)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, clients * 2 + 256)), hard))
    stats = asyncio.run(_all_hostile(port, clients, seconds))
    print(json.dumps(dict(stats)), flush=True)


# ------------------------------------------------------------------------------ the honest client


def _paced_download(port: int, mbps: float, seconds: float) -> float:
    rate = mbps * 1e6 / 8
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET /download?bytes={int(rate * seconds * 2)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        got = len(head.split(b"\r\n\r\n", 1)[1])
        buf = bytearray(1 << 16)
        t0 = time.perf_counter()
        while (now := time.perf_counter()) - t0 < seconds:
            ahead = got - rate * (now - t0)
            if ahead > 0:
                time.sleep(min(0.005, ahead / rate))
                continue
            n = sock.recv_into(buf)
            if not n:
                break
            got += n
        return got * 8 / (time.perf_counter() - t0) / 1e6


def _paced_upload(port: int, mbps: float, seconds: float) -> float:
    rate = mbps * 1e6 / 8
    total = int(rate * seconds)
    block = memoryview(os.urandom(1 << 16))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n".encode())
        sent = 0
        t0 = time.perf_counter()
        while sent < total:
            ahead = sent - rate * (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(min(0.005, ahead / rate))
                continue
            sent += sock.send(block[: min(len(block), total - sent)])
        answer = sock.recv(4096)
        took = time.perf_counter() - t0
    if not answer.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"honest upload refused: {answer[:80]!r}")
    return total * 8 / took / 1e6


def _honest(port: int, mbps: float, window: float, until: float) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"download": [], "upload": []}
    while time.monotonic() + window <= until:
        out["download"].append(_paced_download(port, mbps, window))
        if time.monotonic() + window > until:
            break
        out["upload"].append(_paced_upload(port, mbps, window))
    return out


# ------------------------------------------------------------------------------ the server


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=500, help="hostile clients (default 500)")
    ap.add_argument("--seconds", type=float, default=60.0, help="how long they attack (default 60)")
    ap.add_argument("--honest-mbps", type=float, default=100.0, help="the honest client's paced rate (default 100)")
    ap.add_argument("--window", type=float, default=8.0, help="one honest measurement, seconds (default 8)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of attack before the honest client measures")
    ap.add_argument("--release-limit", type=float, default=60.0, help="how long to wait for the fds to come back")
    ap.add_argument("--hostile-only", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.hostile_only:
        hostile_main(args.hostile_only, args.clients, args.seconds)
        return

    port = _free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"soak_serve.{os.getpid()}.log", "w")
    srv = subprocess.Popen(
        [sys.executable, "-m", "giga_netcheck", "serve", "--host", "127.0.0.1", "--port", str(port)], stderr=log, env=env
    )
    hostile = None
    try:
        wait_http(f"http://127.0.0.1:{port}/id")
        load0 = os.getloadavg()[0]
        alone = _honest(port, args.honest_mbps, args.window, time.monotonic() + 2 * args.window + 0.5)
        time.sleep(1.0)
        fds0, rss0 = _fds(srv.pid), _status_kb(srv.pid, "VmRSS") / 1024
        cpu0 = sum(map(int, Path(f"/proc/{srv.pid}/stat").read_text().split()[13:15]))

        t_attack = time.monotonic()
        hostile = subprocess.Popen(
            [sys.executable, __file__, "--hostile-only", str(port), "--clients", str(args.clients), "--seconds", str(args.seconds)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        fd_samples: list[tuple[float, int]] = []
        sampling = threading.Event()

        def sample_fds() -> None:
            while not sampling.wait(0.5):
                fd_samples.append((time.monotonic() - t_attack, _fds(srv.pid)))

        sampler = threading.Thread(target=sample_fds, daemon=True)
        sampler.start()
        time.sleep(args.warmup)
        under = _honest(port, args.honest_mbps, args.window, t_attack + args.seconds - 1.0)
        out, _ = hostile.communicate(timeout=args.seconds + 60)
        hostile_cpu = sum(os.times()[2:4])
        stopped = time.monotonic()
        sampling.set()
        sampler.join()
        peak_fds = max((n for _, n in fd_samples), default=0)
        steady = [n for t, n in fd_samples if args.seconds * 0.25 <= t <= args.seconds * 0.9]
        stats = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        cpu1 = sum(map(int, Path(f"/proc/{srv.pid}/stat").read_text().split()[13:15]))

        released_after = None
        while time.monotonic() - stopped < args.release_limit:
            if _fds(srv.pid) <= fds0:
                released_after = time.monotonic() - stopped
                break
            time.sleep(0.25)
        fds_end = _fds(srv.pid)
        hwm = _status_kb(srv.pid, "VmHWM") / 1024
        load1 = os.getloadavg()[0]

        print(f"serve on 127.0.0.1:{port} (default limits); {args.clients} hostile clients for {args.seconds:g} s; {os.cpu_count()} cores")
        print(f"load average (1 min): {load0:.2f} before, {load1:.2f} after")
        print()
        print("hostile clients (connections made; answers by status; errors)")
        rows = []
        for kind in KINDS:
            mine = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith(kind + ":")}
            answers = ", ".join(f"{k} x{v}" for k, v in sorted(mine.items()) if k not in ("connections", "errors")) or "-"
            rows.append((kind, mine.get("connections", 0), answers, mine.get("errors", 0)))
        table(rows, ("kind", "connections", "answers", "errors"))
        print()
        rows = []
        verdicts = []
        for what in ("download", "upload"):
            a = statistics.mean(alone[what]) if alone[what] else float("nan")
            u = under[what]
            mean_u = statistics.mean(u) if u else float("nan")
            worst = min(u) if u else float("nan")
            gap = (mean_u - a) / a * 100
            worst_gap = (worst - a) / a * 100
            ok = abs(gap) <= 5 and abs(worst_gap) <= 5
            verdicts.append(ok)
            rows.append(
                (what, f"{a:.1f}", f"{mean_u:.1f}", f"{worst:.1f}", f"{gap:+.1f}%", f"{worst_gap:+.1f}%", len(u), "ok" if ok else "MISSED")
            )
        print(f"honest client, paced at {args.honest_mbps:g} Mbit/s, {args.window:g} s windows (Mbit/s; target within 5%)")
        table(rows, ("test", "alone", "attack mean", "attack worst", "gap", "worst gap", "windows", "verdict"))
        print()
        server_cpu = (cpu1 - cpu0) / os.sysconf("SC_CLK_TCK")
        print(
            f"server: peak RSS (VmHWM) {hwm:.1f} MB (target < 200 MB; {rss0:.1f} MB before the attack); "
            f"CPU {server_cpu:.1f} s during the attack"
        )
        print(
            f"server open fds: {fds0} before; during the attack (sampled every 0.5 s) peak {peak_fds}, "
            f"median {statistics.median(steady) if steady else float('nan'):.0f} from 25% to 90% of it"
        )
        print(f"hostile clients' process (nice 19): CPU {hostile_cpu:.1f} s")
        if released_after is None:
            print(f"fds: still {fds_end} (baseline {fds0}) {args.release_limit:g} s after the clients stopped: MISSED (target <= 35 s)")
        else:
            print(f"fds: back to {fds_end} (baseline {fds0}) {released_after:.1f} s after the clients stopped (target <= 35 s)")
        met = hwm < 200 and all(verdicts) and released_after is not None and released_after <= 35
        print(f"verdict: {'all targets met' if met else 'target(s) missed'}; server log: {log.name}")
    finally:
        if hostile is not None and hostile.poll() is None:
            hostile.kill()
            hostile.wait(5)
        srv.terminate()
        srv.wait(10)
        log.close()


if __name__ == "__main__":
    main()
