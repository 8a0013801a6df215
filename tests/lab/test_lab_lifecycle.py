"""The lab itself: quick to build, always torn down, nothing left behind, serve optional."""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import pytest
import yaml

from tests.lab import cleanup, impair, services, tools
from tests.lab.netlab import ETC_NETNS, STATE_ROOT, Lab, LabError
from tests.lab.netns import netns_list, process_start
from tests.lab.scenarios import get_scenario, load_scenarios
from tests.lab.topology import ADDRESSES, LINKS, NS_PREFIX

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
UP_DOWN_LIMIT_S = 5.0
"""Bringing a scenario up and down takes under 5 s on an idle host (issue 3): a bound on the lab,
not a benchmark. Most of it is CPU work (Python starting serve, the resolvers and the
forwarders), so on a shared host it stretches by how much longer CPU work takes there right now
(:func:`cpu_stretch`): the bound is 5 s times that. An idle host keeps the plain 5 s, so a lab
that got slower still fails."""
FORWARDER_MIN_MBIT = 300.0
"""The delay forwarder must carry the healthy uplink's 300 Mbit/s of TCP."""


def cpu_stretch(cpu_s: float = 0.2) -> float:
    """How many times longer than its CPU time a fixed piece of CPU work takes right now: 1 with
    a core to spare, about (runnable tasks / cores) when other work shares the host."""
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    while time.thread_time() - cpu0 < cpu_s:
        sum(range(1000))
    return max(1.0, (time.perf_counter() - wall0) / (time.thread_time() - cpu0))


def up_down_bound(stretches: list[float]) -> float:
    """UP_DOWN_LIMIT_S stretched by the worst CPU stretch seen around the cycles."""
    return UP_DOWN_LIMIT_S * max(stretches)


def netns_keys(lab: Lab) -> set[tuple[int, int]]:
    keys = set()
    for name in lab.namespaces.values():
        st = os.stat(f"/run/netns/{name}")
        keys.add((st.st_dev, st.st_ino))
    return keys


def processes_in(keys: set[tuple[int, int]]) -> list[int]:
    """Processes still inside namespaces that were the lab's (even after their names are gone)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                st = os.stat(f"/proc/{entry}/ns/net")
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in keys:
                found.append(int(entry))
    return found


def my_children() -> set[tuple[int, str]]:
    """This process's children (zombies included), with their state letter."""
    children = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid():
                children.add((int(entry), fields[0]))
    return children


def root_links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return sorted(line.split(":")[1].strip() for line in out.splitlines())


LAB_LINK = re.compile(rf"^({'|'.join(lk.name for lk in LINKS)}|ifb-.*)(@.*)?$")
"""Interface names the lab makes (the links, their ifb devices); only inside its namespaces."""


def root_lab_links() -> list[str]:
    """Interfaces of the lab's names in the root namespace: there must never be any. (Other
    interfaces come and go with whatever else runs on the host and are none of the lab's.)"""
    return [name for name in root_links() if LAB_LINK.match(name)]


def assert_gone(lab: Lab, keys: set[tuple[int, int]]) -> None:
    assert not netns_list(lab.prefix), "namespaces left"
    assert not processes_in(keys), "processes left in the lab's namespaces"
    assert not (STATE_ROOT / lab.run_id).exists()
    assert not any((ETC_NETNS / name).exists() for name in lab.namespaces.values())


def test_up_and_down_within_five_seconds() -> None:
    def take() -> tuple[Lab, float, float]:
        before = cpu_stretch()
        lab = Lab("healthy")
        start = time.perf_counter()
        lab.up()
        lab.down()
        total = time.perf_counter() - start
        return lab, total, up_down_bound([before, cpu_stretch()])

    def judge(v: tuple[Lab, float, float]) -> Optional[str]:
        lab, total, bound = v
        if lab.serve_errors:
            return f"serve did not start: {lab.serve_errors}"
        return None if total < bound else f"up {lab.timings['up_s']:.2f} s + down {lab.timings['down_s']:.2f} s, bound {bound:.2f} s"

    lab, total, bound = tools.measured("up and down of healthy", take, judge)
    print(
        f"\nhealthy with serve: up {lab.timings['up_s']:.2f} s, down {lab.timings['down_s']:.2f} s, total {total:.2f} s (bound {bound:.2f} s)"
    )


