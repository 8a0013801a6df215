"""The load probe: pure ramp math, error classification, and ramps against a real server on loopback."""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
import time

import pytest

from giga_netcheck.core import load as analysis
from giga_netcheck.core.models import LoadBufferbloat, LoadHop, LoadSupports
from giga_netcheck.measure.loadgen.activities import Cbt, Device, Textbook, Video, VideoCall, WebApps
from giga_netcheck.measure.loadgen.client import LoadError, classify
from giga_netcheck.measure.loadgen.ramp import Budget, RampTarget, run_ramp
from tests.factories import load_step as step
from tests.fakes import FakeServer

# ------------------------------------------------------------------------------ pure math


@pytest.mark.parametrize(
    "needed, factor, steps, cap, expect",
    [
        (35, 1.5, 6, 300, [9, 18, 26, 35, 44, 53]),
        (35, 1.5, 6, 40, [7, 13, 20, 27, 33, 40]),
        (2, 1.5, 6, 300, [1, 2, 3]),
        (1000, 1.0, 4, 2000, [250, 500, 750, 1000]),
    ],
)
def test_plan_steps(needed, factor, steps, cap, expect):
    assert analysis.plan_steps(needed, factor, steps, cap) == expect


@pytest.mark.parametrize(
    "shares, knee, failing",
    [
        ([1.0, 1.0, 0.96, 0.5], 30, 40),  # 95% or more counts
        ([1.0, 0.94, 1.0, 1.0], 10, 20),  # a lucky larger step after a failure does not lift it
        ([0.5, 0.2], None, 10),  # not even the first step
        ([1.0, 1.0, 1.0, 1.0], 40, None),  # beyond the ramp
        ([1.0, 0.95, 0.949], 20, 30),
    ],
)
def test_knee(shares, knee, failing):
    steps = [step(10 * (i + 1), s) for i, s in enumerate(shares)]
    k = analysis.knee(list(reversed(steps)))  # order of the input does not matter
    if knee is None:
        assert k is None
        assert analysis.supports(k, 35) == LoadSupports(devices=0, needed=35, enough=False, at_least=False, first_failing_devices=None)
    else:
        assert k.devices == knee and k.first_failing_devices == failing and k.beyond_ramp == (failing is None)
        assert k.connections == knee and k.goodput_mbps == 10.0  # what render/html.py charts
        sup = analysis.supports(k, 35)
        assert sup.devices == knee and sup.enough == (knee >= 35)


def test_knee_ignores_incomplete_and_unjudged_steps():
    steps = [step(10, 1.0), step(20, None), step(30, 0.2, complete=False), step(40, 1.0)]
    assert analysis.knee(steps).devices == 40


def test_rpm_uses_trimmed_means_of_foreign_and_self():
    foreign = [10.0] * 19 + [1000.0]  # the slowest 5% (one of 20) is dropped
    self_ms = [30.0] * 20
    value, working = analysis.rpm(foreign, self_ms)
    assert working == pytest.approx(20.0) and value == pytest.approx(3000.0)
    assert analysis.rpm([], [60.0]) == (1000.0, 60.0)
    assert analysis.rpm([], []) == (None, None)


@pytest.mark.parametrize("rpm, word", [(None, None), (299, "poor"), (300, "fair"), (999.9, "fair"), (1000, "good"), (6000, "excellent")])
def test_rpm_rating(rpm, word):
    assert analysis.rpm_rating(rpm) == word


def test_bufferbloat_takes_the_worst_hop_of_any_complete_step():
    lat = lambda g, c: (LoadHop(target="gateway", increase_ms=g), LoadHop(target="center", increase_ms=c))  # noqa: E731
    steps = [
        step(10, 1.0, latency=lat(1, 3)),
        step(20, 1.0, latency=lat(2, 250)),
        step(25, 1.0, latency=lat(2, 210)),
        step(30, 0.1, complete=False, latency=lat(500, 500)),
    ]
    assert analysis.bufferbloat(steps) == LoadBufferbloat(grade="D", increase_ms=250, target="center", at_devices=20)
    assert analysis.bufferbloat([step(10, 1.0, latency=lat(-2, 1))]).grade == "A+"
    assert analysis.bufferbloat([step(10, 1.0)]) is None


def test_responsiveness_is_the_largest_complete_step():
    steps = [step(10, 1.0, rpm=2000.0), step(20, 1.0, rpm=900.0, working_rtt_ms=66.7), step(30, 0.5, rpm=100.0, complete=False)]
    r = analysis.responsiveness(steps)
    assert (r.rpm, r.working_rtt_ms, r.rating, r.at_devices) == (900.0, 66.7, "fair", 20)
    assert analysis.responsiveness([step(30, 0.5, complete=False)]) is None


