"""The public-infrastructure engines in the lab (issue 15): ``cloudflare`` and ``ndt7`` from the
client, against ``serve`` in the internet namespace (which speaks both protocols), across the
uplink-capacity scenario's shaped uplink; each read next to iperf3 on the same path, in the same
run, with the same number of flows (ndt7 is one connection by design, so it meets ``-P 1``).

The bound is the reading iperf3 takes, not a figure: a shaper at another rate moves both. A pair
that disagrees is taken again (tools.measured), as every lab figure a busy 2-core host stretches.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

import pytest

from giga_netcheck.core.models import BandwidthMeasurement, Target
from giga_netcheck.measure.engines import ThroughputPlan, registry
from tests.lab import tools
from tests.lab.netlab import Lab

pytestmark = pytest.mark.lab

AGREEMENT = 0.10
"""Engine and iperf3 agree within 10% on one shaped path: both count payload over the same
shaper; what is left is a busy host's scheduling and the engines' shorter runs."""
DURATION_S, WARMUP_S = 4.0, 1.0


def _engine(lab: Lab, name: str, direction: str, streams: int) -> BandwidthMeasurement:
    target = Target("internet", "internet", lab.addr("internet"), lab.url("internet"), engine=name)
    plan = ThroughputPlan(direction, streams, DURATION_S, WARMUP_S)
    engine = registry()[name]()
    return lab.call("client", lambda: engine.measure(target, plan, threading.Event()), timeout=60)


def _pair(lab: Lab, name: str, direction: str, streams: int) -> tuple[float, BandwidthMeasurement]:
    ref = tools.iperf3(lab, "client", lab.addr("internet"), seconds=DURATION_S, streams=streams, reverse=direction == "download")
    return ref.mbit, _engine(lab, name, direction, streams)


def _judge(pair: tuple[float, BandwidthMeasurement]) -> Optional[str]:
    ref, m = pair
    if m.goodput_mbps is None:
        return f"the engine measured nothing: {m.error}"
    if abs(m.goodput_mbps - ref) <= AGREEMENT * ref:
        return None
    return f"engine {m.goodput_mbps:.1f} Mbit/s, iperf3 {ref:.1f} (+-{AGREEMENT:.0%})"


@pytest.mark.parametrize("lab", ["uplink-capacity"], indirect=True)
@pytest.mark.parametrize(("name", "streams"), [("cloudflare", 4), ("ndt7", 1)])
def test_public_engine_reads_what_iperf3_reads_on_the_shaped_path(lab: Lab, name: str, streams: int) -> None:
    assert lab.serve_ok, lab.describe()
    seen: dict[str, Any] = {}
    for direction in ("download", "upload"):
        ref, m = tools.measured(f"{name} {direction} x{streams}", lambda d=direction: _pair(lab, name, d, streams), _judge)
        seen[direction] = (ref, m.goodput_mbps)
        assert m.engine == name and m.streams == streams
        # the samples count bytes as they arrive: on a steady shaped link their median is the goodput
        assert m.p50_mbps is not None and abs(m.p50_mbps - m.goodput_mbps) <= 0.2 * m.goodput_mbps, (m.p50_mbps, m.goodput_mbps)
    print(f"{name}: " + ", ".join(f"{d} engine {e:.1f} / iperf3 {r:.1f} Mbit/s" for d, (r, e) in seen.items()))
