"""Fixtures for lab tests, and the one place that decides whether they can run here.

Tests marked ``@pytest.mark.lab`` are skipped, with the reason, when this is not Linux, not
root, or a tool or kernel feature the lab needs is missing. CI runs as root with the
packages installed (iproute2 iptables iperf3 dnsutils iputils-ping), so there they run.

Fixtures:

- ``lab_factory``: ``lab_factory("bufferbloat", serve=False)`` brings a lab up; every lab
  it made goes down when the test ends, passed or failed.
- ``lab``: one lab per test; the scenario comes from indirect parametrisation
  (``@pytest.mark.parametrize("lab", ["dns-slow"], indirect=True)``), ``healthy`` otherwise.
- ``healthy_lab``: one ``healthy`` lab shared by a module, for tests that only look.

Before the first lab test, labs left behind by runs that died (a SIGKILL or a CI timeout skips
every teardown hook) are removed: their forwarders and servers would go on using the CPU that
this run's timing-sensitive tests need. Labs of live runs (another engineer's, side by side)
and detached labs are left alone (cleanup.LabRecord.orphaned).
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable, Iterator, Optional

import pytest

from tests.lab import cleanup
from tests.lab.netlab import Lab
from tests.lab.netns import missing_tools

LAB_TOOLS = ("ip", "tc", "iptables", "iptables-restore", "iperf3", "dig", "ping")
DEBIAN_PACKAGES = "iproute2 iptables iperf3 dnsutils iputils-ping"


@functools.lru_cache(maxsize=1)
def lab_skip_reason() -> Optional[str]:
    """Why lab tests cannot run on this machine, or None when they can."""
    if not sys.platform.startswith("linux"):
        return "lab tests need Linux network namespaces"
    if os.geteuid() != 0:
        return "lab tests need root (ip netns, tc, iptables); CI runs them as root"
    missing = missing_tools(LAB_TOOLS)
    if missing:
        return f"lab tests need {', '.join(missing)} (Debian packages: {DEBIAN_PACKAGES})"
    if not os.path.exists("/dev/net/tun"):
        return "lab tests need /dev/net/tun (kernel TUN support) for the delay forwarder"
    if not os.path.isdir("/proc/sys/net"):
        return "lab tests need /proc/sys/net"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip every ``lab``-marked test, with the reason, where the lab cannot run."""
    reason = lab_skip_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _no_orphaned_labs() -> None:
    """Remove the labs of dead runs once, before the first test here (see the module doc)."""
    if lab_skip_reason() is None:
        removed = cleanup.clean_orphans()
        if removed:
            print(f"\ntests/lab: removed labs of runs that died: {', '.join(removed)}", file=sys.stderr)


@pytest.fixture
def lab_factory() -> Iterator[Callable[..., Lab]]:
    """Bring labs up for one test; all of them go down when it ends."""
    made: list[Lab] = []

    def make(scenario: Any = "healthy", **kwargs: Any) -> Lab:
        lab = Lab(scenario, **kwargs)
        made.append(lab)
        return lab.up()

    try:
        yield make
    finally:
        for lab in made:
            lab.down()


@pytest.fixture
def lab(request: pytest.FixtureRequest, lab_factory: Callable[..., Lab]) -> Lab:
    """A lab for one test: ``request.param`` names the scenario (default ``healthy``)."""
    return lab_factory(getattr(request, "param", "healthy"))


@pytest.fixture(scope="module")
def healthy_lab() -> Iterator[Lab]:
    """A ``healthy`` lab shared by the tests of one module."""
    lab = Lab("healthy").up()
    try:
        yield lab
    finally:
        lab.down()
