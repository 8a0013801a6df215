"""Plain tools run inside a lab host (ping, iperf3, dig), with their output parsed.

These are the references the lab is checked with and that benchmarks compare giga-netcheck
against. Every call is bounded: a count and a duration, and a subprocess timeout beyond them.
"""

from __future__ import annotations

import json
import re
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, TypeVar

from .netlab import Lab
from .physics import TCP_PAYLOAD_BYTES, expected_goodput_mbit
from .scenarios import Scenario

__all__ = [
    "PingResult",
    "IperfResult",
    "DigResult",
    "ping",
    "iperf3",
    "dig",
    "dig_many",
    "expected_goodput_mbit",
    "TCP_PAYLOAD_BYTES",
    "connect_many",
    "loaded_ping",
    "path_goodput_mbit",
    "LoadedPing",
    "measured",
    "ATTEMPTS",
]

T = TypeVar("T")
ATTEMPTS = 3
"""How often a noisy measurement is taken before a test fails on it (see :func:`measured`)."""


def measured(what: str, take: Callable[[], T], judge: Callable[[T], Optional[str]], attempts: int = ATTEMPTS) -> T:
    """Take a measurement until ``judge`` finds nothing wrong with it, at most ``attempts`` times.

    For figures that are noisy by nature on a shared 2-core host (a descheduled forwarder,
    iperf3 or ping stretches one reading; it does not move the next one): the measurement is
    retried, never the test, and every attempt is printed (pytest shows it with the failure, and
    with ``-rA``). ``judge`` returns None when the reading is right, else what is wrong with it.
    A wrong lab is wrong every time, so it still fails; the AssertionError lists every attempt.
    """
    seen = []
    for attempt in range(1, attempts + 1):
        value = take()
        problem = judge(value)
        print(f"{what}: attempt {attempt}/{attempts}: {problem or 'ok'}")
        if problem is None:
            return value
        seen.append(problem)
    raise AssertionError(f"{what}: wrong in all {attempts} attempts: " + "; ".join(f"[{i + 1}] {p}" for i, p in enumerate(seen)))


@dataclass(frozen=True)
class PingResult:
    """One ping run: counts and every reply's RTT."""

    transmitted: int
    received: int
    rtts_ms: list[float] = field(default_factory=list)
    """Per reply, as printed (ping prints 3 significant digits, so >= 100 ms in whole ms)."""
    avg_ms: float = float("nan")
    """Mean RTT from ping's summary line, printed to the microsecond."""
    mdev_ms: float = float("nan")
    """ping's mean deviation of the RTTs."""

    @property
    def lost(self) -> int:
        """Requests without a reply."""
        return self.transmitted - self.received

    @property
    def loss_pct(self) -> float:
        """Share of requests without a reply, in percent."""
        return 100.0 * self.lost / self.transmitted if self.transmitted else 100.0

    @property
    def median_ms(self) -> float:
        """Median RTT (NaN when nothing came back)."""
        return statistics.median(self.rtts_ms) if self.rtts_ms else float("nan")

    @property
    def min_ms(self) -> float:
        """Smallest RTT (NaN when nothing came back)."""
        return min(self.rtts_ms) if self.rtts_ms else float("nan")


_RTT = re.compile(r"time=([\d.]+) ms")
_COUNTS = re.compile(r"(\d+) packets transmitted, (\d+) received")
_SUMMARY = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")


def ping(lab: Lab, host: str, target: str, count: int = 20, interval_s: float = 0.02, wait_s: float = 1.0) -> PingResult:
    """``ping -c count -i interval_s`` from ``host`` to ``target``."""
    argv = ["ping", "-n", "-c", str(count), "-i", f"{interval_s:g}", "-W", f"{wait_s:g}", target]
    proc = lab.run(host, argv, timeout=count * interval_s + wait_s + 10)
    counts = _COUNTS.search(proc.stdout)
    if counts is None:
        raise RuntimeError(f"ping gave no summary: {proc.stdout[-300:]} {proc.stderr[-300:]}")
    summary = _SUMMARY.search(proc.stdout)
    avg, mdev = (float(summary.group(2)), float(summary.group(4))) if summary else (float("nan"), float("nan"))
    return PingResult(int(counts.group(1)), int(counts.group(2)), [float(m) for m in _RTT.findall(proc.stdout)], avg_ms=avg, mdev_ms=mdev)


