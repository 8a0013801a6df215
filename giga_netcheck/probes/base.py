"""The probe interface: ``check`` before anything runs, then ``run``; failures are data."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..config import ProbeSettings, Site
from ..models import BandwidthMeasurement, DnsAgreement, DnsSeries, LatencySeries, Target


class Progress:
    """What probes report while they run; the CLI passes a Rich implementation."""

    def step(self, text: str, total: Optional[float] = None) -> None:
        """A new step starts (``total`` in seconds when known)."""

    def advance(self, amount: float = 1.0) -> None:
        """Part of the current step is done."""

    def note(self, text: str) -> None:
        """A one-line remark (a target skipped, a fallback taken)."""


@dataclass
class ProbeContext:
    """Everything a probe may read; probes never read files or the environment themselves."""

    site: Site
    settings: ProbeSettings
    targets: list[Target]
    servers: dict[str, dict[str, Any]]
    """Target name -> the /id document of targets that are verified measurement servers."""
    host: dict[str, Any]
    resolvers: dict[str, list[str]]
    """Resolver label -> addresses to query (``system`` expands to the OS resolvers)."""
    stop: threading.Event = field(default_factory=threading.Event)
    progress: Progress = field(default_factory=Progress)


@dataclass
class ProbeOutput:
    """What one probe adds to the result."""

    bandwidth: list[BandwidthMeasurement] = field(default_factory=list)
    latency: list[LatencySeries] = field(default_factory=list)
    dns: list[DnsSeries] = field(default_factory=list)
    dns_agreement: list[DnsAgreement] = field(default_factory=list)
    status: str = "ok"
    reason: Optional[str] = None
    reason_kind: Optional[str] = None


class Probe(ABC):
    """Base of every probe. ``run`` must not raise: it records what failed and goes on."""

    name = "base"

    def check(self, ctx: ProbeContext) -> Optional[str]:
        """Why this probe cannot run in this context, or None if it can."""
        return None

    @abstractmethod
    def run(self, ctx: ProbeContext) -> ProbeOutput:
        """Measure; keep what was measured when ``ctx.stop`` is set."""


Factory = Callable[[], Probe]
