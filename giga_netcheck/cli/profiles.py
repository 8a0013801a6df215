"""``giga-netcheck profiles``: list, show and validate threshold profiles (a Typer sub-app).

Each command is a few lines over a library call in :mod:`giga_netcheck.config.site`; the text a
person reads comes from the message catalogues. Exit codes: 0 fine, 2 a profile or a folder
is wrong (the same code as every configuration error).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from giga_netcheck.config.profiles import PROFILES_ENV, list_profile_files, load_profile, profile_dirs, validate_profiles
from giga_netcheck.config.site import load_site
from giga_netcheck.core.errors import ConfigError
from giga_netcheck.core.i18n import Messages, detect_lang
from giga_netcheck.core.models import School, to_dict
from giga_netcheck.core.profile import LIMIT_KEYS, Profile, SchoolRule
from giga_netcheck.core.thresholds import school_needs
from giga_netcheck.measure.loadgen.activities import activity_for

USAGE = 2

profiles_app = typer.Typer(
    help="See, check and choose threshold profiles: what a classroom needs, the quality limits, and the "
    "school-level bandwidth rule, each with its source. User profiles come from --profiles-dir, "
    f"${PROFILES_ENV} and the site file's profiles_dir, before the shipped ones.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_DIR_HELP = f"A folder of your own profiles, searched first (then ${PROFILES_ENV}, then the shipped profiles)."
_LANG_HELP = "Message language: en or ja (default: from the locale)."
_SITE_HELP = "A site file whose profiles_dir is searched too (after --profiles-dir), as a run with it would."


def _m(lang: Optional[str]) -> Messages:
    return Messages(lang or detect_lang())


def _say(text: str, err: bool = False) -> None:
    # plain echo, not Rich: key paths like classrooms[0] must print as written, one line each
    typer.echo(text, err=err)


def _dirs(m: Messages, profiles_dir: Optional[Path], site: Optional[Path] = None) -> list[Path]:
    """The folders a run would search: --profiles-dir, the site file's profiles_dir, $GIGA_NETCHECK_PROFILES, shipped."""
    if profiles_dir is not None and not profiles_dir.is_dir():
        _say(m("error.config", message=str(ConfigError("folder not found", path=str(profiles_dir), key="--profiles-dir"))), err=True)
        raise typer.Exit(USAGE)
    extra = None
    if site is not None:
        try:
            extra = load_site(site).profiles_dir
        except ConfigError as exc:
            _say(m("error.config", message=str(exc)), err=True)
            raise typer.Exit(USAGE) from None
    return profile_dirs(extra, cli=str(profiles_dir) if profiles_dir else None)


def _in_file(path: Path, exc: ConfigError) -> str:
    """The error, starting with the file that was checked even when the mistake sits in a parent."""
    text = str(exc)
    return text if exc.path == str(path) else f"{path}: {text}"


def _mbps(v: float) -> str:
    return f"{v:g}"


