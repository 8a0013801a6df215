"""The load probe in ``run`` and in ``probe load``: which servers it loads, the caps, the JSON section."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from giga_netcheck.config.site import load_site
from giga_netcheck.core.models import LoadSupports, to_dict
from giga_netcheck.core.reference import shipped_profiles_dir
from giga_netcheck.core.results import load as load_result
from giga_netcheck.measure.probes.base import ProbeContext
from giga_netcheck.measure.probes.load import LoadProbe, make_plan
from giga_netcheck.measure.runner import load_profiles, run
from giga_netcheck.render.html import load_ramp
from tests.conftest import loopback_site

DOCS = Path(__file__).resolve().parent.parent / "docs" / "load.md"
_EXAMPLE = json.loads(re.search(r"```json\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S).group(1))
DOCUMENTED_KEYS = list(_EXAMPLE)
"""The ``load`` section's keys in the order docs/load.md shows them (the shape saved results have)."""
DOCUMENTED_STEP_KEYS = list(_EXAMPLE["steps"][0])

FAST_LOAD = {"devices": 4, "steps": 2, "step_s": 1, "max_factor": 1.5, "activity": "video", "bitrate_mbps": 1.0, "segment_s": 0.4}


def _ctx(site, servers, targets=None, profiles=True):
    targets = targets if targets is not None else site.targets(None)
    return ProbeContext(
        site=site,
        settings=site.probes,
        targets=targets,
        servers=servers,
        host={},
        resolvers={},
        profiles=load_profiles(site) if profiles else {},
    )


def test_loads_only_verified_servers_or_confirmed_urls(write_site):
    url = "http://127.0.0.1:9"
    site = load_site(write_site(loopback_site(url, load={})))
    assert "no giga-netcheck measurement server" in str(LoadProbe().check(_ctx(site, servers={})))
    assert LoadProbe().check(_ctx(site, servers={"internet": {"service": "giga-netcheck"}})) is None
    half = load_site(write_site(loopback_site(url, load={"allow_unverified": [url]})))
    assert "i_run_this_server" in str(LoadProbe().check(_ctx(half, servers={})))
    both = load_site(write_site(loopback_site(url, load={"allow_unverified": [url], "i_run_this_server": True})))
    assert LoadProbe().check(_ctx(both, servers={})) is None
    off = load_site(write_site(loopback_site(url)))  # the fixture turns it off
    assert "load.enabled: false" in str(LoadProbe().check(_ctx(off, servers={"internet": {}})))
    wrong = load_site(write_site(loopback_site(url, load={"target": "center"})))
    why = str(LoadProbe().check(_ctx(wrong, servers={"internet": {}})))
    assert "load.target" in why and "'center'" in why


def test_plan_caps_and_classroom(write_site):
    site = load_site(write_site(loopback_site("http://127.0.0.1:9", load={"max_devices": 50})))
    plan, _ = make_plan(_ctx(site, servers={"internet": {"udp_echo_port": 9}}), site.load, quick=False)
    # the largest classroom: PC room, 40 devices on video-lesson -> a video call; ramp to 1.5 x, capped at 50
    assert plan.needed == 40 and plan.activity.kind == "video-call" and max(plan.counts) == 50
    assert plan.caps().max_devices == 50 and plan.ramp_target.udp_port == 9
    quick, _ = make_plan(_ctx(site, servers={"internet": {}}), site.load, quick=True)
    assert len(quick.counts) == 3 and quick.step_s <= 3.0
    assert "at most" in plan.caps_text()


def _room(write_site, tmp_path, profile, devices=30, profiles=None):
    """A site whose one classroom uses ``profile``; ``profiles`` are written to its profiles_dir."""
    folder = tmp_path / "rooms"
    folder.mkdir(exist_ok=True)
    for name, data in (profiles or {}).items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    doc = loopback_site("http://127.0.0.1:9", load={})
    doc["profiles_dir"] = str(folder)
    doc["classrooms"] = [{"name": "gym", "devices": devices, "profile": profile}]
    return load_site(write_site(doc))


def test_a_custom_profile_gets_the_activity_it_declares(write_site, tmp_path):
    site = _room(write_site, tmp_path, "gym", profiles={"gym": {"extends": "default", "load": {"activity": "textbook"}}})
    plan, why = make_plan(_ctx(site, servers={"internet": {}}), site.load, quick=False)
    assert why is None and plan.activity.kind == "textbook" and plan.profile == "gym"
    # the probe finds the profile the way the run does when it is not handed over
    plan, _ = make_plan(_ctx(site, servers={"internet": {}}, profiles=False), site.load, quick=False)
    assert plan.activity.kind == "textbook"


def test_a_mixed_classroom_is_emulated_as_its_largest_part(write_site, tmp_path):
    site = _room(write_site, tmp_path, "web-apps*5+video-720p*25")
    plan, _ = make_plan(_ctx(site, servers={"internet": {}}), site.load, quick=False)
    assert plan.activity.kind == "video" and plan.profile == "video-720p" and plan.needed == 30


