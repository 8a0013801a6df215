"""Goodput: one reduction for every engine, its named variants and its edge cases, decided once.

The tables give byte counts and times a test could produce and the figure each must give; the
expected figures are written as the sum they come from (bits over seconds).
"""

from __future__ import annotations

import socket
import threading

import pytest

from giga_netcheck.core.goodput import AFTER_WARMUP, FIRST_BYTE_TO_LAST, WHOLE_TRANSFER, Span, goodput
from giga_netcheck.core.models import Target
from giga_netcheck.measure.engines import ThroughputPlan
from giga_netcheck.measure.engines._summary import SHORT_NOTE, failed, summarize
from giga_netcheck.measure.engines.http import HttpEngine
from giga_netcheck.monitor.scheduled import ByteBudget, CappedHttpEngine

MB = 1_000_000


def mbit(nbytes: float, seconds: float) -> float:
    return nbytes * 8 / seconds / 1e6


ERRORED, WHOLE, NO_WARMUP = {"errored": True}, {"whole_if_short": True}, {"warmup_s": 0.0}

# (case, points (time, bytes so far, a stream alive), expected Mbit/s, method, options); warm-up 0.5 s
# fmt: off
AFTER_WARMUP_CASES = [
    ("steady", [(0, 0, True), (0.5, MB, True), (1.5, 2.25 * MB, True)], mbit(1.25 * MB, 1.0), AFTER_WARMUP, {}),
    ("window opens at the first poll past the warm-up",
     [(0, 0, True), (0.3, MB, True), (0.6, 2 * MB, True), (1.1, 3 * MB, True)], mbit(MB, 0.5), AFTER_WARMUP, {}),
    ("zero bytes, no error", [(0, 0, True), (0.5, 0, True), (1.0, 0, True)], None, AFTER_WARMUP, {}),
    ("zero bytes, every stream errored", [(0, 0, True), (0.1, 0, False)], None, AFTER_WARMUP, ERRORED),
    ("zero bytes, fixed-amount client", [(0, 0, True), (0.5, 0, True), (1.0, 0, False)], None, AFTER_WARMUP, WHOLE),
    ("a stall after the warm-up is a measurement", [(0, 0, True), (0.5, MB, True), (1.0, MB, True)], 0.0, AFTER_WARMUP, {}),
    ("the start only: nothing polled", [(0, 0, True)], None, AFTER_WARMUP, {}),
    ("single poll, before the warm-up ended", [(0, 0, True), (0.3, MB, False)], None, AFTER_WARMUP, {}),
    ("single poll, the one that ended the warm-up", [(0, 0, True), (0.6, MB, False)], None, AFTER_WARMUP, {}),
    ("single poll, no warm-up: the start opens the window", [(0, 0, True), (0.5, MB, False)], mbit(MB, 0.5), AFTER_WARMUP, NO_WARMUP),
    ("fixed amount ended in the warm-up: the whole transfer", [(0, 0, True), (0.3, MB, False)], mbit(MB, 0.3), WHOLE_TRANSFER, WHOLE),
    ("fixed amount, but it failed: no whole-transfer figure", [(0, 0, True), (0.3, MB, False)], None, AFTER_WARMUP, {**WHOLE, **ERRORED}),
    ("fixed amount that outlasted the warm-up",
     [(0, 0, True), (0.5, MB, True), (1.0, 3 * MB, False)], mbit(2 * MB, 0.5), AFTER_WARMUP, WHOLE),
    ("partial error: what moved while the streams ran",
     [(0, 0, True), (0.5, MB, True), (1.0, 1.5 * MB, True)], mbit(0.5 * MB, 0.5), AFTER_WARMUP, ERRORED),
    ("every stream errored after moving data",
     [(0, 0, True), (0.5, MB, True), (0.9, 1.4 * MB, False)], mbit(0.4 * MB, 0.4), AFTER_WARMUP, ERRORED),
]
# fmt: on


@pytest.mark.parametrize("case, points, expected, method, options", AFTER_WARMUP_CASES, ids=[c[0] for c in AFTER_WARMUP_CASES])
def test_after_warmup(case, points, expected, method, options):
    g = goodput(AFTER_WARMUP, points=points, **{"warmup_s": 0.5, **options})
    assert g.method == method
    assert g.mbps == (None if expected is None else pytest.approx(expected))


# (case, spans, expected Mbit/s): each stream's first chunk is left out, the window runs from
# the first byte of any stream to the last byte of any stream
FIRST_BYTE_CASES = [
    ("two streams", [Span(MB, 65_536, 1.0, 2.0), Span(MB, 65_536, 1.1, 2.5)], mbit(2 * MB - 2 * 65_536, 1.5)),
    ("budget spent: no stream", [], None),
    ("zero bytes", [Span(0), Span(0)], None),
    ("single chunk, one stream", [Span(65_536, 65_536, 1.0, 1.0)], None),
    ("single chunk per stream, at different times", [Span(65_536, 65_536, 1.0, 1.0), Span(65_536, 65_536, 1.2, 1.2)], None),
    ("one stream moved nothing (it failed), the other counts", [Span(0), Span(500_000, 50_000, 1.0, 2.0)], mbit(450_000, 1.0)),
    ("an upload: the last byte is the server's answer", [Span(MB, 65_536, 1.0, 1.5)], mbit(MB - 65_536, 0.5)),
]


