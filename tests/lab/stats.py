"""Statistics the lab tests use to judge a measured share against a configured one.

Random loss, timeouts and SERVFAILs are Bernoulli draws, so the count seen in ``n`` trials is
binomial. Rather than a hand-picked fudge factor, a test asks for the range of counts that a
correct lab produces with probability at least ``1 - alpha`` and checks the count is inside.
"""

from __future__ import annotations

import math

__all__ = ["binomial_bounds", "binomial_pmf", "combined_loss"]


def binomial_pmf(k: int, n: int, p: float) -> float:
    """P(X = k) for X ~ Binomial(n, p)."""
    if p <= 0.0:
        return 1.0 if k == 0 else 0.0
    if p >= 1.0:
        return 1.0 if k == n else 0.0
    # Logs keep large n from overflowing.
    log_pmf = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)
    return math.exp(log_pmf)


def binomial_bounds(n: int, p: float, alpha: float = 1e-3) -> tuple[int, int]:
    """The central range ``[lo, hi]`` of counts holding at least ``1 - alpha`` of the mass.

    Each tail outside the range holds at most ``alpha / 2``, so a correct lab fails a test
    using these bounds with probability below ``alpha``.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"p must be within 0..1, got {p}")
    pmf = [binomial_pmf(k, n, p) for k in range(n + 1)]
    lo, tail = 0, 0.0
    while lo < n and tail + pmf[lo] <= alpha / 2:
        tail += pmf[lo]
        lo += 1
    hi, tail = n, 0.0
    while hi > 0 and tail + pmf[hi] <= alpha / 2:
        tail += pmf[hi]
        hi -= 1
    return lo, hi


def combined_loss(*rates: float) -> float:
    """Probability that a packet crossing independent lossy steps is lost at one of them.

    A ping is lost when the request *or* the reply is dropped: ``1 - (1-p1)(1-p2)``.
    """
    keep = 1.0
    for rate in rates:
        keep *= 1.0 - rate
    return 1.0 - keep