def test_cycles_leave_nothing_behind() -> None:
    # a leak shows after one cycle; eight cycles through eight scenarios (their services differ)
    # show it whatever the scenario
    names = list(load_scenarios())
    before_children = my_children()
    seen_keys: set[tuple[int, int]] = set()
    prefixes = []
    durations = []
    stretches = [cpu_stretch()]
    cycles = 8
    for i in range(cycles):
        lab = Lab(names[i % len(names)])
        start = time.perf_counter()
        lab.up()
        seen_keys |= netns_keys(lab)
        prefixes.append(lab.prefix)
        lab.down()
        durations.append(time.perf_counter() - start)
        stretches.append(cpu_stretch(0.05))
    bound = up_down_bound(stretches)
    typical = statistics.median(durations)
    print(f"\n{cycles} cycles: up+down median {typical:.2f} s, max {max(durations):.2f} s (bound {bound:.2f} s)")
    # Nothing of these labs is left, whatever other runs beside this one do meanwhile.
    assert not [n for n in netns_list() if n.startswith(tuple(prefixes))], "namespaces left"
    assert not root_lab_links(), "lab interfaces in the root namespace"
    assert my_children() == before_children, "children (or zombies) left"
    assert not processes_in(seen_keys)
    # The typical cycle: one slow cycle while the host is busy says nothing about the lab.
    assert typical < bound


def test_error_inside_the_block_tears_down() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with Lab("lan-loss", serve=False) as lab:
            keys = netns_keys(lab)
            raise RuntimeError("boom")
    assert_gone(lab, keys)


def test_failed_build_tears_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(impair, "tc_lines", lambda scenario: {"gateway": ["qdisc add dev lan root no-such-qdisc"]})
    lab = Lab("healthy", serve=False)
    with pytest.raises(LabError, match="no-such-qdisc"):
        lab.up()
    assert lab.state == "down"
    assert not netns_list(lab.prefix)
    assert not (STATE_ROOT / lab.run_id).exists()


