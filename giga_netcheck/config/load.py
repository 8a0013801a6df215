"""The site file's ``load:`` section and the hard caps no site file can lift (docs/load.md)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

from giga_netcheck.config.schema import ListOf, Num, Obj, Str

ACTIVITIES = ("video", "web-apps", "textbook", "video-call", "cbt")

# Hard caps: a site file may ask for less, never for more.
HARD_MAX_DEVICES = 2000
HARD_MAX_STEPS = 20
HARD_MAX_STEP_S = 60.0
HARD_MAX_DURATION_S = 600.0
"""The whole ramp, every step and pause included."""
HARD_MAX_BYTES = 20 * 10**9

LOAD_SCHEMA = Obj(
    {
        "enabled": bool,
        "activity": Str(choices=ACTIVITIES),
        "bitrate_mbps": Num(0.05, 100),
        "segment_s": Num(0.2, 10),
        "devices": Num(1, HARD_MAX_DEVICES, integer=True),
        "max_factor": Num(1, 4),
        "steps": Num(1, HARD_MAX_STEPS, integer=True),
        "step_s": Num(1, HARD_MAX_STEP_S),
        "max_devices": Num(1, HARD_MAX_DEVICES, integer=True),
        "max_mb": Num(1, HARD_MAX_BYTES / 1e6),
        "target": Str(),
        "allow_unverified": ListOf(Str()),
        "i_run_this_server": bool,
    }
)


@dataclass(frozen=True)
class LoadSettings:
    """How the load probe ramps; None means "from the classroom and its profile"."""

    enabled: bool = True
    activity: Optional[str] = None
    """``video``, ``web-apps``, ``textbook``, ``video-call`` or ``cbt``; None: from the classroom's profile."""
    bitrate_mbps: Optional[float] = None
    """Video or call bitrate per device (CBT: its download rate); None: the profile's figure for the activity."""
    segment_s: float = 2.0
    """Video segment length: a player fetches one segment ahead of playback."""
    devices: Optional[int] = None
    """Devices the classroom needs to carry; None: the largest classroom's device count."""
    max_factor: float = 1.5
    """The ramp goes up to ``devices x max_factor``."""
    # inside `run` the ramp shares the one-minute budget with the other probes (issue 2: a
    # two-server site under 60 s); `probe load` or the site file can ask for more steps
    steps: int = 3
    step_s: float = 4.0
    max_devices: int = 300
    """Cap on emulated devices, shown before the ramp starts."""
    max_mb: float = 2000.0
    """Cap on bytes moved by the whole ramp (MB, 10^6 bytes)."""
    target: Optional[str] = None
    """Target name to load (``center``, ``internet``...); None: the center if it is a server, else the first."""
    allow_unverified: tuple[str, ...] = ()
    """URLs that may be loaded although they do not identify as giga-netcheck servers..."""
    i_run_this_server: bool = False
    """...and only with this confirmation set too."""

    def quick(self) -> LoadSettings:
        return replace(self, steps=min(self.steps, 3), step_s=min(self.step_s, 3.0), segment_s=min(self.segment_s, 1.0))


def load_settings(raw: Optional[dict[str, Any]]) -> LoadSettings:
    """The validated ``load:`` mapping as settings."""
    raw = raw or {}
    d = LoadSettings()
    return LoadSettings(
        enabled=bool(raw.get("enabled", d.enabled)),
        activity=None if raw.get("activity") is None else str(raw["activity"]),
        bitrate_mbps=None if raw.get("bitrate_mbps") is None else float(raw["bitrate_mbps"]),
        segment_s=float(raw.get("segment_s", d.segment_s)),
        devices=None if raw.get("devices") is None else int(raw["devices"]),
        max_factor=float(raw.get("max_factor", d.max_factor)),
        steps=int(raw.get("steps", d.steps)),
        step_s=float(raw.get("step_s", d.step_s)),
        max_devices=int(raw.get("max_devices", d.max_devices)),
        max_mb=float(raw.get("max_mb", d.max_mb)),
        target=None if raw.get("target") is None else str(raw["target"]),
        allow_unverified=tuple(str(x).rstrip("/") for x in raw.get("allow_unverified") or ()),
        i_run_this_server=bool(raw.get("i_run_this_server", False)),
    )
