"""Finding and placing a loss: beyond the gateway, or already on the LAN; and the loss that would
explain a slow single flow. The counts of probes follow from the binomial law and Mathis's, and the
run sends them when it has too few."""

from __future__ import annotations

import math
import os

import pytest

from giga_netcheck.config.site import ProbeSettings, Site
from giga_netcheck.core.models import Classroom, School, Target
from giga_netcheck.core.stats import binomial_cdf, join_idle
from giga_netcheck.core.triage import LOSS_ALPHA, loss_explaining, loss_probes_wanted, probes_to_rule_out, triage
from giga_netcheck.measure.probes.base import ProbeContext, ProbeOutput
from giga_netcheck.measure.probes.latency import FOLLOW_UP_MAX, LossPlacementProbe
from tests.factories import NO_CENTER, bandwidth, default_profile, facts, latency, measurements, rtts, triage_input

root = pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets need root (CI runs as root)")


@pytest.mark.parametrize("rate", [0.005, 0.01, 0.02, 0.04, 0.1, 0.3])
def test_probes_to_rule_out_is_the_smallest_count_whose_clean_run_is_unlikely(rate):
    n = probes_to_rule_out(rate)
    assert binomial_cdf(0, n, rate) < LOSS_ALPHA  # n clean probes: that rate is ruled out
    assert binomial_cdf(0, n - 1, rate) >= LOSS_ALPHA  # one fewer would not do


def test_probes_to_rule_out_needs_a_rate():
    assert probes_to_rule_out(0.0) == 0
    assert probes_to_rule_out(1.0) == 0


def _facts(gateway_n: int, gateway_lost: int, internet_n: int, internet_lost: int, bw=()):
    m = measurements(
        [
            latency("gateway", rtts(1.0, n=gateway_n, lost=gateway_lost)),
            latency("internet", rtts(15.0, n=internet_n, lost=internet_lost)),
        ],
        bw,
    )
    return facts(m, targets=NO_CENTER)


def gateway_probes_wanted(f, profile) -> int:
    return loss_probes_wanted(f, profile).get("gateway", 0)


def test_wanted_covers_what_the_loss_rate_beyond_needs():
    # 2 of 50 lost beyond (4%): 74 clean gateway probes rule a 4% LAN out; 30 were sent
    f = _facts(30, 0, 50, 2)
    assert gateway_probes_wanted(f, default_profile()) == probes_to_rule_out(2 / 50) - 30 == 44


def test_wanted_is_nothing_when_the_gateway_already_rules_it_out():
    assert gateway_probes_wanted(_facts(200, 0, 50, 2), default_profile()) == 0


def test_wanted_is_nothing_without_loss_beyond_or_with_loss_on_the_lan():
    assert gateway_probes_wanted(_facts(30, 0, 50, 0), default_profile()) == 0
    # 2 of 30 lost at the gateway: over the LAN limit, lan-loss already says so
    assert gateway_probes_wanted(_facts(30, 2, 50, 4), default_profile()) == 0


def test_loss_explaining_follows_mathis():
    # 1448-byte segments, 30 ms: one Reno flow at 3.4 Mbit/s means about 2% random loss
    p = loss_explaining(3.4, 30.0)
    assert p is not None and 0.018 < p < 0.021
    assert loss_explaining(6.8, 30.0) == pytest.approx(p / 4)  # twice the rate: a quarter of the loss
    assert loss_explaining(0.0, 30.0) is None and loss_explaining(3.0, 0.0) is None
    assert loss_explaining(0.001, 30.0) == 0.5


def test_a_slow_single_flow_sends_the_probes_that_would_see_the_loss_explaining_it():
    # one flow 3.4 Mbit/s, four 60 Mbit/s, 15 ms: Mathis explains the one flow with ~0.5% loss;
    # half of it is looked for beyond, and the gateway gets as many to place it
    bw = [bandwidth("internet", 3.4, streams=1), bandwidth("internet", 60.0)]
    f = _facts(30, 0, 50, 0, bw)
    want = loss_probes_wanted(f, default_profile())
    p = loss_explaining(3.4, 15.0)
    assert want == {"internet": probes_to_rule_out(p / 2) - 50, "gateway": probes_to_rule_out(p / 2) - 30}


