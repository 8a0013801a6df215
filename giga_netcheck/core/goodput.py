"""Goodput: the one reduction of a test's byte counts to its headline Mbit/s, in named variants.

Every throughput engine hands its byte counts here (through ``measure.engines._summary``), and
the result records which variant gave the figure (``BandwidthMeasurement.goodput_method``):

- ``after-warmup`` (every engine of a full or on-site run): the bytes moved after the warm-up
  divided by the time after it, from the engine's polled counters (iperf3's ``-O``). The window
  opens at the first poll at or after ``warmup_s`` and closes at the last poll.
- ``whole-transfer``: the fallback ``after-warmup`` takes for clients that move a fixed amount
  (speedtest-cli's set of files) when the transfer ended before the warm-up did: all bytes over
  the whole time. Only for a transfer that ended without an error.
- ``first-byte-to-last`` (the scheduled light plan's byte-capped transfers, a few MB that end
  inside TCP slow start): from the first byte any stream received to the last byte any stream
  moved, each stream's first chunk left out (connection set-up and the request's round trip
  are not the line's throughput). No warm-up: a capped transfer may be over before one ends.

The edge cases, decided once for every variant:

- nothing moved (zero bytes in the whole test): no figure (None), whatever the errors; the
  error, or the probe's "no bytes" reason, says why;
- no timed window (no poll after the one that ended the warm-up, one chunk per stream, first
  and last byte at the same instant): no figure, except the ``whole-transfer`` fallback; a
  window needs two readings of the counters, which ``warmup_s: 0`` gives with the start itself;
- a timed window in which live streams moved nothing (a stall after the warm-up): 0.0, a
  measurement;
- errors (some streams or all of them): the figure counts what moved while the streams ran
  and the error is recorded beside it (reports and triage read both), never instead of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

AFTER_WARMUP = "after-warmup"
WHOLE_TRANSFER = "whole-transfer"
FIRST_BYTE_TO_LAST = "first-byte-to-last"
METHODS = (AFTER_WARMUP, WHOLE_TRANSFER, FIRST_BYTE_TO_LAST)

Point = tuple[float, int, bool]
"""``(time s, total bytes so far, any stream still alive)``, as ``poll_streams`` reads them; the
first point is the start, ``(t0, 0, True)``."""


@dataclass(frozen=True)
class Span:
    """One stream of a ``first-byte-to-last`` test: what it moved and when."""

    bytes: int
    first_bytes: int = 0
    """Bytes in its first chunk (left out of the figure)."""
    first_at: Optional[float] = None
    """When its first byte moved; None: it moved nothing."""
    last_at: Optional[float] = None
    """When its last byte moved (for an upload: when the server's answer came)."""


@dataclass(frozen=True)
class Goodput:
    """A figure and the variant that gave it."""

    mbps: Optional[float]
    method: str


def _rate(window_bytes: int, start: float, end: float) -> Optional[float]:
    if end <= start:
        return None
    return window_bytes * 8 / (end - start) / 1e6


def goodput(
    method: str,
    *,
    points: Sequence[Point] = (),
    warmup_s: float = 0.0,
    spans: Sequence[Span] = (),
    whole_if_short: bool = False,
    errored: bool = False,
) -> Goodput:
    """The headline figure of one test by ``method`` (unrounded Mbit/s, None when there is none).

    ``after-warmup`` reads ``points`` and ``warmup_s``; with ``whole_if_short`` and no
    ``errored`` stream it falls back to ``whole-transfer`` when no window after the warm-up
    exists. ``first-byte-to-last`` reads ``spans``. Raises ValueError for an unknown method.
    """
    if method == FIRST_BYTE_TO_LAST:
        moved = sum(s.bytes for s in spans)
        firsts = [s.first_at for s in spans if s.first_at is not None]
        lasts = [s.last_at for s in spans if s.last_at is not None]
        counted = moved - sum(s.first_bytes for s in spans)
        if moved <= 0 or not firsts or not lasts or counted <= 0:
            return Goodput(None, method)
        return Goodput(_rate(counted, min(firsts), max(lasts)), method)
    if method != AFTER_WARMUP:
        raise ValueError(f"unknown goodput method {method!r}: expected one of {', '.join(METHODS)}")
    if not points or points[-1][1] <= 0:
        return Goodput(None, method)
    t0 = points[0][0]
    t_end, moved, _ = points[-1]
    # With no warm-up the window opens at the start itself; otherwise at the first poll past it.
    warm = points[0] if warmup_s <= 0 else next((p for p in points[1:] if p[0] - t0 >= warmup_s), None)
    if warm is not None and t_end > warm[0]:
        return Goodput(_rate(moved - warm[1], warm[0], t_end), method)
    if whole_if_short and not errored:
        return Goodput(_rate(moved, t0, t_end), WHOLE_TRANSFER)
    return Goodput(None, method)
