"""Profiles: find by name or path, merge ``extends:``, compose ``mix:``, validate with key paths.

A *profile* says what a classroom needs (bandwidth per device, share active at once), the
quality limits, and the school-level bandwidth rule. Profiles compose two ways (docs/profiles.md):

- ``extends: parent`` merges the parent's keys under the child's, key by key;
- a *mix* combines activities: a profile's ``mix:`` gives shares of the classroom's devices,
  a site classroom's ``mix:`` gives device counts. Needed bandwidth is the sum over the mix;
  quality limits are the strictest of the mix. A site classroom's mix travels in
  ``Classroom.profile`` as a *mix spec*, ``web-apps*30+video-lesson*5``, so a saved result
  re-evaluates the same way (``report``).

A profile is named by a *name* (letters, digits, ``_`` and ``-``: a file ``NAME.yaml`` in one of
the profile folders) or by a *path* to a ``.yaml``/``.yml`` file; anything else (``../../etc/passwd``)
is refused before any file is opened. Composition is bounded (:data:`MAX_DEPTH`,
:data:`MAX_MIX_TERMS`) and each file is read once per load, so a load costs time linear in its terms.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from giga_netcheck.config.load import ACTIVITIES
from giga_netcheck.config.schema import Either, ListOf, Num, Obj, Str, printable, validate
from giga_netcheck.config.yamlfile import config_error as _error, read_yaml
from giga_netcheck.core.errors import ConfigError, UnknownProfileError
from giga_netcheck.core.profile import (
    FIGURE_KEYS,
    LIMIT_KEYS,
    Limit,
    LoadActivity,
    MixPart,
    Profile,
    school_rule_of as _school_rule,
    strictest,
)
from giga_netcheck.core.reference import shipped_profiles_dir

PROFILES_ENV = "GIGA_NETCHECK_PROFILES"

# A profile named inside a mix: a name or a path, but never the mix spec's own separators.
_MIX_REF = Str(pattern=r"[^*+]+", expect="a profile name or path without '+' or '*'")
_DEVICES = Num(1, 10000, integer=True)


PROFILE_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")
"""A profile's name: letters, digits, ``_`` and ``-`` (its file is NAME.yaml or NAME.yml in a profile folder)."""

MAX_MIX_TERMS = 64
"""Parts a mix may have, counting the parts of the mixes inside it (a site classroom's ``mix:``, a
profile's ``mix:``, a mix spec): a classroom mixes a few activities, not thousands."""


def check_reference(ref: str) -> None:
    """Raise UnknownProfileError unless ``ref`` is a profile name or a path to a .yaml/.yml file.

    Checked before any file is opened, so ``profile: ../../../../etc/passwd`` (in a site file, a
    profile's ``extends:`` or ``mix:``, or on the command line) is never read, nor a word of it shown.
    """
    if PROFILE_NAME.fullmatch(ref) or (_is_path(ref) and ref.endswith((".yaml", ".yml")) and "\0" not in ref):
        return
    raise UnknownProfileError(
        f"'{_shown(ref)}' is neither a profile name (letters, digits, '_' and '-') nor a path to a .yaml or .yml profile file",
        key="profile",
    )


def _shown(text: str, limit: int = 80) -> str:
    return printable(text if len(text) <= limit else text[: limit - 3] + "...")


def mix_spec(parts: Sequence[tuple[str, int]]) -> str:
    """``[("web-apps", 30), ("video-lesson", 5)]`` -> ``web-apps*30+video-lesson*5``."""
    return "+".join(f"{name}*{devices}" for name, devices in parts)


_DEVICE_COUNT = re.compile(r"[0-9]{1,5}")


def parse_mix_spec(text: str) -> Optional[list[tuple[str, int]]]:
    """The parts of a mix spec, or None when ``text`` is a plain profile name or path (linear in ``text``)."""
    if "*" not in text:
        return None
    out = []
    for piece in text.split("+"):
        name, _, count = piece.rpartition("*")
        name, count = name.strip(), count.strip()
        if not name or "*" in name or not _DEVICE_COUNT.fullmatch(count) or int(count) < 1:
            return None
        out.append((name, int(count)))
    return out


