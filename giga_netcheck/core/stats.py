"""Robust statistics used by every probe: percentiles, jitter, latency summaries, rounding."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Iterable, Optional, Sequence

from giga_netcheck.core.models import LatencySeries, LatencyStats


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


def join_idle(series: Sequence[LatencySeries]) -> list[LatencySeries]:
    """One idle series per target: a later idle series to a target (more probes sent to place a
    loss) joins the first one when sent by the same method, its samples appended and the summary
    taken over all of them; one that sent nothing is dropped. Other phases stay as they are."""
    out: list[LatencySeries] = []
    first: dict[str, int] = {}
    for s in series:
        i = first.get(s.target) if s.phase == "idle" else None
        if i is None:
            if s.phase == "idle":
                first[s.target] = len(out)
            out.append(s)
        elif s.stats.sent and s.method == out[i].method:
            rtts = out[i].rtts_ms + s.rtts_ms
            out[i] = replace(out[i], rtts_ms=rtts, stats=summarize_rtts(rtts))
    return out
