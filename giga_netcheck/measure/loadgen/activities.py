"""What an emulated device does during a ramp step, and when it counts as served.

Each activity is a small class: ``run`` drives one device until the step ends (the caller
cancels it then), ``finish`` settles what was in flight at the end, ``met`` is the pass
condition, and ``summary`` reduces a step's devices to a few figures. Figures come from
domain.md section 3 (MEXT, YouTube, Zoom/Teams); docs/load.md lists them with the conditions.
"""

from __future__ import annotations

import asyncio
import os
import random
import struct
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from giga_netcheck.core.profile import Profile
from giga_netcheck.core.protocol import UDP_MAGIC
from giga_netcheck.core.stats import jitter, percentile, rounded
from giga_netcheck.measure.loadgen.client import HttpConn, LoadError, Meter, classify, within

CONNECT_TIMEOUT_S = 3.0
"""A SYN a session table silently drops: counted as a ``timeout`` after this long."""
MAX_EXAMPLES = 3


@dataclass
class StepEnv:
    """What every device of one step shares: the server, the clock and the byte meter."""

    host: str
    port: int
    udp_port: Optional[int]
    start: float
    """Loop time at which the step starts."""
    end: float
    meter: Meter
    self_rtts_ms: list[float] = field(default_factory=list)
    """Time to first byte on busy device connections (the draft's 'self' probes), bounded."""
    max_samples: int = 2000

    def sample(self, seconds: float) -> None:
        if len(self.self_rtts_ms) < self.max_samples:
            self.self_rtts_ms.append(seconds * 1000.0)


@dataclass
class Device:
    """One emulated pupil's device: its own connections, its own counters."""

    index: int
    conns: list[HttpConn]
    offset_s: float = 0.0
    errors: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def fail(self, exc: BaseException) -> str:
        kind = classify(exc)
        self.errors[kind] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{kind}: {type(exc).__name__}: {exc}"[:200])
        return kind

    def close(self, abort: bool = False) -> None:
        for c in self.conns:
            c.abort() if abort else c.close()
        for fn in self.closers:
            fn()


async def request(conn: HttpConn, env: StepEnv, method: str, path: str, upload_bytes: int = 0):
    """A request with a connect timeout; records its TTFB as a loaded-connection RTT sample."""
    if not conn.is_open:
        await within(conn.open(), CONNECT_TIMEOUT_S)
    ans = await conn.request(method, path, upload_bytes)
    env.sample(ans.ttfb_s)
    return ans


async def sleep_until(when: float) -> None:
    delay = when - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


class Activity(ABC):
    """One kind of classroom traffic with its pass condition."""

    kind = "base"
    connections = 1
    """TCP connections each device keeps open (browsers use several; a player one)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Parameters and the pass condition, for the result."""

    def offset(self, rng: random.Random) -> float:
        """When this device starts within the step (desynchronised devices by default)."""
        return rng.uniform(0.0, 1.0)

    @abstractmethod
    async def run(self, dev: Device, env: StepEnv) -> None:
        """Drive the device until cancelled at the step's end."""

    def finish(self, dev: Device, env: StepEnv, now: float) -> None:
        """Settle what was in flight when the step ended."""

    @abstractmethod
    def met(self, dev: Device) -> Optional[bool]:
        """Whether the device's activity was served; None when it had nothing to judge."""

    def summary(self, devices: list[Device]) -> dict[str, Any]:
        return {}


# ------------------------------------------------------------------------------- video


