"""Path discovery in the lab: a site file that names neither the gateway nor the center.

The lab's routers are Linux namespaces that answer TTL-limited probes with ICMP time exceeded,
so the traceroute must find gateway (198.18.1.1), center (198.18.2.2) and internet (198.18.3.2)
in that order; it must fall back to UDP and then TCP where the target drops the probe kinds
before them; and the hops it finds must localise a queue and loss as the named targets do.
Every run is `giga-netcheck run` inside the client namespace (traffic stays in 198.18.0.0/15).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lab import physics
from tests.lab.netlab import Lab
from tests.lab.topology import ADDRESSES

pytestmark = pytest.mark.lab

PATH = [ADDRESSES["gateway"], ADDRESSES["center"], ADDRESSES["internet"]]


def run_without_hops(lab: Lab, *, quick: bool = True, bandwidth: bool = True) -> dict[str, Any]:
    """`run` with the lab's site file minus `gateway` and `center`; the JSON result."""
    doc = yaml.safe_load(lab.site_file.read_text())
    doc["targets"] = {"internet": doc["targets"]["internet"]}
    if not bandwidth:
        doc["probes"] = {"bandwidth": {"enabled": False}}
        doc["load"] = {"enabled": False}
    site = lab.workdir / "site-no-hops.yaml"
    site.write_text(yaml.safe_dump(doc))
    with tempfile.TemporaryDirectory(prefix="gnc-path-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            "-m",
            "giga_netcheck",
            "run",
            "--site",
            str(site),
            "--json",
            str(out),
            "--out",
            tmp,
            "--no-progress",
            "--lang",
            "en",
            *(("--quick",) if quick else ()),
        ]
        proc = lab.run("client", cmd, timeout=180)
        assert out.exists(), f"no result (exit {proc.returncode}): {proc.stderr[-800:]}"
        return json.loads(out.read_text())


def the_path(doc: dict[str, Any]) -> dict[str, Any]:
    (p,) = doc["measurements"]["paths"]
    return p


def test_discovered_path_is_gateway_center_internet_with_per_hop_rtt(lab):
    doc = run_without_hops(lab)
    p = the_path(doc)
    assert p["reached"] and p["method"] == "icmp", p["attempts"]
    assert [h["address"] for h in p["hops"]] == PATH
    # the OS's default gateway is the first hop: it keeps its name; the center is a discovered hop
    assert [h["name"] for h in p["hops"]] == ["gateway", "hop-2", "internet"]
    hop2 = p["hops"][1]
    assert hop2["role"] == "hop" and hop2["reply"] == "time-exceeded"
    # 15 ms each way on the uplink: the center answers in 30 ms, idle, by echo straight to it
    base = lab.scenario.base_rtt_ms("center")
    assert hop2["idle"]["received"] >= 25 and hop2["idle"]["p50_ms"] == pytest.approx(base, abs=1.5), hop2["idle"]
    # The forwarders hold every packet its delay, so no round trip is shorter than the base RTT
    # (1.5 ms for clocks and ping's rounding). One is longer when a busy host descheduled the
    # tracer between stamping a probe and sending it (answers carry the kernel's receive time):
    # of the three rounds, the quickest reads the path itself.
    answered = [r for r in hop2["trace_rtts_ms"] if r is not None]
    assert answered and base - 1.5 <= min(answered) <= base + 3.0, hop2["trace_rtts_ms"]
    # sampled under load too, and the healthy path's queue stays short: the uplink's shaper holds
    # at most its 20 ms queue and one bucket (physics.drain_ms, 21 ms) each way, under the 30 ms
    # where grade A ends; the rest is room for a busy host.
    uplink = lab.scenario.link("uplink")
    assert max(physics.drain_ms(uplink.up), physics.drain_ms(uplink.down)) < 30
    assert hop2["loaded"] is not None and hop2["loaded"]["received"] >= 3
    assert hop2["loaded"]["p50_ms"] - hop2["idle"]["p50_ms"] < 30, (hop2["idle"], hop2["loaded"])
    assert not [c for c in doc["causes"] if c["confidence"] >= 0.5]
    assert "path" not in {n.split(":")[0] for n in doc["not_measured"]}


ECHO = ["-p", "icmp", "--icmp-type", "echo-request"]
UDP = ["-p", "udp", "--dport", "33434:33690"]


@pytest.mark.parametrize("rules, method", [([ECHO], "udp"), ([ECHO, UDP], "tcp")], ids=["no-echo", "no-echo-no-udp"])
def test_falls_back_to_what_the_target_lets_through(lab, rules, method):
    for r in rules:  # the internet host drops these probe kinds (its namespace goes with the lab)
        lab.run("internet", ["iptables", "-I", "INPUT", *r, "-j", "DROP"], check=True)
    p = the_path(run_without_hops(lab, bandwidth=False))
    assert p["reached"] and p["method"] == method, p["attempts"]
    assert [h["address"] for h in p["hops"]] == PATH
    assert p["attempts"][0].startswith("icmp: not reached")


@pytest.mark.parametrize("lab", ["bufferbloat"], indirect=True)
def test_queue_is_placed_before_the_first_discovered_hop_that_inflates(lab):
    doc = run_without_hops(lab)
    top = max(doc["causes"], key=lambda c: c["confidence"])
    assert (top["id"], top["segment"]) == ("bufferbloat", "uplink"), doc["causes"]
    ev = {e["metric"]: e for e in top["evidence"]}
    assert ev["rtt_increase_ms"]["target"] == "hop-2"  # the center, found by the traceroute
    assert ev["hop_ttl"]["value"] == 2 and ev["hop_ttl"]["note_key"] == "evidence.queue_before_hop"


@pytest.mark.parametrize("lab", ["uplink-loss"], indirect=True)
def test_loss_is_placed_where_it_starts_on_the_discovered_path(lab):
    # Triage claims uplink loss firmly only when the gateway's clean sample rules out a LAN losing
    # at the rate seen beyond it (binomial, 5%). A quick run's 30 gateway probes cannot do that for
    # a line losing 2% each way (0.96^30 = 0.29): the run's loss-placement step must send the
    # probes that can, by itself, with no count given in the site file.
    doc = run_without_hops(lab)
    top = max(doc["causes"], key=lambda c: c["confidence"])
    assert (top["id"], top["segment"]) == ("uplink-loss", "uplink"), doc["causes"]
    first = top["evidence"][0]
    assert first["target"] in ("hop-2", "internet")
    if first["target"] == "hop-2":
        assert first["note_key"] == "evidence.loss_starts_at_hop"
