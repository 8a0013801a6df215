"""Pure reductions of a ramp: the step plan, the capacity knee, responsiveness (RPM), grades.

Nothing here touches the network, so every figure in the ``load`` section can be re-derived
from the steps it was computed from (and is tested on synthetic steps).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

from giga_netcheck.core.models import LoadBufferbloat, LoadKnee, LoadResponsiveness, LoadStep, LoadSupports
from giga_netcheck.core.stats import trimmed_mean
from giga_netcheck.core.triage import bufferbloat_grade

MEET_SHARE = 0.95
"""A step carries its devices when at least this share of them meet their activity."""


def plan_steps(needed: int, max_factor: float, steps: int, max_devices: int) -> list[int]:
    """Device counts for the ramp: ``steps`` even steps up to ``needed x max_factor`` (capped)."""
    top = max(1, min(max_devices, math.ceil(needed * max_factor)))
    steps = max(1, min(steps, top))
    counts = [max(1, round(top * i / steps)) for i in range(1, steps + 1)]
    return sorted(set(counts))


def knee(steps: Sequence[LoadStep], share: float = MEET_SHARE) -> Optional[LoadKnee]:
    """The capacity knee: the largest device count carried before the first step that is not.

    Steps are taken in device order; only complete steps with a verdict count. A step counts as
    carried when ``met_share >= share``. Counting stops at the first step that is not carried,
    so a lucky larger step after a failing one does not lift the knee. None when even the first
    step is not carried (or nothing was judged).
    """
    judged = sorted((s for s in steps if s.complete and s.met_share is not None), key=lambda s: s.devices)
    best: Optional[LoadStep] = None
    failing: Optional[LoadStep] = None
    for s in judged:
        if (s.met_share or 0.0) >= share:
            best = s
        else:
            failing = s
            break
    if best is None or best.met_share is None:
        return None
    return LoadKnee(
        devices=best.devices,
        connections=best.connections,
        goodput_mbps=best.goodput_mbps,
        met_share=best.met_share,
        first_failing_devices=failing.devices if failing else None,
        beyond_ramp=failing is None,
    )


def supports(k: Optional[LoadKnee], needed: int) -> LoadSupports:
    """How many of the devices the classroom needs the ramp showed carried."""
    carried = k.devices if k else 0
    return LoadSupports(
        devices=carried,
        needed=needed,
        enough=carried >= needed,
        at_least=bool(k and k.beyond_ramp),  # no step failed: capacity is this or more
        first_failing_devices=k.first_failing_devices if k else None,
    )


def rpm(foreign_ms: Sequence[float], self_ms: Sequence[float], trim_pct: float = 5.0) -> tuple[Optional[float], Optional[float]]:
    """(RPM, working RTT in ms) per draft-ietf-ippm-responsiveness.

    Each probe kind is reduced with a single-sided trimmed mean (the slowest ``trim_pct``
    percent dropped); the working RTT is the mean of the foreign (new connections) and self
    (loaded connections) figures, or the one that exists; RPM = 60000 / working RTT.
    """
    parts = [v for v in (trimmed_mean(list(foreign_ms), trim_pct), trimmed_mean(list(self_ms), trim_pct)) if v is not None]
    if not parts:
        return None, None
    working = sum(parts) / len(parts)
    if working <= 0:
        return None, None
    return round(60000.0 / working, 1), round(working, 3)


def rpm_rating(value: Optional[float]) -> Optional[str]:
    """< 300 poor, 300-1000 fair, 1000-6000 good, >= 6000 excellent (the draft's bands)."""
    if value is None:
        return None
    for limit, word in ((300, "poor"), (1000, "fair"), (6000, "good")):
        if value < limit:
            return word
    return "excellent"


def responsiveness(steps: Sequence[LoadStep]) -> Optional[LoadResponsiveness]:
    """RPM and its rating at the largest complete step (the most load the ramp judged)."""
    complete = [s for s in steps if s.complete]
    if not complete:
        return None
    loaded = max(complete, key=lambda s: s.devices)
    return LoadResponsiveness(
        rpm=loaded.rpm, working_rtt_ms=loaded.working_rtt_ms, rating=rpm_rating(loaded.rpm), at_devices=loaded.devices
    )


def grade(increase_ms: Optional[float]) -> Optional[str]:
    return None if increase_ms is None else bufferbloat_grade(max(0.0, increase_ms))


def bufferbloat(steps: Sequence[LoadStep]) -> Optional[LoadBufferbloat]:
    """The grade of the largest RTT increase at any hop in any complete step (the queue's worst)."""
    worst: Optional[tuple[float, str, int]] = None
    for s in steps:
        if not s.complete:
            continue
        hop = s.worst_hop()
        if hop is not None and hop.increase_ms is not None and (worst is None or hop.increase_ms > worst[0]):
            worst = (hop.increase_ms, hop.target, s.devices)
    if worst is None:
        return None
    return LoadBufferbloat(grade=grade(worst[0]), increase_ms=round(worst[0], 3), target=worst[1], at_devices=worst[2])
