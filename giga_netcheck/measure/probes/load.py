"""Load probe: a classroom of emulated devices, stepped up past the classroom's size, to find
how many devices the path really carries (the capacity knee) and how latency behaves meanwhile.

The machinery lives in :mod:`giga_netcheck.measure.loadgen` (one asyncio event loop, a minimal
HTTP/1.1 client, one activity class per kind of classroom traffic); this module chooses the
server, the activity and the caps from the site file, samples RTT to every hop during each
step (the same sampler as the bandwidth probe), and reduces the steps to the ``load`` section
of the result (docs/load.md).

Safety: only servers that identified themselves as giga-netcheck measurement servers are
loaded, or a URL the site file lists in ``load.allow_unverified`` together with
``load.i_run_this_server: true``; devices, duration and bytes have hard caps that are shown
before the ramp starts; Ctrl-C (``ctx.stop``) stops every device within a second and keeps
the steps measured so far.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Optional
from urllib.parse import urlsplit

from giga_netcheck.config.load import HARD_MAX_BYTES, HARD_MAX_DEVICES, HARD_MAX_DURATION_S, LoadSettings
from giga_netcheck.config.profiles import load_profile, profile_dirs
from giga_netcheck.core import load as analysis
from giga_netcheck.core.i18n import Text
from giga_netcheck.core.models import LatencySeries, LoadCaps, LoadClassroom, LoadHop, LoadIdle, LoadResult, LoadStep, Target
from giga_netcheck.core.profile import Profile
from giga_netcheck.core.stats import summarize_rtts
from giga_netcheck.measure.loadgen.activities import Activity, Cbt, Textbook, VideoCall, WebApps, activity_for
from giga_netcheck.measure.loadgen.ramp import PAUSE_S, Budget, RampTarget, run_ramp
from giga_netcheck.measure.probes.base import Probe, ProbeContext, ProbeOutput
from giga_netcheck.measure.probes.latency import LoadedLatencySampler, measure_series

LOAD_FORMAT = 1
"""Version of the ``load`` section's shape (docs/load.md)."""
IDLE_COUNT = 10
IDLE_INTERVAL_S = 0.05


@dataclass
class LoadOutput(ProbeOutput):
    """A probe output that also carries the ``load`` section."""

    load: Optional[LoadResult] = None


@dataclass(frozen=True)
class LoadPlan:
    """Everything decided before the first device starts; shown to the user as the caps."""

    target: Target
    ramp_target: RampTarget
    verified: bool
    activity: Activity
    classroom: str
    profile: str
    needed: int
    counts: tuple[int, ...]
    step_s: float
    max_devices: int
    max_bytes: int
    max_duration_s: float

    def caps(self) -> LoadCaps:
        return LoadCaps(
            max_devices=self.max_devices,
            steps=len(self.counts),
            step_s=self.step_s,
            max_duration_s=round(self.max_duration_s, 1),
            max_bytes=self.max_bytes,
        )

    def caps_text(self) -> str:
        return (
            f"load: {self.activity.kind} on up to {max(self.counts)} devices (cap {self.max_devices}) against "
            f"{self.target.name} ({self.target.url}), {len(self.counts)} steps of {self.step_s:g} s, "
            f"at most {self.max_duration_s:.0f} s and {self.max_bytes / 1e6:.0f} MB"
        )


def _min_step_s(activity: Activity) -> float:
    """A step long enough for the activity to be judged at least once."""
    if isinstance(activity, Textbook):
        return activity.limit_s + 1.0
    if isinstance(activity, Cbt):
        return activity.item_limit_s + 1.0  # start offsets (up to 1 s) + one item
    if isinstance(activity, WebApps):
        return activity.page_limit_s + 2.0  # start offsets (up to 1.5 s) + one page
    if isinstance(activity, VideoCall):
        return 3.0
    return 2 * getattr(activity, "segment_s", 1.0) + 0.5  # start-up segment, one judged segment, offsets


def choose_target(ctx: ProbeContext, settings: LoadSettings) -> tuple[Optional[Target], bool, Optional[str]]:
    """(target, verified, why not): the server the devices load."""
    allowed = set(settings.allow_unverified) if settings.i_run_this_server else set()
    eligible: list[tuple[Target, bool]] = []
    for t in ctx.targets:
        if not t.url or urlsplit(t.url).scheme != "http":
            continue
        if t.name in ctx.servers:
            eligible.append((t, True))
        elif t.url.rstrip("/") in allowed:
            eligible.append((t, False))
    if settings.target:
        match = [e for e in eligible if e[0].name == settings.target]
        if not match:
            return None, False, Text("reason.load_target_unverified", target=settings.target)
        return match[0][0], match[0][1], None
    if not eligible:
        unverified = bool(settings.allow_unverified and not settings.i_run_this_server)
        return None, False, Text("reason.load_no_server_unverified" if unverified else "reason.load_no_server")
    eligible.sort(key=lambda e: 0 if e[0].role == "center" else 1)  # the school's own path first
    return eligible[0][0], eligible[0][1], None