@profiles_app.command("list")
def list_cmd(
    profiles_dir: Optional[Path] = typer.Option(None, "--profiles-dir", help=_DIR_HELP),
    site: Optional[Path] = typer.Option(None, "--site", "-s", help=_SITE_HELP),
    lang: Optional[str] = typer.Option(None, "--lang", help=_LANG_HELP),
) -> None:
    """List every profile: per-device need, school-level rule and where it comes from; warn about shadowed names."""
    m = _m(lang)
    dirs = _dirs(m, profiles_dir, site)
    for d in dirs[:-1]:
        if not d.is_dir():
            _say(m("profiles.dir_missing", path=str(d)))
    files = list_profile_files(dirs)
    rows: list[tuple[str, str, str, str, str]] = []
    notes: list[str] = []
    for f in files:
        if f.shadowed_by is not None:
            continue
        if f.shadows is not None:
            notes.append(m("profiles.shadows_warning", name=f.name, path=str(f.path), other=str(f.shadows)))
        try:
            p = load_profile(str(f.path), dirs)
        except ConfigError as exc:
            notes.append(m("profiles.broken", message=_in_file(f.path, exc)))
            continue
        need = m("profiles.need", down=_mbps(p.down_mbps_per_device), up=_mbps(p.up_mbps_per_device), share=_mbps(p.active_share))
        if p.mix:
            need += " " + m("profiles.need_mix")
        where = m("profiles.shipped") if f.shipped else str(f.path)
        rows.append((f.name, need, p.school_recommendation, where, p.description))
    if not rows:
        _say(m("profiles.none"))
    else:
        head = (
            m("profiles.col.name"),
            m("profiles.col.need"),
            m("profiles.col.school"),
            m("profiles.col.from"),
            m("profiles.col.description"),
        )
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(4)]
        for r in [head] + rows:
            _say("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    for note in notes:
        _say(note)


@profiles_app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="A profile name, a path to a profile file, or a mix spec such as web-apps*30+video-lesson*5."),
    devices: int = typer.Option(35, "--devices", min=1, max=10000, help="Classroom size for the worked example of the need."),
    students: Optional[int] = typer.Option(
        None, "--students", min=1, max=100000, help="Student count for the worked example of the school-level rule."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the resolved profile as JSON instead of text."),
    profiles_dir: Optional[Path] = typer.Option(None, "--profiles-dir", help=_DIR_HELP),
    site: Optional[Path] = typer.Option(None, "--site", "-s", help=_SITE_HELP),
    lang: Optional[str] = typer.Option(None, "--lang", help=_LANG_HELP),
) -> None:
    """Show one profile as runs use it: extends and mix resolved, every number with its source."""
    m = _m(lang)
    dirs = _dirs(m, profiles_dir, site)
    try:
        p = load_profile(name, dirs)
    except ConfigError as exc:
        _say(m("error.config", message=str(exc)), err=True)
        raise typer.Exit(USAGE) from None
    if as_json:
        _say(json.dumps(to_dict(p), ensure_ascii=False, indent=2))
        return
    for line in describe(p, m, devices=devices, students=students):
        _say(line)


def describe(p: Profile, m: Messages, *, devices: int = 35, students: Optional[int] = None) -> list[str]:
    """The lines ``profiles show`` prints (pure, for tests)."""
    out = [m("profiles.show.profile", name=p.name)]

    def item(label_key: str, value: str) -> None:
        out.append(f"  {m(label_key)}: {value}")

    if p.path:
        item("profiles.show.file", p.path)
    if p.shadows:
        item("profiles.show.shadows", p.shadows)
    if p.extends:
        item("profiles.show.extends", " -> ".join(p.extends))
    if p.description:
        item("profiles.show.description", p.description)
    if p.citation:
        item("profiles.show.source", p.citation)

    out.append(m("profiles.show.classroom"))
    if p.mix:
        for part in p.mix:
            amount = (
                m("profiles.show.part_share", share=_mbps(part.share or 0.0))
                if part.share is not None
                else m("profiles.show.part_devices", devices=part.devices)
            )
            out.append(
                f"  {amount}: {part.profile.name} ({m('profiles.need', down=_mbps(part.profile.down_mbps_per_device), up=_mbps(part.profile.up_mbps_per_device), share=_mbps(part.profile.active_share))})"
                + (f" — {part.source}" if part.share is not None else "")
            )
    else:
        for key, label in (
            ("down_mbps_per_device", "profiles.show.down"),
            ("up_mbps_per_device", "profiles.show.up"),
            ("active_share", "profiles.show.share"),
        ):
            item(label, f"{_mbps(getattr(p, key))} — {p.sources.get(key, '')}")
    item("profiles.show.margin", f"{_mbps(p.warn_margin)}" + (f" — {p.sources['warn_margin']}" if "warn_margin" in p.sources else ""))
    if p.default_devices:
        item("profiles.show.devices", f"{p.default_devices} — {p.sources.get('devices', '')}")
    n = devices if not any(part.devices for part in p.mix) else sum(part.devices or 0 for part in p.mix)
    out.append(
        "  " + m("profiles.show.example", devices=n, down=_mbps(round(p.need_down_mbps(n), 3)), up=_mbps(round(p.need_up_mbps(n), 3)))
    )
    item("profiles.show.load", _load_text(p, n, m))

    out.append(m("profiles.show.limits"))
    for key in LIMIT_KEYS:
        lim = p.limits[key]
        warn = _mbps(lim.warn) if lim.warn is not None else "—"
        out.append(f"  {key}: {warn} / {_mbps(lim.fail)} — {lim.source}")

    out.append(m("profiles.show.school"))
    rule = p.school_bandwidth_rule()
    if rule is None:
        out.append("  " + m("profiles.show.school_none"))
    else:
        out.append("  " + rule_text(rule, m))
        for k, src in rule.sources.items():
            out.append(f"    {k}: {src}")
        if students:
            for need in school_needs(rule, School(students=students)):
                out.append(
                    "  "
                    + m(
                        "profiles.show.school_example",
                        students=students,
                        need=_mbps(round(need.need_mbps, 3)),
                        check=need.check_id,
                        detail=need.detail,
                    )
                )
    return out


