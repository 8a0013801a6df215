"""The lab's fixed shape: four hosts on a line, three links, their addresses and routes.

::

    client --lan-- gateway --uplink-- center --upstream-- internet
    .1.10     .1.1  .2.1        .2.2  .3.1           .3.2        (all in 198.18.0.0/15)

- ``client``: where giga-netcheck runs; default route via the gateway.
- ``gateway``: the school router; default route via the center (a closed line to the board).
- ``center``: the board's data center (serve, DNS resolver, iperf3); default route upstream.
- ``internet``: servers beyond the center (serve, DNS, iperf3); routes the lab range back.

Every address is in the benchmarking range 198.18.0.0/15 (RFC 2544), so nothing the lab sends
could mean a real host, and no route is ever added outside the lab's namespaces.

A link joins a *lower* host (``a``, nearer the client) and an *upper* one (``b``). Its two
directions are named as a school names them: ``up`` (a -> b, uploads) and ``down``
(b -> a, downloads). The device has the link's name at both ends (``lan``, ``uplink``,
``upstream``); interface names only need to be unique within a namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "HOSTS",
    "LINKS",
    "ROUTES",
    "ADDRESSES",
    "LAN",
    "UPLINK",
    "UPSTREAM",
    "Link",
    "host_address",
    "link",
    "NS_PREFIX",
    "LINK6",
    "ADDRESSES6",
    "ROUTES6",
    "PREFIX6_LEN",
    "addr6",
]

NS_PREFIX = "gnc-"
"""Every lab namespace is ``gnc-<run id>-<host>``; stale-lab cleanup matches this shape."""

HOSTS: tuple[str, ...] = ("client", "gateway", "center", "internet")


@dataclass(frozen=True)
class Link:
    """A point-to-point link between a lower host ``a`` and an upper host ``b``."""

    name: str
    """Also the interface name at both ends."""
    a: str
    b: str
    prefix_len: int
    addr_a: str
    addr_b: str

    def end(self, direction: str) -> tuple[str, str]:
        """(sender, receiver) hosts of ``direction`` (``up`` = a -> b, ``down`` = b -> a)."""
        if direction == "up":
            return self.a, self.b
        if direction == "down":
            return self.b, self.a
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")

    def addr(self, host: str) -> str:
        """The address ``host`` has on this link."""
        if host == self.a:
            return self.addr_a
        if host == self.b:
            return self.addr_b
        raise ValueError(f"{host} is not on link {self.name}")


LAN = Link("lan", "client", "gateway", 24, "198.18.1.10", "198.18.1.1")
UPLINK = Link("uplink", "gateway", "center", 24, "198.18.2.1", "198.18.2.2")
UPSTREAM = Link("upstream", "center", "internet", 24, "198.18.3.1", "198.18.3.2")
LINKS: tuple[Link, ...] = (LAN, UPLINK, UPSTREAM)

ADDRESSES: dict[str, str] = {
    "client": LAN.addr_a,
    "gateway": LAN.addr_b,
    "center": UPLINK.addr_b,
    "internet": UPSTREAM.addr_b,
}
"""Each host's address as the client sees it (the side facing the client)."""

# (destination, via, device) per host: static routing as in a school with a closed line to the
# board's center; "default" routes always point upstream.
ROUTES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "client": (("default", LAN.addr_b, "lan"),),
    "gateway": (("default", UPLINK.addr_b, "uplink"),),
    "center": (("198.18.1.0/24", UPLINK.addr_a, "uplink"), ("default", UPSTREAM.addr_b, "upstream")),
    # The internet host has nothing upstream: it only needs the lab's range back.
    "internet": (("198.18.0.0/15", UPSTREAM.addr_a, "upstream"),),
}


# IPv6 beside IPv4, in the benchmarking prefix 2001:2::/48 (RFC 5180, the twin of 198.18/15):
# subnet n of the IPv4 plan (198.18.n.0/24) is 2001:2:0:n::/64, host .x is ::x.
LINK6: dict[str, tuple[str, str]] = {
    "lan": ("2001:2:0:1::10", "2001:2:0:1::1"),
    "uplink": ("2001:2:0:2::1", "2001:2:0:2::2"),
    "upstream": ("2001:2:0:3::1", "2001:2:0:3::2"),
}
"""Each link's IPv6 addresses: (lower host ``a``, upper host ``b``), prefix length 64."""
PREFIX6_LEN = 64
ADDRESSES6: dict[str, str] = {
    "client": LINK6["lan"][0],
    "gateway": LINK6["lan"][1],
    "center": LINK6["uplink"][1],
    "internet": LINK6["upstream"][1],
}
"""Each host's IPv6 address as the client sees it."""
ROUTES6: dict[str, tuple[tuple[str, str, str], ...]] = {
    "client": (("::/0", LINK6["lan"][1], "lan"),),
    "gateway": (("::/0", LINK6["uplink"][1], "uplink"),),
    "center": (("2001:2:0:1::/64", LINK6["uplink"][0], "uplink"), ("::/0", LINK6["upstream"][1], "upstream")),
    "internet": (("2001:2::/48", LINK6["upstream"][0], "upstream"),),
}


def addr6(link_name: str, host: str) -> str:
    """``host``'s IPv6 address on the link called ``link_name``."""
    lk = link(link_name)
    a, b = LINK6[link_name]
    return a if host == lk.a else b if host == lk.b else lk.addr(host)


def link(name: str) -> Link:
    """The link called ``name``."""
    for candidate in LINKS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no link {name!r}; links are {', '.join(lk.name for lk in LINKS)}")


def host_address(host: str) -> str:
    """``host``'s address as the client sees it."""
    try:
        return ADDRESSES[host]
    except KeyError:
        raise KeyError(f"no host {host!r}; hosts are {', '.join(HOSTS)}") from None


def _check_addresses() -> None:
    """Every address of the plan is inside the lab's ranges (safety.LAB_NETWORKS)."""
    from .safety import is_lab_address

    every = [a for lk in LINKS for a in (lk.addr_a, lk.addr_b)] + [a for pair in LINK6.values() for a in pair]
    bad = [a for a in every if not is_lab_address(a)]
    if bad:
        raise AssertionError(f"lab addresses outside the benchmarking ranges: {bad}")


_check_addresses()
