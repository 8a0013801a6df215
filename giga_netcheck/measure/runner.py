"""Plan and run the probes, keep partial results, and build the :class:`RunResult`.

Every target is checked (is it a measurement server?) before any probe runs, so a wrong URL
fails in the first second, not minute two. Probes run one after another; a failing probe is
recorded and the run goes on; Ctrl-C sets the stop event, every probe returns what it has, and
the result is still built (``interrupted: true``).
"""

from __future__ import annotations

import datetime as dt
import platform
import threading
import time
import uuid
from dataclasses import replace
from typing import Any, Callable, Optional

import httpx

from giga_netcheck import __version__
from giga_netcheck.config.profiles import load_profile, profile_dirs
from giga_netcheck.config.site import Site
from giga_netcheck.core.errors import NotMeasurementServer, ProbeError
from giga_netcheck.core.facts import Facts
from giga_netcheck.core.i18n import Text
from giga_netcheck.core.models import SCHEMA_VERSION, LoadResult, Measurements, ProbeRecord, RunResult, Target
from giga_netcheck.core.profile import Profile
from giga_netcheck.core.protocol import SERVICE_NAME
from giga_netcheck.core.stats import join_idle
from giga_netcheck.core.thresholds import answered, evaluate, missing_needs, missing_reasons, needs_for, overall_status
from giga_netcheck.core.triage import TriageInput, triage
from giga_netcheck.measure.failures import map_exception
from giga_netcheck.measure.probes.bandwidth import BandwidthProbe
from giga_netcheck.measure.probes.base import Probe, ProbeContext, ProbeOutput, Progress
from giga_netcheck.measure.probes.dns import DnsProbe
from giga_netcheck.measure.probes.family import FamilyProbe
from giga_netcheck.measure.probes.latency import LatencyProbe, LossPlacementProbe
from giga_netcheck.measure.probes.load import LoadProbe
from giga_netcheck.measure.probes.path import PathProbe, attach_hop_stats
from giga_netcheck.measure.probes.proxy import ProxyProbe
from giga_netcheck.measure.proxy_discovery import ProxyConfig

# the path probe runs first: the hops it finds are sampled under load by the bandwidth probe
DEFAULT_PROBES: tuple[Callable[[], Probe], ...] = (
    PathProbe,
    LatencyProbe,
    DnsProbe,
    ProxyProbe,
    BandwidthProbe,
    FamilyProbe,
    LoadProbe,
    LossPlacementProbe,
)


def identify(target: Target, timeout_s: float = 3.0) -> dict[str, Any]:
    """GET /id; the document if the target is a giga-netcheck measurement server, else raise."""
    assert target.url
    try:
        with httpx.Client(timeout=timeout_s, trust_env=False) as client:
            resp = client.get(f"{target.url}/id")
    except Exception as exc:
        raise map_exception(exc) from exc
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if resp.status_code != 200 or not isinstance(doc, dict) or doc.get("service") != SERVICE_NAME:
        raise NotMeasurementServer(Text("reason.not_server", url=target.url, status=resp.status_code))
    return doc


PAC_MAX_BYTES = 256 * 1024


def fetch_pac(url: str, timeout_s: float = 3.0) -> str:
    """The PAC script at ``url`` (direct, as browsers fetch it); raises on any failure."""
    with httpx.Client(timeout=timeout_s, trust_env=False) as client:
        resp = client.get(url)
        resp.raise_for_status()
        return resp.content[:PAC_MAX_BYTES].decode("utf-8", "replace")