@pytest.mark.parametrize(
    "exc, kind",
    [
        (ConnectionRefusedError(), "refused"),
        (ConnectionResetError(), "reset"),
        (BrokenPipeError(), "reset"),
        (asyncio.IncompleteReadError(b"", 10), "reset"),
        (asyncio.TimeoutError(), "timeout"),
        (OSError(errno.ETIMEDOUT, "timed out"), "timeout"),
        (OSError(errno.EHOSTUNREACH, "no route"), "unreachable"),
        (OSError(errno.EMFILE, "too many open files"), "local"),
        (OSError(errno.EADDRNOTAVAIL, "no port"), "local"),
        (LoadError("http", "HTTP 404"), "http"),
        (ValueError("x"), "other"),
    ],
)
def test_classify(exc, kind):
    assert classify(exc) == kind


def test_cbt_sizes_follow_the_mexcbt_minimum():
    c = Cbt()  # 0.5 down / 0.6 up Mbit/s per student (MEXCBT speaking test, domain.md section 3), one item every 4 s
    assert c.request_bytes + c.image_bytes == 250_000 and c.answer_bytes == 300_000
    d = c.describe()
    assert d["kind"] == "cbt" and d["connections_per_device"] == 1
    assert "within 3 s" in d["pass"] and "248 kB image" in d["pass"] and "300 kB upload" in d["pass"]


@pytest.mark.parametrize(
    "phase, started, counted", [("item", 0.0, True), ("item", 9.0, False), ("answer", 0.0, True), ("answer", 8.5, False)]
)
def test_cbt_in_flight_at_the_end_is_late_only_when_overdue(phase, started, counted):
    c = Cbt(item_limit_s=3.0, answer_limit_s=2.0)
    dev = Device(0, [])
    dev.metrics.update(items=1, late_items=0, item_s=[0.1], answers=0, late_answers=0, answer_s=[], started=started, phase=phase)
    c.finish(dev, None, now=10.0)
    late = dev.metrics["late_items"] + dev.metrics["late_answers"]
    assert late == (1 if counted else 0) and c.met(dev) is (not counted)
    assert "started" not in dev.metrics and "phase" not in dev.metrics


# --------------------------------------------------------------------- ramps on loopback


def _target(server) -> RampTarget:
    return RampTarget("internet", "127.0.0.1", server.server.port, server.server.udp_port)


def _ramp(target, activity, counts, step_s=1.5, stop=None, budget=None):
    return run_ramp(counts, activity, target, step_s=step_s, stop=stop or threading.Event(), budget=budget or Budget(10**9, 60))


def test_video_ramp_meets_and_counts_connections(server):
    steps, stopped = _ramp(_target(server), Video(2.0, segment_s=0.4), [3, 12])
    assert stopped is None and [s.devices for s in steps] == [3, 12]
    for s in steps:
        assert s.complete and s.met_share == 1.0 and s.judged == s.devices
        assert sum(s.errors.values()) == 0
        assert s.peak_open_connections == s.devices == s.connections_opened  # one connection per device, kept alive
        assert s.activity["stalls"] == 0 and s.activity["segments"] >= s.devices * 2
        assert s.rpm and s.rpm > 1000 and s.foreign_rtts_ms
    # 12 devices x 2 Mbit/s: the schedule, not loopback, sets the goodput
    assert 8 < steps[1].goodput_mbps < 40
    assert analysis.knee(steps).devices == 12


def test_web_apps_textbook_and_call(server):
    t = _target(server)
    web, _ = _ramp(t, WebApps(page_limit_s=0.8, think_s=0.4), [6], step_s=2.0)
    assert web[0].met_share == 1.0 and web[0].activity["pages"] >= 6
    assert web[0].connections_opened == 12 and web[0].connections == 12  # two connections per device, kept alive
    book, _ = _ramp(t, Textbook(page_bytes=300_000, limit_s=0.8, every_s=5), [5])
    assert book[0].met_share == 1.0 and book[0].activity["turns"] == 5
    cbt, _ = _ramp(t, Cbt(every_s=1.0, item_limit_s=0.8, answer_limit_s=0.8), [6], step_s=3.0)
    a = cbt[0].activity
    assert cbt[0].met_share == 1.0 and cbt[0].judged == 6 and cbt[0].connections_opened == 6
    assert a["items"] >= 12 and a["late_items"] == 0 and a["answers"] >= 6 and a["late_answers"] == 0
    assert cbt[0].up_mbps > 0 and cbt[0].down_mbps > 0  # the answers go up, the images come down
    late, _ = _ramp(t, Cbt(every_s=1.0, item_limit_s=1e-6, answer_limit_s=0.8), [3], step_s=1.5)
    assert late[0].met_share == 0.0 and late[0].activity["late_items"] >= 3
    call, _ = _ramp(t, VideoCall(0.4, packet_bytes=500), [4], step_s=2.0)
    assert call[0].met_share == 1.0 and call[0].activity["loss_pct"] == 0.0
    assert call[0].activity["packets_sent"] > 4 * 50