# ------------------------------------------------------------------------------ profiles

_LIMIT = Obj({"warn": Num(0), "fail": Num(0), "source": Str()}, required=("fail", "source"))
_VALUE = Obj({"value": Num(0), "source": Str()}, required=("value", "source"))

SCHOOL_RULES = ("mext-2024", "table", "per_user", "fixed")
"""School-level bandwidth rules (``school.recommended_bandwidth.rule``); docs/profiles.md."""

USER_COUNTS = ("students", "students_and_staff")

_SCHOOL_RULE = Obj(
    {
        "rule": Str(choices=SCHOOL_RULES),
        "source": Str(),
        "points": ListOf(
            Obj({"students": Num(1, 1000000, integer=True), "down_mbps": Num(0)}, required=("students", "down_mbps")), nonempty=True
        ),
        "users": Str(choices=USER_COUNTS),
        "down_mbps_per_user": _VALUE,
        "minimum_mbps": _VALUE,
        "down_mbps": _VALUE,
        "up_mbps": _VALUE,
        "goodput_factor": Obj({"value": Num(0.5, 1), "source": Str()}, required=("value", "source")),
    },
    required=("rule",),
)

# rule -> (keys it may have, keys it must have) besides ``rule``
_RULE_KEYS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "mext-2024": (frozenset({"source", "points"}), ()),
    "table": (frozenset({"source", "points"}), ("source", "points")),
    "per_user": (frozenset({"source", "users", "down_mbps_per_user", "minimum_mbps", "goodput_factor"}), ("down_mbps_per_user",)),
    "fixed": (frozenset({"source", "down_mbps", "up_mbps", "goodput_factor"}), ("down_mbps",)),
}

PROFILE_SCHEMA = Obj(
    {
        "name": Str(),
        "description": Str(),
        "source": Obj({"title": Str(), "published": Str(), "url": Str(), "note": Str()}, required=("title", "published")),
        "extends": Str(),
        "classroom": Obj(
            {
                "down_mbps_per_device": _VALUE,
                "up_mbps_per_device": _VALUE,
                "active_share": Obj({"value": Num(0, 1), "source": Str()}, required=("value", "source")),
                "warn_margin": Obj({"value": Num(1, 10), "source": Str()}, required=("value", "source")),
                "devices": Obj({"value": _DEVICES, "source": Str()}, required=("value", "source")),
            }
        ),
        "mix": ListOf(
            Obj({"profile": _MIX_REF, "share": Num(0, 1), "source": Str()}, required=("profile", "share", "source")), nonempty=True
        ),
        "limits": Obj(
            {
                "rtt_ms": _LIMIT,
                "jitter_ms": _LIMIT,
                "loss_pct": _LIMIT,
                "gateway_loss_pct": _LIMIT,
                "loaded_rtt_increase_ms": _LIMIT,
                "dns_p50_ms": _LIMIT,
                "dns_timeout_pct": _LIMIT,
            }
        ),
        "school": Obj({"recommended_bandwidth": Either((Str(choices=("mext-2024", "none")), _SCHOOL_RULE))}),
        # what the load probe's devices do (docs/profiles.md); the bitrate defaults to down_mbps_per_device
        "load": Obj(
            {
                "activity": Str(choices=ACTIVITIES),
                "bitrate_mbps": Obj({"value": Num(0.05, 100), "source": Str()}, required=("value", "source")),
            }
        ),
    }
)


MAX_DEPTH = 16
"""How deep ``extends:`` and ``mix:`` may nest; deeper is a mistake, not a design."""


@dataclass
class _Session:
    """One load: each file read and checked once, each profile built once (a mix naming ``web-apps``
    5 times, or 5 profiles extending ``default``, reads each file once)."""

    files: dict[Path, dict[str, Any]] = field(default_factory=dict)
    profiles: dict[tuple[Path, tuple[Path, ...]], Profile] = field(default_factory=dict)
    terms: dict[int, int] = field(default_factory=dict)

    def count(self, p: Profile) -> int:
        """The parts of ``p``'s mix, counting those of the mixes inside it."""
        if id(p) not in self.terms:
            self.terms[id(p)] = sum(1 + self.count(part.profile) for part in p.mix)
        return self.terms[id(p)]


