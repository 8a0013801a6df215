"""Throughput engines: one small base class, an explicit registry.

An engine measures one direction with a number of parallel streams against one target and
returns a :class:`~giga_netcheck.models.BandwidthMeasurement`. The site file and ``--engine``
name engines by their registry key.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional, Protocol, Sequence

from ..models import BandwidthMeasurement, Target


@dataclass(frozen=True)
class ThroughputPlan:
    """What to measure: direction, streams and timing."""

    direction: str
    streams: int
    duration_s: float
    warmup_s: float
    interval_s: float = 0.1
    request_bytes: int = 1 << 30


class ThroughputEngine(ABC):
    """Base of every engine. ``measure`` never raises: failures are in the result."""

    name: str = "base"

    @abstractmethod
    def measure(self, target: Target, plan: ThroughputPlan, stop: threading.Event) -> BandwidthMeasurement:
        """Run one test; return early (keeping what was measured) when ``stop`` is set."""


class CountingStream(Protocol):
    """A stream thread that counts the bytes it has moved."""

    bytes: int

    def is_alive(self) -> bool: ...


def poll_streams(streams: Sequence[CountingStream], t0: float, duration_s: float, interval_s: float,
                 stop: threading.Event) -> list[tuple[float, int, bool]]:
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


def rate_samples(points: Sequence[tuple[float, int, bool]], *, only_alive: bool = False) -> list[float]:
    """Mbit/s between consecutive points (optionally only intervals that ended with a stream alive)."""
    return [
        (b[1] - a[1]) * 8 / (b[0] - a[0]) / 1e6
        for a, b in zip(points, points[1:])
        if b[0] > a[0] and (b[2] or not only_alive)
    ]


def stream_errors(errors: Sequence[BaseException], n_streams: int) -> tuple[Optional[str], Optional[str]]:
    """(text, kind) summarising failed streams, or (None, None)."""
    if not errors:
        return None, None
    from ..errors import map_exception

    mapped = map_exception(errors[0])
    return f"{len(errors)} of {n_streams} streams failed: {mapped}", mapped.kind


ENGINES = ("http", "speedtest", "librespeed")
"""Registry keys, as the site file (``engine:``) and ``run --engine`` spell them (docs/engines.md)."""


def registry() -> dict[str, type[ThroughputEngine]]:
    from .http import HttpEngine
    from .librespeed import LibreSpeedEngine
    from .speedtest_cli import SpeedtestEngine

    return {HttpEngine.name: HttpEngine, SpeedtestEngine.name: SpeedtestEngine, LibreSpeedEngine.name: LibreSpeedEngine}
