"""Path discovery: a traceroute to each internet target where the site file does not name the hops.

Where the site file leaves out the gateway or the board's center, nothing tells triage where
the school LAN ends and the line begins. This probe finds the routers on the way to each
internet target with TTL-limited probes (the traceroute method), then measures every hop it
found like a target: idle RTT and loss here (echo requests straight to the hop), and under
load through the bandwidth probe's :class:`~.latency.LoadedLatencySampler`, which samples
``ctx.hops`` beside the targets. Triage places a queue just before the first hop whose RTT
inflates under load, and loss where it starts (docs/triage.md, "Discovered hops").

Three probe kinds, tried in this order until one reaches the target (networks drop some):

- ``icmp``: echo requests (as ``traceroute -I``); the target answers with an echo reply;
- ``udp``: datagrams to ports 33434 + n (classic traceroute); the target answers port unreachable;
- ``tcp``: SYNs to the target's own service port (``traceroute -T``); it answers SYN-ACK or RST.

Packets are built and parsed with scapy and sent on plain raw sockets with the IP TTL set per
packet; times are the kernel's receive timestamps (as in rtt.py: scapy's own send/receive loop
adds milliseconds). Routers answer with ICMP time exceeded, which Linux and most routers rate
limit (Linux: a burst of 6, then one a second per destination), so the trace's own RTTs are few
and their losses say little: per-hop loss comes from the echo series, never from the trace.

Bounded: at most ``max_hops`` TTLs, ``probes_per_hop`` rounds, ``timeout_s`` per round and
``total_s`` for the whole probe. It needs raw sockets (root or CAP_NET_RAW); without them
``check`` says so and the run records the path as not measured, with that reason.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Optional
from urllib.parse import urlsplit

from giga_netcheck.core.errors import PermissionFailure, ProbeError
from giga_netcheck.core.i18n import Text
from giga_netcheck.core.models import DiscoveredPath, LatencySeries, PathHop, Target
from giga_netcheck.measure.failures import map_exception
from giga_netcheck.measure.probes.base import Probe, ProbeContext, ProbeOutput, in_parallel
from giga_netcheck.measure.probes.latency import measure_series
from giga_netcheck.measure.probes.rtt import _enable_timestamps, _kernel_time, _resolve, open_socket, receive

METHOD_ORDER = ("icmp", "udp", "tcp")
UDP_BASE_PORT = 33434
HOP_ROLE = "hop"
"""Role of a discovered router that is none of the site's targets."""


@dataclass(frozen=True)
class PathLimits:
    """How far and how long a trace may go."""

    max_hops: int = 16
    probes_per_hop: int = 3
    timeout_s: float = 1.0
    """Wait for one round's answers after its last probe."""
    total_s: float = 12.0
    """The whole probe: every target, every probe kind."""

    def quick(self) -> PathLimits:
        return PathLimits(max_hops=self.max_hops, probes_per_hop=2, timeout_s=0.5, total_s=5.0)


@dataclass(frozen=True)
class Reply:
    """An answer matched to the probe ``key`` that caused it."""

    key: int
    source: str
    kind: str
    """``time-exceeded``, ``echo-reply``, ``port-unreachable``, ``syn-ack``, ``rst`` or ``unreachable``."""
    reached: bool
    """The target itself answered (not a router on the way)."""
    at: float
    """Receive time (epoch seconds, the kernel's timestamp where available)."""


class Transport(ABC):
    """Sends TTL-limited probes of one kind to one address and returns matched answers."""

    method = "base"

    @abstractmethod
    def send(self, ttl: int, key: int) -> float:
        """Send probe ``key`` with IP TTL ``ttl``; the send time (epoch seconds)."""

    @abstractmethod
    def receive(self, timeout_s: float) -> Optional[Reply]:
        """The next answer to one of our probes, or None when ``timeout_s`` passed first."""

    def close(self) -> None:
        """Release sockets."""


# ----------------------------------------------------------------------------- packets (scapy)


