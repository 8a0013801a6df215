"""The own HTTP throughput engine, on httpx, against giga-netcheck measurement servers.

Each stream is a thread with its own ``httpx.Client`` (its own TCP connection), looping over
large requests and counting bytes as they arrive (download) or as the socket accepts them
(upload), through ``plan.proxy`` when the probe chose one. The calling thread samples all counters every ``interval_s``: those per-interval
aggregates are the raw samples. The first ``warmup_s`` seconds are discarded (TCP slow start)
and the headline figure is the bytes moved after the warm-up divided by the time after it,
which is what iperf3 reports with ``-O``; p50/p90 of the post-warm-up samples sit next to it
(the reduction every engine shares: ``_summary.summarize``, ``core.goodput``).
"""

from __future__ import annotations

import threading
from typing import Iterator, Optional

import httpx

from giga_netcheck.core.models import BandwidthMeasurement, Target
from giga_netcheck.measure.engines._summary import summarize
from giga_netcheck.measure.engines.base import ThroughputEngine, ThroughputPlan, run_streams, stream_errors
from giga_netcheck.measure.proxy_discovery import without_credentials

READ_CHUNK = 256 * 1024
_UPLOAD_BLOCK = memoryview(bytes(range(256)) * (READ_CHUNK // 256))


class _Stream(threading.Thread):
    """One TCP connection moving bytes until told to stop."""

    def __init__(self, base_url: str, plan: ThroughputPlan, stop: threading.Event) -> None:
        super().__init__(daemon=True, name="gnc-stream")
        self.base_url = base_url
        self.plan = plan
        self.stop = stop
        self.bytes = 0
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        timeout = httpx.Timeout(10.0, connect=5.0)
        try:
            with httpx.Client(timeout=timeout, trust_env=False, proxy=self.plan.proxy) as client:
                while not self.stop.is_set():
                    if self.plan.direction == "download":
                        self._download(client)
                    else:
                        self._upload(client)
        except BaseException as exc:  # recorded, the measurement goes on with other streams
            if not self.stop.is_set():
                self.error = exc

    def _download(self, client: httpx.Client) -> None:
        url = f"{self.base_url}/download?bytes={self.plan.request_bytes}"
        with client.stream("GET", url) as resp:
            resp.raise_for_status()
            for chunk in resp.iter_raw(READ_CHUNK):
                self.bytes += len(chunk)
                if self.stop.is_set():
                    break

    def _upload(self, client: httpx.Client) -> None:
        def body() -> Iterator[bytes]:
            sent = 0
            while sent < self.plan.request_bytes and not self.stop.is_set():
                yield _UPLOAD_BLOCK
                sent += len(_UPLOAD_BLOCK)
                self.bytes += len(_UPLOAD_BLOCK)

        resp = client.post(f"{self.base_url}/upload", content=body())
        resp.raise_for_status()


class HttpEngine(ThroughputEngine):
    """Parallel HTTP streams against ``/download`` and ``/upload`` of a measurement server."""

    name = "http"
    supports_proxy = True

    def measure(self, target: Target, plan: ThroughputPlan, stop: threading.Event) -> BandwidthMeasurement:
        assert target.url, "the http engine needs a measurement server URL"
        local_stop = threading.Event()
        streams = [_Stream(target.url.rstrip("/"), plan, local_stop) for _ in range(plan.streams)]
        _, points = run_streams(streams, plan.duration_s, plan.interval_s, stop, local_stop)
        err_text, err_kind = stream_errors([s.error for s in streams if s.error is not None], len(streams))
        return summarize(
            target,
            plan,
            self.name,
            points,
            per_stream_bytes=[s.bytes for s in streams],
            error=err_text,
            error_kind=err_kind,
            proxy=without_credentials(plan.proxy),  # the password connects, it is never recorded
        )