def _load_text(p: Profile, devices: int, m: Messages) -> str:
    """What the load probe's devices do for a classroom on ``p``: the activity and its rate (a mix: its largest part's)."""
    part = p.load_part(devices)
    if part.load is None:
        return m("profiles.show.load_none")
    act = activity_for(None, None, part)
    rate = getattr(act, "bitrate_mbps", None) or getattr(act, "down_mbps", None)
    text = act.kind + (f" {_mbps(rate)} Mbps" if rate else "")
    if part is not p:
        return f"{text} ({m('profiles.show.load_part', name=part.name)})"
    return text + (f" — {part.load.source}" if rate else "")


def rule_text(rule: SchoolRule, m: Messages) -> str:
    """One line saying what a school-level rule asks, with its citation."""
    goodput = (" " + m("profiles.show.goodput", factor=_mbps(rule.goodput_factor))) if rule.goodput_factor != 1.0 else ""
    if rule.rule in ("mext-2024", "table"):
        text = m(f"profiles.rule.{rule.rule}", n=len(rule.points), points=", ".join(f"{s}: {_mbps(v)}" for s, v in rule.points))
    elif rule.rule == "per_user":
        text = m("profiles.rule.per_user", per_user=_mbps(rule.down_mbps_per_user or 0.0), users=m(f"profiles.users.{rule.users}"))
        if rule.minimum_mbps:
            text += ", " + m("profiles.show.minimum", mbps=_mbps(rule.minimum_mbps))
    else:
        text = m("profiles.rule.fixed", down=_mbps(rule.down_mbps or 0.0))
        if rule.up_mbps is not None:
            text += ", " + m("profiles.rule.fixed_up", up=_mbps(rule.up_mbps))
    return f"{rule.rule}: {text}{goodput}" + (f" — {rule.source}" if rule.source else "")


@profiles_app.command("validate")
def validate_cmd(
    target: Path = typer.Argument(..., help="A profile file, or a folder whose *.yaml and *.yml files are all checked."),
    profiles_dir: Optional[Path] = typer.Option(None, "--profiles-dir", help=_DIR_HELP),
    site: Optional[Path] = typer.Option(None, "--site", "-s", help=_SITE_HELP),
    lang: Optional[str] = typer.Option(None, "--lang", help=_LANG_HELP),
) -> None:
    """Check profile files: one line per file, naming the file, key path, bad value and what was expected.

    Exit codes: 0 every file is valid, 2 a file has an error (or the path holds no profile).
    """
    m = _m(lang)
    dirs = _dirs(m, profiles_dir, site)
    try:
        results = validate_profiles(target, dirs)
    except ConfigError as exc:
        _say(m("error.config", message=str(exc)), err=True)
        raise typer.Exit(USAGE) from None
    for r in results:
        if r.error is not None:
            _say(m("profiles.broken", message=_in_file(r.path, r.error)))
        else:
            assert r.profile is not None
            _say(m("profiles.valid", path=str(r.path), name=r.profile.name))
    bad = sum(1 for r in results if r.error is not None)
    _say(m("profiles.summary", ok=len(results) - bad, bad=bad))
    raise typer.Exit(USAGE if bad else 0)
