"""Throughput engines: one small base class, an explicit registry.

An engine measures one direction with a number of parallel streams against one target and
returns a :class:`~giga_netcheck.core.models.BandwidthMeasurement`. The site file and ``--engine``
name engines by their registry key.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Generic, Optional, Protocol, Sequence, TypeVar

from giga_netcheck.core.errors import ProbeError
from giga_netcheck.core.models import BandwidthMeasurement, Target
from giga_netcheck.measure.failures import map_exception


@dataclass(frozen=True)
class ThroughputPlan:
    """What to measure: direction, streams and timing."""

    direction: str
    streams: int
    duration_s: float
    warmup_s: float
    interval_s: float = 0.1
    request_bytes: int = 1 << 30
    proxy: Optional[str] = None
    """The HTTP proxy to go through (``http://host:port``); None: direct. Only engines with
    ``supports_proxy`` use it; the others connect direct and record ``proxy: None``."""


class ThroughputEngine(ABC):
    """Base of every engine. ``measure`` never raises: failures are in the result."""

    name: str = "base"
    supports_proxy: bool = False
    """The engine sends its transfers through ``ThroughputPlan.proxy`` when one is given."""

    @abstractmethod
    def measure(self, target: Target, plan: ThroughputPlan, stop: threading.Event) -> BandwidthMeasurement:
        """Run one test; return early (keeping what was measured) when ``stop`` is set."""


class CountingStream(Protocol):
    """A stream thread that counts the bytes it has moved."""

    bytes: int

    def is_alive(self) -> bool: ...

    def start(self) -> None: ...

    def join(self, timeout: Optional[float] = None) -> None: ...


def poll_streams(
    streams: Sequence[CountingStream], t0: float, duration_s: float, interval_s: float, stop: threading.Event
) -> list[tuple[float, int, bool]]:
    """Read the streams' byte counters every ``interval_s`` until ``duration_s`` after ``t0``,
    ``stop``, or every stream has ended. Returns ``(perf_counter time, total bytes, any stream
    still alive)`` points, the first being ``(t0, 0, True)``: engines derive their samples,
    warm-up cut and goodput from them."""
    points = [(t0, 0, True)]
    deadline = t0 + duration_s
    while any(s.is_alive() for s in streams):
        now = time.perf_counter()
        if now >= deadline or stop.is_set():
            break
        time.sleep(min(interval_s, max(0.0, deadline - now)))
        points.append((time.perf_counter(), sum(s.bytes for s in streams), any(s.is_alive() for s in streams)))
    return points


def run_streams(
    streams: Sequence[CountingStream], duration_s: float, interval_s: float, stop: threading.Event, local_stop: threading.Event
) -> tuple[float, list[tuple[float, int, bool]]]:
    """Start the streams, poll them (:func:`poll_streams`), then set ``local_stop`` (the
    streams' own stop) and join them. Returns the start time and the polled points."""
    t0 = time.perf_counter()
    for s in streams:
        s.start()
    try:
        points = poll_streams(streams, t0, duration_s, interval_s, stop)
    finally:
        local_stop.set()
    for s in streams:
        s.join(2.0)
    return t0, points


S = TypeVar("S")


class SessionCache(Generic[S]):
    """One session per target, opened on first use; a target that failed to open keeps its
    error, so a bad server is asked once per run and every test on it fails the same way."""

    def __init__(self, open_: Callable[[Target], S], error: Callable[[BaseException, Target], BaseException]) -> None:
        self._open = open_
        self._error = error
        self._sessions: dict[str, S] = {}
        self._errors: dict[str, BaseException] = {}

    def get(self, target: Target) -> S:
        """The target's session; raises the (remembered) error, as mapped by ``error``."""
        if target.name in self._errors:
            raise self._errors[target.name]
        if target.name not in self._sessions:
            try:
                self._sessions[target.name] = self._open(target)
            except Exception as exc:
                err = self._error(exc, target)
                self._errors[target.name] = err
                if err is exc:
                    raise
                raise err from exc
        return self._sessions[target.name]

    def values(self) -> list[S]:
        """The sessions opened so far."""
        return list(self._sessions.values())


def rate_samples(points: Sequence[tuple[float, int, bool]], *, only_alive: bool = False) -> list[float]:
    """Mbit/s between consecutive points (optionally only intervals that ended with a stream alive)."""
    return [(b[1] - a[1]) * 8 / (b[0] - a[0]) / 1e6 for a, b in zip(points, points[1:]) if b[0] > a[0] and (b[2] or not only_alive)]


def stream_errors(errors: Sequence[BaseException], n_streams: int) -> tuple[Optional[str], Optional[str]]:
    """(text, kind) summarising failed streams, or (None, None)."""
    if not errors:
        return None, None

    mapped = map_exception(errors[0])
    return f"{len(errors)} of {n_streams} streams failed: {mapped}", mapped.kind


def named_stream_errors(errors: Sequence[BaseException], n_streams: int, where: str) -> tuple[Optional[str], Optional[str]]:
    """:func:`stream_errors` for an engine's own failures: a ProbeError the engine raised already
    says what went wrong and where, any other is prefixed with ``where`` (target and URL)."""
    text, kind = stream_errors(errors, n_streams)
    if text and isinstance(errors[0], ProbeError):
        text = f"{len(errors)} of {n_streams} streams failed: {errors[0]}"
    elif text:
        text = f"{where}: {text}"
    return text, kind