@dataclass(frozen=True)
class IperfResult:
    """One iperf3 run, as the receiving side counted it."""

    mbit: float
    """Median of the receiver's one-second intervals after the omitted warm-up.

    Not iperf3's end summary: its byte count includes what drains from a deep queue after the
    sender stopped, divided by the sending time (a 300 ms queue at 20 Mbit/s reads 21.1), and
    in reverse mode the first interval after ``-O`` counts bytes from before it.
    """
    end_mbit: float
    """iperf3's own end summary (receiver bytes over the test time), for reference."""
    intervals_mbit: list[float]
    retransmits: Optional[int]
    streams: int
    raw: dict = field(repr=False, default_factory=dict)


def iperf3(
    lab: Lab,
    host: str,
    server: str,
    seconds: float = 3,
    streams: int = 1,
    reverse: bool = True,
    omit_s: float = 1,
    port: int = 5201,
    extra: Sequence[str] = (),
) -> IperfResult:
    """iperf3 from ``host`` to ``server``; ``reverse`` (default) measures the download direction.

    The first ``omit_s`` seconds (slow start) are left out, as domain.md section 6 asks.
    """
    argv = [
        "iperf3",
        "-c",
        server,
        "-p",
        str(port),
        "-t",
        f"{seconds:g}",
        "-O",
        f"{omit_s:g}",
        "-P",
        str(streams),
        "-J",
        "--get-server-output",
        *(["-R"] if reverse else []),
        *extra,
    ]
    data: dict = {}
    for attempt in range(5):
        proc = lab.run(host, argv, timeout=seconds + omit_s + 20)
        try:
            data = json.loads(proc.stdout)
        except json.JSONDecodeError:
            data = {"error": proc.stdout[-300:] + proc.stderr[-300:]}
        # iperf3 servers take one test at a time; the previous one may still be closing.
        if _busy(data) and attempt < 4:
            time.sleep(0.3)
            continue
        break
    if "error" in data:
        raise RuntimeError(f"iperf3 {host} -> {server}: {data['error']}")
    return _iperf_result(data, reverse, streams)


def _busy(data: dict) -> bool:
    return "busy" in str(data.get("error", ""))


def _iperf_result(data: dict, reverse: bool, streams: int) -> IperfResult:
    end = data["end"]
    sent = end.get("sum_sent", {})
    end_mbit = end["sum_received"]["bits_per_second"] / 1e6
    if reverse:  # the client received: its own intervals
        intervals = [
            iv["sum"]["bits_per_second"] / 1e6
            for iv in data.get("intervals", [])
            if not iv["sum"].get("omitted") and iv["sum"]["seconds"] > 0.5
        ]
    else:  # the server received: its text output, the only form it sends back
        intervals = _server_intervals(str(data.get("server_output_text", "")), streams)
    return IperfResult(
        mbit=statistics.median(intervals) if intervals else end_mbit,
        end_mbit=end_mbit,
        intervals_mbit=intervals,
        retransmits=sent.get("retransmits"),
        streams=streams,
        raw=data,
    )


_TEXT_INTERVAL = re.compile(r"^\[(?:SUM|\s*\d+)\]\s+([\d.]+)-([\d.]+)\s+sec\s+[\d.]+ \w?Bytes\s+([\d.]+) ([KMG]?)bits/sec\s*(.*)$")
_UNIT = {"": 1e-6, "K": 1e-3, "M": 1.0, "G": 1e3}


def _server_intervals(text: str, streams: int) -> list[float]:
    """Per-interval totals (Mbit/s) from an iperf3 server's text output, warm-up left out."""
    out = []
    for line in text.splitlines():
        if streams > 1 and not line.startswith("[SUM]"):
            continue
        m = _TEXT_INTERVAL.match(line)
        if m is None or "omitted" in m.group(5) or "receiver" in m.group(5) or "sender" in m.group(5):
            continue
        if float(m.group(2)) - float(m.group(1)) > 0.5:
            out.append(float(m.group(3)) * _UNIT[m.group(4)])
    return out


@dataclass(frozen=True)
class DigResult:
    """One dig query: rcode name, or None when it timed out."""

    status: Optional[str]
    query_ms: Optional[int]
    answers: list[str]

    @property
    def timed_out(self) -> bool:
        """No answer at all."""
        return self.status is None


_STATUS = re.compile(r"status: ([A-Z]+)")
_QTIME = re.compile(r"Query time: (\d+) msec")


def _dig_argv(server: str, name: str, rdtype: str, timeout_s: int) -> list[str]:
    return ["dig", f"@{server}", name, rdtype, f"+timeout={timeout_s}", "+tries=1", "+noall", "+comments", "+answer", "+stats"]


def _parse_dig(text: str) -> DigResult:
    status = _STATUS.search(text)
    qtime = _QTIME.search(text)
    answers = [line.split()[-1] for line in text.splitlines() if line and not line.startswith(";") and "\tIN\t" in line]
    return DigResult(status.group(1) if status else None, int(qtime.group(1)) if qtime else None, answers)


