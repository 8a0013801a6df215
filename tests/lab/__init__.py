"""A virtual school network for tests and benchmarks (docs/lab.md).

::

    client --lan-- gateway --uplink-- center --upstream-- internet

Four Linux network namespaces, static routing through the gateway and the board's center,
impairments from ``tc``, ``iptables`` and a user-space TUN delay forwarder, and a catalogue of
scenarios, one per cause the lab can produce (scenarios.yaml). Root only.

- :class:`Lab` builds a scenario and tears it down (context manager).
- :mod:`tests.lab.tools` runs ping, iperf3 and dig inside a host and parses them.
- :class:`DnsServer` is the lab's resolver, also usable alone on loopback (no root).
- ``python -m tests.lab up|down|shell|list|status`` for people.
"""

from importlib import import_module
from typing import Any

# Names resolve lazily (PEP 562): `python -m tests.lab.dnsserver` and the forwarder must not
# import the whole lab, and runpy warns when a -m module was imported by its package first.
_EXPORTS = {
    "ADDRESSES": "topology",
    "HOSTS": "topology",
    "DnsServer": "dnsserver",
    "Lab": "netlab",
    "LabError": "netns",
    "NOT_IN_LAB": "scenarios",
    "Scenario": "scenarios",
    "get_scenario": "scenarios",
    "load_scenarios": "scenarios",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