@pytest.mark.parametrize("case, spans, expected", FIRST_BYTE_CASES, ids=[c[0] for c in FIRST_BYTE_CASES])
def test_first_byte_to_last(case, spans, expected):
    g = goodput(FIRST_BYTE_TO_LAST, spans=spans)
    assert g.method == FIRST_BYTE_TO_LAST
    assert g.mbps == (None if expected is None else pytest.approx(expected))


def test_first_byte_to_last_ignores_points_and_warmup():
    spans = [Span(MB, 65_536, 1.0, 2.0)]
    alone = goodput(FIRST_BYTE_TO_LAST, spans=spans)
    assert goodput(FIRST_BYTE_TO_LAST, spans=spans, points=[(0, 0, True), (9, 9 * MB, True)], warmup_s=5.0) == alone


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="after-warmup"):
        goodput("mean-of-samples", points=[(0, 0, True), (1, MB, True)])


# ------------------------------------------------------------------ the result records it

TARGET = Target("internet", "internet", "127.0.0.1", "http://127.0.0.1:1")
PLAN = ThroughputPlan("download", 2, 1.0, 0.5, interval_s=0.25)
POINTS = [(10.0, 0, True), (10.25, 200_000, True), (10.5, 500_000, True), (10.75, 900_000, True), (11.0, 1_300_000, True)]


def test_summary_records_the_method_and_cuts_the_warmup():
    m = summarize(TARGET, PLAN, "http", POINTS, per_stream_bytes=[700_000, 600_000])
    assert m.goodput_method == AFTER_WARMUP
    assert m.goodput_mbps == pytest.approx(mbit(800_000, 0.5), abs=1e-3)
    assert m.samples_mbps == pytest.approx([mbit(200_000, 0.25), mbit(300_000, 0.25), mbit(400_000, 0.25), mbit(400_000, 0.25)])
    assert m.p50_mbps == pytest.approx(mbit(400_000, 0.25))  # the two samples after the warm-up
    assert m.bytes_total == 1_300_000 and m.per_stream_mbps == pytest.approx([mbit(700_000, 1.0), mbit(600_000, 1.0)], abs=1e-3)
    assert SHORT_NOTE not in m.notes


def test_summary_of_a_short_fixed_transfer_says_whole_transfer_and_notes_it():
    points = [(0.0, 0, True), (0.25, 3 * MB, False)]
    m = summarize(TARGET, PLAN, "speedtest", points, whole_if_short=True)
    assert m.goodput_method == WHOLE_TRANSFER and SHORT_NOTE in m.notes
    assert m.goodput_mbps == pytest.approx(mbit(3 * MB, 0.25), abs=1e-3)


def test_summary_first_byte_to_last_has_no_warmup_and_rates_each_stream_over_its_own_span():
    spans = [Span(400_000, 64_000, 10.1, 10.6), Span(0)]
    points = [(10.0, 0, True), (10.25, 150_000, True), (10.5, 350_000, True), (10.75, 400_000, False)]
    m = summarize(TARGET, PLAN, "http-capped", points, method=FIRST_BYTE_TO_LAST, spans=spans)
    assert m.goodput_method == FIRST_BYTE_TO_LAST and m.warmup_s == 0.0
    assert m.goodput_mbps == pytest.approx(mbit(336_000, 0.5), abs=1e-3)
    assert m.bytes_total == 400_000
    assert m.per_stream_mbps == pytest.approx([mbit(400_000, 0.5), 0.0], abs=1e-3)
    # the last interval ended with every stream done: not a sample of the line
    assert m.samples_mbps == pytest.approx([mbit(150_000, 0.25), mbit(200_000, 0.25)])


def test_a_failed_session_records_the_method_it_would_have_used():
    m = failed(TARGET, PLAN, "librespeed", "nope", "protocol")
    assert m.goodput_mbps is None and m.goodput_method == AFTER_WARMUP


# ---------------------------------------------------------------- engines on loopback


def test_own_engine_records_after_warmup(server):
    target = Target("internet", "internet", "127.0.0.1", server.url)
    m = HttpEngine().measure(target, ThroughputPlan("download", 2, 1.0, 0.3), threading.Event())
    assert m.error is None and m.goodput_mbps and m.goodput_mbps > 0
    assert m.goodput_method == AFTER_WARMUP


def test_capped_engine_records_first_byte_to_last(server):
    target = Target("internet", "internet", "127.0.0.1", server.url)
    m = CappedHttpEngine(ByteBudget(MB), per_test_bytes=MB).measure(target, ThroughputPlan("download", 2, 3.0, 0.5), threading.Event())
    assert m.error is None and m.bytes_total == MB and m.goodput_mbps and m.goodput_mbps > 0
    assert m.goodput_method == FIRST_BYTE_TO_LAST and m.warmup_s == 0.0


def test_a_server_that_never_answers_gives_no_figure_not_zero():
    """The own engine used to report 0.0 Mbit/s here while the other engines reported none."""
    with socket.socket() as silent:  # listens (the kernel completes the handshake), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        target = Target("internet", "internet", "127.0.0.1", f"http://127.0.0.1:{silent.getsockname()[1]}")
        m = HttpEngine().measure(target, ThroughputPlan("download", 1, 0.8, 0.2), threading.Event())
    assert m.bytes_total == 0 and m.goodput_mbps is None
    assert m.duration_s >= 0.7  # it waited for bytes for the whole test
