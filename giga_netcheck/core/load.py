"""Pure reductions of a ramp: the step plan, the capacity knee, responsiveness (RPM), grades.

Nothing here touches the network, so every figure in the ``load`` section can be re-derived
from the steps it was computed from (and is tested on synthetic steps).
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

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


def knee(steps: Sequence[dict[str, Any]], share: float = MEET_SHARE) -> Optional[dict[str, Any]]:
    """The capacity knee: the largest device count carried before the first step that is not.

    Steps are taken in device order; only complete steps with a verdict count. A step counts as
    carried when ``met_share >= share``. Counting stops at the first step that is not carried,
    so a lucky larger step after a failing one does not lift the knee. None when even the first
    step is not carried (or nothing was judged).
    """
    judged = sorted((s for s in steps if s.get("complete", True) and s.get("met_share") is not None), key=lambda s: s["devices"])
    best: Optional[dict[str, Any]] = None
    failing: Optional[dict[str, Any]] = None
    for s in judged:
        if s["met_share"] >= share:
            best = s
        else:
            failing = s
            break
    if best is None:
        return None
    return {
        "devices": best["devices"],
        "connections": best.get("connections", best["devices"]),
        "goodput_mbps": best.get("goodput_mbps"),
        "met_share": best["met_share"],
        "first_failing_devices": failing["devices"] if failing else None,
        "beyond_ramp": failing is None,
    }


def supports(k: Optional[dict[str, Any]], needed: int) -> dict[str, Any]:
    """How many of the devices the classroom needs the ramp showed carried."""
    carried = k["devices"] if k else 0
    return {
        "devices": carried,
        "needed": needed,
        "enough": carried >= needed,
        "at_least": bool(k and k.get("beyond_ramp")),  # no step failed: capacity is this or more
        "first_failing_devices": k.get("first_failing_devices") if k else None,
    }


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


def grade(increase_ms: Optional[float]) -> Optional[str]:
    return None if increase_ms is None else bufferbloat_grade(max(0.0, increase_ms))


def worst_increase(step: dict[str, Any]) -> Optional[tuple[str, float]]:
    """(target, increase) of the hop whose RTT rose most in this step."""
    incs = [(h["target"], h["increase_ms"]) for h in step.get("latency", ()) if h.get("increase_ms") is not None]
    return max(incs, key=lambda x: x[1]) if incs else None


def bufferbloat(steps: Sequence[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The grade of the largest RTT increase at any hop in any complete step (the queue's worst)."""
    worst: Optional[tuple[float, str, int]] = None
    for s in steps:
        if not s.get("complete", True):
            continue
        w = worst_increase(s)
        if w is not None and (worst is None or w[1] > worst[0]):
            worst = (w[1], w[0], s["devices"])
    if worst is None:
        return None
    return {"grade": grade(worst[0]), "increase_ms": round(worst[0], 3), "target": worst[1], "at_devices": worst[2]}