def _profile(ctx: ProbeContext, ref: str) -> Profile:
    """A profile the run loaded (``ctx.profiles``), else loaded here the way the run loads it."""
    found = ctx.profiles.get(ref)
    if found is not None:
        return found
    site = ctx.site
    return load_profile(ref, profile_dirs(site.profiles_dir, cli=site.profiles_cli_dir))


def _classroom(ctx: ProbeContext) -> tuple[str, int, str, Profile]:
    """(name, devices, profile name, profile) of the largest classroom. The profile is the one whose
    activity the devices emulate: the classroom's, or for a mix (a site classroom's ``mix:`` or a
    profile's) the part that covers the most devices."""
    rooms = ctx.site.classrooms
    if rooms:
        room = max(rooms, key=lambda r: r.devices)
        name, devices, ref = room.name, room.devices, room.profile
    else:
        name, devices, ref = "classroom", 35, ctx.site.profile
    whole = _profile(ctx, ref)
    part = whole.load_part(devices)
    return name, devices, ref if part is whole else part.name, part


def no_activity(ctx: ProbeContext, settings: LoadSettings) -> Optional[Text]:
    """Why the devices would have nothing to do: no activity in the site file nor in the profile."""
    if settings.activity is not None:
        return None
    _, _, name, part = _classroom(ctx)
    return None if part.load is not None else Text("reason.load_no_activity", profile=name)


def make_plan(ctx: ProbeContext, settings: LoadSettings, quick: bool) -> tuple[Optional[LoadPlan], Optional[str]]:
    target, verified, why = choose_target(ctx, settings)
    if target is None or target.url is None:
        return None, why
    why = no_activity(ctx, settings)
    if why is not None:
        return None, why
    if quick:
        settings = settings.quick()
    name, devices, profile, part = _classroom(ctx)
    needed = settings.devices or devices
    activity = activity_for(settings.activity, settings.bitrate_mbps, part, settings.segment_s)
    max_devices = min(settings.max_devices, HARD_MAX_DEVICES)
    counts = tuple(analysis.plan_steps(needed, settings.max_factor, settings.steps, max_devices))
    step_s = max(settings.step_s, _min_step_s(activity))
    # each step: its own time, the pause, the latency sampler's wind-down; plus the idle baseline
    duration = min(HARD_MAX_DURATION_S, len(counts) * (step_s + PAUSE_S + 2.0) + 5.0)
    parts = urlsplit(target.url)
    ident = ctx.servers.get(target.name) or {}
    ramp_target = RampTarget(target.name, parts.hostname or target.host, parts.port or 80, ident.get("udp_echo_port"))
    return LoadPlan(
        target,
        ramp_target,
        verified,
        activity,
        name,
        profile,
        needed,
        counts,
        step_s,
        max_devices,
        int(min(settings.max_mb * 1e6, HARD_MAX_BYTES)),
        duration,
    ), None


def _idle(ctx: ProbeContext) -> dict[str, LatencySeries]:
    """A short idle RTT series per hop, all in parallel: the baseline for the increase under load."""
    out: dict[str, LatencySeries] = {}

    def one(t: Target) -> None:
        out[t.name] = measure_series(t, ctx, phase="load:idle", count=IDLE_COUNT, interval_s=IDLE_INTERVAL_S)

    threads = [threading.Thread(target=one, args=(t,), daemon=True) for t in ctx.targets]
    for th in threads:
        th.start()
    for th in threads:
        th.join(IDLE_COUNT * (IDLE_INTERVAL_S + ctx.settings.latency_timeout_s) + 1.0)
    return out


