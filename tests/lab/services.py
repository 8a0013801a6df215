"""What runs inside the lab's hosts, and how the lab knows it is ready.

- ``dns`` (center, internet): tests/lab/dnsserver.py on port 53, answering ``lab.example``
  and every name under it with the internet host's address, with the scenario's faults.
- ``iperf3`` (gateway, center, internet): ``iperf3 -s`` on 5201, for reference figures.
- ``serve`` (center, internet): ``python -m giga_netcheck serve --host 0.0.0.0 --port 8080``.
  The package may not be there yet (it is written alongside the lab): a serve that exits or
  does not answer ``GET /id`` in time is recorded, not fatal.

Readiness is read from ``/proc/PID/net/{tcp,udp}`` once the process is inside its namespace
(``/proc/PID/ns/net``), so a port already open in the root namespace can never be mistaken for
the lab's, and no connection is made that a server would log as a failed test.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .scenarios import Resolver
from .topology import ADDRESSES, ADDRESSES6

__all__ = [
    "Service",
    "SERVICES",
    "DNS_PORT",
    "IPERF_PORT",
    "SERVE_PORT",
    "DNS_RECORDS",
    "listening",
    "serve_identity",
    "REPO_ROOT",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
DNS_PORT = 53
IPERF_PORT = 5201
SERVE_PORT = 8080
PROXY_PORT = 3128
DNS_RECORDS: dict[str, str] = {
    "lab.example": ADDRESSES["internet"],
    "center.lab.example": ADDRESSES["center"],
    "gateway.lab.example": ADDRESSES["gateway"],
}
"""What the lab's resolvers answer (each name and every name under it)."""
DNS_RECORDS6: dict[str, str] = {
    "lab.example": ADDRESSES6["internet"],
    "center.lab.example": ADDRESSES6["center"],
    "gateway.lab.example": ADDRESSES6["gateway"],
}
"""The AAAA answers beside them: every lab host is dual-stack (2001:2::/48)."""


@dataclass(frozen=True)
class Service:
    """A long-running program in one host."""

    name: str
    host: str
    port: int
    proto: str
    """``tcp`` (wait for LISTEN) or ``udp`` (wait for a bound socket)."""
    required: bool
    """A required service that fails to start fails the lab; others are recorded."""


SERVICES: tuple[Service, ...] = (
    Service("dns", "center", DNS_PORT, "udp", True),
    Service("dns", "internet", DNS_PORT, "udp", True),
    Service("iperf3", "gateway", IPERF_PORT, "tcp", True),
    Service("iperf3", "center", IPERF_PORT, "tcp", True),
    Service("iperf3", "internet", IPERF_PORT, "tcp", True),
    Service("serve", "center", SERVE_PORT, "tcp", False),
    Service("serve", "internet", SERVE_PORT, "tcp", False),
    # the same server over IPv6 ([::]:8080, IPv6 only, as asyncio binds it): dual-stack hosts
    Service("serve6", "center", SERVE_PORT, "tcp", False),
    Service("serve6", "internet", SERVE_PORT, "tcp", False),
    # only where the scenario asks for it (hosts.center.proxy_delay_ms): tests/lab/proxy.py
    Service("proxy", "center", PROXY_PORT, "tcp", True),
)


def command(service: Service, resolver: Optional[Resolver], seed: int, proxy_delay_ms: float = 0.0) -> list[str]:
    """The argv that runs ``service`` (inside its namespace)."""
    if service.name == "proxy":
        return [
            sys.executable,
            "-m",
            "tests.lab.proxy",
            "--host",
            "0.0.0.0",
            "--port",
            str(service.port),
            "--delay-ms",
            str(proxy_delay_ms),
        ]
    if service.name == "iperf3":
        return ["iperf3", "-s", "-p", str(service.port)]
    if service.name in ("serve", "serve6"):
        host = "::" if service.name == "serve6" else "0.0.0.0"
        return [sys.executable, "-m", "giga_netcheck", "serve", "--host", host, "--port", str(service.port)]
    if service.name == "dns":
        r = resolver or Resolver()
        argv = [sys.executable, "-m", "tests.lab.dnsserver", "--host", "0.0.0.0", "--port", str(service.port)]
        for name, addr in (*DNS_RECORDS.items(), *DNS_RECORDS6.items()):
            argv += ["--record", f"{name}={addr}"]
        argv += [
            "--delay-ms",
            str(r.delay_ms),
            "--miss-delay-ms",
            str(r.miss_delay_ms),
            "--timeout-rate",
            str(r.timeout_rate),
            "--servfail-rate",
            str(r.servfail_rate),
            "--seed",
            str(seed),
        ]
        return argv
    raise ValueError(f"unknown service {service.name!r}")


def environment() -> dict[str, str]:
    """Environment for Python services: the repo on the path so ``tests.lab`` and the package import."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def listening(pid: int, netns_key: tuple[int, int], port: int, proto: str) -> bool:
    """True once ``pid`` is inside the namespace ``netns_key`` and ``port`` is open there."""
    try:
        st = os.stat(f"/proc/{pid}/ns/net")
        if (st.st_dev, st.st_ino) != netns_key:
            return False  # still `ip netns exec` before its exec, or the wrong namespace
        # iperf3 listens on a dual-stack IPv6 socket, which only the *6 table lists.
        text = "".join(Path(f"/proc/{pid}/net/{table}").read_text() for table in (proto, proto + "6"))
    except OSError:
        return False
    want = f":{port:04X}"
    for line in text.splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[1].endswith(want):
            if proto == "udp" or parts[3] == "0A":  # 0A: TCP_LISTEN
                return True
    return False


def serve_identity(port: int = SERVE_PORT, timeout: float = 1.0) -> dict[str, object]:
    """``GET /id`` on 127.0.0.1 (call it inside the host's namespace); the decoded JSON."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/id")
        response = conn.getresponse()
        body = response.read(64 * 1024)
        if response.status != 200:
            raise ValueError(f"GET /id answered {response.status}")
        data = json.loads(body)
        if not isinstance(data, dict) or data.get("service") != "giga-netcheck":
            raise ValueError(f"GET /id is not a giga-netcheck server: {body[:200]!r}")
        return data
    finally:
        conn.close()
