"""What a classroom needs and the limits it is held to: the profile model (pure data).

Profiles are read and composed by :mod:`giga_netcheck.config.profiles`; thresholds and triage
only ever see these frozen dataclasses.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from giga_netcheck.core.reference import mext_2024_table

LIMIT_KEYS = ("rtt_ms", "jitter_ms", "loss_pct", "gateway_loss_pct", "loaded_rtt_increase_ms", "dns_p50_ms", "dns_timeout_pct")
FIGURE_KEYS = ("down_mbps_per_device", "up_mbps_per_device", "active_share")


@dataclass(frozen=True)
class Limit:
    """A quality limit: lower is better; at or above ``warn`` warns, at or above ``fail`` fails.

    Sources state limits as "RTT < 100 ms", so a value equal to the limit is already outside it.
    """

    fail: float
    source: str
    warn: Optional[float] = None

    def warn_or_fail(self) -> float:
        """The first level that is no longer fine."""
        return self.warn if self.warn is not None else self.fail


@dataclass(frozen=True)
class SchoolRule:
    """A school-level bandwidth rule as data; ``thresholds`` turns it into ``school.bandwidth.*`` checks.

    - ``mext-2024`` / ``table``: piecewise-linear over ``points`` (students -> Mbps);
    - ``per_user``: ``down_mbps_per_user`` x users (students, or students and staff), at least
      ``minimum_mbps``;
    - ``fixed``: ``down_mbps`` (and ``up_mbps``) whatever the school's size.

    ``goodput_factor`` turns a line rate (what a standard or contract states) into the TCP
    goodput a measurement can show: a 100 Mbit/s line carries about 94 Mbit/s of payload.
    """

    rule: str
    source: str = ""
    """The rule's citation; each number also has its own in ``sources``."""
    points: tuple[tuple[int, float], ...] = ()
    users: str = "students"
    down_mbps_per_user: Optional[float] = None
    minimum_mbps: Optional[float] = None
    down_mbps: Optional[float] = None
    up_mbps: Optional[float] = None
    goodput_factor: float = 1.0
    sources: dict[str, str] = field(default_factory=dict)
    """Citation per number key (``down_mbps_per_user`` ...)."""


@dataclass(frozen=True)
class LoadActivity:
    """Profile key ``load:``: what each emulated device does when the load probe ramps a classroom
    on this profile (docs/load.md, docs/profiles.md)."""

    activity: str
    """``video``, ``video-call``, ``web-apps``, ``textbook`` or ``cbt``."""
    bitrate_mbps: float
    """Per device, for video and video calls (CBT: its download rate): ``load.bitrate_mbps``, else
    the profile's own ``classroom.down_mbps_per_device``."""
    source: str = ""
    """The bitrate's citation."""


@dataclass(frozen=True)
class MixPart:
    """One activity in a mix: a share of the classroom's devices (profile) or a device count (site)."""

    profile: Profile
    share: Optional[float] = None
    devices: Optional[int] = None
    source: str = ""