def _too_many(path: Optional[Path] = None, key: Optional[str] = None) -> ConfigError:
    return _error(
        f"a mix may have at most {MAX_MIX_TERMS} parts, counting the parts of the mixes inside it "
        "(a classroom mixes a few activities; docs/profiles.md)",
        path=None if path is None else str(path),
        key=key,
    )


def profile_dirs(extra: Optional[str] = None, env: Optional[dict[str, str]] = None, cli: Optional[str] = None) -> list[Path]:
    """Where profiles are looked up, first match wins.

    ``--profiles-dir`` (``cli``), then the site file's ``profiles_dir`` (``extra``), then the
    folders in ``$GIGA_NETCHECK_PROFILES`` (separated like PATH), then the shipped profiles.
    A user profile with a shipped profile's name wins, and says so (``Profile.shadows``).
    """
    env = dict(os.environ if env is None else env)
    found = [Path(d) for d in (cli, extra) if d]
    found += [Path(d) for d in env.get(PROFILES_ENV, "").split(os.pathsep) if d]
    found.append(shipped_profiles_dir())
    dirs: list[Path] = []
    for d in found:
        if not any(_same(d, other) for other in dirs):
            dirs.append(d)
    return dirs


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, ValueError, RuntimeError):
        return a == b


def _is_path(ref: str) -> bool:
    return "/" in ref or os.sep in ref or bool(os.altsep and os.altsep in ref) or ref.endswith((".yaml", ".yml"))


def _candidates(name: str, d: Path) -> list[Path]:
    out = []
    for ext in (".yaml", ".yml"):
        p = d / f"{name}{ext}"
        try:
            if p.is_file():
                out.append(p)
        except (OSError, ValueError):
            pass
    return out


def find_profile(name: str, dirs: list[Path], skip: Sequence[Path] = ()) -> Path:
    """The file a profile name (or path) stands for; ``skip`` leaves out files already in use."""
    check_reference(name)
    if _is_path(name):
        return Path(name).expanduser()
    skipped = {_resolved(p) for p in skip}
    for d in dirs:
        for p in _candidates(name, d):
            if _resolved(p) not in skipped:
                return p
    known = sorted(known_profile_names(dirs))
    hint = difflib.get_close_matches(name, known, n=1)
    tip = f" (did you mean '{hint[0]}'?)" if hint else f" (known: {', '.join(known)})"
    raise UnknownProfileError(f"unknown profile '{printable(name)}'{tip}", key="profile")


def _resolved(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, ValueError, RuntimeError):
        return p


def known_profile_names(dirs: list[Path]) -> set[str]:
    out: set[str] = set()
    for d in dirs:
        try:
            out |= {p.stem for p in d.glob("*.y*ml") if p.suffix in (".yaml", ".yml")}
        except OSError:
            pass
    return out


@dataclass(frozen=True)
class ProfileFile:
    """A profile file in one of the folders, and what it hides or what hides it."""

    name: str
    path: Path
    shipped: bool
    shadows: Optional[Path] = None
    """The next file of the same name further down the precedence (this one wins over it)."""
    shadowed_by: Optional[Path] = None
    """The file of the same name that wins over this one."""


def list_profile_files(dirs: list[Path]) -> list[ProfileFile]:
    """Every profile file in ``dirs``, by name, winners first."""
    shipped = shipped_profiles_dir()
    by_name: dict[str, list[Path]] = {}
    for d in dirs:
        try:
            files = sorted(p for p in d.glob("*.y*ml") if p.suffix in (".yaml", ".yml") and p.is_file())
        except OSError:
            continue
        for p in files:
            if p not in by_name.setdefault(p.stem, []):
                by_name[p.stem].append(p)
    out = []
    for name in sorted(by_name):
        paths = by_name[name]
        for i, p in enumerate(paths):
            out.append(
                ProfileFile(
                    name=name,
                    path=p,
                    shipped=_same(p.parent, shipped),
                    shadows=paths[i + 1] if i + 1 < len(paths) else None,
                    shadowed_by=paths[i - 1] if i > 0 else None,
                )
            )
    return out


