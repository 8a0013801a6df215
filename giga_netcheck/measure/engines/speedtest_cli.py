"""The ``speedtest`` engine: Ookla servers (or a speedtest mini server) through speedtest-cli's Python API.

speedtest-cli (sivel/speedtest-cli, ``import speedtest``) is archived and known to under-read fast
links: every request is a new TCP connection, bodies are read 10 KiB at a time by Python threads,
and its figure is all bytes over the whole test time, slow start and the tail included. So this
engine keeps two figures side by side:

- ours: speedtest-cli's own transfers, counted as they happen (its opener is wrapped, so every
  byte its threads read or send is counted) and reduced like every engine's: bytes after the
  warm-up over the time after it;
- its own: ``Speedtest.results.dict()`` unchanged in ``engine_raw`` (``download``/``upload`` in
  bit/s, ``ping``, ``server``, ``bytes_*``), with ``engine_raw['speedtest_mbps']`` for comparison.

Every measurement carries ``notes: ("engine.speedtest.archived",)``: reports warn that the tool
is archived and under-reads links above about 400 Mbit/s.

Server choice: a target ``url`` is a speedtest mini server (``--mini URL``; a giga-netcheck
``serve`` is one); otherwise ``server_id`` picks an Ookla server by id and nothing picks the
lowest-latency of the nearest five (``get_servers``/``get_best_server``), ``secure`` is
``--secure``. speedtest-cli fetches speedtest.net's configuration even for a mini server; for a
mini server this engine carries that configuration itself, so a mini measurement never leaves
the school's or board's network.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import speedtest

from giga_netcheck.core.errors import ProbeError, ProtocolFailure, UnreachableFailure
from giga_netcheck.core.models import BandwidthMeasurement, Target
from giga_netcheck.measure.engines._summary import failed, summarize
from giga_netcheck.measure.engines.base import SessionCache, ThroughputEngine, ThroughputPlan, poll_streams
from giga_netcheck.measure.failures import map_exception

NOTE = "engine.speedtest.archived"
TOOL = "speedtest-cli"

# speedtest-cli's configuration as Speedtest.get_config derives it from speedtest.net's defaults
# (threadcount 4 -> 8 download threads, threadsperurl 4, upload ratio 5, maxchunkcount 50); the
# test lengths are replaced by the plan's duration.
MINI_CONFIG: dict[str, Any] = {
    "client": {"ip": "", "lat": "0", "lon": "0", "isp": "", "country": ""},
    "ignore_servers": [],
    "sizes": {"upload": [524288, 1048576, 7340032], "download": [350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000]},
    "counts": {"upload": 17, "download": 4},
    "threads": {"upload": 2, "download": 8},
    "length": {"upload": 10, "download": 10},
    "upload_max": 51,
}


class _MiniSpeedtest(speedtest.Speedtest):
    """``speedtest.Speedtest`` for a mini server: the configuration comes from here, not speedtest.net."""

    def get_config(self) -> dict:
        self.config.update(copy.deepcopy(MINI_CONFIG))
        self.lat_lon = (0.0, 0.0)
        return self.config


class _Shutdown:
    """speedtest-cli's shutdown event (it calls ``isSet()``): set by the run's stop or our own."""

    def __init__(self) -> None:
        self.events: tuple[threading.Event, ...] = ()

    def isSet(self) -> bool:  # noqa: N802 - speedtest-cli's spelling
        return any(e.is_set() for e in self.events)

    is_set = isSet


class _CountedResponse:
    """A response whose ``read`` counts the bytes speedtest-cli's thread takes from it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.bytes = 0

    def read(self, *args: Any) -> bytes:
        data = self._inner.read(*args)
        self.bytes += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _CountingOpener:
    """Wraps speedtest-cli's ``OpenerDirector``: counts downloads per response, uploads per body."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.responses: list[_CountedResponse] = []
        self.bodies: list[Any] = []
        self.requests = 0

    def open(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        data = getattr(request, "data", None)
        if data is not None and hasattr(data, "total"):  # HTTPUploaderData: .total grows as it is read
            self.bodies.append(data)
        self.requests += 1
        resp = _CountedResponse(self._inner.open(request, *args, **kwargs))
        self.responses.append(resp)
        return resp

    def reset(self) -> None:
        self.responses, self.bodies, self.requests = [], [], 0

    def moved(self, direction: str) -> int:
        if direction == "download":
            return sum(r.bytes for r in list(self.responses))
        return sum(sum(b.total) for b in list(self.bodies))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Counter:
    """What ``poll_streams`` samples: the opener's byte count while speedtest-cli's call runs."""

    def __init__(self, opener: _CountingOpener, direction: str, worker: threading.Thread) -> None:
        self.opener, self.direction, self.worker = opener, direction, worker

    @property
    def bytes(self) -> int:
        return self.opener.moved(self.direction)

    def is_alive(self) -> bool:
        return self.worker.is_alive()


@dataclass
class _Session:
    st: speedtest.Speedtest
    opener: _CountingOpener
    shutdown: _Shutdown
    server: dict[str, Any]
    mode: str
    ping_ms: Optional[float]
    lock: threading.Lock = field(default_factory=threading.Lock)


def server_record(best: dict[str, Any], mode: str) -> dict[str, Any]:
    """The chosen server, as recorded beside every figure."""
    keep = ("id", "sponsor", "name", "country", "cc", "host", "url")
    out: dict[str, Any] = {k: best[k] for k in keep if k in best}
    out["kind"] = "speedtest-mini" if mode == "mini" else "ookla"
    if best.get("d") is not None:
        out["distance_km"] = round(float(best["d"]), 1)
    if best.get("latency") is not None:
        out["latency_ms"] = float(best["latency"])
    return out


def _session_error(exc: BaseException, target: Target) -> ProbeError:
    """Ours as they are; speedtest-cli's own tree and urllib's mapped (:func:`_mapped`)."""
    return exc if isinstance(exc, ProbeError) else _mapped(exc, target)


def _mapped(exc: BaseException, target: Target) -> ProbeError:
    """speedtest-cli's exceptions as ours, the message naming the target (one line)."""
    where = f"{target.name} ({target.url or 'speedtest.net'})"
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    if isinstance(exc, (speedtest.InvalidSpeedtestMiniServer, speedtest.SpeedtestConfigError, speedtest.SpeedtestServersError)):
        return ProtocolFailure(f"{where}: not a speedtest server: {text}")
    if isinstance(
        exc,
        (
            speedtest.SpeedtestMiniConnectFailure,
            speedtest.ConfigRetrievalError,
            speedtest.ServersRetrievalError,
            speedtest.SpeedtestBestServerFailure,
        ),
    ):
        return UnreachableFailure(f"{where}: speedtest-cli could not reach it: {text}")
    if isinstance(exc, (speedtest.NoMatchedServers, speedtest.InvalidServerIDType)):
        err = ProbeError(f"{where}: no Ookla server with id {target.server_id}: {text}")
        err.kind = "no-server"
        return err
    mapped = map_exception(exc)
    return type(mapped)(f"{where}: {mapped}")


