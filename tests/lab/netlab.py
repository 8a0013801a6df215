"""The lab: a small school network in Linux network namespaces, built and torn down as root.

::

    with Lab("bufferbloat") as lab:
        lab.run("client", ["ping", "-c", "3", lab.addr("center")])
        lab.run("client", ["giga-netcheck", "run", "--site", str(lab.site_file)])

Teardown always happens and leaves nothing behind: the context manager, an ``atexit`` hook
and SIGINT/SIGTERM handlers all call :meth:`Lab.down`, which kills every process the lab
started (by process group) and every process still inside its namespaces, then deletes the
namespaces (their veths go with them; TUN devices die with the forwarder). Every step is
idempotent, so a second call, or one from a signal handler in the middle of the first,
finishes the job rather than tripping over it. Nothing is ever created in the root
namespace: veths and TUNs are made directly inside the lab's namespaces.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Optional, Sequence, TypeVar, Union

import yaml

from . import impair, services
from .netns import (
    LabError,
    call_in_netns,
    in_netns,
    ip_batch,
    iptables_restore,
    kill_pids,
    netns_add,
    netns_delete,
    netns_list,
    pids_in_netns,
    process_start,
    tc_batch,
    wait_gone,
    write_sysctl,
)
from .procs import Proc, reap, signal_group, wait_line
from .safety import live_labs, register, teardown_all, unregister
from .scenarios import LinkSpec, Scenario, get_scenario
from .topology import ADDRESSES, HOSTS, LINKS, NS_PREFIX, PREFIX6_LEN, ROUTES, ROUTES6, addr6

__all__ = ["Lab", "LabError", "STATE_ROOT", "teardown_all", "live_labs"]

T = TypeVar("T")
STATE_ROOT = Path(tempfile.gettempdir()) / "gnc-lab"
"""Each lab's work directory (site file, service logs, state.json) is STATE_ROOT/<run id>."""
FORWARDER = Path(__file__).with_name("forwarder.py")
ETC_NETNS = Path("/etc/netns")
TUN_TXQUEUELEN = 10000
"""The TUN ring between qdisc and forwarder; deep so a briefly descheduled forwarder does
not turn into packet loss (a full TUN ring drops, it does not push back)."""
TCP_CONGESTION_CONTROL = ("cubic", "reno")
"""Loss-based congestion control, as schools' devices and most servers run (Linux, Windows and
macOS default to CUBIC), first one the kernel lets a namespace pick. A namespace inherits the
host's default otherwise, and this host's is BBR, which caps its own queue near one BDP and
would hide bufferbloat. A namespace may only choose from ``tcp_allowed_congestion_control``
(``reno bbr`` here), so on this host the lab runs Reno; changing the host's list is not the
lab's business. iperf3 ``-C cubic`` still picks CUBIC per socket (root may)."""
LAB_PRIORITY = ("nice", "-n", "-20")
"""The lab's own processes (forwarders, resolvers, iperf3 and serve, the proxy) run at the
highest CPU priority: they stand for wires and for other machines, which no other program on a
school's PC can delay. The forwarder is a user-space delay line, so without it every process
that shares the host moves its timing: with other test runs keeping a 2-core host at load
average 8, pings through it read 34-39 ms for 30, and its wake-ups came late in bursts that the
shapers' short queues dropped (iperf3 read 27 of 48 Mbit/s). At nice -20 it takes what it needs
(11% of a core at 300 Mbit/s with super-packets) before anything at the default priority, and
its wake-ups preempt them. Not real-time scheduling: a forwarder in a busy loop must not be
able to starve the host."""
READY_TIMEOUT_S = 30.0
SERVE_TIMEOUT_S = 30.0
"""Deadlines for a service that is not coming, not the time one takes: a Python start (the
forwarder, the resolvers, four ``serve`` processes at once) takes 0.3 s on an idle 2-core host
and seconds when other test runs load it; at 4 s, ``serve`` was once recorded as failed there."""
TERM_GRACE_S = 0.5
RUN_ID = re.compile(r"^[0-9a-z]{1,10}$")