class Video(Activity):
    """Adaptive-streaming-like playback at a fixed bitrate: segments of ``segment_s`` seconds,
    each requested one segment duration before its play time; a segment that arrives after its play time is a
    stall (the player then rebuffers: its clock shifts by the lateness, so one bad spell is
    one stall, not a cascade). Met: no stall and no error."""

    kind = "video"
    DEFAULT_BITRATE_MBPS = 2.5
    """When the site file names the activity without a rate: YouTube's 720p figure (domain.md section 3)."""

    def __init__(self, bitrate_mbps: float, segment_s: float = 2.0) -> None:
        self.bitrate_mbps = bitrate_mbps
        self.segment_s = segment_s
        self.segment_bytes = max(1, int(bitrate_mbps * 1e6 * segment_s / 8))

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "bitrate_mbps": self.bitrate_mbps,
            "segment_s": self.segment_s,
            "segment_bytes": self.segment_bytes,
            "connections_per_device": self.connections,
            "pass": "every segment arrives before its play time (no stall) and no connection error",
        }

    def offset(self, rng: random.Random) -> float:
        return rng.uniform(0.0, min(1.0, self.segment_s / 2))

    async def run(self, dev: Device, env: StepEnv) -> None:
        loop = asyncio.get_running_loop()
        m = dev.metrics
        m.update(segments=0, stalls=0, late_s=0.0, pending_play_at=None)
        seg = self.segment_s
        clock = env.start + dev.offset_s
        await sleep_until(clock)
        done_prev = clock
        path = f"/download?bytes={self.segment_bytes}"
        k = 0
        while True:
            play_at = clock + seg * (k + 1)  # one segment of start-up delay
            if play_at > env.end:
                return
            # a segment is requested one segment duration before it plays: the steady demand is
            # the bitrate itself (no start-up burst that a short step would mistake for capacity)
            await sleep_until(max(done_prev, play_at - seg))
            m["pending_play_at"] = play_at
            try:
                await request(dev.conns[0], env, "GET", path)
            except Exception as exc:  # noqa: BLE001 - every failure is data
                dev.fail(exc)
                m["pending_play_at"] = None
                m["stalls"] += 1
                m["segments"] += 1
                done_prev = max(loop.time() + 0.2, play_at)  # no hot retry loop against a refusing box
                clock += max(0.0, done_prev - play_at)
                k += 1
                continue
            now = loop.time()
            m["pending_play_at"] = None
            m["segments"] += 1
            if now > play_at:
                m["stalls"] += 1
                m["late_s"] += now - play_at
                clock += now - play_at
            done_prev = now
            k += 1

    def finish(self, dev: Device, env: StepEnv, now: float) -> None:
        due = dev.metrics.get("pending_play_at")
        if due is not None and now > due:
            dev.metrics["stalls"] += 1
            dev.metrics["segments"] += 1
            dev.metrics["late_s"] += now - due
        dev.metrics.pop("pending_play_at", None)

    def met(self, dev: Device) -> Optional[bool]:
        m = dev.metrics
        if not m.get("segments") and not dev.errors:
            return None
        return m.get("stalls", 0) == 0 and not dev.errors

    def summary(self, devices: list[Device]) -> dict[str, Any]:
        segs = sum(d.metrics.get("segments", 0) for d in devices)
        stalls = sum(d.metrics.get("stalls", 0) for d in devices)
        return {
            "segments": segs,
            "stalls": stalls,
            "devices_with_stalls": sum(1 for d in devices if d.metrics.get("stalls")),
            "stall_pct": round(100.0 * stalls / segs, 2) if segs else None,
        }


# ---------------------------------------------------------------------------- web apps


