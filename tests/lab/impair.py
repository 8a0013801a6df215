"""Turn a scenario's impairments into ``tc`` lines and ``iptables-restore`` documents per host.

Where each impairment goes, and why there:

- **Rate and queue** (``tc tbf``; a deep ``limit`` makes bufferbloat). On a veth link, on the
  egress of the direction's *sender*. On a TUN link, on the *receiver's* ingress, redirected
  through an ``ifb`` device: TCP small queues (TSQ) lets a local sender keep only ~1 ms of
  data in its own qdiscs, so a shaper on the sender's egress never fills when the sender is
  the host itself (center's serve and iperf3 are). Behind the forwarder the sender's packets
  are already freed (the forwarder read them), so the receiver's queue fills as a real
  bottleneck's does, for local and forwarded traffic alike. On a veth the packet stays owned
  by its socket until the far side's IP layer, so there the choice of end makes no
  difference and the simpler egress shaper is used; no deep-queue scenario sits on a veth.
- **Per-flow cap**: this kernel has neither ``fq`` (``maxrate``) nor ``sfq``/``cls_flow``, so
  it is built from what it has: an HTB class per flow-hash bucket (``ceil`` = the cap) under a
  parent at the link rate, with iptables ``HMARK`` hashing the 5-tuple into a mark and one
  ``CLASSIFY`` rule per bucket setting ``skb->priority``, which HTB reads as the class id. With
  64 buckets, 4 flows share a bucket with probability ~9%; they still read more than one flow.
- **Loss** (``iptables -m statistic``) in the *receiver's* ``raw PREROUTING`` for the link's
  interface: unlike ``FORWARD`` it also catches packets addressed to the receiver itself (a
  ping to the gateway), and it drops before conntrack, so a lost SYN leaves no state.
- **Session cap** (``iptables -m connlimit --connlimit-mask 0``) in the host's ``FORWARD``
  chain on new TCP connections, answered with a TCP reset like a full session table.
- **Delay and jitter** are not here: the TUN forwarder (forwarder.py) adds them.
"""

from __future__ import annotations

from typing import Optional

from .scenarios import Direction, Scenario
from .topology import LINKS

__all__ = [
    "tbf_args",
    "tc_lines",
    "ip_lines",
    "ifb_name",
    "iptables_rules",
    "down_lines",
    "FLOW_BUCKETS",
    "DEFAULT_QUEUE_MS",
    "limit_bytes",
    "flow_queue_bytes",
]

FLOW_BUCKETS = 64
DEFAULT_QUEUE_MS = 10.0
_UNCAPPED_BIT = 10_000_000_000  # parent rate for a per-flow shaper on an uncapped link
_MIN_BURST = 32 * 1024
_MIN_FLOW_QUEUE = 64 * 1024


def _bytes_per_ms(rate_mbit: float) -> float:
    return rate_mbit * 1e6 / 8 / 1000


def _burst_bytes(d: Direction, rate_mbit: float) -> int:
    if d.burst_kb is not None:
        return int(d.burst_kb * 1024)
    # One millisecond at the rate, at least 32 KiB: enough for a TSO burst, too small to
    # blur a measurement over seconds.
    return int(max(_MIN_BURST, _bytes_per_ms(rate_mbit)))


def _queue_bytes(d: Direction, rate_mbit: float) -> int:
    if d.queue_kb is not None:
        return int(d.queue_kb * 1024)
    queue_ms = d.queue_ms if d.queue_ms is not None else DEFAULT_QUEUE_MS
    return int(_bytes_per_ms(rate_mbit) * queue_ms)


def limit_bytes(d: Direction, rate_mbit: Optional[float] = None) -> int:
    """The most a shaper of ``d`` at ``rate_mbit`` (default: ``d.rate_mbit``) holds: the queue
    plus one bucket, as tbf's ``limit`` and the per-family FIFOs count it."""
    rate = rate_mbit if rate_mbit is not None else d.rate_mbit
    assert rate is not None
    return _queue_bytes(d, rate) + _burst_bytes(d, rate)


def flow_queue_bytes(d: Direction) -> int:
    """The FIFO of one per-flow class (``flow_rate_mbit``)."""
    assert d.flow_rate_mbit is not None
    return max(_MIN_FLOW_QUEUE, _queue_bytes(d, d.flow_rate_mbit))


def tbf_args(d: Direction) -> str:
    """The ``tbf`` arguments for a rate-capped direction (rate, burst, limit)."""
    assert d.rate_mbit is not None
    # tbf's limit counts the bucket too; the queue is what waits beyond one burst.
    return f"rate {int(d.rate_mbit * 1e6)}bit burst {_burst_bytes(d, d.rate_mbit)} limit {limit_bytes(d)}"