def dig(lab: Lab, host: str, server: str, name: str, rdtype: str = "A", timeout_s: int = 2) -> DigResult:
    """One ``dig +tries=1`` from ``host`` to resolver ``server``."""
    proc = lab.run(host, _dig_argv(server, name, rdtype, timeout_s), timeout=timeout_s + 10)
    return _parse_dig(proc.stdout)


def dig_many(lab: Lab, host: str, server: str, names: Sequence[str], timeout_s: int = 1) -> list[DigResult]:
    """One ``dig`` per name, all at once (so timeouts cost one ``timeout_s``, not one each)."""
    procs = [
        lab.popen(host, _dig_argv(server, name, "A", timeout_s), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for name in names
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=timeout_s + 20)
        results.append(_parse_dig(out))
    return results


def connect_many(lab: Lab, host: str, target: str, port: int, count: int, timeout_s: float = 2.0) -> tuple[list[socket.socket], list[str]]:
    """Open ``count`` TCP connections from ``host``, one after another, keeping them open.

    Returns the open sockets (the caller closes them) and, per failed attempt, why
    (``reset`` for an RST answer, ``timeout``, or the error text).
    """
    opened: list[socket.socket] = []
    failures: list[str] = []
    with lab.in_ns(host):
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(timeout_s)
            try:
                sock.connect((target, port))
                opened.append(sock)
            except ConnectionRefusedError:
                failures.append("reset")  # an RST to our SYN: a full session table
                sock.close()
            except TimeoutError:
                failures.append("timeout")
                sock.close()
            except OSError as exc:
                failures.append(str(exc))
                sock.close()
    return opened, failures


@dataclass(frozen=True)
class LoadedPing:
    """Pings taken while iperf3 loaded the path, and what that load read."""

    ping: PingResult
    load: IperfResult


def loaded_ping(
    lab: Lab,
    host: str,
    target: str,
    server: str,
    load_s: float = 4.0,
    count: int = 20,
    interval_s: float = 0.1,
    settle_s: float = 1.2,
    reverse: bool = True,
    streams: int = 1,
) -> LoadedPing:
    """Ping ``target`` while iperf3 loads the path to ``server`` (latency under load).

    The ping starts ``settle_s`` into the load, once the queue has filled, and ends before it.
    The load is iperf3 against the lab's one iperf3 server, which runs one test at a time: a
    load refused as busy (the previous test still closing) is started again, and a load that
    did not run raises, so a quiet path can never pass for a loaded one.
    """
    if settle_s + count * interval_s >= load_s:
        raise ValueError("the pings must fit inside the load")
    argv = ["iperf3", "-c", server, "-t", f"{load_s:g}", "-P", str(streams), "-J", *(["-R"] if reverse else [])]
    for attempt in range(5):
        load = lab.popen(host, argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            load.wait(timeout=min(0.5, settle_s))
        except subprocess.TimeoutExpired:
            break  # running
        out = load.communicate()[0]
        if attempt < 4 and _busy(_json_or_error(out)):
            time.sleep(0.3)
            continue
        raise RuntimeError(f"iperf3 load {host} -> {server} ended at once: {out[-300:]}")
    try:
        time.sleep(max(0.0, settle_s - 0.5))
        pings = ping(lab, host, target, count=count, interval_s=interval_s, wait_s=2.0)
    finally:
        try:
            out = load.communicate(timeout=load_s + 10)[0]
        except subprocess.TimeoutExpired:
            load.kill()
            out = load.communicate()[0]
    data = _json_or_error(out)
    if "error" in data:
        raise RuntimeError(f"iperf3 load {host} -> {server}: {data['error']}")
    return LoadedPing(pings, _iperf_result(data, reverse, streams))


def _json_or_error(text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {"error": text[-300:]}
    return data if isinstance(data, dict) else {"error": text[-300:]}


def path_goodput_mbit(scenario: Scenario, host: str, direction: str = "down") -> Optional[float]:
    """The iperf3 reading the shapers on the path client <-> ``host`` allow, or None if uncapped.

    ``direction`` is ``down`` (towards the client, iperf3 ``-R``) or ``up``. The narrowest
    shaped link wins; per-flow caps are not counted (they depend on the stream count).
    """
    readings = []
    for name in scenario.path_links(host):
        spec = scenario.link(name)
        d = spec.direction(direction)
        if d.rate_mbit is not None:
            readings.append(expected_goodput_mbit(d.rate_mbit, tun=spec.uses_tun))
    return min(readings) if readings else None