class WebApps(Activity):
    """Cloud apps in a browser: a page is a burst of small objects over the device's two
    connections plus one small upload (saving work); then the pupil reads for a while.
    Met: every page loads within ``page_limit_s`` and no connection error."""

    kind = "web-apps"
    connections = 2

    def __init__(
        self, objects: int = 8, object_bytes: int = 25_000, upload_bytes: int = 10_000, think_s: float = 3.0, page_limit_s: float = 2.0
    ) -> None:
        self.objects, self.object_bytes, self.upload_bytes = objects, object_bytes, upload_bytes
        self.think_s, self.page_limit_s = think_s, page_limit_s

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "objects_per_page": self.objects,
            "object_bytes": self.object_bytes,
            "upload_bytes": self.upload_bytes,
            "think_s": self.think_s,
            "page_limit_s": self.page_limit_s,
            "connections_per_device": self.connections,
            "pass": f"every page (objects + upload) loads within {self.page_limit_s:g} s and no connection error",
        }

    def offset(self, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.think_s, 1.5))  # pupils do not all click in the same millisecond

    async def _share(self, conn: HttpConn, env: StepEnv, objects: int, upload: bool) -> None:
        for _ in range(objects):
            await request(conn, env, "GET", f"/download?bytes={self.object_bytes}")
        if upload:
            await request(conn, env, "POST", "/upload", self.upload_bytes)

    async def run(self, dev: Device, env: StepEnv) -> None:
        loop = asyncio.get_running_loop()
        rng = random.Random(dev.index)
        m = dev.metrics
        m.update(pages=0, slow=0, page_s=[], page_started=None)
        await sleep_until(env.start + dev.offset_s)
        n = len(dev.conns)
        while True:
            t0 = loop.time()
            if t0 + self.page_limit_s > env.end:
                return
            m["page_started"] = t0
            shares = [self.objects // n + (1 if i < self.objects % n else 0) for i in range(n)]
            outcomes = await asyncio.gather(
                *(self._share(c, env, s, i == 0) for i, (c, s) in enumerate(zip(dev.conns, shares))), return_exceptions=True
            )
            failed = False
            for o in outcomes:
                if isinstance(o, BaseException):
                    if isinstance(o, asyncio.CancelledError):
                        raise o
                    dev.fail(o)
                    failed = True
            took = loop.time() - t0
            m["page_started"] = None
            m["pages"] += 1
            m["page_s"].append(round(took, 4))
            if failed or took > self.page_limit_s:
                m["slow"] += 1
            await sleep_until(max(t0 + self.think_s * rng.uniform(0.5, 1.5), loop.time() + (0.2 if failed else 0.0)))

    def finish(self, dev: Device, env: StepEnv, now: float) -> None:
        started = dev.metrics.get("page_started")
        if started is not None and now - started > self.page_limit_s:
            dev.metrics["pages"] += 1
            dev.metrics["slow"] += 1
            dev.metrics["page_s"].append(round(now - started, 4))
        dev.metrics.pop("page_started", None)

    def met(self, dev: Device) -> Optional[bool]:
        if not dev.metrics.get("pages") and not dev.errors:
            return None
        return dev.metrics.get("slow", 0) == 0 and not dev.errors

    def summary(self, devices: list[Device]) -> dict[str, Any]:
        times = [t for d in devices for t in d.metrics.get("page_s", ())]
        return {
            "pages": len(times),
            "slow_pages": sum(d.metrics.get("slow", 0) for d in devices),
            "page_load_p50_s": rounded(percentile(times, 50), 4),
            "page_load_p95_s": rounded(percentile(times, 95), 4),
        }


# --------------------------------------------------------------------------- textbook


class Textbook(Activity):
    """A digital-textbook page turn: the whole class at the same moment, about 2 MB each,
    which must arrive within 3 s (MEXT's estimate, domain.md section 3). Met: every turn in time."""

    kind = "textbook"

    def __init__(self, page_bytes: int = 2_000_000, limit_s: float = 3.0, every_s: float = 10.0) -> None:
        self.page_bytes, self.limit_s, self.every_s = page_bytes, limit_s, every_s

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "page_bytes": self.page_bytes,
            "limit_s": self.limit_s,
            "every_s": self.every_s,
            "connections_per_device": self.connections,
            "pass": f"every page turn ({self.page_bytes / 1e6:g} MB, whole class at once) arrives within {self.limit_s:g} s",
        }

    def offset(self, rng: random.Random) -> float:
        return 0.2  # all at once: that is the point

    async def run(self, dev: Device, env: StepEnv) -> None:
        loop = asyncio.get_running_loop()
        m = dev.metrics
        m.update(turns=0, late=0, turn_s=[], turn_started=None)
        j = 0
        while True:
            t0 = env.start + dev.offset_s + j * self.every_s
            if t0 + self.limit_s > env.end:
                return
            await sleep_until(t0)
            m["turn_started"] = t0
            ok = True
            try:
                await request(dev.conns[0], env, "GET", f"/download?bytes={self.page_bytes}")
            except Exception as exc:  # noqa: BLE001
                dev.fail(exc)
                ok = False
            took = loop.time() - t0
            m["turn_started"] = None
            m["turns"] += 1
            m["turn_s"].append(round(took, 4))
            if not ok or took > self.limit_s:
                m["late"] += 1
            j += 1

    def finish(self, dev: Device, env: StepEnv, now: float) -> None:
        started = dev.metrics.get("turn_started")
        if started is not None and now - started > self.limit_s:
            dev.metrics["turns"] += 1
            dev.metrics["late"] += 1
            dev.metrics["turn_s"].append(round(now - started, 4))
        dev.metrics.pop("turn_started", None)

    def met(self, dev: Device) -> Optional[bool]:
        if not dev.metrics.get("turns") and not dev.errors:
            return None
        return dev.metrics.get("late", 0) == 0 and not dev.errors

    def summary(self, devices: list[Device]) -> dict[str, Any]:
        times = [t for d in devices for t in d.metrics.get("turn_s", ())]
        return {
            "turns": len(times),
            "late_turns": sum(d.metrics.get("late", 0) for d in devices),
            "turn_p50_s": rounded(percentile(times, 50), 4),
            "turn_p95_s": rounded(percentile(times, 95), 4),
        }


