"""Throughput engines: one small base class, an explicit registry.

An engine measures one direction with a number of parallel streams against one target and
returns a :class:`~giga_netcheck.models.BandwidthMeasurement`. The site file and ``--engine``
name engines by their registry key.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

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


def registry() -> dict[str, type[ThroughputEngine]]:
    from .http import HttpEngine

    return {HttpEngine.name: HttpEngine}