def _shadowed(path: Path, dirs: list[Path]) -> Optional[Path]:
    """The first other file named like ``path`` in a folder after ``path``'s own (or in any, for a lone path)."""
    home = next((i for i, d in enumerate(dirs) if _same(d, path.parent)), None)
    for d in dirs[(home + 1 if home is not None else 0) :]:
        for p in _candidates(path.stem, d):
            if _resolved(p) != _resolved(path):
                return p
    return None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _merge_profile(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``extends:``: the child's keys over the parent's; a school rule of another kind replaces, never blends."""
    base = {k: v for k, v in base.items() if k not in ("name", "description", "source")}  # a child speaks for itself
    merged = _merge(base, {k: v for k, v in over.items() if k != "extends"})
    rule_over = (over.get("school") or {}).get("recommended_bandwidth")
    rule_base = (base.get("school") or {}).get("recommended_bandwidth")
    if isinstance(rule_over, dict) and (not isinstance(rule_base, dict) or rule_base.get("rule") != rule_over.get("rule")):
        merged["school"]["recommended_bandwidth"] = copy.deepcopy(rule_over)
    return merged


def _read_profile(path: Path, session: _Session) -> dict[str, Any]:
    """The file's data, checked against the schema; read once per session."""
    me = _resolved(path)
    if me in session.files:
        return session.files[me]
    data = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):  # say what it is, never what it holds (it may not be a profile at all)
        kind = "a list" if isinstance(data, list) else "a number" if isinstance(data, (int, float)) else "text"
        raise _error(f"expected a mapping (key: value) of profile keys, got {kind}", path=str(path), key="(top level)")
    validate(data, PROFILE_SCHEMA, path=str(path))
    _check_school_rule(data, path)
    session.files[me] = data
    return data