# -------------------------------------------------------------------------------- CBT


class Cbt(Activity):
    """A MEXCBT-like computer-based test: for each item the device asks for the item (a small
    request), downloads its image, and after answering uploads the answer (a speaking test's
    recording). Sizes follow MEXT's minimum per student for the MEXCBT speaking test (2023,
    domain.md section 3): 0.5 Mbit/s down and 0.6 Mbit/s up, spread over one item every
    ``every_s`` seconds. The class starts together; each pupil then keeps their own pace.
    Met: every item (request + image) appears within ``item_limit_s`` and every answer is
    stored within ``answer_limit_s``, with no connection error. No limit is published: 3 s is
    MEXT's page-turn figure (domain.md section 3), an estimate."""

    kind = "cbt"
    DEFAULT_DOWN_MBPS = 0.5
    DEFAULT_UP_MBPS = 0.6
    """MEXCBT speaking test minimum per student (2023, domain.md section 3), when no profile says."""

    def __init__(
        self,
        down_mbps: float = DEFAULT_DOWN_MBPS,
        up_mbps: float = DEFAULT_UP_MBPS,
        every_s: float = 4.0,
        request_bytes: int = 2_000,
        item_limit_s: float = 3.0,
        answer_limit_s: float = 3.0,
    ) -> None:
        self.down_mbps, self.up_mbps, self.every_s = down_mbps, up_mbps, every_s
        self.request_bytes = request_bytes
        self.image_bytes = max(1, int(down_mbps * 1e6 * every_s / 8) - request_bytes)
        self.answer_bytes = max(1, int(up_mbps * 1e6 * every_s / 8))
        self.item_limit_s, self.answer_limit_s = item_limit_s, answer_limit_s

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "down_mbps": self.down_mbps,
            "up_mbps": self.up_mbps,
            "every_s": self.every_s,
            "request_bytes": self.request_bytes,
            "image_bytes": self.image_bytes,
            "answer_bytes": self.answer_bytes,
            "item_limit_s": self.item_limit_s,
            "answer_limit_s": self.answer_limit_s,
            "connections_per_device": self.connections,
            "pass": (
                f"every item (request + {self.image_bytes / 1e3:.0f} kB image) appears within {self.item_limit_s:g} s, "
                f"every answer ({self.answer_bytes / 1e3:.0f} kB upload) is stored within {self.answer_limit_s:g} s, "
                "and no connection error"
            ),
        }

    def offset(self, rng: random.Random) -> float:
        return rng.uniform(0.0, 1.0)  # "begin": the whole class within a second

    async def run(self, dev: Device, env: StepEnv) -> None:
        loop = asyncio.get_running_loop()
        rng = random.Random(dev.index)
        m = dev.metrics
        m.update(items=0, late_items=0, item_s=[], answers=0, late_answers=0, answer_s=[], started=None, phase=None)
        conn = dev.conns[0]
        t0 = env.start + dev.offset_s
        while True:
            if t0 + self.item_limit_s > env.end:
                return
            await sleep_until(t0)
            m["started"], m["phase"] = t0, "item"
            ok = True
            try:
                await request(conn, env, "GET", f"/download?bytes={self.request_bytes}")
                await request(conn, env, "GET", f"/download?bytes={self.image_bytes}")
            except Exception as exc:  # noqa: BLE001 - every failure is data
                dev.fail(exc)
                ok = False
            took = loop.time() - t0
            m["started"] = m["phase"] = None
            m["items"] += 1
            m["item_s"].append(round(took, 4))
            if not ok or took > self.item_limit_s:
                m["late_items"] += 1
            # the pupil answers at their own pace, then the answer goes up
            pace = self.every_s * rng.uniform(0.75, 1.25)
            a0 = max(loop.time() + (0.2 if not ok else 0.0), t0 + pace / 2)
            if ok and a0 < env.end:  # an answer still in time when the step ends is not judged (finish)
                await sleep_until(a0)
                m["started"], m["phase"] = a0, "answer"
                try:
                    await request(conn, env, "POST", "/upload", self.answer_bytes)
                    good = True
                except Exception as exc:  # noqa: BLE001
                    dev.fail(exc)
                    good = False
                took = loop.time() - a0
                m["started"] = m["phase"] = None
                m["answers"] += 1
                m["answer_s"].append(round(took, 4))
                if not good or took > self.answer_limit_s:
                    m["late_answers"] += 1
            t0 = max(t0 + pace, loop.time())

    def finish(self, dev: Device, env: StepEnv, now: float) -> None:
        m = dev.metrics
        started, phase = m.pop("started", None), m.pop("phase", None)
        if started is None:
            return
        limit = self.item_limit_s if phase == "item" else self.answer_limit_s
        if now - started > limit:  # overdue when the step ended: late; still in time: not judged
            key = "items" if phase == "item" else "answers"
            m[key] += 1
            m["late_" + key] += 1
            m[("item" if phase == "item" else "answer") + "_s"].append(round(now - started, 4))

    def met(self, dev: Device) -> Optional[bool]:
        m = dev.metrics
        if not m.get("items") and not dev.errors:
            return None
        return m.get("late_items", 0) == 0 and m.get("late_answers", 0) == 0 and not dev.errors

    def summary(self, devices: list[Device]) -> dict[str, Any]:
        items = [t for d in devices for t in d.metrics.get("item_s", ())]
        answers = [t for d in devices for t in d.metrics.get("answer_s", ())]
        return {
            "items": len(items),
            "late_items": sum(d.metrics.get("late_items", 0) for d in devices),
            "item_p50_s": rounded(percentile(items, 50), 4),
            "item_p95_s": rounded(percentile(items, 95), 4),
            "answers": len(answers),
            "late_answers": sum(d.metrics.get("late_answers", 0) for d in devices),
            "answer_p50_s": rounded(percentile(answers, 50), 4),
            "answer_p95_s": rounded(percentile(answers, 95), 4),
        }


