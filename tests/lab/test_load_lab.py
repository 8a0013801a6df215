"""The load probe in the lab: a session cap at the gateway shows as connection errors that start
at the cap's concurrency; a narrow uplink and a deep queue give a knee within one ramp step of
devices x bitrate = the link's goodput. ``probe load`` runs inside the client namespace against
the center."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.lab import physics

pytestmark = pytest.mark.lab


def _probe_load(lab, tmp_path: Path, load: dict, timeout: float = 120) -> dict:
    site = yaml.safe_load(Path(lab.site_file).read_text(encoding="utf-8"))
    site["load"] = {"target": "center", **load}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site), encoding="utf-8")
    out = tmp_path / "load.json"
    proc = lab.run(
        "client",
        [sys.executable, "-m", "giga_netcheck", "probe", "load", "--site", str(path), "--json", str(out), "--lang", "en", "--no-progress"],
        timeout=timeout,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.mark.parametrize("lab", ["session-limit"], indirect=True)
def test_session_cap_shows_as_errors_from_its_concurrency(lab, tmp_path):
    # web apps: two connections per device; 5..30 devices = 10..60 connections against a cap of 40
    load = _probe_load(lab, tmp_path, {"activity": "web-apps", "devices": 20, "steps": 6, "max_factor": 1.5, "step_s": 4})
    steps = load["steps"]
    assert [s["connections"] for s in steps] == [10, 20, 30, 40, 50, 60]
    failures = {s["connections"]: sum(s["errors"].values()) for s in steps}
    # one more connection per step is the responsiveness prober's: 40 device connections may
    # just touch the cap, 30 never do, and from 50 on at least the 10 over the cap fail
    assert all(failures[c] == 0 for c in (10, 20, 30)), failures
    assert all(failures[c] >= 10 for c in (50, 60)), failures
    assert all(s["errors"]["refused"] + s["errors"]["reset"] + s["errors"]["timeout"] == sum(s["errors"].values()) for s in steps)
    first = min(c for c, n in failures.items() if n)
    assert 40 <= first <= 50, failures
    # never more than the cap open at once; the knee sits where the errors begin
    assert all(s["peak_open_connections"] <= 41 for s in steps)
    assert load["knee"]["connections"] <= first and load["supports"]["devices"] <= 20
    assert load["knee"]["first_failing_devices"] in (20, 25)


@pytest.mark.parametrize("lab", ["bufferbloat"], indirect=True)
def test_deep_queue_grades_d_or_f_and_the_knee_meets_the_link(lab, tmp_path):
    from tests.lab import tools

    # video at 2.5 Mbit/s through a 20 Mbit/s uplink with a 300 ms FIFO: 5, 10, 15, 20 devices (up to 2.5 x the link)
    load = _probe_load(lab, tmp_path, {"activity": "video", "bitrate_mbps": 2.5, "devices": 10, "steps": 4, "max_factor": 2.0, "step_s": 9})
    # Grade D is a rise of 200 ms or more. Past the link (20 devices, each a greedy flow once its
    # player falls behind) a loss cuts one flow's window of twenty, so the queue stays within a
    # fortieth of full: physics.queue_floor_ms says >= 304 ms of the 313 it holds. The rise is the
    # median of a step's last three quarters; 9 s steps leave that well past slow start (with 6 s
    # it once read 196.6 ms, grade C).
    down = lab.scenario.direction("uplink", "down")
    top = load["steps"][-1]["devices"]
    floor = physics.queue_floor_ms(down, lab.scenario.base_rtt_ms("center"), flows=top, keep=physics.keep_factor(lab.congestion_control))
    assert floor >= 200, f"by its own numbers the scenario need not grade D: {floor:.0f} ms with {top} flows"
    assert load["bufferbloat"]["grade"] in ("D", "F"), load["bufferbloat"]
    assert load["responsiveness"]["rating"] in ("poor", "fair")
    _assert_knee_meets_the_link(load, tools.path_goodput_mbit(lab.scenario, "center"), 2.5)  # the link carries 7.7 devices
    assert all(sum(s["errors"].values()) == 0 for s in load["steps"])  # a queue, not a session cap


@pytest.mark.parametrize("lab", ["uplink-capacity"], indirect=True)
def test_narrow_uplink_gives_the_knee_where_devices_times_bitrate_meets_the_link(lab, tmp_path):
    from tests.lab import tools

    # 2.5 Mbit/s video through a 50 Mbit/s uplink with a short queue (48.3 Mbit/s of TCP payload, so
    # 19.3 devices): 5, 10, ... 30 devices
    load = _probe_load(lab, tmp_path, {"activity": "video", "bitrate_mbps": 2.5, "devices": 20, "steps": 6, "max_factor": 1.5, "step_s": 8})
    assert [s["devices"] for s in load["steps"]] == [5, 10, 15, 20, 25, 30]
    _assert_knee_meets_the_link(load, tools.path_goodput_mbit(lab.scenario, "center"), 2.5)
    assert all(sum(s["errors"].values()) == 0 for s in load["steps"])
    # the link, not the client, is what fills: the failing steps move what the link carries
    link = tools.path_goodput_mbit(lab.scenario, "center")
    full = [s for s in load["steps"] if s["devices"] * 2.5 > link]
    assert all(max(s["samples_mbps"]) >= 0.95 * link for s in full), [(s["devices"], max(s["samples_mbps"])) for s in full]


def _assert_knee_meets_the_link(load: dict, link_mbps: float, bitrate_mbps: float) -> None:
    """Within one ramp step of devices x bitrate = link: the knee is at most a step from the fit,
    the ramp reached a failing step, and every step a step or more below the fit carried.

    (A step only just over the link can still pass: a player asks for each segment one segment
    ahead, so 3% too little bandwidth takes longer than a short step to eat that slack.)"""
    fit = link_mbps / bitrate_mbps
    counts = [s["devices"] for s in load["steps"]]
    step = max(b - a for a, b in zip(counts, counts[1:]))
    shares = [(s["devices"], s["met_share"]) for s in load["steps"]]
    knee, failing = load["knee"]["devices"], load["knee"]["first_failing_devices"]
    assert abs(knee - fit) <= step, (knee, fit, shares)
    assert failing is not None and failing > fit, (failing, fit, shares)
    assert all(share >= 0.95 for n, share in shares if n <= fit - step), shares