class ProbeKind:
    """Builds probe payloads and recognises the answers to them (pure: bytes in, bytes out)."""

    method = "base"

    def __init__(self, dst: str, ident: int, port: Optional[int] = None, src: Optional[str] = None) -> None:
        from scapy.layers import inet  # scapy is slow to import: only when a trace runs

        self.inet = inet
        self.dst = dst
        self.ident = ident & 0xFFFF
        self.port = port
        self.src = src

    def payload(self, key: int) -> bytes:
        raise NotImplementedError

    def match(self, packet: bytes) -> Optional[tuple[int, str, str, bool]]:
        """(key, source address, kind, reached) for an IPv4 packet that answers one of ours."""
        inet = self.inet
        try:
            ip = inet.IP(packet)
        except Exception:  # a packet scapy cannot parse is not an answer of ours
            return None
        try:
            return self._match(ip)
        except (AttributeError, IndexError, TypeError, ValueError):
            return None

    def _match(self, ip) -> Optional[tuple[int, str, str, bool]]:
        inet = self.inet
        if ip.haslayer(inet.ICMP) and ip[inet.ICMP].type in (3, 11) and ip.haslayer(inet.IPerror):
            inner = ip[inet.IPerror]
            if inner.dst != self.dst:
                return None
            # the first 8 bytes of the quoted transport header are all a router must quote
            # (RFC 792); read them as bytes, since scapy leaves a partly quoted TCP header raw
            quoted = bytes(inner.payload)[:8]
            if inner.proto != self.PROTO or len(quoted) < 8:
                return None
            key = self._quoted_key(quoted)
            if key is None:
                return None
            icmp = ip[inet.ICMP]
            if icmp.type == 11:
                return key, ip.src, "time-exceeded", False
            kind = "port-unreachable" if icmp.code == 3 else "unreachable"
            return key, ip.src, kind, ip.src == self.dst
        return self._direct(ip)

    PROTO = 0

    def _quoted_key(self, quoted: bytes) -> Optional[int]:
        raise NotImplementedError

    def _direct(self, ip) -> Optional[tuple[int, str, str, bool]]:
        return None


class IcmpEchoKind(ProbeKind):
    method = "icmp"

    def payload(self, key: int) -> bytes:
        return bytes(self.inet.ICMP(type=8, id=self.ident, seq=key & 0xFFFF) / (b"giga-netcheck path" + b"\0" * 20))

    PROTO = 1

    def _quoted_key(self, quoted: bytes) -> Optional[int]:
        kind, _, _, ident, seq = struct.unpack("!BBHHH", quoted)
        return seq if kind == 8 and ident == self.ident else None

    def _direct(self, ip) -> Optional[tuple[int, str, str, bool]]:
        inet = self.inet
        if ip.haslayer(inet.ICMP) and not ip.haslayer(inet.IPerror):
            icmp = ip[inet.ICMP]
            if icmp.type == 0 and icmp.id == self.ident and ip.src == self.dst:
                return icmp.seq, ip.src, "echo-reply", True
        return None


class UdpKind(ProbeKind):
    method = "udp"

    def payload(self, key: int) -> bytes:
        # no IP layer under it: scapy leaves the checksum 0 ("none", valid for UDP over IPv4)
        return bytes(self.inet.UDP(sport=self.ident, dport=UDP_BASE_PORT + key) / (b"giga-netcheck path" + b"\0" * 14))

    PROTO = 17

    def _quoted_key(self, quoted: bytes) -> Optional[int]:
        sport, dport, _, _ = struct.unpack("!HHHH", quoted)
        if sport != self.ident or dport < UDP_BASE_PORT:
            return None
        return dport - UDP_BASE_PORT


class TcpSynKind(ProbeKind):
    method = "tcp"

    def __init__(self, dst: str, ident: int, port: Optional[int] = None, src: Optional[str] = None) -> None:
        super().__init__(dst, ident, port, src)
        # a random base: a SYN whose sequence number falls behind a TIME_WAIT the target still holds
        # for the same port pair gets an ACK instead of a SYN-ACK
        self.SEQ_BASE = int.from_bytes(os.urandom(4), "big") & 0xFFFF0000

    def payload(self, key: int) -> bytes:
        inet = self.inet
        # TCP's checksum covers a pseudo-header with both addresses: build under an IP layer
        pkt = inet.IP(src=self.src, dst=self.dst) / inet.TCP(
            sport=self.ident, dport=self.port or 80, flags="S", seq=self.SEQ_BASE + key, window=1024
        )
        return bytes(pkt)[20:]

    PROTO = 6

    def _quoted_key(self, quoted: bytes) -> Optional[int]:
        sport, dport, seq = struct.unpack("!HHI", quoted)
        if sport != self.ident or dport != (self.port or 80):
            return None
        return (seq - self.SEQ_BASE) & 0xFFFFFFFF

    def _direct(self, ip) -> Optional[tuple[int, str, str, bool]]:
        inet = self.inet
        if ip.haslayer(inet.TCP) and not ip.haslayer(inet.ICMP) and ip.src == self.dst:
            tcp = ip[inet.TCP]
            if tcp.sport != (self.port or 80) or tcp.dport != self.ident:
                return None
            flags = int(tcp.flags)
            if flags & 0x12 == 0x12:
                return (tcp.ack - 1 - self.SEQ_BASE) & 0xFFFFFFFF, ip.src, "syn-ack", True
            if flags & 0x04:
                return (tcp.ack - 1 - self.SEQ_BASE) & 0xFFFFFFFF, ip.src, "rst", True
        return None