def _per_flow_lines(dev: str, d: Direction, parent_mbit: Optional[float]) -> list[str]:
    assert d.flow_rate_mbit is not None
    parent_bit = int(parent_mbit * 1e6) if parent_mbit is not None else _UNCAPPED_BIT
    flow_bit = min(parent_bit, int(d.flow_rate_mbit * 1e6))
    rate_mbit = parent_bit / 1e6
    link_class = f"htb rate {parent_bit}bit ceil {parent_bit}bit burst {_burst_bytes(d, rate_mbit)}"
    lines = [
        f"qdisc replace dev {dev} root handle 1: htb default 2",
        f"class add dev {dev} parent 1: classid 1:1 {link_class}",
        # Unhashed traffic (ICMP, anything not TCP/UDP) shares the link rate.
        f"class add dev {dev} parent 1:1 classid 1:2 {link_class}",
        f"qdisc add dev {dev} parent 1:2 bfifo limit {_queue_bytes(d, rate_mbit) + _MIN_BURST}",
    ]
    flow_queue = flow_queue_bytes(d)
    for bucket in range(1, FLOW_BUCKETS + 1):
        classid = f"1:{0x100 + bucket:x}"
        lines.append(
            f"class add dev {dev} parent 1:1 classid {classid} htb rate {flow_bit}bit ceil {flow_bit}bit "
            f"burst {_MIN_BURST} cburst {_MIN_BURST}"
        )
        lines.append(f"qdisc add dev {dev} parent {classid} bfifo limit {flow_queue}")
    return lines


def _ipv4_lines(dev: str, d: Direction) -> list[str]:
    """IPv4 capped at ``ipv4_rate_mbit`` while IPv6 keeps the link rate: an HTB class per
    family, IPv4 picked by a ``protocol ip`` filter (skb->protocol, set by the TUN from the
    packet's version nibble), everything else in the default class. Each class has a FIFO of
    the direction's queue at its own rate, like tbf's ``limit``."""
    assert d.ipv4_rate_mbit is not None
    link_mbit = d.rate_mbit if d.rate_mbit is not None else _UNCAPPED_BIT / 1e6
    v4_mbit = min(d.ipv4_rate_mbit, link_mbit)
    link_bit, v4_bit = int(link_mbit * 1e6), int(v4_mbit * 1e6)
    burst, v4_burst = _burst_bytes(d, link_mbit), _burst_bytes(d, v4_mbit)
    return [
        f"qdisc replace dev {dev} root handle 1: htb default 10",
        f"class add dev {dev} parent 1: classid 1:1 htb rate {link_bit}bit ceil {link_bit}bit burst {burst} cburst {burst}",
        f"class add dev {dev} parent 1:1 classid 1:10 htb rate {link_bit}bit ceil {link_bit}bit burst {burst} cburst {burst}",
        f"qdisc add dev {dev} parent 1:10 bfifo limit {limit_bytes(d, link_mbit)}",
        f"class add dev {dev} parent 1:1 classid 1:20 htb rate {v4_bit}bit ceil {v4_bit}bit burst {v4_burst} cburst {v4_burst}",
        f"qdisc add dev {dev} parent 1:20 bfifo limit {limit_bytes(d, v4_mbit)}",
        f"filter add dev {dev} parent 1: protocol ip prio 1 u32 match u32 0 0 flowid 1:20",
    ]


def ifb_name(link_name: str) -> str:
    """The ifb device that carries ``link_name``'s ingress shaper (at most 15 characters)."""
    return f"ifb-{link_name}"


def ip_lines(scenario: Scenario) -> dict[str, list[str]]:
    """``ip -batch`` lines per host creating the ifb devices the shapers need."""
    out: dict[str, list[str]] = {}
    for lk in LINKS:
        spec = scenario.link(lk.name)
        if not spec.uses_tun:
            continue
        for name in ("up", "down"):
            if spec.direction(name).rate_mbit is not None or spec.direction(name).ipv4_rate_mbit is not None:
                _, receiver = lk.end(name)
                out.setdefault(receiver, []).extend(
                    [
                        f"link add name {ifb_name(lk.name)} type ifb",
                        f"link set dev {ifb_name(lk.name)} up",
                    ]
                )
    return out


