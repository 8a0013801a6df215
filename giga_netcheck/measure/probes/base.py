"""The probe interface: ``check`` before anything runs, then ``run``; failures are data."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from giga_netcheck.config.site import ProbeSettings, Site
from giga_netcheck.core.i18n import Text
from giga_netcheck.core.models import BandwidthMeasurement, DnsAgreement, DnsSeries, LatencySeries, Target
from giga_netcheck.core.profile import Profile


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
    proxy: Optional[Any] = None
    """The effective ``proxy.ProxyConfig`` (PAC already fetched); None: no proxy anywhere."""
    hops: list[Target] = field(default_factory=list)
    """Routers the path probe discovered (not in the site file): sampled under load like targets."""
    profiles: dict[str, Profile] = field(default_factory=dict)
    """The profiles the run loaded, by the name the site file uses (the load probe's activity)."""
    measured: Optional[ProbeOutput] = None
    """What the probes before this one measured (the runner keeps it current): a follow-up probe
    reads it to decide what more to measure."""


@dataclass
class ProbeOutput:
    """What one probe adds to the result."""

    bandwidth: list[BandwidthMeasurement] = field(default_factory=list)
    latency: list[LatencySeries] = field(default_factory=list)
    dns: list[DnsSeries] = field(default_factory=list)
    dns_agreement: list[DnsAgreement] = field(default_factory=list)
    families: list[Any] = field(default_factory=list)
    """FamilyPath records (probes/family.py)."""
    proxy: Optional[Any] = None
    """The ProxyReport (probes/proxy.py)."""
    paths: list[Any] = field(default_factory=list)
    """DiscoveredPath records (probes/path.py)."""
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


def no_answer_reason(failures: list[tuple[str, Optional[str]]]) -> Text:
    """The reason for targets that failed: (target, recorded error or None for silence)."""
    silent = ", ".join(t for t, err in failures if not err)
    errors = "; ".join(f"{t}: {err}" for t, err in failures if err)
    if silent and errors:
        return Text("reason.no_answer_and_errors", targets=silent, errors=errors)
    return Text("reason.no_answer_from", targets=silent) if silent else Text("reason.target_errors", errors=errors)


def in_parallel(fn: Callable[..., None], jobs: Iterable[tuple[Any, ...]]) -> None:
    """``fn(*job)`` for every job, each in its own daemon thread; returns when all have ended.
    Joins in short steps, so Ctrl-C reaches the main thread while probes run."""
    threads = [threading.Thread(target=fn, args=job, daemon=True) for job in jobs]
    for th in threads:
        th.start()
    for th in threads:
        while th.is_alive():
            th.join(0.1)
