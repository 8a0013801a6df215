"""A Prometheus textfile for node_exporter's textfile collector (pure render, atomic write).

node_exporter reads every ``*.prom`` file in its ``--collector.textfile.directory`` on each
scrape, so the file must never be seen half-written: :func:`write` writes a temporary file in
the same folder (named so it does not end in ``.prom``) and renames it over the old one.
Metric names keep the unit in the name like the rest of giga-netcheck (``_mbps``, ``_ms``,
``_pct``); docs/scheduled.md lists them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Iterable, Optional

from giga_netcheck.core.models import RunResult, claims
from giga_netcheck.core.results import write_atomic

STATUS_VALUE = {"pass": 0, "warn": 1, "fail": 2, "error": 3, "incomplete": 3, "no-connectivity": 4}

_HELP = {
    "giga_netcheck_status": "Run verdict: 0 pass, 1 warn, 2 fail, 3 incomplete or error (a need not measured, or the run did not finish), 4 no connectivity.",
    "giga_netcheck_last_run_timestamp_seconds": "When the last run started (Unix time).",
    "giga_netcheck_run_duration_seconds": "How long the last run took.",
    "giga_netcheck_run_interrupted": "1 if the last run was stopped early (time limit, signal); its figures are partial.",
    "giga_netcheck_full_plan": "1 if the last run measured full bandwidth, 0 for the light plan (capped transfers).",
    "giga_netcheck_download_mbps": "Download goodput to a measurement server, multi-stream (light plan: a capped transfer, a lower bound).",
    "giga_netcheck_upload_mbps": "Upload goodput to a measurement server, multi-stream (light plan: a capped transfer, a lower bound).",
    "giga_netcheck_rtt_p50_ms": "Idle round-trip time to a target, median.",
    "giga_netcheck_loss_pct": "Idle packet loss to a target, percent.",
    "giga_netcheck_dns_p50_ms": "DNS answer time for repeated (cached) names, median, per resolver.",
    "giga_netcheck_transfer_bytes": "Bytes the last run's bandwidth tests moved.",
    "giga_netcheck_checks_failed": "Checks that failed in the last run.",
    "giga_netcheck_cause_confidence": "Confidence of each likely cause the last run named (0.5 and above is a claim).",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**kw: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in kw.items()) + "}"


def _num(v: float) -> str:
    if v != v:  # NaN
        return "NaN"
    return repr(float(v)) if isinstance(v, float) else str(v)


class _Out:
    def __init__(self) -> None:
        self.series: dict[str, list[str]] = {}

    def add(self, name: str, value: float, **labels: str) -> None:
        self.series.setdefault(name, []).append(f"{name}{_labels(**labels)} {_num(value)}")

    def text(self) -> str:
        lines: list[str] = []
        for name, rows in self.series.items():
            lines.append(f"# HELP {name} {_HELP[name]}")
            lines.append(f"# TYPE {name} gauge")
            lines.extend(rows)
        return "\n".join(lines) + "\n"


def render(result: RunResult) -> str:
    """Pure: the textfile for one run (gauges only; one school per file)."""
    school = result.school.id
    out = _Out()
    out.add("giga_netcheck_status", STATUS_VALUE.get(result.status, 3), school=school)
    out.add("giga_netcheck_last_run_timestamp_seconds", float(_timestamp(result.started_at)), school=school)
    out.add("giga_netcheck_run_duration_seconds", float(result.duration_s), school=school)
    out.add("giga_netcheck_run_interrupted", 1 if result.interrupted else 0, school=school)
    out.add("giga_netcheck_full_plan", 0 if result.mode == "scheduled" else 1, school=school)
    for direction in ("download", "upload"):
        name = f"giga_netcheck_{direction}_mbps"
        seen: set[str] = set()
        ms = [b for b in result.measurements.bandwidth if b.direction == direction and b.goodput_mbps is not None]
        for b in sorted(ms, key=lambda b: b.streams == 1):  # the multi-stream figure wins per target
            if b.target not in seen:
                seen.add(b.target)
                out.add(name, float(b.goodput_mbps or 0.0), school=school, target=b.target, role=b.role)
    for s in result.measurements.latency:
        if s.phase != "idle":
            continue
        if s.stats.p50_ms is not None:
            out.add("giga_netcheck_rtt_p50_ms", float(s.stats.p50_ms), school=school, target=s.target, role=s.role)
        if s.stats.sent:
            out.add("giga_netcheck_loss_pct", float(s.stats.loss_pct), school=school, target=s.target, role=s.role)
    per_resolver: dict[str, list[float]] = {}
    for d in result.measurements.dns:
        if d.kind == "warm" and d.p50_ms is not None:
            per_resolver.setdefault(d.server, []).append(d.p50_ms)
    for server, values in sorted(per_resolver.items()):
        values.sort()
        out.add("giga_netcheck_dns_p50_ms", float(values[len(values) // 2]), school=school, resolver=server)
    out.add("giga_netcheck_transfer_bytes", sum(b.bytes_total for b in result.measurements.bandwidth), school=school)
    out.add("giga_netcheck_checks_failed", sum(1 for c in result.checks if c.status == "fail"), school=school)
    for c in claims(result.causes):
        out.add("giga_netcheck_cause_confidence", float(c.confidence), school=school, cause=c.id, segment=c.segment)
    return out.text()


def render_unfinished(school: str, started: Optional[dt.datetime] = None) -> str:
    """The textfile for a run that produced no result (killed by its hard time limit): status 3."""
    started = started or dt.datetime.now().astimezone()
    out = _Out()
    out.add("giga_netcheck_status", 3, school=school)
    out.add("giga_netcheck_last_run_timestamp_seconds", float(int(started.timestamp())), school=school)
    out.add("giga_netcheck_run_interrupted", 1, school=school)
    return out.text()


def _timestamp(iso: str) -> int:
    try:
        return int(dt.datetime.fromisoformat(iso).timestamp())
    except ValueError:
        return int(dt.datetime.now().timestamp())


def write(path: str | Path, text: str) -> Path:
    """Write atomically and world-readable (``results.write_atomic``): the collector (``*.prom``)
    never sees the ``.tmp`` file, and node_exporter usually runs as another user."""
    return write_atomic(path, text)


def metric_names() -> Iterable[str]:
    """Every metric name this module may write (docs and tests)."""
    return tuple(_HELP)
