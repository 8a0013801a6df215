"""Throughput engines: one base class (:mod:`.base`), one module per engine, a registry by name.

The names are the site file's vocabulary (``config.site.ENGINES``); ``registry`` maps each to
its class, so the YAML, ``run --engine`` and the code spell them the same way.
"""

from __future__ import annotations

from giga_netcheck.config.site import ENGINES
from giga_netcheck.measure.engines.base import (
    CountingStream,
    SessionCache,
    ThroughputEngine,
    ThroughputPlan,
    poll_streams,
    rate_samples,
    run_streams,
    stream_errors,
)
from giga_netcheck.measure.engines.cloudflare import CloudflareEngine
from giga_netcheck.measure.engines.http import HttpEngine
from giga_netcheck.measure.engines.librespeed import LibreSpeedEngine
from giga_netcheck.measure.engines.ndt7 import Ndt7Engine
from giga_netcheck.measure.engines.speedtest_cli import SpeedtestEngine

__all__ = [
    "ENGINES",
    "CountingStream",
    "SessionCache",
    "ThroughputEngine",
    "ThroughputPlan",
    "poll_streams",
    "rate_samples",
    "registry",
    "run_streams",
    "stream_errors",
]


def registry() -> dict[str, type[ThroughputEngine]]:
    """Engine classes by the name a site file or ``run --engine`` gives."""
    engines: dict[str, type[ThroughputEngine]] = {
        HttpEngine.name: HttpEngine,
        SpeedtestEngine.name: SpeedtestEngine,
        LibreSpeedEngine.name: LibreSpeedEngine,
        CloudflareEngine.name: CloudflareEngine,
        Ndt7Engine.name: Ndt7Engine,
    }
    return engines
