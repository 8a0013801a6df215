"""Verdicts at the edges, where two causes compete for the top: each case is a result whose
verdict must not waver, with the reason it ranks as it does. (They come from lab runs whose
verdict did waver before the rules were fixed: docs/lab.md, "Verdict stability".)"""

from __future__ import annotations

from dataclasses import replace

from giga_netcheck.core.models import Classroom, DiscoveredPath, PathHop, School, Target, claims
from giga_netcheck.core.triage import session_limit, triage, uplink_loss
from tests.factories import bandwidth, healthy_dns, latency, load_result, load_step, measurements, rtts, triage_input
from tests.test_triage import CLAIM_AT, POSSIBLE, STRONG

# the lab's idle path: gateway 0.1 ms, center and internet 30 ms (15 ms each way on the uplink)
LAB_LATENCY = [
    latency("gateway", rtts(0.1)),
    latency("center", rtts(30.0, spread=0.2)),
    latency("internet", rtts(30.2, spread=0.2)),
    latency("gateway", rtts(0.2), phase="download"),
    latency("center", rtts(36.0), phase="download"),
    latency("internet", rtts(38.0), phase="download"),
]


def _causes(bw, students=120):
    m = measurements(LAB_LATENCY, bw, healthy_dns())
    return triage(triage_input(m, school=School("lab-001", "Lab", students), classrooms=(Classroom("5-1", 35, "default"),)))


def test_center_capacity_outranks_a_center_leg_that_is_also_short():
    # the center reads under the 216 Mbit/s need and the internet under half of that: the
    # narrowest point is beyond the center, so center-capacity ranks above the short center leg
    # (by confidence, not by the order of the ids)
    got = _causes(
        [
            bandwidth("center", 200.0),
            bandwidth("center", 250.0, direction="upload"),
            bandwidth("internet", 47.8),
            bandwidth("internet", 47.0, streams=1),
            bandwidth("internet", 45.0, direction="upload"),
        ]
    )
    ids = [c.id for c in claims(tuple(got))]
    assert ids[0] == "center-capacity" and "uplink-capacity" in ids
    by = {c.id: c.confidence for c in got}
    assert by["center-capacity"] > by["uplink-capacity"]


def test_uplink_capacity_alone_is_a_strong_claim():
    # center and internet both at the 50 Mbit/s line: nothing beyond the center is narrower, so
    # center-capacity is quiet and nothing lowers the shortfall
    got = _causes(
        [
            bandwidth("center", 48.3),
            bandwidth("center", 47.0, direction="upload"),
            bandwidth("internet", 47.9),
            bandwidth("internet", 46.0, streams=1),
            bandwidth("internet", 46.5, direction="upload"),
        ]
    )
    top = claims(tuple(got))[0]
    assert top.id == "uplink-capacity" and STRONG.holds(top.confidence)
    assert "center-capacity" not in {c.id for c in got}


def test_one_slow_flow_on_a_long_rtt_path_ranks_below_high_latency():
    # 150 ms to the internet and one flow reads a third of four: TCP's window over that RTT (and
    # slow start in a short test) explains the gap, so the RTT is the cause to fix first
    slow = [
        latency("gateway", rtts(0.1)),
        latency("center", rtts(30.2, spread=0.2)),
        latency("internet", rtts(150.5, spread=0.3)),
        latency("center", rtts(43.6), phase="download"),
        latency("internet", rtts(163.7), phase="download"),
    ]
    bw = [
        bandwidth("center", 172.0),
        bandwidth("center", 289.4, streams=1),
        bandwidth("center", 200.0, direction="upload"),
        bandwidth("internet", 150.3),
        bandwidth("internet", 46.6, streams=1),
        bandwidth("internet", 120.0, direction="upload"),
    ]
    got = triage(
        triage_input(
            measurements(slow, bw, healthy_dns()), school=School("lab-001", "Lab", 120), classrooms=(Classroom("5-1", 35, "default"),)
        )
    )
    top = claims(tuple(got))
    assert [c.id for c in top] == ["high-latency"] and top[0].segment == "internet"
    pf = next(c for c in got if c.id == "per-flow-limit")
    assert POSSIBLE.holds(pf.confidence)  # still listed as possible


