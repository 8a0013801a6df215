"""The load probe in the lab: a session cap at the gateway shows as connection errors that start
at the cap's concurrency. ``probe load`` runs inside the client namespace against the center."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.lab


def _probe_load(lab, tmp_path: Path, load: dict, timeout: float = 120) -> dict:
    site = yaml.safe_load(Path(lab.site_file).read_text(encoding="utf-8"))
    site["load"] = {"target": "center", **load}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site), encoding="utf-8")
    out = tmp_path / "load.json"
    proc = lab.run("client", [sys.executable, "-m", "giga_netcheck", "probe", "load", "--site", str(path), "--json", str(out),
                              "--lang", "en", "--no-progress"], timeout=timeout)
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
    load = _probe_load(lab, tmp_path, {"activity": "video", "bitrate_mbps": 2.5, "devices": 10, "steps": 4, "max_factor": 2.0, "step_s": 6})
    assert load["bufferbloat"]["grade"] in ("D", "F"), load["bufferbloat"]
    assert load["responsiveness"]["rating"] in ("poor", "fair")
    link = tools.path_goodput_mbit(lab.scenario, "center")
    fit = link / 2.5  # devices whose video the link carries: 7.7
    counts = [s["devices"] for s in load["steps"]]
    step = max(b - a for a, b in zip(counts, counts[1:]))
    knee = load["knee"]["devices"]
    assert abs(knee - fit) <= step, (knee, fit, [(s["devices"], s["met_share"]) for s in load["steps"]])
    assert all(sum(s["errors"].values()) == 0 for s in load["steps"])  # a queue, not a session cap
