"""What a scenario's own numbers predict a measurement reads: the margins the lab tests assert.

Every figure here is arithmetic on the scenario (rates, queues, delays) and on how loss-based TCP
behaves, so editing scenarios.yaml moves the bounds with it:

- **Goodput through a shaper** is the rate times TCP payload per packet on the wire (1448 of
  1500 bytes on a TUN link, of 1514 on a veth; 1428 over IPv6): ``tools.expected_goodput_mbit``.
- **Whether TCP keeps the shaper busy.** The flows' windows add up to ``W = queue + BDP`` when
  the queue overflows; a loss then cuts one flow's window by the congestion control's factor
  (Reno keeps 1/2, CUBIC 0.7), so the sum falls to ``W (1 - (1 - keep) / N)`` for N equal flows
  and grows back linearly. The link idles only while the sum is below one BDP
  (:func:`tcp_utilization`); with a queue of a BDP or more it never does.
- **Queueing delay** is bytes waiting / rate. A shaper never holds more than its limit (queue
  plus one bucket), so a rise above :func:`drain_ms` is not the queue; and once a loss has cut
  a window, the standing queue is at least the window sum's low point minus the BDP
  (:func:`queue_floor_ms`).
"""

from __future__ import annotations

from typing import Optional

from . import impair
from .scenarios import Direction, Scenario

__all__ = [
    "MTU",
    "TCP_PAYLOAD_BYTES",
    "TCP_PAYLOAD_BYTES_V6",
    "ETHERNET_HEADER_BYTES",
    "expected_goodput_mbit",
    "RENO_KEEP",
    "CUBIC_KEEP",
    "keep_factor",
    "bytes_per_ms",
    "bdp_bytes",
    "drain_ms",
    "queue_floor_ms",
    "tcp_utilization",
    "bottleneck",
    "predicted_goodput_mbit",
]

MTU = 1500
TCP_PAYLOAD_BYTES = MTU - 20 - 20 - 12
"""Payload per full segment: IP and TCP headers plus the 12-byte timestamp option."""
TCP_PAYLOAD_BYTES_V6 = MTU - 40 - 20 - 12
"""The same over IPv6, whose header is 40 bytes."""
ETHERNET_HEADER_BYTES = 14


def expected_goodput_mbit(rate_mbit: float, tun: bool, payload_bytes: int = TCP_PAYLOAD_BYTES) -> float:
    """What iperf3 reads through a ``tbf rate_mbit`` shaper, by packet arithmetic alone.

    tbf counts the whole packet: the IP packet on a TUN link, plus the 14-byte Ethernet header
    on a veth. iperf3 counts TCP payload. (A real 100 Mbit/s Ethernet port reads ~94 for the
    same reason, plus preamble and gap.)
    """
    wire = MTU + (0 if tun else ETHERNET_HEADER_BYTES)
    return rate_mbit * payload_bytes / wire


RENO_KEEP = 0.5
"""Reno halves its window on a loss (RFC 5681)."""
CUBIC_KEEP = 0.7
"""CUBIC keeps 70% of it (RFC 8312, beta_cubic)."""


def keep_factor(congestion_control: str) -> float:
    """The share of its window a flow keeps after a loss; the smaller (Reno's) when unknown."""
    return CUBIC_KEEP if congestion_control == "cubic" else RENO_KEEP


def bytes_per_ms(rate_mbit: float) -> float:
    """A shaper's rate in bytes per millisecond."""
    return rate_mbit * 1e6 / 8 / 1000


def bdp_bytes(rate_mbit: float, rtt_ms: float) -> float:
    """Bytes in flight that fill a ``rate_mbit`` link at ``rtt_ms`` without a queue."""
    return bytes_per_ms(rate_mbit) * rtt_ms


def drain_ms(d: Direction, rate_mbit: Optional[float] = None) -> float:
    """Time a full shaper of ``d`` takes to empty: its limit (queue + one bucket) / its rate."""
    rate = rate_mbit if rate_mbit is not None else d.rate_mbit
    assert rate is not None
    return impair.limit_bytes(d, rate) / bytes_per_ms(rate)


def _window_swing(queue_bytes: float, bdp: float, flows: int, keep: float) -> tuple[float, float]:
    """(low, high) of the flows' window sum in congestion avoidance: high when the queue
    overflows, low right after one of ``flows`` equal flows cut its window to ``keep``."""
    high = queue_bytes + bdp
    return high * (1 - (1 - keep) / flows), high


def queue_floor_ms(d: Direction, rtt_ms: float, *, flows: int = 1, keep: float = RENO_KEEP) -> float:
    """The least queueing delay behind ``d``'s shaper once a loss has cut one window: ``flows``
    greedy flows, ``rtt_ms`` without the queue. (Before the first loss, in slow start, the
    queue is still filling; after a retransmission timeout it empties: neither is covered.)"""
    assert d.rate_mbit is not None
    bdp = bdp_bytes(d.rate_mbit, rtt_ms)
    low, _ = _window_swing(impair.limit_bytes(d), bdp, flows, keep)
    return max(0.0, low - bdp) / bytes_per_ms(d.rate_mbit)


def tcp_utilization(rate_mbit: float, queue_bytes: float, rtt_ms: float, *, flows: int, keep: float = RENO_KEEP) -> float:
    """Share of time-averaged capacity ``flows`` greedy flows use: the window sum sweeps
    linearly from its low point to ``queue + BDP``, and the link carries min(sum, BDP) / BDP."""
    bdp = bdp_bytes(rate_mbit, rtt_ms)
    if bdp <= 0:
        return 1.0
    low, high = _window_swing(queue_bytes, bdp, flows, keep)
    if low >= bdp:
        return 1.0
    carried = (bdp * bdp - low * low) / (2 * bdp) + (high - bdp)  # integral of min(w, BDP) / BDP dw
    return carried / (high - low)


def bottleneck(scenario: Scenario, host: str, direction: str = "down") -> Optional[tuple[str, Direction]]:
    """(link name, direction settings) of the narrowest rate-capped link between the client and
    ``host``, or None when nothing on the path is capped (per-flow caps are not counted)."""
    best: Optional[tuple[float, str, Direction]] = None
    for name in scenario.path_links(host):
        spec = scenario.link(name)
        d = spec.direction(direction)
        if d.rate_mbit is not None:
            goodput = expected_goodput_mbit(d.rate_mbit, tun=spec.uses_tun)
            if best is None or goodput < best[0]:
                best = (goodput, name, d)
    return None if best is None else (best[1], best[2])


def predicted_goodput_mbit(
    scenario: Scenario,
    host: str,
    direction: str = "down",
    *,
    streams: int,
    keep: float = RENO_KEEP,
    payload_bytes: int = TCP_PAYLOAD_BYTES,
) -> Optional[float]:
    """What iperf3 with ``streams`` greedy flows reads between the client and ``host``: the
    narrowest shaper's goodput times the share of it TCP keeps busy; None when uncapped."""
    found = bottleneck(scenario, host, direction)
    if found is None:
        return None
    name, d = found
    assert d.rate_mbit is not None
    busy = tcp_utilization(d.rate_mbit, impair.limit_bytes(d), scenario.base_rtt_ms(host), flows=streams, keep=keep)
    return expected_goodput_mbit(d.rate_mbit, tun=scenario.link(name).uses_tun, payload_bytes=payload_bytes) * busy