@dataclass(frozen=True)
class Profile:
    """What one classroom needs, the quality limits it is held to, and the school-level rule."""

    name: str
    description: str
    down_mbps_per_device: float
    up_mbps_per_device: float
    active_share: float
    warn_margin: float
    sources: dict[str, str]
    limits: dict[str, Limit]
    school_recommendation: str = "mext-2024"
    """``mext-2024``, ``none``, or the rule of ``school_rule``."""
    path: Optional[str] = None
    citation: str = ""
    """The document the profile reproduces and its date (the file's ``source:``)."""
    extends: tuple[str, ...] = ()
    """Files this one extends, nearest parent first."""
    mix: tuple[MixPart, ...] = ()
    """Parts of a mixed classroom; empty for a single activity. Figures above are then per-device averages."""
    school_rule: Optional[SchoolRule] = None
    """The school-level rule; None means ``school_recommendation`` decides (``mext-2024`` or none)."""
    default_devices: Optional[int] = None
    """Devices a classroom on this profile has when nobody says (``home-online-lesson``: 1)."""
    shadows: Optional[str] = None
    """A profile file of the same name that this one hides (a user profile over a shipped one)."""
    load: Optional[LoadActivity] = None
    """What the load probe's devices do for this profile; None for a mix (see :meth:`load_part`) or
    for a profile that declares no ``load.activity`` (own or through ``extends:``)."""

    def need_down_mbps(self, devices: float) -> float:
        if self._counted():
            return sum(part.profile.need_down_mbps(part.devices or 0) for part in self.mix)
        return self.down_mbps_per_device * devices * self.active_share

    def need_up_mbps(self, devices: float) -> float:
        if self._counted():
            return sum(part.profile.need_up_mbps(part.devices or 0) for part in self.mix)
        return self.up_mbps_per_device * devices * self.active_share

    def _counted(self) -> bool:
        return any(part.devices is not None for part in self.mix)

    def leaves(self, devices: float) -> list[tuple[Profile, float]]:
        """The single-activity profiles behind this one, each with the devices it covers."""
        if not self.mix:
            return [(self, float(devices))]
        out: list[tuple[Profile, float]] = []
        for part in self.mix:
            n = float(part.devices) if part.devices is not None else (part.share or 0.0) * devices
            out += part.profile.leaves(n)
        return out

    def load_part(self, devices: float = 1.0) -> Profile:
        """The single-activity profile whose activity the load probe emulates: this one, or for a
        mix the part that covers the most of ``devices`` (the first listed of equal parts)."""
        return max(self.leaves(devices), key=lambda leaf: leaf[1])[0]

    def school_bandwidth_rule(self) -> Optional[SchoolRule]:
        """The school-level rule this profile holds a school to, or None."""
        if self.school_rule is not None:
            return self.school_rule
        if self.school_recommendation == "mext-2024":
            return mext_2024_rule()
        return None


def strictest(candidates: Sequence[tuple[str, Limit]], own: str = "") -> Limit:
    """The strictest of several limits for one measurement: the lowest fail and the lowest warn below it.

    Each part of the source names the profile it came from (unless it is ``own``).
    """

    def cite(origin: str, text: str) -> str:
        if origin == own:
            return text
        tied = list(dict.fromkeys(o for o, lim in candidates if lim == by_origin[origin]))  # every part with this very limit
        return f"{', '.join(tied)}: {text}"

    by_origin: dict[str, Limit] = {}
    for o, lim in candidates:
        by_origin.setdefault(o, lim)
    fail_origin, fail = min(candidates, key=lambda c: c[1].fail)
    warns = [(o, lim) for o, lim in candidates if lim.warn is not None and lim.warn < fail.fail]
    if fail.warn is not None and all(lim.warn is None or fail.warn <= lim.warn for _, lim in warns):
        return Limit(fail.fail, cite(fail_origin, fail.source), fail.warn)
    if not warns:
        return Limit(fail.fail, cite(fail_origin, fail.source), None)
    warn_origin, warn = min(warns, key=lambda c: c[1].warn)  # type: ignore[arg-type, return-value]
    source = f"fail: {cite(fail_origin, fail.source)}; warn: {cite(warn_origin, warn.source)}"
    return Limit(fail.fail, source, warn.warn)


def school_rule_of(raw: dict[str, Any]) -> SchoolRule:
    num = {k: float(raw[k]["value"]) for k in ("down_mbps_per_user", "minimum_mbps", "down_mbps", "up_mbps", "goodput_factor") if k in raw}
    return SchoolRule(
        rule=str(raw["rule"]),
        source=str(raw.get("source", "")),
        points=tuple((int(p["students"]), float(p["down_mbps"])) for p in raw.get("points") or ()),
        users=str(raw.get("users", "students")),
        sources={k: str(raw[k]["source"]) for k in num},
        **num,
    )


@functools.lru_cache(maxsize=1)
def mext_2024_rule() -> SchoolRule:
    """The MEXT 2024 recommended-bandwidth table as a rule (``recommended_bandwidth: mext-2024``).

    The numbers live in giga_netcheck/data/reference.yaml (data, with their citation; read by
    core/reference.py) and the interpolation in thresholds.
    """
    return school_rule_of(mext_2024_table())
