"""The ramp: steps of N emulated devices, all in ONE asyncio event loop.

Each step starts ``N`` devices (each with its own connections, opened fresh, so a session
table sees N clients), lets them run their activity for ``step_s`` seconds, then closes every
connection and pauses briefly so the next step starts from an empty session table. A watcher
checks the stop event every 50 ms: on Ctrl-C (or a byte or time cap) every device task is
cancelled and every socket aborted, and the steps measured so far are kept.

"Foreign" round trips for responsiveness (a new connection: TCP handshake, then ``GET /rtt``)
are taken every 250 ms by one extra task during each step; "self" round trips are the time to
first byte of the devices' own requests on their busy connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable, ContextManager, Iterator, Optional

from giga_netcheck.core.load import rpm
from giga_netcheck.core.models import LoadHop, LoadStep
from giga_netcheck.measure.loadgen.activities import Activity, Device, StepEnv
from giga_netcheck.measure.loadgen.client import ERROR_KINDS, TIMEOUTS, HttpConn, Meter, classify, until, within

WATCH_S = 0.05
SAMPLE_S = 0.5
FOREIGN_EVERY_S = 0.25
PAUSE_S = 0.5
"""Between steps: closed connections leave the session table (conntrack drops closed ones)."""


@dataclass
class RampTarget:
    """The measurement server the devices load."""

    name: str
    host: str
    port: int
    udp_port: Optional[int] = None


@dataclass
class Budget:
    """Hard caps over the whole ramp."""

    max_bytes: int
    max_duration_s: float
    used_bytes: int = 0
    started: float = field(default_factory=time.monotonic)

    def exceeded(self, extra_bytes: int = 0) -> Optional[str]:
        if self.used_bytes + extra_bytes >= self.max_bytes:
            return "byte-cap"
        if time.monotonic() - self.started >= self.max_duration_s:
            return "time-cap"
        return None


StepHook = Callable[[int], ContextManager[Callable[[], list[LoadHop]]]]
"""``hook(devices)`` wraps one step; entering gives a function that returns the step's
per-hop latency summaries once the step is over (the probe samples RTT to every hop)."""


@contextlib.contextmanager
def _no_latency(devices: int) -> Iterator[Callable[[], list[LoadHop]]]:
    yield list


async def _foreign_probe(target: RampTarget, out: list[float], until: float) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        t0 = loop.time()
        conn = HttpConn(target.host, target.port, Meter())
        try:
            await within(conn.open(), 2.0)
            ans = await within(conn.request("GET", "/rtt"), 2.0)
            # the handshake and the HTTP round trip are two foreign probes
            out.append((conn.connect_s or 0.0) * 1000.0)
            out.append(ans.ttfb_s * 1000.0)
        except Exception:  # noqa: BLE001 - a lost probe is just not a sample
            pass
        finally:
            conn.close()
        await asyncio.sleep(max(0.0, FOREIGN_EVERY_S - (loop.time() - t0)))


async def _device_main(dev: Device, activity: Activity, env: StepEnv) -> None:
    async def whole() -> None:
        await activity.run(dev, env)
        # the activity finished early (nothing more fits): keep its connections until the end
        await asyncio.sleep(max(0.0, env.end - asyncio.get_running_loop().time()))

    try:
        await until(whole(), env.end)
    except TIMEOUTS:
        pass  # the step ended: the normal way out
    except Exception as exc:  # noqa: BLE001 - a device that cannot start at all is data too
        dev.fail(exc)


async def run_step(
    n: int,
    activity: Activity,
    target: RampTarget,
    step_s: float,
    stop: threading.Event,
    budget: Budget,
    seed: int = 0,
) -> LoadStep:
    """Run one step of ``n`` devices; returns the step's record (see docs/load.md)."""
    loop = asyncio.get_running_loop()
    rng = random.Random(seed * 100003 + n)
    meter = Meter()
    start = loop.time() + 0.05
    env = StepEnv(target.host, target.port, target.udp_port, start, start + step_s, meter)
    devices = [
        Device(i, [HttpConn(target.host, target.port, meter) for _ in range(activity.connections)], activity.offset(rng)) for i in range(n)
    ]
    tasks = [loop.create_task(_device_main(d, activity, env)) for d in devices]
    foreign: list[float] = []
    prober = loop.create_task(_foreign_probe(target, foreign, env.end))
    samples: list[float] = []
    peak_open = 0
    stopped: Optional[str] = None
    last_bytes, last_t = 0, loop.time()
    next_sample = start + SAMPLE_S
    pending = set(tasks)
    while pending:
        done, pending = await asyncio.wait(pending, timeout=WATCH_S)
        now = loop.time()
        if now >= next_sample:
            moved = meter.down + meter.up
            samples.append(round((moved - last_bytes) * 8 / max(now - last_t, 1e-9) / 1e6, 3))
            last_bytes, last_t = moved, now
            next_sample += SAMPLE_S
            peak_open = max(peak_open, sum(1 for d in devices for c in d.conns if c.is_open))
        reason = "interrupted" if stop.is_set() else budget.exceeded(meter.down + meter.up)
        if reason and pending:
            stopped = reason
            for t in pending:
                t.cancel()
            for d in devices:
                d.close(abort=True)
            await asyncio.wait(pending, timeout=0.5)
            break
    ended = loop.time()
    prober.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await prober
    for d in devices:
        activity.finish(d, env, ended)
        d.close(abort=stopped is not None)
    budget.used_bytes += meter.down + meter.up
    return summarize_step(n, activity, devices, meter, start, ended, samples, peak_open, foreign, env.self_rtts_ms, stopped)