def tc_lines(scenario: Scenario) -> dict[str, list[str]]:
    """``tc -batch`` lines per host: the shapers of every shaped direction (see module doc)."""
    out: dict[str, list[str]] = {}
    for lk in LINKS:
        spec = scenario.link(lk.name)
        for name in ("up", "down"):
            d = spec.direction(name)
            sender, receiver = lk.end(name)
            if spec.uses_tun:
                if d.rate_mbit is not None or d.ipv4_rate_mbit is not None:
                    ifb = ifb_name(lk.name)
                    out.setdefault(receiver, []).extend(
                        [
                            f"qdisc add dev {lk.name} handle ffff: ingress",
                            f"filter add dev {lk.name} parent ffff: protocol all prio 1 u32 match u32 0 0 "
                            f"action mirred egress redirect dev {ifb}",
                        ]
                    )
                    if d.ipv4_rate_mbit is None:
                        out[receiver].append(f"qdisc replace dev {ifb} root tbf {tbf_args(d)}")
                    else:
                        out[receiver].extend(_ipv4_lines(ifb, d))
                if d.flow_rate_mbit is not None:
                    # The link rate is enforced at the receiver; the per-flow classes need no parent cap.
                    out.setdefault(sender, []).extend(_per_flow_lines(lk.name, d, None))
            elif d.flow_rate_mbit is not None:
                out.setdefault(sender, []).extend(_per_flow_lines(lk.name, d, d.rate_mbit))
            elif d.rate_mbit is not None:
                out.setdefault(sender, []).append(f"qdisc replace dev {lk.name} root tbf {tbf_args(d)}")
    return out


def iptables_rules(scenario: Scenario) -> dict[str, str]:
    """An ``iptables-restore`` document per host that needs rules (others absent)."""
    raw: dict[str, list[str]] = {}
    mangle: dict[str, list[str]] = {}
    filt: dict[str, list[str]] = {}
    for lk in LINKS:
        spec = scenario.link(lk.name)
        for name in ("up", "down"):
            d = spec.direction(name)
            sender, receiver = lk.end(name)
            if d.loss_pct > 0:
                raw.setdefault(receiver, []).append(
                    f"-A PREROUTING -i {lk.name} -m statistic --mode random --probability {d.loss_pct / 100:.6f} -j DROP"
                )
            if d.flow_rate_mbit is not None:
                rules = mangle.setdefault(sender, [])
                chain = f"FLOW_{lk.name.upper()}"
                rules.insert(0, f":{chain} - [0:0]")
                rules.append(f"-A POSTROUTING -o {lk.name} -p tcp -j {chain}")
                rules.append(f"-A POSTROUTING -o {lk.name} -p udp -j {chain}")
                rules.append(
                    f"-A {chain} -j HMARK --hmark-tuple src,dst,sport,dport,proto "
                    f"--hmark-mod {FLOW_BUCKETS} --hmark-offset 1 --hmark-rnd 0x9e3779b9"
                )
                for bucket in range(1, FLOW_BUCKETS + 1):
                    rules.append(f"-A {chain} -m mark --mark {bucket} -j CLASSIFY --set-class 1:{0x100 + bucket:x}")
    for host, spec in scenario.hosts.items():
        if spec.session_limit is not None:
            filt.setdefault(host, []).append(
                f"-A FORWARD -p tcp --syn -m connlimit --connlimit-above {spec.session_limit} "
                "--connlimit-mask 0 -j REJECT --reject-with tcp-reset"
            )
    docs: dict[str, str] = {}
    for host in sorted(set(raw) | set(mangle) | set(filt)):
        parts = []
        for table, chains, rules in (
            ("raw", ("PREROUTING", "OUTPUT"), raw.get(host)),
            ("mangle", ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"), mangle.get(host)),
            ("filter", ("INPUT", "FORWARD", "OUTPUT"), filt.get(host)),
        ):
            if rules:
                parts.append(f"*{table}")
                parts.extend(f":{chain} ACCEPT [0:0]" for chain in chains)
                parts.extend(rules)
                parts.append("COMMIT")
        docs[host] = "\n".join(parts) + "\n"
    return docs


def down_lines(scenario: Scenario) -> dict[str, list[str]]:
    """``ip -batch`` lines per host cutting the links whose state is ``down``.

    The upper end is set down: packets towards it vanish silently (the forwarder's write
    fails, or the veth has no carrier), which is how a cut line looks from the school, with
    timeouts rather than ICMP errors.
    """
    out: dict[str, list[str]] = {}
    for lk in LINKS:
        if scenario.link(lk.name).state == "down":
            out.setdefault(lk.b, []).append(f"link set dev {lk.name} down")
    return out
