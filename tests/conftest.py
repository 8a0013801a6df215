"""Shared fixtures: a real measurement server and a DNS server on loopback, site files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
import yaml

from giga_netcheck.server.app import ServerConfig, ServerThread


@pytest.fixture
def server():
    """A giga-netcheck measurement server on 127.0.0.1 (ephemeral port), in a thread."""
    with ServerThread(ServerConfig(host="127.0.0.1", port=0)) as s:
        yield s


@pytest.fixture
def dns_server():
    from tests.lab.dnsserver import DnsServer

    with DnsServer(host="127.0.0.1", port=0, records={"www.lab.example": "198.18.3.2", "classroom.lab.example": "198.18.3.3"}) as d:
        yield d


@pytest.fixture
def write_site(tmp_path: Path) -> Callable[[dict], Path]:
    """Write a site dict as YAML and return its path."""

    def write(data: dict, name: str = "site.yaml") -> Path:
        p = tmp_path / name
        p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        return p

    return write


def clean_env() -> dict[str, str]:
    """This process's environment without giga-netcheck's variables, for the CLI in a subprocess;
    public speed-test infrastructure stays off (tests never leave loopback)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIGA_NETCHECK")}
    env["GIGA_NETCHECK_NO_PUBLIC"] = "1"
    return env


def loopback_site(server_url: str, dns_port: int | None = None, **extra) -> dict:
    """A site that measures only this machine's loopback: quick probes, small counts."""
    site = {
        "school": {"id": "test-001", "name": "Loopback Elementary", "students": 120},
        "profile": "default",
        "classrooms": [{"name": "5-1", "devices": 35}, {"name": "PC room", "devices": 40, "profile": "video-lesson"}],
        "targets": {"gateway": "127.0.0.1", "internet": [server_url]},
        "dns": {"resolvers": [f"127.0.0.1:{dns_port}"] if dns_port else [], "names": ["www.lab.example"]},
        "probes": {
            "bandwidth": {"duration_s": 1.5, "warmup_s": 0.5, "streams": 2},
            "latency": {"count": 5, "interval_s": 0.02},
            "dns": {"queries": 3, "timeout_s": 0.5},
        },
        "load": {"enabled": False},  # the load probe ramps for tens of seconds: tests/test_load*.py turn it on
    }
    site.update(extra)
    return site


# ----------------------------------------------------------------------------- safety net
import ipaddress  # noqa: E402  (the safety net keeps its imports beside it)
import socket as _socket  # noqa: E402

# loopback, and the lab's benchmarking ranges: 198.18.0.0/15 (RFC 2544) and its IPv6 twin 2001:2::/48 (RFC 5180)
_ALLOWED = [ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128", "198.18.0.0/15", "2001:2::/48")]


def _allowed(address) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths and the like
    try:
        ip = ipaddress.ip_address(address[0])
    except ValueError:
        return address[0] in ("localhost",)
    return any(ip in n for n in _ALLOWED)


@pytest.fixture(autouse=True)
def _only_loopback(monkeypatch):
    """Fail any in-process test that tries to reach beyond loopback or the lab's range."""
    real_connect, real_connect_ex, real_sendto = _socket.socket.connect, _socket.socket.connect_ex, _socket.socket.sendto

    def guard(address):
        if not _allowed(address):
            raise AssertionError(f"test tried to reach {address!r}: tests stay on loopback or lab namespaces")

    def connect(self, address):
        guard(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        guard(address)
        return real_connect_ex(self, address)

    def sendto(self, data, *args):
        guard(args[-1])
        return real_sendto(self, data, *args)

    monkeypatch.setattr(_socket.socket, "connect", connect)
    monkeypatch.setattr(_socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(_socket.socket, "sendto", sendto)
    # A run with no internet target would measure against public speed-test infrastructure
    # (config.site.public_target): never in tests, nor in the CLI processes they start. The tests
    # of that default delete this and point the public URL at a loopback server.
    monkeypatch.setenv("GIGA_NETCHECK_NO_PUBLIC", "1")


# ------------------------------------------------------------------- no silent skips in CI
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (CI=true), a skipped test fails: .ci/run installs every tool the tests need, so a
    skip there means a missing install step, not a machine that cannot run the test."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped in CI, which must run every test: {reason}"


@pytest.fixture
def no_tracebacks(caplog):
    """Whatever a client sends, the server logs a line, never an exception (modules that test the
    server against hostile clients use it: ``pytestmark = pytest.mark.usefixtures("no_tracebacks")``)."""
    import logging  # noqa: PLC0415  (only this fixture needs it)

    caplog.set_level(logging.INFO)
    yield
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]