KINDS: dict[str, type[ProbeKind]] = {k.method: k for k in (IcmpEchoKind, UdpKind, TcpSynKind)}


# ----------------------------------------------------------------------------- raw sockets


def _raw_socket(proto: int) -> socket.socket:
    return open_socket(socket.SOCK_RAW, proto, "raw sockets (needs root or CAP_NET_RAW)")


def raw_sockets_allowed() -> Optional[str]:
    """None when this process may open raw sockets, else why not."""
    try:
        _raw_socket(socket.IPPROTO_ICMP).close()
    except ProbeError as exc:
        return str(exc)
    except OSError as exc:
        return f"raw sockets unavailable: {exc}"
    return None


def _source_for(dst: str) -> str:
    """The address this host sends from towards ``dst`` (no packet leaves: UDP connect only routes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((dst, 9))
        return s.getsockname()[0]


class RawTransport(Transport):
    """Probes on raw sockets: ICMP answers on a raw ICMP socket, TCP answers on a raw TCP one."""

    def __init__(self, method: str, dst: str, port: Optional[int] = None) -> None:
        self.method = method
        self.dst = dst
        self._socks: list[socket.socket] = []
        self._reserve: Optional[socket.socket] = None
        try:
            self.icmp = _raw_socket(socket.IPPROTO_ICMP)
            self._socks.append(self.icmp)
            if method == "icmp":
                self.out = self.icmp
                ident = _ident()
            else:
                # hold the source port with an ordinary socket, so no connection of this host
                # shares it and the kernel answers the target's SYN-ACK with a reset
                kind = socket.SOCK_DGRAM if method == "udp" else socket.SOCK_STREAM
                self._reserve = socket.socket(socket.AF_INET, kind)
                self._reserve.bind(("0.0.0.0", 0))
                ident = self._reserve.getsockname()[1]
                self.out = _raw_socket(socket.IPPROTO_UDP if method == "udp" else socket.IPPROTO_TCP)
                self._socks.append(self.out)
            self.kind = KINDS[method](dst, ident, port, _source_for(dst) if method == "tcp" else None)
            for s in self._socks:
                _enable_timestamps(s)
                s.setblocking(False)
            if method == "tcp":
                # a raw TCP socket gets a copy of every TCP segment of the host: a bulk transfer
                # elsewhere would overflow its buffer and drop the one SYN-ACK we wait for
                _only_from(self.out, dst, port or 80, ident)
                _drain(self.out)
            # only the ICMP socket (and, for tcp, the TCP one) carries answers
            self._listen = [self.icmp] + ([self.out] if method == "tcp" else [])
        except BaseException:
            self.close()
            raise

    def send(self, ttl: int, key: int) -> float:
        self.out.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        data = self.kind.payload(key)
        at = time.time()
        try:
            self.out.sendto(data, (self.dst, 0))
        except OSError as exc:
            if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
                return at  # no route: the probe is lost, as on the wire
            raise map_exception(exc) from exc
        return at

    def receive(self, timeout_s: float) -> Optional[Reply]:
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select(self._listen, [], [], left)
            if not ready:
                return None
            for s in ready:
                try:
                    data, anc, _ = receive(s, 2048)
                except (BlockingIOError, InterruptedError):
                    continue
                got = self.kind.match(data)
                if got is not None:
                    key, src, kind, reached = got
                    return Reply(key, src, kind, reached, _kernel_time(anc) or time.time())

    def close(self) -> None:
        for s in self._socks + ([self._reserve] if self._reserve else []):
            try:
                s.close()
            except OSError:
                pass
        self._socks = []
        self._reserve = None


SO_ATTACH_FILTER = 26  # Linux (asm-generic/socket.h); Python does not export it


def _only_from(sock: socket.socket, src: str, sport: int, dport: int) -> None:
    """Attach a classic BPF filter: keep TCP segments from ``src``:``sport`` to our ``dport``."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes  # only for the Linux socket filter below (struct sock_fprog)

    addr = struct.unpack("!I", socket.inet_aton(src))[0]
    prog = [
        (0x20, 0, 0, 12),  # A = source address
        (0x15, 0, 5, addr),  # != src: drop
        (0xB1, 0, 0, 0),  # X = IP header length
        (0x48, 0, 0, 0),  # A = TCP source port
        (0x15, 0, 3, sport),  # != the target's port: drop
        (0x48, 0, 0, 2),  # A = TCP destination port
        (0x15, 0, 1, dport),  # != ours: drop
        (0x06, 0, 0, 0xFFFF),  # keep
        (0x06, 0, 0, 0),  # drop
    ]
    buf = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in prog))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", len(prog), ctypes.addressof(buf)))
    except OSError:
        pass  # without the filter every segment is parsed and most ignored: slower, still right


