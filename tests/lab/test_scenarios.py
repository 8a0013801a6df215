"""The scenario catalogue and what it compiles to (pure: no root, not marked ``lab``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.lab import impair, test_lab_scenarios
from tests.lab.scenarios import BASE, NOT_IN_LAB, Direction, ScenarioError, get_scenario, load_scenarios
from tests.lab.stats import binomial_bounds, binomial_pmf, combined_loss
from tests.lab.tools import expected_goodput_mbit, path_goodput_mbit

VOCABULARY = {
    # domain.md section 5: id -> segment(s) a scenario may name
    "lan-capacity": {"lan"},
    "lan-loss": {"lan"},
    "uplink-capacity": {"uplink"},
    "uplink-loss": {"uplink"},
    "bufferbloat": {"lan", "uplink", "center", "internet"},
    "center-capacity": {"center"},
    "proxy-overhead": {"center"},
    "session-limit": {"gateway", "center"},
    "per-flow-limit": {"device", "lan", "gateway", "uplink", "center", "internet"},
    "high-latency": {"center", "internet"},
    "dns-slow": {"dns"},
    "dns-failure": {"dns"},
    "ipv4-congestion": {"uplink"},
    "peak-congestion": {"uplink"},
    "no-connectivity": {"device", "lan", "gateway", "uplink", "center", "internet", "dns"},
    "measuring-device": {"device"},
}

SCENARIOS = load_scenarios()


def test_every_cause_has_a_scenario_or_a_reason() -> None:
    produced = {s.cause for s in SCENARIOS.values() if s.cause}
    assert produced.isdisjoint(NOT_IN_LAB)
    assert produced | set(NOT_IN_LAB) == set(VOCABULARY)


@pytest.mark.parametrize("name", [n for n in SCENARIOS if n != BASE])
def test_scenario_names_its_cause_and_segment(name: str) -> None:
    scenario = SCENARIOS[name]
    assert scenario.cause == name, "one scenario per cause, named after it"
    assert scenario.segment in VOCABULARY[scenario.cause]
    assert scenario.description


def test_every_scenario_has_a_lab_test() -> None:
    for name in SCENARIOS:
        assert hasattr(test_lab_scenarios, f"test_{name.replace('-', '_')}"), f"no lab test for {name}"


def test_healthy_is_the_default_path() -> None:
    healthy = SCENARIOS[BASE]
    assert healthy.cause is None
    assert healthy.link("lan").down.rate_mbit == 1000 and not healthy.link("lan").uses_tun
    uplink = healthy.link("uplink")
    assert uplink.uses_tun and uplink.down.rate_mbit == 300 and uplink.up.rate_mbit == 300
    assert healthy.base_rtt_ms("center") == 30 and healthy.base_rtt_ms("internet") == 30
    assert healthy.link("upstream").down.rate_mbit is None


def test_scenarios_are_deltas_over_healthy() -> None:
    healthy, lan = SCENARIOS[BASE], SCENARIOS["lan-capacity"]
    assert lan.link("lan").down.rate_mbit == 100 and lan.link("lan").up.rate_mbit == 100
    assert lan.link("uplink") == healthy.link("uplink")
    assert lan.dns == healthy.dns
    # The lossy LAN turns into a TUN link (loss must hit single packets) and keeps its rate.
    lossy = SCENARIOS["lan-loss"].link("lan")
    assert lossy.uses_tun and lossy.down.rate_mbit == 1000 and lossy.down.loss_pct == 3


def test_unknown_keys_name_their_path(tmp_path: Path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text("healthy: {}\nlan-capacity:\n  links:\n    lan:\n      both: {rate_mbt: 100}\n")
    with pytest.raises(ScenarioError, match=r"lan-capacity\.links\.lan\.both\.rate_mbt"):
        load_scenarios(bad)
    bad.write_text("healthy: {}\nx:\n  hosts: {gateway: {session_limit: 0}}\n")
    with pytest.raises(ScenarioError, match=r"x\.hosts\.gateway\.session_limit"):
        load_scenarios(bad)
    bad.write_text("healthy: {}\nx:\n  links: {lan: {kind: veth, both: {delay_ms: 5}}}\n")
    with pytest.raises(ScenarioError, match="veth cannot"):
        load_scenarios(bad)
    with pytest.raises(KeyError, match="known"):
        get_scenario("no-such-scenario")


def test_null_removes_a_setting(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("healthy: {links: {uplink: {both: {rate_mbit: 300}}}}\nfree: {links: {uplink: {down: {rate_mbit: null}}}}\n")
    free = load_scenarios(path)["free"]
    assert free.link("uplink").down.rate_mbit is None and free.link("uplink").up.rate_mbit == 300


def test_tbf_queue_and_burst() -> None:
    d = SCENARIOS["bufferbloat"].direction("uplink", "down")
    args = impair.tbf_args(d)
    # 20 Mbit/s: 2500 B per ms; burst is the 32 KiB floor; limit = 300 ms of queue + burst.
    assert args == f"rate 20000000bit burst {32 * 1024} limit {300 * 2500 + 32 * 1024}"


def test_shapers_sit_where_queues_can_fill() -> None:
    lines = impair.tc_lines(SCENARIOS["bufferbloat"])
    # TUN uplink: the downlink shaper is on the gateway's ingress (through an ifb), the uplink
    # shaper on the center's, so local senders in the center cannot hide behind TSQ.
    assert any("ifb-uplink root tbf rate 20000000bit" in line for line in lines["gateway"])
    assert any("ifb-uplink root tbf rate 20000000bit" in line for line in lines["center"])
    assert impair.ip_lines(SCENARIOS["bufferbloat"])["gateway"][0] == "link add name ifb-uplink type ifb"
    # veth LAN: on each sender's egress.
    assert "qdisc replace dev lan root tbf rate 1000000000bit" in lines["client"][0]
    assert "qdisc replace dev lan root tbf rate 1000000000bit" in lines["gateway"][0]


def test_loss_goes_to_the_receivers_raw_prerouting() -> None:
    rules = impair.iptables_rules(SCENARIOS["uplink-loss"])
    for receiver in ("gateway", "center"):
        assert "*raw" in rules[receiver]
        assert "-A PREROUTING -i uplink -m statistic --mode random --probability 0.020000 -j DROP" in rules[receiver]
    assert "client" not in rules


def test_session_limit_rule() -> None:
    rules = impair.iptables_rules(SCENARIOS["session-limit"])
    assert ("-A FORWARD -p tcp --syn -m connlimit --connlimit-above 40 --connlimit-mask 0 -j REJECT --reject-with tcp-reset") in rules[
        "gateway"
    ]


def test_per_flow_shaper() -> None:
    scenario = SCENARIOS["per-flow-limit"]
    lines = impair.tc_lines(scenario)["center"]
    flows = [ln for ln in lines if ln.startswith("class add dev uplink parent 1:1 classid 1:1")]
    assert len(flows) == impair.FLOW_BUCKETS
    assert all("rate 20000000bit ceil 20000000bit" in ln for ln in flows)
    rules = impair.iptables_rules(scenario)["center"]
    assert "HMARK" in rules and rules.count("CLASSIFY --set-class") == impair.FLOW_BUCKETS


def test_cut_link() -> None:
    assert impair.down_lines(SCENARIOS["no-connectivity"]) == {"center": ["link set dev uplink down"]}
    assert impair.down_lines(SCENARIOS[BASE]) == {}


def test_expected_goodput() -> None:
    assert expected_goodput_mbit(100, tun=False) == pytest.approx(95.64, abs=0.01)
    assert expected_goodput_mbit(300, tun=True) == pytest.approx(289.6, abs=0.01)
    assert path_goodput_mbit(SCENARIOS["center-capacity"], "internet") == pytest.approx(47.82, abs=0.01)
    assert path_goodput_mbit(SCENARIOS["center-capacity"], "center") == pytest.approx(289.6, abs=0.01)
    uncapped = dataclasses.replace(
        SCENARIOS[BASE], links={**SCENARIOS[BASE].links, "lan": dataclasses.replace(SCENARIOS[BASE].link("lan"), down=Direction())}
    )
    assert path_goodput_mbit(uncapped, "gateway") is None


@pytest.mark.parametrize("n,p", [(400, 0.0591), (60, 0.3), (100, 0.5), (50, 0.0)])
def test_binomial_bounds_hold_their_mass(n: int, p: float) -> None:
    alpha = 1e-3
    lo, hi = binomial_bounds(n, p, alpha=alpha)
    below = sum(binomial_pmf(k, n, p) for k in range(lo))
    above = sum(binomial_pmf(k, n, p) for k in range(hi + 1, n + 1))
    assert below <= alpha / 2 and above <= alpha / 2
    # Tight: one more count on either side would already put more than alpha/2 outside.
    assert lo == 0 or below + binomial_pmf(lo, n, p) > alpha / 2
    assert hi == n or above + binomial_pmf(hi, n, p) > alpha / 2
    assert lo <= n * p <= hi


def test_combined_loss() -> None:
    assert combined_loss(0.03, 0.03) == pytest.approx(0.0591)
    assert combined_loss() == 0.0