def test_one_slow_flow_on_a_short_path_is_still_per_flow_limit():
    # 20 Mbit/s per flow on a 30 ms path: the RTT explains nothing, so nothing lowers per-flow-limit
    bw = [
        bandwidth("center", 76.9),
        bandwidth("center", 19.5, streams=1),
        bandwidth("center", 70.0, direction="upload"),
        bandwidth("internet", 74.3),
        bandwidth("internet", 19.5, streams=1),
        bandwidth("internet", 70.0, direction="upload"),
    ]
    top = claims(tuple(_causes(bw)))[0]
    assert top.id == "per-flow-limit" and top.segment == "uplink"


def test_loss_rate_against_the_gateway_is_pooled_from_where_loss_starts():
    # no center; the discovered hop 2 lost 1 of 40, the internet 3 of 40, the gateway none of 100
    # (40 idle, 60 flat under load). Against the loss pooled from where it starts (4 of 80, 5%),
    # 100 clean gateway probes rule out the LAN (0.95^100 < 0.01); against hop 2's 2.5% alone
    # they would not (0.975^100 = 0.08), and a real uplink loss would go unclaimed
    gw, hop, net = "198.18.1.1", "198.18.2.2", "198.18.3.2"
    path = DiscoveredPath(
        "internet",
        net,
        "icmp",
        True,
        (
            PathHop(1, gw, "time-exceeded", (0.1,), name="gateway", role="gateway"),
            PathHop(2, hop, "time-exceeded", (30.0,), name="hop-2", role="hop"),
            PathHop(3, net, "echo-reply", (30.0,), name="internet", role="internet"),
        ),
    )
    series = [
        latency("gateway", rtts(0.06, n=40)),
        latency("hop-2", rtts(30.3, n=40, lost=1), role="hop"),
        latency("internet", rtts(30.3, n=40, lost=3)),
        latency("gateway", rtts(0.03, n=60), phase="download:internet"),
    ]
    m = measurements(series, [bandwidth("internet", 280.0)], healthy_dns())
    targets = (Target("gateway", "gateway", gw), Target("internet", "internet", net, f"http://{net}:8080"))
    found = uplink_loss(triage_input(replace(m, paths=(path,)), targets=targets))
    assert found is not None and found.confidence >= CLAIM_AT
    assert not any(e.metric == "gateway_probes" for e in found.evidence)  # no "too few gateway probes" note
    assert found.evidence[0].target == "hop-2" and found.evidence[0].note_key == "evidence.loss_starts_at_hop"


def test_grade_c_bufferbloat_outranks_the_shortfall_that_fills_its_queue():
    # a 20 Mbit/s uplink whose queue rose 105 ms in a short test: the rise is what lessons feel
    # and smart queueing fixes it, so it ranks above the shortfall that fills the queue
    q = [
        latency("gateway", rtts(0.1)),
        latency("center", rtts(30.2, spread=0.2)),
        latency("internet", rtts(30.2, spread=0.2)),
        latency("gateway", rtts(0.1), phase="download:center"),
        latency("center", rtts(135.6), phase="download:center"),
        latency("internet", rtts(134.3), phase="download:center"),
    ]
    bw = [
        bandwidth("center", 18.1),
        bandwidth("center", 21.0, streams=1),
        bandwidth("center", 18.0, direction="upload"),
        bandwidth("internet", 21.1),
        bandwidth("internet", 21.0, streams=1),
        bandwidth("internet", 18.0, direction="upload"),
    ]
    got = triage(
        triage_input(
            measurements(q, bw, healthy_dns()), school=School("lab-001", "Lab", 120), classrooms=(Classroom("5-1", 35, "default"),)
        )
    )
    top = claims(tuple(got))
    assert [(c.id, c.segment) for c in top] == [("bufferbloat", "uplink"), ("uplink-capacity", "uplink")]