def test_a_profile_without_an_activity_is_skipped_with_the_reason(write_site, tmp_path):
    raw = yaml.safe_load((shipped_profiles_dir() / "default.yaml").read_text(encoding="utf-8"))
    raw.pop("load")
    site = _room(write_site, tmp_path, "bare", profiles={"bare": raw})
    why = LoadProbe().check(_ctx(site, servers={"internet": {}}))
    assert why is not None and why.key == "reason.load_no_activity" and "'bare'" in str(why)
    assert make_plan(_ctx(site, servers={"internet": {}}), site.load, quick=False)[0] is None
    named = dataclasses.replace(site, load=dataclasses.replace(site.load, activity="web-apps"))
    assert LoadProbe().check(_ctx(named, servers={"internet": {}})) is None  # the site file may name it


def test_run_carries_the_load_section(server, write_site, tmp_path):
    site = load_site(write_site(loopback_site(server.url, load=FAST_LOAD)))
    result = run(site, host={"gateway_ipv4": "127.0.0.1"})
    rec = {p.probe: p for p in result.probes}["load"]
    assert rec.status == "ok", rec
    load = result.measurements.load
    assert load.format == 1 and load.target == "internet" and load.verified_server is True
    assert [s.devices for s in load.steps] == [3, 6]
    assert all(s.met_share == 1.0 for s in load.steps)
    assert load.knee.devices == 6 and load.supports == LoadSupports(
        devices=6, needed=4, enough=True, at_least=True, first_failing_devices=None
    )
    assert load.responsiveness.rpm > 0 and load.bufferbloat.grade in ("A+", "A")
    hops = {h.target for h in load.steps[0].latency}
    assert hops == {"gateway", "internet"}
    assert load_ramp(load) is not None  # the HTML report charts it
    # saved and loaded again unchanged, in the documented JSON shape
    from giga_netcheck.core.results import dumps, write_atomic

    path = write_atomic(tmp_path / "r.json", dumps(result))
    assert load_result(path).measurements.load == load
    doc = json.loads(path.read_text(encoding="utf-8"))["measurements"]["load"]
    assert list(doc) == DOCUMENTED_KEYS and list(doc["steps"][0]) == DOCUMENTED_STEP_KEYS
    assert doc == to_dict(load)


def test_probe_load_command(server, write_site, tmp_path):
    site = write_site(loopback_site(server.url, load=FAST_LOAD))
    out = tmp_path / "load.json"
    proc = subprocess.run(
        [sys.executable, "-m", "giga_netcheck", "probe", "load", "--site", str(site), "--json", str(out), "--lang", "en", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "at most" in proc.stderr and "up to the 6 devices tried" in proc.stdout  # load.supports_at_least, reworded (issue 15)
    assert json.loads(out.read_text())["knee"]["devices"] == 6


def test_cbt_classroom_ramps_cbt_items(server, write_site):
    # a classroom sitting MEXCBT: the profile picks the CBT activity; the step is long enough for one item
    doc = loopback_site(server.url, load={"devices": 3, "steps": 1, "step_s": 1, "max_factor": 1.0})
    doc["classrooms"] = [{"name": "6-1", "devices": 3, "profile": "cbt"}]
    site = load_site(write_site(doc))
    plan, _ = make_plan(_ctx(site, servers={"internet": {}}), site.load, quick=False)
    assert plan.activity.kind == "cbt" and plan.step_s >= 4.0
    result = run(site, host={"gateway_ipv4": "127.0.0.1"})
    load = result.measurements.load
    s = load.steps[0]
    assert load.activity_kind == "cbt" and s.met_share == 1.0 and s.judged == 3
    assert s.activity["items"] >= 3 and s.activity["late_items"] == 0 and s.up_mbps > 0


def test_ctrl_c_stops_probe_load_within_a_second_and_keeps_the_steps(server, write_site, tmp_path):
    import os
    import signal
    import time

    load = {**FAST_LOAD, "devices": 8, "steps": 2, "step_s": 30, "max_factor": 1.0}  # 4 then 8 devices, 30 s each
    site = write_site(loopback_site(server.url, load=load))
    out = tmp_path / "load.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "giga_netcheck", "probe", "load", "--site", str(site), "--json", str(out), "--lang", "en"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # the first step is cut short: wait until its devices hold their connections
        deadline = time.monotonic() + 20
        while server.server._connections < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.server._connections >= 4
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        while server.server._connections and time.monotonic() - t0 < 1.0:
            time.sleep(0.01)
        stopped_s = time.monotonic() - t0
        assert server.server._connections == 0, "a device still holds a connection a second after Ctrl-C"
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert stopped_s < 1.0
    doc = json.loads(out.read_text())
    assert doc["stopped"] == "interrupted" and len(doc["steps"]) == 1
    step = doc["steps"][0]
    assert step["devices"] == 4 and step["complete"] is False and step["bytes"] > 0
    assert "4 *" in stdout and "interrupted" in stdout  # the cut step is shown, marked, with why it stopped