def test_a_taken_run_id_is_refused_and_harms_nothing(lab_factory: Callable[..., Lab]) -> None:
    first = lab_factory("healthy", serve=False)
    with pytest.raises(LabError, match="already exist"):
        Lab("healthy", run_id=first.run_id, serve=False).up()
    assert len(netns_list(first.prefix)) == 4
    assert tools.ping(first, "client", first.addr("center"), count=2).received == 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_tears_down(sig: signal.Signals) -> None:
    code = (
        "import time; from tests.lab.netlab import Lab; lab = Lab('healthy', serve=False).up(); "
        "print(lab.run_id, flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert run_id, proc.stderr.read() if proc.stderr else ""
        lab = Lab("healthy", run_id=run_id)  # only for its names
        keys = netns_keys(lab)
        proc.send_signal(sig)
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert not netns_list(lab.prefix)
    assert not processes_in(keys)
    assert not (STATE_ROOT / run_id).exists()


def test_down_removes_a_lab_whose_owner_was_killed(lab_factory: Callable[..., Lab]) -> None:
    live = lab_factory("healthy", serve=False)  # a live run's lab beside it: never an orphan
    code = "import time; from tests.lab.netlab import Lab; lab = Lab('uplink-loss').up(); print(lab.run_id, flush=True); time.sleep(60)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    lab = Lab("healthy", run_id=run_id)
    keys = netns_keys(lab)
    proc.kill()  # SIGKILL: no handler runs, everything is left behind
    proc.wait()
    assert len(netns_list(lab.prefix)) == 4 and processes_in(keys)
    records = {r.run_id: r for r in cleanup.find_labs()}
    assert records[run_id].orphaned and not records[live.run_id].orphaned
    # what a test session does before its first lab test (conftest): the killed run's lab goes,
    # the live one stays and still works
    removed = cleanup.clean_orphans()
    assert set(lab.namespaces.values()) <= set(removed) and not set(live.namespaces.values()) & set(removed)
    assert_gone(lab, keys)
    assert len(netns_list(live.prefix)) == 4
    assert tools.ping(live, "client", live.addr("center"), count=2).received == 2


def test_an_owner_is_its_pid_and_its_start_time() -> None:
    me = {"owner_pid": os.getpid(), "owner_start": process_start(os.getpid())}
    assert cleanup.LabRecord("x", [], me).owner_alive
    reused = {**me, "owner_start": me["owner_start"] - 1}  # the same pid, another process: pids wrapped
    assert not cleanup.LabRecord("x", [], reused).owner_alive and cleanup.LabRecord("x", [], reused).orphaned
    assert not cleanup.LabRecord("x", [], {**reused, "detached": True}).orphaned  # a person's lab
    assert not cleanup.LabRecord("x", [], None).orphaned  # no state file: not ours to judge


def test_cli_up_detached_status_shell_down() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tests.lab", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)

    run_id = f"cli{secrets.token_hex(3)}"  # never the same as another run's beside this one
    up = cli("up", "dns-slow", "--detach", "--no-serve", "--run-id", run_id)
    assert up.returncode == 0, up.stderr
    lab = Lab("dns-slow", run_id=run_id)
    try:
        keys = netns_keys(lab)
        assert run_id in cli("status").stdout
        assert not next(r for r in cleanup.find_labs() if r.run_id == run_id).orphaned  # detached, not dead
        dig = cli("shell", "client", "--run-id", run_id, "--", "dig", "+short", "www.lab.example")
        assert dig.stdout.strip() == ADDRESSES["internet"], dig
    finally:
        down = cli("down", run_id)
    assert down.returncode == 0 and f"removed {NS_PREFIX}{run_id}-client" in down.stdout
    assert_gone(lab, keys)


def test_serve_failure_is_recorded_and_the_lab_still_works(monkeypatch: pytest.MonkeyPatch, lab_factory: Callable[..., Lab]) -> None:
    real = services.command

    def no_serve(service: services.Service, resolver: object, seed: int) -> list[str]:
        if service.name == "serve":
            return [sys.executable, "-c", "raise SystemExit('giga_netcheck is not here')"]
        return real(service, resolver, seed)  # type: ignore[arg-type]

    monkeypatch.setattr(services, "command", no_serve)
    lab = lab_factory("healthy")
    assert not lab.serve_ok
    assert set(lab.serve_errors) == {"center", "internet"}
    assert "giga_netcheck is not here" in lab.serve_errors["center"]
    assert tools.ping(lab, "client", lab.addr("internet"), count=3).received == 3


def test_site_file(healthy_lab: Lab) -> None:
    site = yaml.safe_load(healthy_lab.site_file.read_text())
    assert site["school"] == {"id": "lab-001", "name": "Lab Elementary", "students": healthy_lab.scenario.site["students"]}
    assert site["profile"] == "default"
    assert site["classrooms"] == [{"name": "5-1", "devices": 35}]
    assert site["targets"] == {
        "gateway": ADDRESSES["gateway"],
        "center": f"http://{ADDRESSES['center']}:8080",
        "internet": [f"http://{ADDRESSES['internet']}:8080"],
    }
    assert site["dns"] == {"resolvers": [ADDRESSES["center"]], "names": ["www.lab.example", "classroom.lab.example"]}
    # The client's system resolver is the center's, as DHCP would say.
    resolv = healthy_lab.run("client", ["cat", "/etc/resolv.conf"], timeout=10).stdout
    assert f"nameserver {ADDRESSES['center']}" in resolv


def test_serve_answers_from_the_client(healthy_lab: Lab) -> None:
    if not healthy_lab.serve_ok:
        pytest.skip(f"giga-netcheck serve is not running in the lab: {healthy_lab.serve_errors}")
    import httpx

    for host in ("center", "internet"):
        with healthy_lab.in_ns("client"):
            answer = httpx.get(f"{healthy_lab.url(host)}/id", timeout=5, trust_env=False)
        assert answer.json()["service"] == "giga-netcheck"


@pytest.mark.parametrize("offload", [False, True], ids=["per-packet", "super-packets"])
def test_forwarder_carries_300_mbit(lab_factory: Callable[..., Lab], offload: bool) -> None:
    healthy = get_scenario("healthy")
    uplink = healthy.link("uplink")
    uncapped = dataclasses.replace(
        uplink,
        up=dataclasses.replace(uplink.up, rate_mbit=None),
        down=dataclasses.replace(uplink.down, rate_mbit=None),
    )
    scenario = dataclasses.replace(healthy, name="uncapped-uplink", links={**healthy.links, "uplink": uncapped})
    lab = lab_factory(scenario, serve=False, offload=offload)
    one = tools.iperf3(lab, "client", lab.addr("center"), streams=1)
    # Capacity with several streams (domain.md section 6), taken again when it reads low (as for
    # the caps): the machine is shared, and a descheduled forwarder releases bursts that a queue drops.
    four = tools.measured(
        "forwarder capacity, 4 streams",
        lambda: tools.iperf3(lab, "client", lab.addr("center"), streams=4),
        lambda r: (
            None if r.mbit >= FORWARDER_MIN_MBIT else f"{r.mbit:.0f} Mbit/s (intervals {r.intervals_mbit}) < {FORWARDER_MIN_MBIT:.0f}"
        ),
    )
    ping = tools.ping(lab, "client", lab.addr("center"), count=50, interval_s=0.01)
    print(
        f"\nforwarder ({'super-packets' if offload else 'per packet'}), 15 ms each way, MTU 1500, no cap: "
        f"1 stream {one.mbit:.0f} Mbit/s, "
        f"4 streams {four.mbit:.0f} Mbit/s; ping median {ping.median_ms:.2f} ms (configured 30)"
    )
