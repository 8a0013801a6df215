"""``serve --workers N``: several server processes behind one address (SO_REUSEPORT).

One Python process parses and checks results on one core (the GIL); a board collecting from a
whole prefecture wants every core. With ``--workers N`` the command forks N processes that each
run the whole server (measurements, the UDP echo, ``POST /results``) on the same port: each binds
with ``SO_REUSEPORT`` and the kernel spreads new connections (and UDP datagrams) over them. They
share nothing but the collection folder, where exactly-once is a property of the files (the
exclusive ``link()`` of :mod:`.commit`), not of any one process's memory: the same run id sent to
two workers at once is stored once, and the second answer is ``duplicate``.

The parent reserves the port first (a bound, never listening ``SO_REUSEPORT`` socket; with port 0
it picks the number), forks the workers, and waits. A worker that dies is started again; one that
dies within :data:`START_GRACE_S` of its start stops them all (it could not listen: the same would
happen again). SIGINT or SIGTERM stops every worker, each finishing the commits it accepted.

Linux only (elsewhere ``SO_REUSEPORT`` does not spread connections); a single process runs the
same way everywhere.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from types import FrameType
from typing import Optional

from giga_netcheck.core.errors import ConfigError
from giga_netcheck.server.app import ServerConfig, run_server

log = logging.getLogger("giga_netcheck.server.workers")

MAX_WORKERS = 64
START_GRACE_S = 5.0
"""A worker that exits sooner than this after its start stops the whole server."""
FLUSH_S = 30.0
"""On stop, how long a worker waits for the results it accepted to be committed."""


class WorkerFailed(OSError):
    """A worker could not start (most often: it could not listen)."""


def serve(config: ServerConfig, workers: int = 1) -> None:
    """Run the server until interrupted: in this process (1), or in ``workers`` processes sharing the port."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"--workers: 1 to {MAX_WORKERS}, not {workers}")
    if workers == 1:
        if config.collector is not None:
            signal.signal(signal.SIGTERM, _interrupt)  # finish the accepted commits, then stop
        try:
            run_server(config)
        finally:
            _finish(config)
        return
    if not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigError("--workers above 1 needs Linux (SO_REUSEPORT); run one process per port behind a proxy elsewhere")
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    reserve = socket.socket(family, socket.SOCK_STREAM)
    try:
        reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reserve.bind((config.host, config.port))
        port = reserve.getsockname()[1]
        shared = dataclasses.replace(config, port=port, udp_port=config.udp_port or port, reuse_port=True)
        _supervise(shared, workers)
    finally:
        reserve.close()


def _supervise(config: ServerConfig, workers: int) -> None:
    ctx = multiprocessing.get_context("fork")  # the config (tokens, TLS context) is inherited, not pickled
    procs: dict[int, tuple[multiprocessing.process.BaseProcess, float]] = {}

    def start(i: int) -> None:
        p = ctx.Process(target=_worker, args=(config, i), name=f"gnc-worker-{i}", daemon=False)
        p.start()
        procs[i] = (p, time.monotonic())

    log.info("serve: %d workers on %s:%d (SO_REUSEPORT)", workers, config.host, config.port)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for i in range(workers):
            start(i)
        while True:
            multiprocessing.connection.wait([p.sentinel for p, _ in procs.values()], timeout=1.0)
            for i, (p, started) in list(procs.items()):
                if p.is_alive():
                    continue
                p.join()
                if time.monotonic() - started < START_GRACE_S:
                    raise WorkerFailed(f"worker {i} stopped at its start (exit code {p.exitcode}); see the lines above")
                log.warning("serve: worker %d (pid %s) ended with exit code %s; starting it again", i, p.pid, p.exitcode)
                start(i)
    finally:
        signal.signal(signal.SIGTERM, previous)
        for p, _ in procs.values():
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + FLUSH_S + 5
        for p, _ in procs.values():
            p.join(max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(5)


def _worker(config: ServerConfig, index: int) -> None:
    """One worker process: the whole server on the shared port until SIGTERM or SIGINT."""
    signal.signal(signal.SIGTERM, _interrupt)
    log.info("serve: worker %d (pid %d) starting", index, os.getpid())
    try:
        run_server(config)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        log.error("serve: worker %d cannot listen on %s:%d: %s", index, config.host, config.port, exc.strerror or exc)
        sys.exit(2)
    finally:
        # Ctrl-C reaches every process of the group, then the parent's SIGTERM follows: neither
        # may cut the flush of what this worker accepted short (the parent kills after FLUSH_S)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _finish(config)


def _finish(config: ServerConfig) -> None:
    """Let the accepted results reach the disk, and say what this process collected."""
    collector = config.collector
    if collector is None:
        return
    if not collector.commit.flush(FLUSH_S):
        log.warning("collector: %d bytes of results were not committed before the stop", collector.commit.pending_bytes)
    st = collector.commit.stats
    log.info(
        "collector pid %d: stored %d, duplicates %d, refused %d; %d commits, %d file fsyncs, %d folder fsyncs, largest batch %d",
        os.getpid(),
        collector.stored,
        collector.duplicates,
        collector.refused,
        st.batches,
        st.files,
        st.dir_fsyncs,
        st.largest_batch,
    )


def _interrupt(signum: int, frame: Optional[FrameType]) -> None:
    raise KeyboardInterrupt