def _drain(sock: socket.socket) -> None:
    """Discard what arrived before the filter was attached."""
    for _ in range(10_000):
        try:
            sock.recv(65535)
        except (BlockingIOError, InterruptedError, OSError):
            return


_ident_lock = threading.Lock()
_ident_next = [(os.getpid() * 7919) & 0xFFFF]


def _ident() -> int:
    with _ident_lock:
        _ident_next[0] = (_ident_next[0] + 1) & 0xFFFF
        return _ident_next[0] or 1


# ----------------------------------------------------------------------------- the trace


@dataclass(frozen=True)
class Trace:
    method: str
    reached: bool
    hops: tuple[PathHop, ...]
    """TTL 1 up to the target (or the last TTL that answered)."""


def trace(tx: Transport, limits: PathLimits, *, deadline: float, stop: Optional[threading.Event] = None) -> Trace:
    """Rounds of probes at every TTL (all TTLs of a round at once, as mtr does); never raises for
    lost answers. After the target answers, later rounds stop at the target's TTL."""
    stop = stop or threading.Event()
    rtts: dict[int, list[Optional[float]]] = {}
    who: dict[int, Counter] = {}
    kinds: dict[int, Counter] = {}
    dest_ttl: Optional[int] = None
    key = 0
    for _ in range(limits.probes_per_hop):
        if stop.is_set() or time.monotonic() >= deadline:
            break
        top = dest_ttl or limits.max_hops
        pending: dict[int, tuple[int, float]] = {}
        for ttl in range(1, top + 1):
            key += 1
            pending[key] = (ttl, tx.send(ttl, key))
        end = min(deadline, time.monotonic() + limits.timeout_s)
        while pending and not stop.is_set():
            if dest_ttl is not None and all(t > dest_ttl for t, _ in pending.values()):
                break  # every TTL up to the target has answered: the rest would only repeat it
            left = end - time.monotonic()
            if left <= 0:
                break
            r = tx.receive(left)
            if r is None:
                break
            if r.key not in pending:
                continue  # a late answer from an earlier round
            ttl, sent = pending.pop(r.key)
            rtts.setdefault(ttl, []).append(round(max(0.0, (r.at - sent) * 1000.0), 4))
            who.setdefault(ttl, Counter())[r.source] += 1
            kinds.setdefault(ttl, Counter())[r.kind] += 1
            if r.reached and (dest_ttl is None or ttl < dest_ttl):
                dest_ttl = ttl
        for ttl, _ in pending.values():
            if dest_ttl is None or ttl <= dest_ttl:
                rtts.setdefault(ttl, []).append(None)
    last = dest_ttl or max((t for t in who), default=0)
    hops = tuple(
        PathHop(
            ttl=t,
            address=who[t].most_common(1)[0][0] if t in who else None,
            reply=kinds[t].most_common(1)[0][0] if t in kinds else None,
            trace_rtts_ms=tuple(rtts.get(t, ())),
            other_addresses=tuple(sorted(a for a in who.get(t, {}) if a != who[t].most_common(1)[0][0])) if t in who else (),
        )
        for t in range(1, last + 1)
    )
    return Trace(tx.method, dest_ttl is not None, hops)