def hop_summary(series: LatencySeries, idle: Optional[LatencySeries]) -> LoadHop:
    """One hop's RTT during one step, with its increase over idle and the bufferbloat grade.

    The first quarter of the step's samples is left out of the figures (kept in ``rtts_ms``):
    the queue is still filling while the devices start, as the bandwidth probe's warm-up."""
    idle_p50 = idle.stats.p50_ms if idle else None
    loaded = summarize_rtts(series.rtts_ms[len(series.rtts_ms) // 4 :])
    inc = None if idle_p50 is None or loaded.p50_ms is None else round(loaded.p50_ms - idle_p50, 3)
    return LoadHop(
        target=series.target,
        role=series.role,
        method=series.method,
        p50_ms=loaded.p50_ms,
        p95_ms=loaded.p95_ms,
        loss_pct=loaded.loss_pct,
        idle_p50_ms=idle_p50,
        increase_ms=inc,
        grade=analysis.grade(inc),
        rtts_ms=tuple(series.rtts_ms),
        error=series.error,
    )


class LoadProbe(Probe):
    """A ramp of emulated devices against one measurement server."""

    name = "load"

    def __init__(self, quick: Optional[bool] = None) -> None:
        self.quick = quick

    def check(self, ctx: ProbeContext) -> Optional[str]:
        settings: LoadSettings = getattr(ctx.site, "load", LoadSettings())
        if not settings.enabled:
            return Text("reason.load_disabled")
        if self.quick is None and self._is_quick(ctx):
            # --quick promises about 20 s for the whole run; a ramp needs more than that alone
            return Text("reason.load_quick")
        _, _, why = choose_target(ctx, settings)
        return why or no_activity(ctx, settings)

    def _is_quick(self, ctx: ProbeContext) -> bool:
        # runner.run passes site.probes itself unless --quick made shortened settings
        return self.quick if self.quick is not None else ctx.settings is not ctx.site.probes

    def run(self, ctx: ProbeContext) -> ProbeOutput:
        settings: LoadSettings = getattr(ctx.site, "load", LoadSettings())
        plan, why = make_plan(ctx, settings, self._is_quick(ctx))
        if plan is None:
            return LoadOutput(status="failed", reason=why, reason_kind="config")
        ctx.progress.note(plan.caps_text())
        idle = _idle(ctx) if not ctx.stop.is_set() else {}

        @contextlib.contextmanager
        def hook(n: int) -> Iterator[Callable[[], list[LoadHop]]]:
            ctx.progress.step(f"load: {n} devices ({plan.activity.kind})", total=plan.step_s)
            with LoadedLatencySampler(ctx, phase=f"load:{n}") as sampler:
                yield lambda: [hop_summary(s, idle.get(s.target)) for s in sampler.series()]

        def on_step(step: LoadStep) -> None:
            ctx.progress.advance(plan.step_s)
            share = step.met_share
            errs = sum(step.errors.values())
            ctx.progress.note(
                f"load: {step.devices} devices: "
                f"{'-' if share is None else f'{share * 100:.0f}%'} met, {step.goodput_mbps:.1f} Mbit/s"
                + (f", {errs} connection errors" if errs else "")
            )

        budget = Budget(plan.max_bytes, plan.max_duration_s)
        steps, stopped = run_ramp(
            list(plan.counts), plan.activity, plan.ramp_target, step_s=plan.step_s, stop=ctx.stop, budget=budget, hook=hook, on_step=on_step
        )
        load = build_section(plan, steps, stopped, idle)
        out = LoadOutput(load=load)
        if stopped == "interrupted":
            out.status, out.reason, out.reason_kind = "partial", Text("reason.interrupted"), "interrupted"
        elif stopped:
            out.status, out.reason, out.reason_kind = "partial", Text("reason.load_stopped", limit=stopped), stopped
        elif not steps or all(s.judged == 0 for s in steps):
            out.status, out.reason, out.reason_kind = "failed", Text("reason.load_no_data"), "no-data"
        return out


def build_section(plan: LoadPlan, steps: list[LoadStep], stopped: Optional[str], idle: dict[str, LatencySeries]) -> LoadResult:
    """The ``load`` section of the result (docs/load.md)."""
    k = analysis.knee(steps)
    complete = [s for s in steps if s.complete]
    return LoadResult(
        format=LOAD_FORMAT,
        target=plan.target.name,
        url=plan.target.url or "",
        verified_server=plan.verified,
        classroom=LoadClassroom(name=plan.classroom, devices_needed=plan.needed, profile=plan.profile),
        activity=plan.activity.describe(),
        caps=plan.caps(),
        planned_devices=tuple(plan.counts),
        meet_share=analysis.MEET_SHARE,
        stopped=stopped,
        idle={t: LoadIdle(p50_ms=s.stats.p50_ms, method=s.method, rtts_ms=tuple(s.rtts_ms)) for t, s in idle.items()},
        steps=tuple(steps),
        knee=k,
        supports=analysis.supports(k, plan.needed),
        responsiveness=analysis.responsiveness(complete),
        bufferbloat=analysis.bufferbloat(complete),
    )