def test_a_per_flow_cap_with_two_streams_in_one_bucket_still_explains_the_shortfall():
    # one flow 9.0, four streams 27.3 = 3 x 9: a hashing per-flow shaper put two of the four
    # streams in one bucket, so the multi-stream figure is still the per-flow cap's consequence
    bw = [
        bandwidth("center", 27.3),
        bandwidth("center", 9.0, streams=1),
        bandwidth("center", 30.0, direction="upload"),
        bandwidth("internet", 36.0),
        bandwidth("internet", 9.0, streams=1),
        bandwidth("internet", 30.0, direction="upload"),
    ]
    got = _causes(bw)
    top = claims(tuple(got))[0]
    assert (top.id, top.segment) == ("per-flow-limit", "uplink")
    assert next(c for c in got if c.id == "uplink-capacity").confidence < 0.5


def _ramp(peaks, refused, opened=None):
    """Three steps of 18, 35 and 53 devices: connections opened and held, and refusals."""
    opened = opened or peaks
    steps = [
        load_step(
            d,
            connections=o,
            connections_opened=o,
            peak_open_connections=p,
            goodput_mbps=6.5,
            errors={"refused": r, "reset": 0, "timeout": 0},
        )
        for d, o, p, r in zip((18, 35, 53), opened, peaks, refused)
    ]
    return load_result(steps, target="center")


def _session(load):
    bw = [
        bandwidth("center", 289.0),
        bandwidth("center", 240.0, streams=1),
        bandwidth("center", 289.0, direction="upload"),
        bandwidth("internet", 289.0),
        bandwidth("internet", 289.0, streams=1),
        bandwidth("internet", 289.0, direction="upload"),
    ]
    return session_limit(triage_input(measurements(LAB_LATENCY, bw, healthy_dns(), load=load)))


def test_a_session_table_already_full_at_the_first_step():
    # two connections per device, so the first step (18 devices) already asks for 36 of a
    # 30-connection table: the same 30 are held at every step while the refusals grow
    found = _session(_ramp((30, 30, 30), (6, 40, 78)))
    assert found is not None and STRONG.holds(found.confidence) and found.segment == "gateway"
    assert found.evidence[0].value == 30.0 and found.evidence[0].note_key == "evidence.connections_held"


def test_failing_from_the_first_step_without_a_plateau_is_not_a_table():
    assert _session(_ramp((0, 0, 0), (36, 70, 106), opened=(1, 1, 1))) is None  # lets none through
    assert _session(_ramp((20, 35, 50), (6, 6, 6))) is None  # more get through at each step
    assert _session(_ramp((30, 30, 30), (6, 6, 6))) is None  # failures do not grow


def test_loss_missed_by_thirty_idle_probes_shows_in_the_flat_probes_under_load():
    # 2% loss each way on the uplink: thirty idle probes miss it about one time in three
    # (0.96^30 = 0.29), so the probes sent under load while the RTT stayed flat count too
    series = [
        latency("gateway", rtts(0.05, n=30)),
        latency("center", rtts(30.2, n=30)),
        latency("internet", rtts(30.3, n=30)),
        latency("gateway", rtts(0.05, n=60), phase="download:center"),
        latency("center", rtts(30.4, n=60, lost=4), phase="download:center"),
        latency("internet", rtts(30.5, n=60, lost=4), phase="download:center"),
    ]
    found = uplink_loss(triage_input(measurements(series, [bandwidth("center", 13.6)], healthy_dns())))
    assert found is not None and found.confidence >= CLAIM_AT and found.evidence[0].target == "center"
    assert found.evidence[1].note_args == {"lost": 4, "sent": 90}


def test_drops_in_a_filled_queue_are_not_line_loss():
    # the RTT rose 150 ms under load: those losses are a full queue's drops (bufferbloat's), not the line's
    series = [
        latency("gateway", rtts(0.05, n=30)),
        latency("center", rtts(30.2, n=30)),
        latency("internet", rtts(30.3, n=30)),
        latency("center", rtts(180.0, n=60, lost=6), phase="download:center"),
        latency("internet", rtts(181.0, n=60, lost=6), phase="download:center"),
    ]
    assert uplink_loss(triage_input(measurements(series, [bandwidth("center", 19.0)], healthy_dns()))) is None