# ------------------------------------------------------------------------- video call

FRAME_RATE = 30


class _CallProtocol(asyncio.DatagramProtocol):
    def __init__(self, dev: Device, env: StepEnv) -> None:
        self.dev, self.env = dev, env
        self.sent: dict[int, float] = {}
        self.rtts: list[float] = []
        self.transport: Optional[asyncio.DatagramTransport] = None
        self.refused = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if len(data) < 12:
            return
        seq = struct.unpack("!I", data[8:12])[0]
        t = self.sent.pop(seq, None)
        if t is not None:
            self.rtts.append((asyncio.get_running_loop().time() - t) * 1000.0)
            self.env.meter.down += len(data)

    def error_received(self, exc: Exception) -> None:
        self.refused += 1  # ICMP port unreachable: nothing echoes there


class VideoCall(Activity):
    """A video call over the server's UDP echo: ``packet_bytes`` datagrams at the call's
    bitrate, sent frame by frame (30 a second), echoed back (so both directions carry it). Met: loss,
    median RTT and jitter each below its limit: the classroom profile's fail limits (``activity_for``);
    by default loss < 1%, median RTT < 100 ms, jitter < 30 ms (Microsoft Teams' client-to-edge
    targets, domain.md section 4)."""

    kind = "video-call"
    connections = 0
    DEFAULT_BITRATE_MBPS = 1.2
    """When the site file names the activity without a rate: Teams 720p (domain.md section 3)."""

    def __init__(
        self,
        bitrate_mbps: float = DEFAULT_BITRATE_MBPS,
        packet_bytes: int = 1200,
        loss_pct: float = 1.0,
        rtt_ms: float = 100.0,
        jitter_ms: float = 30.0,
    ) -> None:
        self.bitrate_mbps, self.packet_bytes = bitrate_mbps, packet_bytes
        self.pps = max(1.0, bitrate_mbps * 1e6 / 8 / packet_bytes)
        self.limits = {"loss_pct": loss_pct, "rtt_p50_ms": rtt_ms, "jitter_ms": jitter_ms}

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "bitrate_mbps": self.bitrate_mbps,
            "packet_bytes": self.packet_bytes,
            "packets_per_s": round(self.pps, 1),
            "limits": self.limits,
            "connections_per_device": 0,
            "pass": "loss < {loss_pct:g}%, median RTT < {rtt_p50_ms:g} ms, jitter < {jitter_ms:g} ms over the UDP echo".format(
                **self.limits
            ),
        }

    async def run(self, dev: Device, env: StepEnv) -> None:
        if not env.udp_port:
            raise LoadError("other", "the server announces no UDP echo port")
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(lambda: _CallProtocol(dev, env), remote_addr=(env.host, env.udp_port))
        dev.closers.append(transport.close)
        dev.metrics["proto"] = proto
        token = os.urandom(4)
        pad = b"\0" * max(0, self.packet_bytes - 12)
        # a call sends a frame's packets together, FRAME_RATE times a second: one wake-up per
        # frame rather than per packet keeps the client's CPU low with many callers
        interval = 1.0 / FRAME_RATE
        per_frame = self.pps / FRAME_RATE
        t = env.start + dev.offset_s
        seq = 0
        owed = 0.0
        stop_at = env.end - 1.0  # the last second only collects echoes
        while t < stop_at:
            await sleep_until(t)
            owed += per_frame
            now = loop.time()
            while owed >= 1.0:
                owed -= 1.0
                seq += 1
                proto.sent[seq] = now
                transport.sendto(UDP_MAGIC + token + struct.pack("!I", seq) + pad)
                env.meter.up += self.packet_bytes
            t += interval
        dev.metrics["sent"] = seq

    def finish(self, dev: Device, env: StepEnv, now: float) -> None:
        proto = dev.metrics.pop("proto", None)
        if proto is None:
            return
        sent = dev.metrics.get("sent", 0)
        got = proto.rtts
        dev.metrics.update(
            sent=sent,
            received=len(got),
            loss_pct=round(100.0 * (sent - len(got)) / sent, 3) if sent else None,
            rtt_p50_ms=rounded(percentile(got, 50), 4),
            jitter_ms=rounded(jitter(got), 4),
        )
        if proto.refused:
            dev.errors["refused"] += proto.refused

    def met(self, dev: Device) -> Optional[bool]:
        m = dev.metrics
        if not m.get("sent"):
            return None if not dev.errors else False
        return (
            m["loss_pct"] is not None
            and m["loss_pct"] < self.limits["loss_pct"]
            and m["rtt_p50_ms"] is not None
            and m["rtt_p50_ms"] < self.limits["rtt_p50_ms"]
            and (m["jitter_ms"] or 0.0) < self.limits["jitter_ms"]
        )

    def summary(self, devices: list[Device]) -> dict[str, Any]:
        sent = sum(d.metrics.get("sent", 0) for d in devices)
        got = sum(d.metrics.get("received", 0) for d in devices)
        p50s = [d.metrics["rtt_p50_ms"] for d in devices if d.metrics.get("rtt_p50_ms") is not None]
        jit = [d.metrics["jitter_ms"] for d in devices if d.metrics.get("jitter_ms") is not None]
        return {
            "packets_sent": sent,
            "packets_received": got,
            "loss_pct": round(100.0 * (sent - got) / sent, 3) if sent else None,
            "rtt_p50_ms": rounded(percentile(p50s, 50), 4),
            "jitter_p95_ms": rounded(percentile(jit, 95), 4),
        }