def discover(
    host: str,
    port: Optional[int],
    limits: PathLimits,
    *,
    deadline: float,
    stop: Optional[threading.Event] = None,
    open_transport: Callable[[str, str, Optional[int]], Transport] = RawTransport,
    methods: Iterable[str] = METHOD_ORDER,
) -> tuple[Optional[Trace], list[str]]:
    """Try each probe kind until one reaches ``host``; the best trace and what each attempt gave."""
    addr = _resolve(host)
    attempts: list[str] = []
    best: Optional[Trace] = None
    for method in methods:
        if (stop and stop.is_set()) or time.monotonic() >= deadline:
            attempts.append(f"{method}: not tried (time limit)")
            continue
        try:
            tx = open_transport(method, addr, port)
        except ProbeError as exc:
            attempts.append(f"{method}: {exc}")
            if isinstance(exc, PermissionFailure):
                break
            continue
        try:
            t = trace(tx, limits, deadline=deadline, stop=stop)
        except ProbeError as exc:
            attempts.append(f"{method}: {exc}")
            continue
        finally:
            tx.close()
        answered = sum(1 for h in t.hops if h.address)
        attempts.append(
            f"{method}: "
            + (f"reached in {len(t.hops)} hops" if t.reached else f"not reached within {limits.max_hops} hops ({answered} answered)")
        )
        if best is None or (t.reached and not best.reached) or (not best.reached and answered > sum(1 for h in best.hops if h.address)):
            best = t
        if t.reached:
            break
    return best, attempts


# ----------------------------------------------------------------------------- the probe