def test_no_probes_for_a_flow_that_no_loss_over_the_limit_could_explain_or_one_already_seen_lossy():
    # one flow at 30 of 100 Mbit/s over 15 ms: the loss explaining it is far under the 1% limit
    assert (
        loss_probes_wanted(_facts(30, 0, 50, 0, [bandwidth("internet", 30.0, streams=1), bandwidth("internet", 100.0)]), default_profile())
        == {}
    )
    # a loss already seen beyond: only the gateway may need more
    want = loss_probes_wanted(_facts(30, 0, 50, 2, [bandwidth("internet", 3.4, streams=1), bandwidth("internet", 60.0)]), default_profile())
    assert "internet" not in want


def test_enough_clean_gateway_probes_turn_a_hedged_uplink_loss_into_a_claim():
    profile = default_profile()

    def uplink(gateway_n: int):
        inp = triage_input(
            measurements(
                [latency("gateway", rtts(1.0, n=gateway_n)), latency("internet", rtts(15.0, n=50, lost=2))],
            ),
            targets=NO_CENTER,
        )
        return next((c for c in triage(inp) if c.id == "uplink-loss"), None)

    few = uplink(30)
    assert few is not None and few.confidence < 0.5  # 30 clean probes: a 4% LAN loss still 29% likely
    wanted = gateway_probes_wanted(_facts(30, 0, 50, 2), profile)
    enough = uplink(30 + wanted)
    assert enough is not None and enough.confidence >= 0.5 and enough.segment == "uplink"


def test_join_idle_appends_follow_up_samples_to_the_first_idle_series():
    first = latency("gateway", rtts(1.0, n=30))
    loaded = latency("gateway", rtts(3.0, n=10), phase="download")
    more = latency("gateway", rtts(1.2, n=40, lost=1))
    joined = join_idle([first, loaded, more])
    assert [s.phase for s in joined] == ["idle", "download"]
    assert joined[0].stats.sent == 70 and joined[0].stats.received == 69
    assert joined[0].rtts_ms == first.rtts_ms + more.rtts_ms
    assert math.isclose(joined[0].stats.loss_pct, 100 / 70, rel_tol=1e-3)


def test_join_idle_keeps_another_method_apart_and_drops_an_empty_follow_up():
    first = latency("gateway", rtts(1.0, n=30))
    other = latency("gateway", rtts(1.0, n=5), method="udp-echo")
    empty = latency("gateway", (), error="no socket")
    assert join_idle([first, other, empty]) == [first]


def _ctx(targets, measured: ProbeOutput) -> ProbeContext:
    site = Site(School(), "default", (Classroom("c", 1, "default"),), None, None, (), (), ())
    return ProbeContext(
        site=site,
        settings=ProbeSettings(latency_timeout_s=0.5),
        targets=targets,
        servers={},
        host={},
        resolvers={},
        profiles={"default": default_profile()},
        measured=measured,
    )


@root
def test_follow_up_sends_the_wanted_probes_to_the_gateway_by_its_method():
    gw = Target("gateway", "gateway", "127.0.0.1")
    internet = Target("internet", "internet", "127.0.0.2")
    so_far = ProbeOutput(
        latency=[
            latency("gateway", rtts(0.05, n=30), method="icmp"),
            latency("internet", rtts(0.05, n=50, lost=2), method="icmp"),
        ]
    )
    out = LossPlacementProbe().run(_ctx([gw, internet], so_far))
    assert out.status == "ok"
    (series,) = out.latency
    assert (series.target, series.phase, series.method) == ("gateway", "idle", "icmp")
    assert series.stats.sent == 44 and series.stats.received == 44  # loopback loses nothing
    joined = join_idle(so_far.latency + out.latency)
    assert joined[0].stats.sent == 74


def test_follow_up_does_nothing_without_loss_beyond():
    gw = Target("gateway", "gateway", "127.0.0.1")
    internet = Target("internet", "internet", "127.0.0.2")
    so_far = ProbeOutput(latency=[latency("gateway", rtts(0.05, n=30)), latency("internet", rtts(0.05, n=50))])
    out = LossPlacementProbe().run(_ctx([gw, internet], so_far))
    assert out.status == "ok" and out.latency == []


def test_follow_up_is_bounded():
    assert FOLLOW_UP_MAX >= probes_to_rule_out(0.01)  # a LAN losing 1% (the profile's limit) can be ruled out