def _raw_profile(
    path: Path, dirs: list[Path], chain: tuple[Path, ...] = (), session: Optional[_Session] = None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The data of the profile file at ``path`` with ``extends:`` resolved, and the parents' paths."""
    if len(chain) > MAX_DEPTH:
        raise _error(f"extends nests deeper than {MAX_DEPTH} profiles", path=str(path), key="extends")
    session = session if session is not None else _Session()
    data = _read_profile(path, session)
    me = _resolved(path)
    seen = chain + (me,)
    parent = data.get("extends")
    merged: dict[str, Any] = data
    parents: tuple[str, ...] = ()
    if parent is not None:
        ref = str(parent).strip()
        same_name = not _is_path(ref) and ref == path.stem
        try:
            ppath = _locate(ref, dirs, near=path.parent, skip=seen if same_name else ())
        except UnknownProfileError as exc:
            if same_name:
                raise _error(
                    f"profile extends itself ('{ref}'): no folder after this one holds another '{ref}' "
                    "to extend (a user profile may extend the shipped profile it shadows)",
                    path=str(path),
                    key="extends",
                ) from None
            raise _error(str(exc).split(": ", 1)[-1], path=str(path), key="extends") from None
        if not ppath.is_file():
            raise _error(f"no profile file {ppath}", path=str(path), key="extends")
        if _resolved(ppath) in seen:
            names = " -> ".join(p.stem for p in seen + (_resolved(ppath),))
            raise _error(f"profile extends itself through {names}", path=str(path), key="extends")
        base, grand = _raw_profile(ppath, dirs, seen, session)
        merged, parents = _merge_profile(base, data), (str(ppath),) + grand
    if merged.get("mix"):
        own = data.get("classroom") or {}
        whose = "" if data.get("mix") else f" (it inherits mix: through extends: {data.get('extends')})"
        for k in FIGURE_KEYS:
            if k in own:
                raise _error(
                    f"a profile with mix: takes its need from the mix{whose}; remove this key or the mix",
                    path=str(path),
                    key=f"classroom.{k}",
                )
        if "load" in data:
            raise _error(
                f"a profile with mix: takes its load activity from its largest part{whose}; remove this key or the mix",
                path=str(path),
                key="load",
            )
    return merged, parents


def _locate(ref: str, dirs: list[Path], *, near: Optional[Path], skip: Sequence[Path] = ()) -> Path:
    """A profile reference inside a file: a path (relative to that file) or a name in ``dirs``."""
    check_reference(ref)
    if _is_path(ref):
        p = Path(ref).expanduser()
        return p if p.is_absolute() or near is None else near / p
    return find_profile(ref, dirs, skip)


def _check_school_rule(data: dict[str, Any], path: Path) -> None:
    """Per-rule keys: what each rule needs, and keys that belong to another rule."""
    rule = (data.get("school") or {}).get("recommended_bandwidth")
    if not isinstance(rule, dict):
        return
    key = "school.recommended_bandwidth"
    kind = str(rule["rule"])
    allowed, required = _RULE_KEYS[kind]
    for k in rule:
        if k != "rule" and k not in allowed:
            owner = next((r for r, (keys, _) in _RULE_KEYS.items() if k in keys), None)
            why = f"belongs to rule {owner}" if owner else "is not a rule key"
            raise _error(f"'{k}' {why}, not to rule {kind} (which takes: {', '.join(sorted(allowed))})", path=str(path), key=f"{key}.{k}")
    for k in required:
        if k not in rule:
            raise _error(f"missing required key '{k}' for rule {kind}", path=str(path), key=f"{key}.{k}")
    if "points" in rule:
        if "source" not in rule:
            raise _error("missing required key 'source' (a table of points needs its citation)", path=str(path), key=f"{key}.source")
        pts = rule["points"]
        if len(pts) < 2:
            raise _error("expected at least two points to interpolate between", path=str(path), key=f"{key}.points")
        for i in range(1, len(pts)):
            if pts[i]["students"] <= pts[i - 1]["students"]:
                raise _error(
                    f"expected more students than the previous point ({pts[i - 1]['students']:g}), got {pts[i]['students']!r}",
                    path=str(path),
                    key=f"{key}.points[{i}].students",
                )


def load_profile(
    name: str, dirs: Optional[list[Path]] = None, *, _stack: tuple[Path, ...] = (), _session: Optional[_Session] = None
) -> Profile:
    """Load a profile by name, path or mix spec, resolving ``extends:`` and ``mix:``; every key must end up set."""
    dirs = list(dirs) if dirs is not None else profile_dirs()
    session = _session if _session is not None else _Session()
    spec = parse_mix_spec(name)
    if spec is not None:
        return compose(spec, dirs, name=name, _session=session)
    path = find_profile(name, dirs)
    return _load_path(path, dirs, lookup=name, stack=_stack, session=session)


def _load_path(path: Path, dirs: list[Path], *, lookup: str, stack: tuple[Path, ...], session: _Session) -> Profile:
    if not any(_same(d, path.parent) for d in dirs):
        dirs = [path.parent] + dirs  # a profile loaded by path finds its neighbours first
    if len(stack) > MAX_DEPTH:
        raise _error(f"mix nests deeper than {MAX_DEPTH} profiles", path=str(path), key="mix")
    cache_key = (_resolved(path), tuple(dirs))
    if cache_key in session.profiles:  # its name is its own or its file's, however it was looked up
        return session.profiles[cache_key]
    data, parents = _raw_profile(path, dirs, session=session)
    room = data.get("classroom") or {}
    sources = {k: str(v["source"]) for k, v in room.items()}
    own_limits: dict[str, Limit] = {}
    for key, lim in (data.get("limits") or {}).items():
        if lim.get("warn") is not None and lim["warn"] > lim["fail"]:
            raise _error(f"warn ({lim['warn']}) must not exceed fail ({lim['fail']})", path=str(path), key=f"limits.{key}")
        own_limits[key] = Limit(float(lim["fail"]), str(lim["source"]), None if lim.get("warn") is None else float(lim["warn"]))
    display = str(data.get("name") or (path.stem if _is_path(lookup) else lookup))
    margin = room.get("warn_margin")

    parts: list[MixPart] = []
    load: Optional[LoadActivity] = None  # a mix: its largest part's (Profile.load_part)
    if data.get("mix"):
        me = _resolved(path)
        if len(data["mix"]) > MAX_MIX_TERMS:
            raise _too_many(path, "mix")
        terms = 0
        for i, entry in enumerate(data["mix"]):
            ref = str(entry["profile"]).strip()
            key = f"mix[{i}].profile"
            try:
                ppath = _locate(ref, dirs, near=path.parent)
            except UnknownProfileError as exc:
                raise _error(str(exc).split(": ", 1)[-1], path=str(path), key=key) from None
            if _resolved(ppath) in stack + (me,):
                raise _error(f"mix includes this profile again through '{ref}'", path=str(path), key=key)
            if not ppath.is_file():
                raise _error(f"no profile file {ppath}", path=str(path), key=key)
            part = _load_path(ppath, dirs, lookup=ref, stack=stack + (me,), session=session)
            terms += 1 + session.count(part)
            if terms > MAX_MIX_TERMS:
                raise _too_many(path, key)
            parts.append(MixPart(part, share=float(entry["share"]), source=str(entry["source"])))
        total = sum(p.share or 0.0 for p in parts)
        if total > 1 + 1e-9:
            raise _error(f"shares add up to {total:g}; they are shares of the classroom's devices, so at most 1", path=str(path), key="mix")
        down = sum((p.share or 0.0) * p.profile.need_down_mbps(1.0) for p in parts)
        up = sum((p.share or 0.0) * p.profile.need_up_mbps(1.0) for p in parts)
        share = 1.0
        mix_text = " + ".join(f"{p.share:g} of devices on {p.profile.name}" for p in parts)
        sources = {
            "down_mbps_per_device": " + ".join(
                f"{p.share:g} x {p.profile.name} ({p.profile.sources.get('down_mbps_per_device', '')})" for p in parts
            ),
            "up_mbps_per_device": " + ".join(
                f"{p.share:g} x {p.profile.name} ({p.profile.sources.get('up_mbps_per_device', '')})" for p in parts
            ),
            "active_share": f"mix: {mix_text}; each part at its own share active at once",
            "mix": "; ".join(f"{p.profile.name} {p.share:g}: {p.source}" for p in parts),
            **({"warn_margin": sources["warn_margin"]} if "warn_margin" in sources else {}),
        }
        limits = {
            k: strictest(
                ([(display, own_limits[k])] if k in own_limits else []) + [(p.profile.name, p.profile.limits[k]) for p in parts],
                own=display,
            )
            for k in LIMIT_KEYS
        }
        warn_margin = float(margin["value"]) if margin else max(p.profile.warn_margin for p in parts)
    else:
        for key in FIGURE_KEYS:
            if key not in room:
                raise _error("missing (set it here or in the profile this one extends)", path=str(path), key=f"classroom.{key}")
        for key in LIMIT_KEYS:
            if key not in own_limits:
                raise _error("missing (set it here or in the profile this one extends)", path=str(path), key=f"limits.{key}")
        down, up = float(room["down_mbps_per_device"]["value"]), float(room["up_mbps_per_device"]["value"])
        share = float(room["active_share"]["value"])
        limits = {k: own_limits[k] for k in LIMIT_KEYS}
        warn_margin = float(margin["value"]) if margin else 1.0
        load = _load_activity(data.get("load"), room, path)

    rule = (data.get("school") or {}).get("recommended_bandwidth", "mext-2024")
    if isinstance(rule, dict) and rule["rule"] == "mext-2024" and not rule.get("points"):
        rule = "mext-2024"  # the mapping form without its own table: the shipped table
    cite = data.get("source") or {}
    citation = f"{cite['title']} ({cite['published']})" if cite else ""
    profile = Profile(
        name=display,
        description=" ".join(str(data.get("description") or "").split()),
        down_mbps_per_device=down,
        up_mbps_per_device=up,
        active_share=share,
        warn_margin=warn_margin,
        sources=sources,
        limits=limits,
        school_recommendation=str(rule["rule"]) if isinstance(rule, dict) else str(rule),
        path=str(path),
        citation=citation,
        extends=parents,
        mix=tuple(parts),
        school_rule=_school_rule(rule) if isinstance(rule, dict) else None,
        default_devices=int(room["devices"]["value"]) if "devices" in room else None,
        shadows=str(s) if (s := _shadowed(path, dirs)) else None,
        load=load,
    )
    session.profiles[cache_key] = profile
    return profile


def _load_activity(raw: Optional[dict[str, Any]], room: dict[str, Any], path: Path) -> Optional[LoadActivity]:
    """The ``load:`` keys of a single-activity profile, ``extends:`` resolved; None when it declares no activity."""
    if not raw:
        return None
    if "activity" not in raw:
        raise _error("missing (set it here or in the profile this one extends)", path=str(path), key="load.activity")
    rate = raw.get("bitrate_mbps")
    if rate is not None:
        return LoadActivity(str(raw["activity"]), float(rate["value"]), str(rate["source"]))
    down = room["down_mbps_per_device"]
    return LoadActivity(str(raw["activity"]), float(down["value"]), f"classroom.down_mbps_per_device: {down['source']}")


def compose(
    parts: Sequence[tuple[str, int]], dirs: list[Path], name: Optional[str] = None, *, _session: Optional[_Session] = None
) -> Profile:
    """A classroom that combines activities by device count (a site classroom's ``mix:``).

    Needed bandwidth is the sum over the parts; each quality limit is the strictest of the
    parts'; the school-level rule is the first part's.
    """
    if len(parts) > MAX_MIX_TERMS:
        raise _too_many(key="profile")
    session = _session if _session is not None else _Session()
    name = name or mix_spec(parts)
    loaded: list[MixPart] = []
    terms = 0
    for i, (ref, n) in enumerate(parts):
        part = load_profile(ref, dirs, _session=session)
        terms += 1 + session.count(part)
        if terms > MAX_MIX_TERMS:
            raise _too_many(key="profile")
        loaded.append(MixPart(part, devices=int(n), source=f"mix part {i + 1}"))
    devices = sum(p.devices or 0 for p in loaded)
    down = sum(p.profile.need_down_mbps(p.devices or 0) for p in loaded)
    up = sum(p.profile.need_up_mbps(p.devices or 0) for p in loaded)
    first = loaded[0].profile
    citations = list(dict.fromkeys(p.profile.citation for p in loaded if p.profile.citation))
    return Profile(
        name=name,
        description="mixed classroom: " + " + ".join(f"{p.devices} devices on {p.profile.name}" for p in loaded),
        down_mbps_per_device=down / devices if devices else 0.0,
        up_mbps_per_device=up / devices if devices else 0.0,
        active_share=1.0,
        warn_margin=max(p.profile.warn_margin for p in loaded),
        sources={
            "down_mbps_per_device": " + ".join(f"{p.profile.name} ({p.profile.sources.get('down_mbps_per_device', '')})" for p in loaded),
            "up_mbps_per_device": " + ".join(f"{p.profile.name} ({p.profile.sources.get('up_mbps_per_device', '')})" for p in loaded),
            "active_share": "each part at its own share active at once",
        },
        limits={k: strictest([(p.profile.name, p.profile.limits[k]) for p in loaded]) for k in LIMIT_KEYS},
        school_recommendation=first.school_recommendation,
        path=None,
        citation="; ".join(citations),
        mix=tuple(loaded),
        school_rule=first.school_rule,
    )


@dataclass(frozen=True)
class Checked:
    """One file ``profiles validate`` looked at: the profile, or the error (one line)."""

    path: Path
    profile: Optional[Profile] = None
    error: Optional[ConfigError] = None


def validate_profiles(target: str | Path, dirs: Optional[list[Path]] = None) -> list[Checked]:
    """Load every profile file at ``target`` (a file, or the ``*.yaml``/``*.yml`` in a folder).

    A folder's own files are found first by name (``extends: sibling``), then ``dirs``.
    Raises ConfigError only when ``target`` itself is missing or holds no profile file.
    """
    t = Path(target)
    dirs = list(dirs) if dirs is not None else profile_dirs()
    if t.is_dir():
        files = sorted(p for p in t.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise _error("no profile files (*.yaml, *.yml) in this folder", path=str(t))
        dirs = [t] + [d for d in dirs if not _same(d, t)]
    elif t.is_file():
        files = [t]
    else:
        raise _error("file or folder not found", path=str(t))
    out = []
    for f in files:
        try:
            out.append(Checked(f, profile=load_profile(str(f), dirs)))
        except ConfigError as exc:
            out.append(Checked(f, error=exc))
    return out