def load_profiles(site: Site) -> dict[str, Profile]:
    """Every profile the site's classrooms use (raises ConfigError / UnknownProfileError)."""
    dirs = profile_dirs(site.profiles_dir, cli=site.profiles_cli_dir)
    names = {site.profile} | {r.profile for r in site.classrooms}
    return {n: load_profile(n, dirs) for n in sorted(names)}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def run(
    site: Site,
    *,
    quick: bool = False,
    host: Optional[dict[str, Any]] = None,
    progress: Optional[Progress] = None,
    stop: Optional[threading.Event] = None,
    probes: tuple[Callable[[], Probe], ...] = DEFAULT_PROBES,
) -> RunResult:
    """Measure, evaluate and triage one site. Never raises for network trouble.

    ``host`` is the OS information (``hostinfo.detect().to_dict()``); pass it in so tests can
    use recorded values. Config errors (profiles) are raised before anything is measured.
    """
    profiles = load_profiles(site)
    progress = progress or Progress()
    stop = stop or threading.Event()
    started = time.monotonic()
    started_at = _now()
    host = dict(host or {})
    settings = site.probes.quick() if quick else site.probes

    targets = site.targets(host.get("gateway_ipv4"))
    records: list[ProbeRecord] = []
    not_measured: list[str] = []
    servers: dict[str, dict[str, Any]] = {}
    progress.step("checking targets", total=len(targets))
    for t in targets:
        if t.url and t.engine == "http":  # other engines check their own servers (engines/)
            try:
                servers[t.name] = identify(t)
            except ProbeError as exc:
                why = exc.args[0] if exc.args and isinstance(exc.args[0], Text) else str(exc)
                records.append(ProbeRecord(f"identify:{t.name}", "failed", why, exc.kind))
                progress.note(f"{t.name}: {exc}")
        progress.advance()
    if site.gateway in (None, "auto") and not host.get("gateway_ipv4"):
        not_measured.append(Text("not_measured.no_gateway").about("gateway"))
    if not site.center:
        not_measured.append(Text("not_measured.no_center").about("center"))
    if not site.internet:
        not_measured.append(Text("not_measured.no_internet").about("internet"))

    resolvers: dict[str, list[str]] = {}
    for label in site.resolvers:
        resolvers[label] = list(host.get("resolvers") or []) if label == "system" else [label]
        if label == "system" and not resolvers[label]:
            not_measured.append(Text("not_measured.no_system_resolver").about("dns"))

    ctx = ProbeContext(
        site=site,
        settings=settings,
        targets=targets,
        servers=servers,
        host=host,
        resolvers=resolvers,
        stop=stop,
        progress=progress,
        proxy=ProxyConfig.from_settings(getattr(site, "proxy", None), host.get("proxy")).with_pac(fetch_pac),
        profiles=profiles,
    )
    collected = ProbeOutput()
    ctx.measured = collected
    load: Optional[LoadResult] = None
    for factory in probes:
        probe = factory()
        if stop.is_set():
            records.append(ProbeRecord(probe.name, "skipped", Text("reason.interrupted_before"), "interrupted"))
            continue
        reason = probe.check(ctx)
        if reason:
            records.append(ProbeRecord(probe.name, "skipped", reason))
            not_measured.append(reason.about(probe.name) if isinstance(reason, Text) else probe.name + ": " + reason)
            continue
        t0 = time.monotonic()
        try:
            out = probe.run(ctx)
        except Exception as exc:  # a probe bug must not lose the other probes' data
            mapped = map_exception(exc)
            out = ProbeOutput(status="failed", reason=Text("reason.internal_error", error=str(mapped)), reason_kind=mapped.kind)
        records.append(ProbeRecord(probe.name, out.status, out.reason, out.reason_kind, round(time.monotonic() - t0, 3)))
        collected.bandwidth += out.bandwidth
        collected.latency += out.latency
        collected.dns += out.dns
        collected.dns_agreement += out.dns_agreement
        collected.families += out.families
        collected.paths += out.paths
        collected.proxy = out.proxy or collected.proxy
        load = getattr(out, "load", None) if getattr(out, "load", None) is not None else load  # LoadOutput

    latency = join_idle(collected.latency)  # the follow-up's gateway probes join its idle series
    measurements = Measurements(
        bandwidth=tuple(collected.bandwidth),
        latency=tuple(latency),
        dns=tuple(collected.dns),
        dns_agreement=tuple(collected.dns_agreement),
        load=load,
        families=tuple(collected.families),
        proxy=collected.proxy,
        paths=attach_hop_stats(collected.paths, latency),
    )
    result = RunResult(
        schema_version=SCHEMA_VERSION,
        run_id=str(uuid.uuid4()),
        tool_version=__version__,
        started_at=started_at,
        finished_at=_now(),
        duration_s=round(time.monotonic() - started, 3),
        status="error",
        school=site.school,
        classrooms=site.classrooms,
        profile=site.profile,
        site_file=site.path,
        mode="quick" if quick else "full",
        host={**host, "python": platform.python_version()},
        targets=tuple(targets),
        measurements=measurements,
        probes=tuple(records),
        not_measured=tuple(not_measured),
        interrupted=stop.is_set(),
        context=dict(site.context),
    )
    return conclude(result, profiles)


def conclude(result: RunResult, profiles: dict[str, Profile]) -> RunResult:
    """Pure: checks, causes, status and what is missing from the measurements (``report`` re-runs this)."""
    facts = Facts.of(result.targets, result.measurements, result.probes)
    checks = evaluate(facts, result.school, result.classrooms, profiles, main_profile=result.profile)
    main = profiles.get(result.profile) or next(iter(profiles.values()))
    causes = triage(TriageInput(facts, tuple(checks), main, result.host))
    needs = needs_for(result.mode)
    gaps = tuple(missing_needs(checks, needs))
    status = overall_status(checks, answered(result.measurements), interrupted=result.interrupted, missing=gaps)
    missing = missing_reasons(checks, result.probes, result.not_measured_messages, needs)
    return replace(result, checks=tuple(checks), causes=tuple(causes), status=status, missing=missing)