def _port_of(t: Target) -> Optional[int]:
    if not t.url:
        return None
    parts = urlsplit(t.url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _named(site_gateway: Optional[str], site_center: Optional[str]) -> bool:
    return site_gateway not in (None, "auto") and bool(site_center)


def name_hops(trace_: Trace, target: Target, targets: list[Target], known_hops: dict[str, Target]) -> tuple[PathHop, ...]:
    """Give every answering hop a name: the configured target it is (same address), else
    ``hop-<ttl>``; role ``gateway`` for TTL 1 when no gateway is known, else ``hop``."""
    by_addr = {t.host: t for t in targets}
    has_gateway = any(t.role == "gateway" for t in targets)
    out = []
    for h in trace_.hops:
        if h.address is None:
            out.append(h)
            continue
        if h.address == target.host or (trace_.reached and h.ttl == len(trace_.hops)):
            out.append(replace(h, name=target.name, role=target.role))
        elif h.address in by_addr:
            t = by_addr[h.address]
            out.append(replace(h, name=t.name, role=t.role))
        elif h.address in known_hops:
            t = known_hops[h.address]
            out.append(replace(h, name=t.name, role=t.role))
        else:
            role = "gateway" if h.ttl == 1 and not has_gateway else HOP_ROLE
            name = f"hop-{h.ttl}"
            if any(k.name == name for k in known_hops.values()):
                name = f"hop-{h.ttl}-{h.address}"
            known_hops[h.address] = Target(name, role, h.address)
            out.append(replace(h, name=name, role=role))
    return tuple(out)


class PathProbe(Probe):
    """Traceroute to each internet target where the site file does not name gateway and center."""

    name = "path"

    def __init__(
        self,
        limits: Optional[PathLimits] = None,
        open_transport: Callable[..., Transport] = RawTransport,
        permitted: Callable[[], Optional[str]] = raw_sockets_allowed,
    ) -> None:
        self.limits = limits
        self.open_transport = open_transport
        self.permitted = permitted

    @staticmethod
    def _needed(ctx: ProbeContext) -> bool:
        return not _named(ctx.site.gateway, ctx.site.center)

    def check(self, ctx: ProbeContext) -> Optional[str]:
        if not self._needed(ctx) or not [t for t in ctx.targets if t.role == "internet"]:
            return None  # run() records the skip: nothing is missing from the result
        why = self.permitted()
        return Text("reason.path_no_raw_sockets", error=why) if why else None

    def run(self, ctx: ProbeContext) -> ProbeOutput:
        out = ProbeOutput()
        internet = [t for t in ctx.targets if t.role == "internet"]
        if not self._needed(ctx):
            out.status, out.reason = "skipped", Text("reason.path_not_needed")
            return out
        if not internet:
            out.status, out.reason = "skipped", Text("reason.path_no_internet")
            return out
        # --quick shortens the latency timeout to 0.5 s: the trace follows it
        limits = self.limits or (PathLimits().quick() if ctx.settings.latency_timeout_s <= 0.5 else PathLimits())
        deadline = time.monotonic() + limits.total_s
        known: dict[str, Target] = {}
        paths: list[DiscoveredPath] = []
        ctx.progress.step("path discovery (traceroute)", total=limits.total_s)
        for t in internet:
            if ctx.stop.is_set():
                break
            t0 = time.monotonic()
            try:
                got, attempts = discover(t.host, _port_of(t), limits, deadline=deadline, stop=ctx.stop, open_transport=self.open_transport)
                error = kind = None
            except ProbeError as exc:
                got, attempts, error, kind = None, [], str(exc), exc.kind
            except Exception as exc:  # a failure is a result
                mapped = map_exception(exc)
                got, attempts, error, kind = None, [], str(mapped), mapped.kind
            hops = name_hops(got, t, ctx.targets, known) if got else ()
            if got is None and error is None:
                error, kind = "; ".join(attempts) or "no probe kind could be used", "error"
            paths.append(
                DiscoveredPath(
                    target=t.name,
                    host=t.host,
                    method=got.method if got else None,
                    reached=bool(got and got.reached),
                    hops=hops,
                    attempts=tuple(attempts),
                    max_hops=limits.max_hops,
                    probes_per_hop=limits.probes_per_hop,
                    seconds=round(time.monotonic() - t0, 3),
                    error=error,
                    error_kind=kind,
                )
            )
        new = list(known.values())
        out.latency = self._idle(ctx, new)
        ctx.hops.extend(new)  # the bandwidth probe's sampler measures them under load
        out.paths = paths
        if ctx.stop.is_set():
            out.status, out.reason, out.reason_kind = "partial", Text("reason.interrupted"), "interrupted"
        elif paths and not any(p.hops for p in paths):
            out.status = "failed"
            out.reason = Text("reason.path_failed", failures="; ".join(f"{p.target}: {p.error or '; '.join(p.attempts)}" for p in paths))
            out.reason_kind = next((p.error_kind for p in paths if p.error_kind), None)
        elif any(not p.reached for p in paths):
            out.status = "partial"
            out.reason = Text(
                "reason.path_not_reached", failures="; ".join(f"{p.target} ({'; '.join(p.attempts)})" for p in paths if not p.reached)
            )
        return out

    @staticmethod
    def _idle(ctx: ProbeContext, hops: list[Target]) -> list[LatencySeries]:
        """Idle RTT and loss to each discovered hop, by echo straight to it, all in parallel."""
        s = ctx.settings
        results: dict[str, LatencySeries] = {}

        def one(t: Target) -> None:
            results[t.name] = measure_series(t, ctx, phase="idle", count=s.latency_count, interval_s=s.latency_interval_s)

        in_parallel(one, [(t,) for t in hops])
        return [results[t.name] for t in hops if t.name in results]


def attach_hop_stats(paths: Iterable[DiscoveredPath], latency: Iterable[LatencySeries]) -> tuple[DiscoveredPath, ...]:
    """Copy each named hop's idle stats and its worst loaded stats (largest p50) into the path (pure)."""
    latency = list(latency)
    out = []
    for p in paths:
        hops = []
        for h in p.hops:
            if not h.name:
                hops.append(h)
                continue
            idle = next((s for s in latency if s.target == h.name and s.phase == "idle"), None)
            loaded = [
                s for s in latency if s.target == h.name and s.phase != "idle" and s.stats.p50_ms is not None and s.stats.received >= 3
            ]
            worst = max(loaded, key=lambda s: s.stats.p50_ms or 0.0, default=None)
            hops.append(
                replace(
                    h, idle=idle.stats if idle else None, loaded=worst.stats if worst else None, loaded_phase=worst.phase if worst else None
                )
            )
        out.append(replace(p, hops=tuple(hops)))
    return tuple(out)