# --------------------------------------------------------------------------- choosing


def activity_for(kind: Optional[str], bitrate_mbps: Optional[float], profile: Profile, segment_s: float = 2.0) -> Activity:
    """What each device does: the site file's ``load.activity`` (``kind``), else the profile's
    ``load.activity``. ``profile`` is the single-activity profile the classroom is emulated as
    (``Profile.load_part``); it must declare an activity when ``kind`` is None.

    The per-device rate is the site file's ``load.bitrate_mbps``, else the profile's own (its
    ``load.bitrate_mbps``, else its ``down_mbps_per_device``) when the activity is the profile's,
    else the activity's own default. A video call is judged by the profile's fail limits for
    loss, RTT and jitter; CBT answers go up at the profile's ``up_mbps_per_device``.
    """
    declared = profile.load
    if kind is None:
        if declared is None:
            raise ValueError(f"profile {profile.name!r} declares no load.activity")
        kind = declared.activity
    own = declared is not None and declared.activity == kind
    rate = bitrate_mbps or (declared.bitrate_mbps if declared is not None and own else None)
    if kind == "video":
        return Video(rate or Video.DEFAULT_BITRATE_MBPS, segment_s)
    if kind == "video-call":
        lim = profile.limits
        return VideoCall(
            rate or VideoCall.DEFAULT_BITRATE_MBPS,
            loss_pct=lim["loss_pct"].fail,
            rtt_ms=lim["rtt_ms"].fail,
            jitter_ms=lim["jitter_ms"].fail,
        )
    if kind == "textbook":
        return Textbook()
    if kind == "cbt":
        return Cbt(down_mbps=rate or Cbt.DEFAULT_DOWN_MBPS, up_mbps=profile.up_mbps_per_device if own else Cbt.DEFAULT_UP_MBPS)
    return WebApps()