class Lab(AbstractContextManager["Lab"]):
    """A scenario stood up in four namespaces: client, gateway, center, internet.

    Args:
        scenario: a :class:`Scenario` or a name from scenarios.yaml.
        run_id: short id in the namespace names (``gnc-<run_id>-client``); random by default.
        serve: start ``giga-netcheck serve`` in center and internet (recorded if it fails).
        services: start the DNS resolvers and iperf3 servers (needed by the plain-tool tests).
        seed: seed for the forwarders' jitter and the resolvers' fault draws.
        offload: let the forwarders move TSO/GSO super-packets; None: on links without loss.
    """

    def __init__(
        self,
        scenario: Union[Scenario, str] = "healthy",
        *,
        run_id: Optional[str] = None,
        serve: bool = True,
        services: bool = True,
        seed: Optional[int] = None,
        offload: Optional[bool] = None,
    ) -> None:
        self.scenario = get_scenario(scenario) if isinstance(scenario, str) else scenario
        self.run_id = run_id or secrets.token_hex(3)
        if not RUN_ID.match(self.run_id):
            # Namespace names are matched by this shape when stale labs are cleaned up.
            raise ValueError(f"run id must be 1-10 lowercase letters or digits, got {self.run_id!r}")
        self.prefix = f"{NS_PREFIX}{self.run_id}-"
        self.namespaces: dict[str, str] = {host: self.prefix + host for host in HOSTS}
        """Namespace name per host."""
        self.workdir = STATE_ROOT / self.run_id
        self.site_file = self.workdir / "site.yaml"
        """The client's site file (YAML), written by :meth:`up`."""
        self.with_serve = serve
        self.with_services = services
        self.seed = seed if seed is not None else secrets.randbelow(1 << 30)
        self.offload = offload
        """Forwarder TSO/GSO super-packets: None (default) on links without loss."""
        self.serve_errors: dict[str, str] = {}
        """host -> why ``serve`` is not running there; empty when serve runs everywhere."""
        self.timings: dict[str, float] = {}
        """``up_s`` and ``down_s``, wall-clock seconds."""
        self._detached = False
        self._started = time.time()
        self.congestion_control = ""
        """TCP congestion control of the lab's hosts (see TCP_CONGESTION_CONTROL)."""
        self.state = "new"
        self._procs: list[Proc] = []
        self._lock = threading.RLock()

    # -- addresses -----------------------------------------------------------------------

    def ns(self, host: str) -> str:
        """The namespace name of ``host``."""
        try:
            return self.namespaces[host]
        except KeyError:
            raise KeyError(f"no host {host!r}; hosts are {', '.join(HOSTS)}") from None

    @staticmethod
    def addr(host: str) -> str:
        """``host``'s address as the client sees it."""
        return ADDRESSES[host]

    @property
    def serve_ok(self) -> bool:
        """True when serve answers ``GET /id`` in center and internet."""
        return self.with_serve and self.state == "up" and not self.serve_errors

    def url(self, host: str) -> str:
        """The measurement server URL on ``host`` (center or internet)."""
        return f"http://{ADDRESSES[host]}:{services.SERVE_PORT}"

    # -- lifecycle -----------------------------------------------------------------------

    def up(self) -> Lab:
        """Build the namespaces, links, impairments and services; returns self.

        On any failure (or an interrupt) the partial lab is torn down before the error is raised.
        """
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces, tc, iptables)")
        with self._lock:
            if self.state != "new":
                raise LabError(f"lab {self.run_id} is {self.state}; make a new Lab to go up again")
            # Before anything is ours: a teardown after this check must not take another lab's
            # namespaces with it.
            taken = netns_list(self.prefix)
            if taken:
                raise LabError(f"namespaces already exist: {', '.join(taken)}; run `python -m tests.lab down` or pick another run id")
            self.state = "starting"
        register(self)
        start = time.perf_counter()
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._write_state()  # first thing: `down` from elsewhere must see an owner is alive
            self._build()
        except BaseException:
            self.down()
            raise
        self.state = "up"
        self.timings["up_s"] = time.perf_counter() - start
        self._write_state()
        return self

    def down(self) -> None:
        """Tear everything down; safe to call any number of times, from anywhere."""
        with self._lock:
            if self.state in ("new", "down"):
                return
            start = time.perf_counter()
            self._stop_processes()
            names = netns_list(self.prefix)
            inside = [pid for pids in pids_in_netns(names).values() for pid in pids]
            kill_pids(inside)
            for proc in self._procs:
                reap(proc.popen)
            # SIGKILL is delivered asynchronously, and not every process in the namespaces is
            # our child to reap (the forwarder's second direction): down returns once they left.
            wait_gone(inside)
            netns_delete(names)
            for name in self.namespaces.values():
                shutil.rmtree(ETC_NETNS / name, ignore_errors=True)
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._procs.clear()
            self.state = "down"
            self.timings["down_s"] = time.perf_counter() - start
            unregister(self)

    def detach(self) -> None:
        """Leave the lab running after this process exits (``python -m tests.lab up --detach``).

        Its processes are in their own sessions and outlive us; ``python -m tests.lab down``
        removes it. This process no longer tears it down at exit or on a signal.
        """
        with self._lock:
            if self.state != "up":
                raise LabError(f"lab {self.run_id} is {self.state}, not up")
            self._detached = True
            self._write_state()
            for proc in self._procs:
                if proc.popen.stdout is not None:
                    proc.popen.stdout.close()
            unregister(self)

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.down()

    # -- running things inside -----------------------------------------------------------

    def run(
        self, host: str, cmd: Sequence[str], *, timeout: float = 60.0, check: bool = False, input: Optional[str] = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside ``host`` (bounded by ``timeout``); output captured as text."""
        argv = ["ip", "netns", "exec", self.ns(host), *cmd]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check, input=input)

    def popen(self, host: str, cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``cmd`` inside ``host`` in its own process group; :meth:`down` kills it."""
        argv = ["ip", "netns", "exec", self.ns(host), *cmd]
        proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self._procs.append(Proc(cmd[0], host, proc))
        return proc

    def in_ns(self, host: str) -> AbstractContextManager[None]:
        """Move the calling thread into ``host``'s namespace for a ``with`` block.

        Sockets opened inside stay in that namespace after the block::

            with lab.in_ns("client"):
                sock = socket.create_connection((lab.addr("internet"), 8080))
        """
        return in_netns(self.ns(host))

    def call(self, host: str, fn: Callable[[], T], timeout: float = 30.0) -> T:
        """Call ``fn`` in a thread inside ``host``'s namespace; its result."""
        return call_in_netns(self.ns(host), fn, timeout=timeout)

    def describe(self) -> str:
        """A few lines for a person: scenario, hosts, addresses, site file, serve status."""
        lines = [
            f"lab {self.run_id}: scenario {self.scenario.name}"
            + (f" (cause {self.scenario.cause}, segment {self.scenario.segment})" if self.scenario.cause else "")
        ]
        for host in HOSTS:
            lines.append(f"  {host:<9} {ADDRESSES[host]:<13} netns {self.ns(host)}")
        lines.append(f"  site file {self.site_file}")
        if self.with_serve:
            for host in ("center", "internet"):
                status = self.serve_errors.get(host, "ok")
                lines.append(f"  serve on {host}: {self.url(host)} ({status})")
        return "\n".join(lines)

    # -- building ------------------------------------------------------------------------

    def _build(self) -> None:
        scenario = self.scenario
        names = list(self.namespaces.values())
        netns_add(names)
        # ip netns exec bind-mounts this over /etc/resolv.conf: the client's system resolver is
        # the center's, as a school's DHCP would hand out.
        client_etc = ETC_NETNS / self.ns("client")
        client_etc.mkdir(parents=True, exist_ok=True)
        (client_etc / "resolv.conf").write_text(f"nameserver {ADDRESSES['center']}\n")

        # Forwarders first: their Python start-up overlaps the rest of the build.
        forwarders = [self._start_forwarder(lk.name) for lk in LINKS if scenario.link(lk.name).uses_tun]
        ip_batch(
            [
                f"link add name {lk.name} netns {self.ns(lk.a)} type veth peer name {lk.name} netns {self.ns(lk.b)}"
                for lk in LINKS
                if not scenario.link(lk.name).uses_tun
            ]
        )
        for host in HOSTS:
            # IPv6 in 2001:2::/48 beside IPv4 (ipv4-congestion compares the two); no DAD, no
            # router advertisements: addresses are usable at once and only the lab's routes exist
            values = {
                "net.ipv6.conf.all.disable_ipv6": "0",
                "net.ipv6.conf.default.disable_ipv6": "0",
                "net.ipv6.conf.all.accept_dad": "0",
                "net.ipv6.conf.default.accept_dad": "0",
                "net.ipv6.conf.all.accept_ra": "0",
                "net.ipv6.conf.default.accept_ra": "0",
            }
            if host in ("gateway", "center"):
                values["net.ipv4.ip_forward"] = "1"
                values["net.ipv6.conf.all.forwarding"] = "1"
            if host == "client":
                # Unprivileged ICMP sockets, so giga-netcheck's non-root ping path works here too.
                values["net.ipv4.ping_group_range"] = "0 2147483647"
            write_sysctl(self.ns(host), values)
            self.congestion_control = self._set_congestion_control(host)
        for proc in forwarders:
            wait_line(proc.popen, "READY", time.monotonic() + READY_TIMEOUT_S, what="forwarder")

        extra_ip = impair.ip_lines(scenario)
        for host in HOSTS:
            ip_batch(self._ip_lines(host) + extra_ip.get(host, []), self.ns(host))
        for host, lines in impair.tc_lines(scenario).items():
            tc_batch(lines, self.ns(host))
        for host, rules in impair.iptables_rules(scenario).items():
            iptables_restore(rules, self.ns(host))
        for host, lines in impair.down_lines(scenario).items():
            ip_batch(lines, self.ns(host))
        self._start_services()
        self._write_site_file()

    def _set_congestion_control(self, host: str) -> str:
        for algorithm in TCP_CONGESTION_CONTROL:
            try:
                write_sysctl(self.ns(host), {"net.ipv4.tcp_congestion_control": algorithm})
                return algorithm
            except PermissionError:
                continue  # not in tcp_allowed_congestion_control: try the next one
        raise LabError(f"none of {', '.join(TCP_CONGESTION_CONTROL)} may be set in a namespace here")

    def _ip_lines(self, host: str) -> list[str]:
        lines = ["link set dev lo up"]
        for lk in LINKS:
            if host not in (lk.a, lk.b):
                continue
            extra = f" txqueuelen {TUN_TXQUEUELEN}" if self.scenario.link(lk.name).uses_tun else ""
            lines.append(f"link set dev {lk.name} mtu 1500{extra} up")
            lines.append(f"addr add {lk.addr(host)}/{lk.prefix_len} dev {lk.name}")
            lines.append(f"addr add {addr6(lk.name, host)}/{PREFIX6_LEN} dev {lk.name} nodad")
        for dest, via, dev in ROUTES[host]:
            lines.append(f"route add {dest} via {via} dev {dev}")
        for dest, via, dev in ROUTES6[host]:
            lines.append(f"route add {dest} via {via} dev {dev}")
        return lines

    def _start_forwarder(self, link_name: str) -> Proc:
        lk = next(x for x in LINKS if x.name == link_name)
        spec = self.scenario.link(link_name)
        argv = [
            sys.executable,
            str(FORWARDER),
            "--a",
            f"{self.ns(lk.a)}:{lk.name}",
            "--b",
            f"{self.ns(lk.b)}:{lk.name}",
            "--delay-ab-ms",
            str(spec.up.delay_ms),
            "--delay-ba-ms",
            str(spec.down.delay_ms),
            "--jitter-ab-ms",
            str(spec.up.jitter_ms),
            "--jitter-ba-ms",
            str(spec.down.jitter_ms),
            "--seed",
            str(self.seed),
            *(["--offload"] if self._offload(spec) else []),
        ]
        with self._log(f"forwarder-{link_name}") as log:
            popen = subprocess.Popen([*LAB_PRIORITY, *argv], stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        proc = Proc(f"forwarder-{link_name}", None, popen)
        self._procs.append(proc)
        return proc

    def _offload(self, spec: LinkSpec) -> bool:
        # Super-packets cut the forwarder's work ~40-fold, but a drop then takes a whole burst
        # of segments: only links without loss get them.
        if self.offload is not None:
            return self.offload
        return spec.up.loss_pct == 0 and spec.down.loss_pct == 0

    def _log(self, name: str) -> Any:
        return open(self.workdir / f"{name}.log", "wb")

    def _start_services(self) -> None:
        wanted = [
            s
            for s in services.SERVICES
            if (s.name in ("serve", "serve6") and self.with_serve)
            or (s.name not in ("serve", "serve6", "proxy") and self.with_services)
            or (s.name == "proxy" and self._proxy_delay(s.host) is not None)
        ]
        started = []
        for svc in wanted:
            extra = {"proxy_delay_ms": self._proxy_delay(svc.host) or 0.0} if svc.name == "proxy" else {}
            argv = [*LAB_PRIORITY, *services.command(svc, self.scenario.dns.get(svc.host), self.seed, **extra)]
            with self._log(f"{svc.name}-{svc.host}") as log:
                popen = self.popen(
                    svc.host,
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=services.REPO_ROOT,
                    env=services.environment(),
                )
            self._procs[-1].name = svc.name
            started.append((svc, popen))
        keys = {}
        for host in HOSTS:
            st = os.stat(f"/run/netns/{self.ns(host)}")
            keys[host] = (st.st_dev, st.st_ino)
        deadline = time.monotonic() + max(READY_TIMEOUT_S, SERVE_TIMEOUT_S)
        pending = list(started)
        while pending:
            still = []
            for svc, popen in pending:
                if services.listening(popen.pid, keys[svc.host], svc.port, svc.proto):
                    if svc.name == "serve":
                        self._check_serve(svc)
                    continue
                if popen.poll() is not None:
                    self._service_failed(svc, f"exited with {popen.returncode}")
                    continue
                if time.monotonic() > deadline:
                    self._service_failed(svc, "not listening in time")
                    continue
                still.append((svc, popen))
            pending = still
            if pending:
                time.sleep(0.02)

    def _proxy_delay(self, host: str) -> Optional[float]:
        spec = self.scenario.hosts.get(host)
        return spec.proxy_delay_ms if spec is not None else None

    def proxy_url(self) -> Optional[str]:
        """The lab proxy's URL when the scenario runs one (tests/lab/proxy.py in the center)."""
        if self._proxy_delay("center") is None:
            return None
        return f"http://{ADDRESSES['center']}:{services.PROXY_PORT}"

    def _check_serve(self, svc: services.Service) -> None:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while True:
            try:
                self.call(svc.host, lambda: services.serve_identity(svc.port))
                return
            except Exception as exc:  # any failure to identify is recorded below
                if time.monotonic() > deadline:
                    self._service_failed(svc, f"GET /id failed: {exc}")
                    return
                time.sleep(0.05)

    def _service_failed(self, svc: services.Service, why: str) -> None:
        log = self.workdir / f"{svc.name}-{svc.host}.log"
        tail = ""
        try:
            tail = log.read_text(errors="replace").strip().splitlines()[-1][:300]
        except (OSError, IndexError):
            pass
        message = f"{svc.name} on {svc.host} {why}" + (f": {tail}" if tail else "")
        if svc.required:
            raise LabError(message)
        self.serve_errors[svc.host] = message

    def _write_site_file(self) -> None:
        site = self.scenario.site
        doc = {
            "school": {"id": site.get("id", "lab-001"), "name": site.get("name", "Lab Elementary"), "students": site.get("students", 420)},
            "profile": "default",
            "classrooms": [{"name": "5-1", "devices": site.get("devices", 35)}],
            "targets": {
                "gateway": ADDRESSES["gateway"],
                "center": self.url("center"),
                "internet": [self.url("internet")],
            },
            "dns": {"resolvers": [ADDRESSES["center"]], "names": ["www.lab.example", "classroom.lab.example"]},
        }
        if site.get("hostnames"):
            # servers by name: A and AAAA from the lab's resolvers, so both families get measured
            doc["targets"]["center"] = f"http://center.lab.example:{services.SERVE_PORT}"
            doc["targets"]["internet"] = [f"http://www.lab.example:{services.SERVE_PORT}"]
        if self.proxy_url():
            doc["proxy"] = {"url": self.proxy_url()}
        header = f"# Written by tests/lab for scenario {self.scenario.name} (lab {self.run_id}).\n"
        self.site_file.write_text(header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))

    def _write_state(self) -> None:
        state = {
            "run_id": self.run_id,
            "scenario": self.scenario.name,
            "namespaces": self.namespaces,
            "addresses": ADDRESSES,
            "site_file": str(self.site_file),
            "serve_errors": self.serve_errors,
            "pids": {p.name + (f"@{p.host}" if p.host else ""): p.popen.pid for p in self._procs},
            "owner_pid": os.getpid(),
            "owner_start": process_start(os.getpid()),
            "detached": self._detached,
            "state": self.state,
            "started": self._started,
        }
        # Written whole or not at all (a new file renamed over the old): a cleanup in another
        # process that reads a half-written state would take a live lab for an orphan.
        path = self.workdir / "state.json"
        tmp = path.with_name(f".state.{os.getpid()}.{threading.get_ident()}.json")
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, path)

    def _stop_processes(self) -> None:
        for proc in self._procs:
            signal_group(proc.popen, signal.SIGTERM)
        deadline = time.monotonic() + TERM_GRACE_S
        for proc in self._procs:
            while proc.popen.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            signal_group(proc.popen, signal.SIGKILL)
        # A group member that outlived its leader (the forwarder's second direction dies with
        # its parent by PDEATHSIG) is caught by the namespace sweep in down().
