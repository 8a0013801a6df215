"""Group commit for the collector: many stored results made durable by one pass of fsyncs.

One writer thread per process takes every file waiting when it is free (a *batch*, at most
``max_batch`` files) and, for the whole batch:

1. writes each file under a temporary name in its final folder (``.<name>.<random>.tmp``);
2. fsyncs each temporary file (on ext4 the first fsync commits the journal for the batch, the
   others find little left to do);
3. claims each final name with ``link(tmp, final)``: exclusive across threads *and* processes
   (several ``serve --workers`` share one folder), so the first upload of a run id wins and a
   name is never overwritten; a name that exists already (another upload, another worker) is
   reported as ``exists``;
4. fsyncs each folder the batch linked into once (and, the first time this process uses a
   folder, its parent and grandparent, so a folder made by this batch is durable too);
5. removes the temporary names, and only then resolves each file's future.

So a caller that answers after its future resolved answers after its file (or the file that was
there first) survives a power cut. Nothing waits on a timer: while one batch is being made
durable the next one gathers, so batches grow with the load and a lone upload is committed at
once. Memory is bounded: :meth:`GroupCommit.submit` blocks while ``max_pending_bytes`` are
waiting or being written (backpressure to the caller, never an unbounded queue). The thread ends
after ``idle_s`` without work and starts again on the next submit.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

log = logging.getLogger("giga_netcheck.server.commit")

STORED = "stored"
EXISTS = "exists"

DEFAULT_MAX_PENDING_BYTES = 64 << 20
"""Bytes of files waiting or being written at once; a submit above it waits."""
DEFAULT_MAX_BATCH = 256
"""Files in one batch (each holds a file descriptor until its fsync)."""
MAX_KNOWN_DIRS = 100_000
"""Folders remembered as durable (a board's schools are tens of thousands)."""


@dataclass
class _Item:
    final: Path
    data: bytes
    future: Future[str]
    tmp: Optional[str] = None
    fd: Optional[int] = None
    state: Optional[str] = None
    error: Optional[OSError] = None


@dataclass
class CommitStats:
    batches: int = 0
    files: int = 0
    """Files written and fsynced (one fsync each)."""
    dir_fsyncs: int = 0
    largest_batch: int = 0


@dataclass
class GroupCommit:
    """Exclusive, durable creation of files, many at a time (see the module docstring)."""

    max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES
    max_batch: int = DEFAULT_MAX_BATCH
    idle_s: float = 2.0
    stats: CommitStats = field(default_factory=CommitStats)
    _queue: deque[_Item] = field(default_factory=deque, init=False, repr=False)
    _pending: int = field(default=0, init=False, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)
    _thread: Optional[threading.Thread] = field(default=None, init=False, repr=False)
    _durable_dirs: set[Path] = field(default_factory=set, init=False, repr=False)

    def submit(self, final: Path, data: bytes) -> Future[str]:
        """Create ``final`` with ``data`` unless it exists. The future gives ``stored`` or
        ``exists`` once the name is durable, or raises the OSError that stopped it. Blocks while
        the bytes waiting are at the cap (a single file larger than the cap waits for an empty queue)."""
        fut: Future[str] = Future()
        fut.set_running_or_notify_cancel()  # not cancellable: the caller learns what happened
        item = _Item(Path(final), data, fut)
        with self._cond:
            while self._pending and self._pending + len(data) > self.max_pending_bytes:
                self._cond.wait()
            self._pending += len(data)
            self._queue.append(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gnc-commit", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return fut

    @property
    def pending_bytes(self) -> int:
        return self._pending

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until everything submitted so far is committed (True) or ``timeout`` passes."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending, timeout)

    # ------------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._cond.wait_for(lambda: bool(self._queue), self.idle_s)
                if not self._queue:
                    self._thread = None  # idle: end; the next submit starts another
                    return
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), self.max_batch))]
            try:
                self._commit(batch)
            except BaseException as exc:  # never leave a caller waiting for ever
                for it in batch:
                    if not it.future.done():
                        it.future.set_exception(exc if isinstance(exc, OSError) else OSError(str(exc)))
                log.exception("group commit failed")
            finally:
                with self._cond:
                    self._pending -= sum(len(it.data) for it in batch)
                    self._cond.notify_all()

    def _commit(self, batch: list[_Item]) -> None:
        dirs: set[Path] = set()
        for it in batch:  # 1. write each under a temporary name
            try:
                folder = it.final.parent
                dirs.update(self._ensure_folder(folder))
                if os.path.lexists(it.final):
                    it.state = EXISTS
                    continue
                it.fd, it.tmp = tempfile.mkstemp(prefix=f".{it.final.stem}.", suffix=".tmp", dir=folder)
                view = memoryview(it.data)
                while view:
                    view = view[os.write(it.fd, view) :]
            except OSError as exc:
                it.error = exc
        for it in batch:  # 2. make each file's bytes durable
            if it.fd is None:
                continue
            try:
                if it.error is None:
                    os.fsync(it.fd)
                    self.stats.files += 1
            except OSError as exc:
                it.error = exc
            finally:
                os.close(it.fd)
                it.fd = None
        for it in batch:  # 3. claim the final names, exclusively
            if it.tmp is None or it.error is not None:
                continue
            try:
                os.link(it.tmp, it.final)
                it.state = STORED
            except FileExistsError:
                it.state = EXISTS
            except OSError as exc:
                it.error = exc
        failed_dirs: dict[Path, OSError] = {}
        for it in batch:
            if it.state is not None:
                dirs.add(it.final.parent)
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):  # 4. the names, durable
            try:
                _fsync_dir(d)
                self.stats.dir_fsyncs += 1
            except OSError as exc:
                failed_dirs[d] = exc
        for it in batch:  # 5. tidy up, then answer
            if it.tmp is not None:
                try:
                    os.unlink(it.tmp)
                except OSError:
                    pass
            failed = failed_dirs.get(it.final.parent)
            if it.error is None and failed is not None:
                it.error = failed
                self._durable_dirs.discard(it.final.parent)
            if it.error is not None:
                it.future.set_exception(it.error)
            else:
                it.future.set_result(it.state or EXISTS)
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))

    def _ensure_folder(self, folder: Path) -> set[Path]:
        """Make ``folder`` (and its parents); the first time this process uses it, return it and
        its two parents to fsync (a folder another worker just made is not durable yet either)."""
        if folder in self._durable_dirs:
            return set()
        folder.mkdir(parents=True, exist_ok=True)
        if len(self._durable_dirs) >= MAX_KNOWN_DIRS:
            self._durable_dirs.clear()  # bounded memory; a folder forgotten costs three fsyncs once more
        self._durable_dirs.add(folder)
        return {folder, folder.parent, folder.parent.parent}


def _fsync_dir(path: Path) -> None:
    """fsync a folder, so the names in it survive a power cut (POSIX; Windows has no such call)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