def summarize_step(
    n: int,
    activity: Activity,
    devices: list[Device],
    meter: Meter,
    start: float,
    ended: float,
    samples: list[float],
    peak_open: int,
    foreign: list[float],
    self_ms: list[float],
    stopped: Optional[str],
) -> LoadStep:
    verdicts = [activity.met(d) for d in devices]
    judged = [v for v in verdicts if v is not None]
    errors = Counter()
    for d in devices:
        errors.update(d.errors)
    seconds = max(ended - start, 1e-9)
    value, working = rpm(foreign, self_ms)
    examples: list[str] = []
    for d in devices:
        for e in d.examples:
            if len(examples) < 3 and e not in examples:
                examples.append(e)
    return LoadStep(
        devices=n,
        connections=n * activity.connections,
        complete=stopped is None,
        stopped=stopped,
        duration_s=round(seconds, 3),
        met=sum(1 for v in judged if v),
        judged=len(judged),
        met_share=round(sum(1 for v in judged if v) / len(judged), 4) if judged else None,
        goodput_mbps=round((meter.down + meter.up) * 8 / seconds / 1e6, 3),
        down_mbps=round(meter.down * 8 / seconds / 1e6, 3),
        up_mbps=round(meter.up * 8 / seconds / 1e6, 3),
        bytes=meter.down + meter.up,
        samples_mbps=tuple(samples),
        peak_open_connections=peak_open,
        connections_opened=sum(c.opened for d in devices for c in d.conns),
        errors={k: errors.get(k, 0) for k in ERROR_KINDS},
        devices_with_errors=sum(1 for d in devices if d.errors),
        error_examples=tuple(examples),
        activity=activity.summary(devices),
        rpm=value,
        working_rtt_ms=working,
        foreign_rtts_ms=tuple(round(x, 3) for x in foreign),
        self_rtt_count=len(self_ms),
    )


def run_ramp(
    counts: list[int],
    activity: Activity,
    target: RampTarget,
    *,
    step_s: float,
    stop: threading.Event,
    budget: Budget,
    hook: StepHook = _no_latency,
    on_step: Optional[Callable[[LoadStep], None]] = None,
    seed: int = 0,
) -> tuple[list[LoadStep], Optional[str]]:
    """Run the steps in one event loop; return the steps measured and why it stopped early (or None)."""
    steps: list[LoadStep] = []
    stopped: Optional[str] = None
    loop = asyncio.new_event_loop()
    try:
        for i, n in enumerate(counts):
            if stop.is_set():
                stopped = "interrupted"
                break
            why = budget.exceeded()
            if why:
                stopped = why
                break
            with hook(n) as latency:
                step = loop.run_until_complete(run_step(n, activity, target, step_s, stop, budget, seed))
            step = replace(step, latency=tuple(latency()))
            steps.append(step)
            if on_step:
                on_step(step)
            if step.stopped:
                stopped = step.stopped
                break
            if i < len(counts) - 1:
                stop.wait(PAUSE_S)
    finally:
        _close_loop(loop)
    return steps, stopped


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(asyncio.sleep(0))  # let aborted transports finish closing
    loop.close()


__all__ = ["RampTarget", "Budget", "run_step", "run_ramp", "summarize_step", "classify"]