def test_refused_connections_are_errors_by_kind():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    steps, _ = _ramp(RampTarget("dead", "127.0.0.1", port), Video(1.0, segment_s=0.4), [4], step_s=1.0)
    assert steps[0].errors["refused"] >= 4 and steps[0].met_share == 0.0
    assert steps[0].devices_with_errors == 4 and "refused" in steps[0].error_examples[0]
    assert analysis.knee(steps) is None


def test_reset_mid_answer_is_a_reset():
    with FakeServer("reset") as fake:
        steps, _ = _ramp(RampTarget("fake", "127.0.0.1", fake.port), Video(1.0, segment_s=0.4), [3], step_s=1.0)
    assert steps[0].errors["reset"] >= 3 and steps[0].met_share == 0.0


def test_stop_ends_every_device_within_a_second_and_keeps_steps(server):
    stop = threading.Event()
    box = {}
    th = threading.Thread(
        target=lambda: box.__setitem__("r", _ramp(_target(server), Video(2.0, segment_s=0.4), [20, 40], step_s=30, stop=stop))
    )
    th.start()
    time.sleep(1.5)
    assert server.server._connections >= 20  # every device holds its connection open
    t0 = time.monotonic()
    stop.set()
    th.join(5)
    took = time.monotonic() - t0
    assert not th.is_alive() and took < 1.0, took
    # every device stopped: the server sees each connection go (aborted, so no FIN wait) within the second
    while server.server._connections and time.monotonic() - t0 < 1.0:
        time.sleep(0.01)
    assert server.server._connections == 0, server.server._connections
    steps, stopped = box["r"]
    assert stopped == "interrupted" and len(steps) == 1
    assert steps[0].complete is False and steps[0].stopped == "interrupted" and steps[0].bytes > 0


def test_byte_cap_stops_the_ramp(server):
    budget = Budget(max_bytes=1_500_000, max_duration_s=60)
    steps, stopped = _ramp(_target(server), Video(4.0, segment_s=0.4), [10, 20], step_s=5, budget=budget)
    assert stopped == "byte-cap" and len(steps) == 1 and not steps[0].complete
    # the watcher looks every 50 ms: the overshoot is what 10 players fetch in that time
    assert budget.used_bytes < 1_500_000 + 10 * 200_000 * 2


def test_hundreds_of_devices_in_one_loop_stay_bounded(server):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu0 = time.process_time()
    # A device starts its first page at a random offset of up to min(think_s, 1.5) = 1.5 s, and
    # only if the page can finish in the step (start + page_limit_s <= end): a 6 s step leaves
    # every device 3 s of event-loop lag to start in. (With think_s 1 and a 2.5 s step there was
    # no room for lag, and a busy host lost 2-41 of 300 devices.)
    steps, _ = _ramp(
        _target(server), WebApps(objects=2, object_bytes=10_000, upload_bytes=2_000, page_limit_s=1.5, think_s=3.0), [300], step_s=6.0
    )
    s = steps[0]
    cpu_ms_per_page = (time.process_time() - cpu0) * 1000 / max(1, s.activity["pages"])
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    # Every device loaded pages and opened its two connections exactly once (kept alive, none
    # dropped and reopened), without an error. How many are open at one instant (sampled every
    # 0.5 s) depends on when the loop got to them, so that count is only bounded.
    assert s.judged == 300 and s.connections_opened == 600 and sum(s.errors.values()) == 0, (s.judged, s.connections_opened, s.errors)
    assert 0 < s.peak_open_connections <= s.connections_opened
    # Whether each page beat its 1.5 s is the host's speed, not the loop's: on loopback a page's
    # time is the loop's queue, which other test runs on a 2-core host stretch several-fold (0-90%
    # of devices met at load average 8-10, all of them on a quiet host; bench/load_web_school.py
    # measures it there). What the loop costs is its CPU time, which their load hardly changes:
    # ~3 ms a page (3 requests, client and server both in this process, connections included).
    assert cpu_ms_per_page < 10, (cpu_ms_per_page, s.activity)
    assert grew_mb < 150, grew_mb  # client and in-process server together
