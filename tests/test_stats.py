"""stats: percentiles, median, jitter, trimmed mean, RTT summaries and rounding on hand-computed cases."""

from __future__ import annotations

import pytest

from giga_netcheck.core.models import LatencyStats
from giga_netcheck.core.stats import jitter, median, percentile, rounded, summarize_rtts, trimmed_mean


@pytest.mark.parametrize(
    "values, pct, expected",
    [
        ([], 50, None),
        ([5.0], 0, 5.0),
        ([5.0], 95, 5.0),
        ([1, 2, 3, 4], 0, 1.0),
        ([1, 2, 3, 4], 100, 4.0),
        ([1, 2, 3, 4], 50, 2.5),  # rank 1.5
        ([1, 2, 3, 4], 95, 3.85),  # rank 2.85 -> 3 + 0.85
        ([4, 1, 3, 2], 25, 1.75),  # unsorted input; rank 0.75
        ([10, 20], 90, 19.0),  # rank 0.9
        ([7, 7, 7], 37, 7.0),
        ([0, 10, 20, 30, 40], 50, 20.0),  # rank 2 exactly: no interpolation
    ],
)
def test_percentile(values, pct, expected):
    got = percentile(values, pct)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)
        assert isinstance(got, float)


def test_percentile_does_not_reorder_the_input():
    xs = [3.0, 1.0, 2.0]
    percentile(xs, 50)
    assert xs == [3.0, 1.0, 2.0]


@pytest.mark.parametrize(
    "values, expected",
    [([], None), ([9], 9.0), ([3, 1, 2], 2.0), ([1, 2, 3, 4], 2.5), ([100, 1, 2], 2.0)],
)
def test_median(values, expected):
    assert median(values) == expected


@pytest.mark.parametrize(
    "values, expected",
    [
        ([], None),
        ([5.0], None),  # one RTT has no consecutive difference
        ([1.0, 1.0, 1.0], 0.0),
        ([10, 20, 15], 7.5),  # |10| + |-5| over 2
        ([10, 12, 9, 15], 11 / 3),  # 2 + 3 + 6 over 3
        ([20, 10], 10.0),  # absolute, not signed
    ],
)
def test_jitter(values, expected):
    got = jitter(values)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    "values, trim, expected",
    [
        ([], 5.0, None),
        ([1, 2, 3], 5.0, 2.0),  # fewer than 20 values: 5% drops nothing
        (list(range(1, 21)), 5.0, 10.0),  # 20 values: the top one (20) goes, mean of 1..19
        ([1.0] * 19 + [1000.0], 5.0, 1.0),  # the outlier is what the trim removes
        ([1, 2, 3, 100], 50.0, 1.5),  # half trimmed: 1 and 2 kept
        ([5, 6], 100.0, 5.0),  # never trims to nothing
        ([4, 2], 0.0, 3.0),
    ],
)
def test_trimmed_mean(values, trim, expected):
    got = trimmed_mean(values, trim)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    "rtts, expected",
    [
        ([], LatencyStats(sent=0, received=0, loss_pct=0.0)),
        ([None, None], LatencyStats(sent=2, received=0, loss_pct=100.0)),
        ([7.5], LatencyStats(1, 1, 0.0, 7.5, 7.5, 7.5, 7.5, None)),
        # the lost probe counts for loss and is skipped for jitter: |20-10| and |30-20|
        ([10.0, None, 20.0, 30.0], LatencyStats(4, 3, 25.0, 10.0, 20.0, 29.0, 30.0, 10.0)),
        ([1 / 3, 2 / 3, None], LatencyStats(3, 2, 33.333, 0.333, 0.5, 0.65, 0.667, 0.333)),
        ([2.0, 4.0, 2.0, 4.0], LatencyStats(4, 4, 0.0, 2.0, 3.0, 4.0, 4.0, 2.0)),
    ],
)
def test_summarize_rtts(rtts, expected):
    assert summarize_rtts(rtts) == expected


def test_summarize_rtts_accepts_a_generator():
    assert summarize_rtts(x for x in (1.0, None, 3.0)).received == 2


@pytest.mark.parametrize("k,n,p,expected", [(0, 30, 0.04, 0.96**30), (30, 30, 0.5, 1.0), (0, 10, 0.0, 1.0), (1, 2, 0.5, 0.75)])
def test_binomial_cdf(k, n, p, expected):
    from giga_netcheck.core.stats import binomial_cdf

    assert binomial_cdf(k, n, p) == pytest.approx(expected)


@pytest.mark.parametrize(
    "value, digits, expected",
    [
        (None, 3, None),  # not measured stays not measured
        (None, 4, None),
        (12.34567, 3, 12.346),
        (12.34567, 4, 12.3457),  # the load activities keep four decimals
        (0.0004, 3, 0.0),
        (-1.23449, 3, -1.234),
        (7, 3, 7),
    ],
)
def test_rounded(value, digits, expected):
    assert rounded(value, digits) == expected


def test_rounded_keeps_three_decimals_by_default():
    assert rounded(1.23456) == 1.235 and rounded(None) is None