class SpeedtestEngine(ThroughputEngine):
    """speedtest-cli against an Ookla server or a speedtest mini server (one session per target)."""

    name = "speedtest"

    def __init__(self, source_address: Optional[str] = None, timeout_s: float = 10.0) -> None:
        self.source_address = source_address
        self.timeout_s = timeout_s
        self._cache: SessionCache[_Session] = SessionCache(self._open, _session_error)

    def session(self, target: Target) -> _Session:
        """Connect, configure and choose the server once per target (raises ProbeError)."""
        return self._cache.get(target)

    def _open(self, target: Target) -> _Session:
        shutdown = _Shutdown()
        kw = dict(source_address=self.source_address, timeout=self.timeout_s, secure=target.secure, shutdown_event=shutdown)
        if target.url:
            st: speedtest.Speedtest = _MiniSpeedtest(**kw)
            mode = "mini"
        else:
            st = speedtest.Speedtest(**kw)
            mode = "ookla"
        opener = _CountingOpener(st._opener)  # every transfer goes through Speedtest._opener
        st._opener = opener
        if mode == "mini":
            best = st.get_best_server(st.set_mini_server(target.url.rstrip("/") + "/"))
        else:
            ids = [int(target.server_id)] if target.server_id else []
            st.get_servers(ids)
            best = st.get_best_server()
        ping = float(best["latency"]) if best.get("latency") is not None else None
        if ping is not None and ping >= 3600:  # its marker for "latency.txt did not answer test=test"
            raise ProtocolFailure(f"{target.name} ({best.get('url')}): latency.txt did not answer as a speedtest server does")
        return _Session(st, opener, shutdown, server_record(best, mode), mode, ping)

    def measure(self, target: Target, plan: ThroughputPlan, stop: threading.Event) -> BandwidthMeasurement:
        notes = (NOTE,)
        try:
            sess = self.session(target)
        except ProbeError as exc:
            return failed(target, plan, self.name, str(exc), exc.kind, notes=notes)
        with sess.lock:
            return self._measure(sess, target, plan, stop, notes)

    def _measure(
        self, sess: _Session, target: Target, plan: ThroughputPlan, stop: threading.Event, notes: tuple[str, ...]
    ) -> BandwidthMeasurement:
        st = sess.st
        local_stop = threading.Event()
        sess.shutdown.events = (stop, local_stop)
        st.config["length"] = {"download": plan.duration_s, "upload": plan.duration_s}
        sess.opener.reset()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                if plan.direction == "download":
                    box["bps"] = st.download(threads=plan.streams)
                else:
                    # pre_allocate=False: each upload body is made when its thread starts (at most
                    # threads x 7 MiB) instead of all 51 bodies (about 150 MB) before the test
                    box["bps"] = st.upload(threads=plan.streams, pre_allocate=False)
            except BaseException as exc:  # recorded, like a failed stream
                box["error"] = exc

        worker = threading.Thread(target=work, daemon=True, name="gnc-speedtest")
        counter = _Counter(sess.opener, plan.direction, worker)
        t0 = time.perf_counter()
        worker.start()
        points = poll_streams([counter], t0, plan.duration_s, plan.interval_s, stop)
        worker.join(3.0)  # its threads stop on their own timer, which started a moment after ours
        if worker.is_alive():
            local_stop.set()
            worker.join(5.0)
        results = st.results.dict()
        own_bps = box.get("bps")
        raw = {
            "tool": TOOL,
            "version": speedtest.__version__,
            "mode": sess.mode,
            "threads": plan.streams,
            "speedtest_mbps": None if own_bps is None else round(own_bps / 1e6, 3),
            "requests": sess.opener.requests,
            "results": _json_safe(results),
        }
        error = kind = None
        moved = points[-1][1]
        if "error" in box:
            mapped = _mapped(box["error"], target)
            error, kind = str(mapped), mapped.kind
        elif moved == 0:
            error = (
                f"{target.name} ({sess.server.get('url')}): speedtest-cli moved no bytes "
                f"({sess.opener.requests} requests; its transfer threads swallow HTTP errors)"
            )
            kind = "protocol"
        return summarize(
            target,
            plan,
            self.name,
            points,
            url=sess.server.get("url"),
            error=error,
            error_kind=kind,
            server=sess.server,
            engine_raw=raw,
            notes=notes,
            whole_if_short=True,
        )


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
