"""Robust statistics used by every probe: percentiles, jitter, latency summaries, rounding."""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

from giga_netcheck.core.models import LatencyStats


def rounded(v: Optional[float], digits: int = 3) -> Optional[float]:
    """``v`` rounded to ``digits`` decimals; None stays None (a figure that was not measured).

    Three decimals is what results store (ms to the microsecond, Mbit/s to the kbit/s)."""
    return None if v is None else round(v, digits)


def percentile(values: Sequence[float], pct: float) -> Optional[float]:
    """Linear-interpolated percentile (the 'inclusive' method numpy calls linear); None if empty."""
    if not values:
        return None
    xs = sorted(values)
    if len(xs) == 1:
        return float(xs[0])
    rank = (pct / 100.0) * (len(xs) - 1)
    lo = math.floor(rank)
    hi = math.ceil(rank)
    frac = rank - lo
    return float(xs[lo] + (xs[hi] - xs[lo]) * frac)


def median(values: Sequence[float]) -> Optional[float]:
    return percentile(values, 50.0)


def jitter(values: Sequence[float]) -> Optional[float]:
    """Mean absolute difference of consecutive values (lost probes already removed)."""
    if len(values) < 2:
        return None
    diffs = [abs(b - a) for a, b in zip(values, values[1:])]
    return sum(diffs) / len(diffs)


def trimmed_mean(values: Sequence[float], upper_trim_pct: float = 5.0) -> Optional[float]:
    """Single-sided trimmed mean: drop the top ``upper_trim_pct`` percent (IETF responsiveness)."""
    if not values:
        return None
    xs = sorted(values)
    keep = max(1, len(xs) - int(len(xs) * upper_trim_pct / 100.0))
    xs = xs[:keep]
    return sum(xs) / len(xs)


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(at most ``k`` successes in ``n`` trials of probability ``p``): how likely a count this
    low is (e.g. so few lost probes if the loss rate were ``p``)."""
    p = min(max(p, 0.0), 1.0)
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(0, k + 1))


def summarize_rtts(rtts_ms: Iterable[Optional[float]]) -> LatencyStats:
    """Summary of a series where None marks a lost probe."""
    series = list(rtts_ms)
    got = [x for x in series if x is not None]
    sent = len(series)
    loss = 100.0 * (sent - len(got)) / sent if sent else 0.0
    return LatencyStats(
        sent=sent,
        received=len(got),
        loss_pct=round(loss, 3),
        min_ms=rounded(min(got)) if got else None,
        p50_ms=rounded(percentile(got, 50)),
        p95_ms=rounded(percentile(got, 95)),
        max_ms=rounded(max(got)) if got else None,
        jitter_ms=rounded(jitter(got)),
    )
