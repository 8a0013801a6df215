"""The shipped profiles library: every number against docs/domain.md, composition, folders, school rules.

Pure: profiles are loaded from files, checks come from thresholds.evaluate on synthetic
measurements (tests/factories.py). Nothing here touches the network.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
import yaml

from giga_netcheck.config.profiles import PROFILES_ENV, list_profile_files, load_profile, mix_spec, parse_mix_spec, profile_dirs
from giga_netcheck.config.site import default_site, load_site
from giga_netcheck.core.errors import ConfigError, UnknownProfileError
from giga_netcheck.core.models import Classroom, School, to_dict
from giga_netcheck.core.profile import LIMIT_KEYS, Limit, strictest
from giga_netcheck.core.reference import REFERENCE_FILE, shipped_profiles_dir
from giga_netcheck.core.thresholds import MEXT_2024_POINTS, evaluate, interpolate, mext_recommended_mbps, school_needs
from giga_netcheck.measure.runner import conclude, load_profiles
from tests.factories import bandwidth, check_by, facts, latency, measurements, run_result

SHIPPED = shipped_profiles_dir()
SHIPPED_NAMES = sorted(p.stem for p in SHIPPED.glob("*.yaml"))
DOCS = Path(__file__).resolve().parent.parent / "docs"


def shipped(name: str):
    return load_profile(name, dirs=profile_dirs(env={}))


def write(folder: Path, name: str, data: dict | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / f"{name}.yaml"
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return p


# ------------------------------------------------------------------------- the library


def test_the_library_holds_every_profile_the_issue_names():
    wanted = {
        "default",
        "mext-2024",
        "video-lesson",
        "video-720p",
        "nhk-video",
        "digital-textbook",
        "cbt",
        "web-apps",
        "teams",
        "setda-2024",
        "fcc-erate",
        "uk-dfe-primary",
        "uk-dfe-secondary",
        "itu-giga-2030",
        "home-online-lesson",
    }
    assert wanted <= set(SHIPPED_NAMES)


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_every_shipped_profile_loads_is_named_after_its_file_and_cites_a_dated_source(name):
    p = shipped(name)
    assert p.name == name
    assert p.description
    assert p.citation and re.search(r"\(.+\)$", p.citation), "source: needs title and published"
    raw = yaml.safe_load((SHIPPED / f"{name}.yaml").read_text(encoding="utf-8"))
    assert raw["source"]["title"] and str(raw["source"]["published"])
    assert set(p.limits) == set(LIMIT_KEYS) and all(lim.source for lim in p.limits.values())


def _numbers_without_source(node, where=""):
    """Every mapping that holds a number (value/fail/warn) must hold a source next to it."""
    out = []
    if isinstance(node, dict):
        if any(k in node for k in ("value", "fail", "warn")) and not node.get("source"):
            out.append(where)
        for k, v in node.items():
            out += _numbers_without_source(v, f"{where}.{k}" if where else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _numbers_without_source(v, f"{where}[{i}]")
    return out


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_every_number_in_a_shipped_file_has_a_source(name):
    raw = yaml.safe_load((SHIPPED / f"{name}.yaml").read_text(encoding="utf-8"))
    assert _numbers_without_source(raw) == []
    rule = (raw.get("school") or {}).get("recommended_bandwidth")
    if isinstance(rule, dict) and "points" in rule:
        assert rule.get("source")


def test_docs_describe_every_shipped_profile():
    text = (DOCS / "profiles.md").read_text(encoding="utf-8")
    missing = [n for n in SHIPPED_NAMES if f"`{n}`" not in text]
    assert missing == []


# ---------------------------------------------------------------- MEXT (domain.md §3)

PUBLISHED = [(60, 108), (120, 216), (180, 323), (280, 408), (560, 525), (770, 607), (1050, 711), (1400, 834)]


def test_mext_table_is_data_in_the_reference_file_and_the_profile_names_it():
    rule = yaml.safe_load(REFERENCE_FILE.read_text(encoding="utf-8"))["mext_2024"]["recommended_bandwidth"]
    assert rule["rule"] == "mext-2024" and "p.36" in rule["source"]
    assert [(p["students"], p["down_mbps"]) for p in rule["points"]] == PUBLISHED
    assert [(n, float(m)) for n, m in MEXT_2024_POINTS] == [(n, float(m)) for n, m in PUBLISHED]
    # the shipped mext-2024 profile names the table rather than repeating it (one place for the figures)
    raw = yaml.safe_load((SHIPPED / "mext-2024.yaml").read_text(encoding="utf-8"))
    assert raw["school"]["recommended_bandwidth"] == "mext-2024"
    assert all(str(m) not in (SHIPPED / "mext-2024.yaml").read_text(encoding="utf-8") for _, m in PUBLISHED)


def test_a_profile_extending_mext_2024_gets_the_table(tmp_path):
    write(tmp_path, "prefecture", {"extends": "mext-2024", "description": "ours"})
    rule = load_profile("prefecture", [tmp_path, *profile_dirs(env={})]).school_bandwidth_rule()
    assert rule is not None and rule.rule == "mext-2024" and rule.points == MEXT_2024_POINTS and "p.36" in rule.source


@pytest.mark.parametrize("students, mbps", PUBLISHED)
def test_every_published_mext_point_is_reproduced_exactly_by_the_profile_rule(students, mbps):
    rule = shipped("mext-2024").school_bandwidth_rule()
    [need] = school_needs(rule, School(students=students))
    assert (need.need_mbps, need.estimate, need.check_id) == (float(mbps), False, "school.bandwidth.mext")
    assert mext_recommended_mbps(students) == (float(mbps), False)


@pytest.mark.parametrize("students, mbps", [(90, 162.0), (420, 466.5), (1225, 772.5), (30, 54.0), (1750, 957.0)])
def test_between_and_beyond_the_points_is_an_estimate(students, mbps):
    [need] = school_needs(shipped("mext-2024").school_bandwidth_rule(), School(students=students))
    assert need.need_mbps == pytest.approx(mbps) and need.estimate is True


def test_default_and_japanese_activity_profiles_use_the_mext_rule():
    for name in ("default", "mext-2024", "video-lesson", "video-720p", "nhk-video", "digital-textbook", "cbt", "web-apps"):
        rule = shipped(name).school_bandwidth_rule()
        assert rule is not None and rule.rule == "mext-2024" and rule.points == MEXT_2024_POINTS, name


# MEXT per-activity figures (domain.md §3): per-device down / up and share active at once
ACTIVITY = [
    ("video-lesson", 2.0, 1.2, 1.0),
    ("video-720p", 2.5, 0.0, 1.0),
    ("nhk-video", 0.7, 0.0, 1.0),
    ("digital-textbook", 5.3, 0.0, 1.0),
    ("cbt", 0.5, 0.6, 1.0),
    ("web-apps", 0.5, 0.5, 1.0),
    ("teams", 1.2, 1.2, 1.0),
    ("mext-2024", 0.7, 0.6, 1.0),
    ("home-online-lesson", 2.0, 1.2, 1.0),
]


@pytest.mark.parametrize("name, down, up, share", ACTIVITY)
def test_activity_figures(name, down, up, share):
    p = shipped(name)
    assert (p.down_mbps_per_device, p.up_mbps_per_device, p.active_share) == (down, up, share)
    assert all(p.sources[k] for k in ("down_mbps_per_device", "up_mbps_per_device", "active_share"))


def test_activity_sources_say_what_they_are():
    assert "video conference" in shipped("video-lesson").sources["down_mbps_per_device"]
    assert "NHK for School" in shipped("nhk-video").sources["down_mbps_per_device"]
    assert "720p" in shipped("video-720p").sources["down_mbps_per_device"]
    assert "est." in shipped("digital-textbook").sources["down_mbps_per_device"]  # derived, labelled
    assert "MEXCBT" in shipped("cbt").sources["up_mbps_per_device"]
    assert "0.2-0.5" in shipped("web-apps").sources["down_mbps_per_device"]


def test_mext_video_conference_example_40_devices_80_mbps():
    assert shipped("video-lesson").need_down_mbps(40) == pytest.approx(80.0)


def test_activity_profiles_inherit_default_quality_limits():
    base = shipped("default").limits
    for name in ("video-lesson", "video-720p", "nhk-video", "digital-textbook", "cbt", "web-apps", "mext-2024"):
        assert shipped(name).limits == base, name


# ------------------------------------------------------------------ Teams (domain.md §4)


@pytest.mark.parametrize("key, warn, fail", [("rtt_ms", 60.0, 100.0), ("jitter_ms", 15.0, 30.0), ("loss_pct", 0.1, 1.0)])
def test_teams_client_to_edge_fails_edge_to_edge_warns(key, warn, fail):
    lim = shipped("teams").limits[key]
    assert (lim.warn, lim.fail) == (warn, fail)
    assert "client to Microsoft edge" in lim.source and "customer edge to Microsoft edge" in lim.source


# ------------------------------------------------------------------- school-level rules


@dataclass(frozen=True)
class StaffedSchool:
    """A school with a staff count (models.School has none yet; the rules read it when present)."""

    students: Optional[int]
    staff: Optional[int] = None


def need(name: str, school, direction: str = "download"):
    rule = shipped(name).school_bandwidth_rule()
    found = [n for n in school_needs(rule, school) if n.direction == direction]
    assert len(found) == 1
    return found[0]


def test_fcc_one_gbps_per_thousand_students_and_staff():
    rule = shipped("fcc-erate").school_bandwidth_rule()
    assert (rule.rule, rule.down_mbps_per_user, rule.users) == ("per_user", 1.0, "students_and_staff")
    n = need("fcc-erate", StaffedSchool(900, 100))
    assert n.need_mbps == pytest.approx(1000 * 0.94) and n.estimate is False  # 1 Gbps line, as TCP goodput
    assert n.check_id == "school.bandwidth.per_user" and "900 students + 100 staff" in n.detail


def test_fcc_without_staff_counts_students_and_says_it_is_an_estimate():
    n = need("fcc-erate", School(students=1000))
    assert n.need_mbps == pytest.approx(940.0) and n.estimate is True and "staff not given" in n.detail


@pytest.mark.parametrize(
    "name, per_user, minimum", [("setda-2024", 2.8, 300.0), ("setda-2024-medium", 2.0, 0.0), ("setda-2024-large", 1.4, 0.0)]
)
def test_setda_per_user_with_minimum(name, per_user, minimum):
    rule = shipped(name).school_bandwidth_rule()
    assert (rule.rule, rule.down_mbps_per_user, rule.minimum_mbps or 0.0, rule.users) == (
        "per_user",
        per_user,
        minimum,
        "students_and_staff",
    )
    big = need(name, StaffedSchool(450, 50))
    assert big.need_mbps == pytest.approx(max(per_user * 500, minimum) * 0.94)


def test_setda_small_school_gets_the_300_mbps_minimum():
    assert need("setda-2024", StaffedSchool(40, 10)).need_mbps == pytest.approx(300 * 0.94)  # 50 x 2.8 = 140 < 300


@pytest.mark.parametrize("name, down, up", [("uk-dfe-primary", 100.0, 30.0), ("uk-dfe-secondary", 1000.0, 1000.0)])
def test_uk_dfe_absolute_minimums(name, down, up):
    rule = shipped(name).school_bandwidth_rule()
    assert (rule.rule, rule.down_mbps, rule.up_mbps) == ("fixed", down, up)
    d, u = need(name, School()), need(name, School(), "upload")  # no student count needed
    assert (d.need_mbps, u.need_mbps) == (pytest.approx(down * 0.94), pytest.approx(up * 0.94))
    assert (d.check_id, u.check_id) == ("school.bandwidth.fixed", "school.bandwidth.fixed.up")


@pytest.mark.parametrize("students, mbps", [(50, 20.0), (400, 20.0), (401, 20.05), (1000, 50.0)])
def test_itu_giga_20_mbps_or_50_kbps_per_student_above_400(students, mbps):
    rule = shipped("itu-giga-2030").school_bandwidth_rule()
    assert (rule.down_mbps_per_user, rule.minimum_mbps, rule.users, rule.goodput_factor) == (0.05, 20.0, "students", 1.0)
    assert need("itu-giga-2030", School(students=students)).need_mbps == pytest.approx(mbps)


def test_home_online_lesson_is_one_device_and_no_school_rule():
    p = shipped("home-online-lesson")
    assert p.default_devices == 1 and p.school_bandwidth_rule() is None
    assert p.need_down_mbps(1) == pytest.approx(2.0)
    site = default_site(env={}, profile="home-online-lesson", dirs=profile_dirs(env={}))
    assert site.classrooms == (Classroom("classroom", 1, "home-online-lesson"),)
    assert default_site(env={}).classrooms == (Classroom("classroom", 35, "default"),)


def test_rules_that_need_students_give_no_check_without_them():
    for name in ("mext-2024", "fcc-erate", "itu-giga-2030"):
        assert school_needs(shipped(name).school_bandwidth_rule(), School()) == []


@pytest.mark.parametrize("students, expected", [(10, (20.0, True)), (100, (200.0, False)), (150, (250.0, True)), (300, (400.0, True))])
def test_a_user_table_interpolates_like_mext(tmp_path, students, expected):
    write(
        tmp_path,
        "pref",
        {
            "extends": "default",
            "school": {
                "recommended_bandwidth": {
                    "rule": "table",
                    "source": "prefecture table",
                    "points": [{"students": 100, "down_mbps": 200}, {"students": 200, "down_mbps": 300}],
                }
            },
        },
    )
    p = load_profile("pref", dirs=profile_dirs(extra=str(tmp_path), env={}))
    [n] = school_needs(p.school_bandwidth_rule(), School(students=students))
    assert (n.need_mbps, n.estimate) == (pytest.approx(expected[0]), expected[1]) and n.check_id == "school.bandwidth.table"


def test_interpolate_refuses_non_positive():
    with pytest.raises(ValueError):
        interpolate(MEXT_2024_POINTS, 0)


def test_extends_replaces_a_school_rule_of_another_kind_and_merges_the_same_kind(tmp_path):
    write(
        tmp_path,
        "uk-plus",
        {
            "extends": "uk-dfe-primary",
            "school": {"recommended_bandwidth": {"rule": "per_user", "down_mbps_per_user": {"value": 1, "source": "s"}}},
        },
    )
    rule = load_profile("uk-plus", dirs=profile_dirs(extra=str(tmp_path), env={})).school_bandwidth_rule()
    assert (rule.rule, rule.down_mbps, rule.up_mbps, rule.down_mbps_per_user) == ("per_user", None, None, 1.0)
    medium = shipped("setda-2024-medium").school_bandwidth_rule()
    assert (medium.users, medium.goodput_factor) == ("students_and_staff", 0.94)  # kept from setda-2024


# ------------------------------------------------------------------ evaluate: school checks


def _school_checks(main: str, school, down=500.0, up=100.0):
    profiles = {main: shipped(main), "default": shipped("default")}
    m = measurements(bandwidth=[bandwidth("internet", down), bandwidth("internet", up, direction="upload")])
    checks = evaluate(facts(m), school, (Classroom("a", 30, "default"),), profiles, main_profile=main)
    return [c for c in checks if c.id.startswith("school.")]


def test_the_main_profile_decides_the_school_rule_not_the_first_classroom():
    [c] = _school_checks("itu-giga-2030", School(students=1000))
    assert (c.id, c.threshold, c.status, c.estimate) == ("school.bandwidth.per_user", 50.0, "pass", False)
    assert "profile itu-giga-2030" in c.source and "ITU" in c.source and "1000 students" in c.detail


def test_uk_primary_checks_both_directions_against_goodput():
    down, up = _school_checks("uk-dfe-primary", School(), down=95.0, up=25.0)
    assert (down.id, down.threshold, down.status) == ("school.bandwidth.fixed", 94.0, "pass")  # a 100 Mbit/s line passes
    assert (up.id, up.metric, up.threshold, up.status) == ("school.bandwidth.fixed.up", "upload_mbps", 28.2, "fail")
    assert "DfE" in down.source


def test_no_school_check_for_a_profile_without_a_rule():
    assert _school_checks("home-online-lesson", School(students=400)) == []


def test_without_main_profile_the_first_classroom_decides_as_before():
    profiles = {"fcc-erate": shipped("fcc-erate")}
    checks = evaluate(facts(measurements()), School(students=500), (Classroom("a", 30, "fcc-erate"),), profiles)
    assert checks[0].id == "school.bandwidth.per_user" and checks[0].status == "not-measured"


# ------------------------------------------------------------------------------ mixes


def test_mix_spec_round_trip():
    assert mix_spec([("web-apps", 30), ("video-lesson", 5)]) == "web-apps*30+video-lesson*5"
    assert parse_mix_spec("web-apps*30+video-lesson*5") == [("web-apps", 30), ("video-lesson", 5)]
    assert parse_mix_spec(" web-apps * 30 + teams*2") == [("web-apps", 30), ("teams", 2)]
    for plain in ("default", "./c++/my.yaml", "a*b", "a*0", "a*3+", "*3"):
        assert parse_mix_spec(plain) is None, plain


def test_site_mix_sums_needs_and_takes_the_strictest_limits():
    p = load_profile("web-apps*20+teams*10", dirs=profile_dirs(env={}))
    assert p.need_down_mbps(30) == pytest.approx(20 * 0.5 + 10 * 1.2)
    assert p.need_up_mbps(30) == pytest.approx(20 * 0.5 + 10 * 1.2)
    assert p.limits["loss_pct"] == Limit(1.0, p.limits["loss_pct"].source, 0.1)  # Teams' 0.1% warn is stricter
    assert "teams" in p.limits["loss_pct"].source and "customer edge" in p.limits["loss_pct"].source
    assert p.limits["rtt_ms"].warn == 50.0 and p.limits["rtt_ms"].fail == 100.0  # default's 50 ms warn beats Teams' 60
    assert "web-apps" in p.limits["rtt_ms"].source
    assert [(leaf.name, n) for leaf, n in p.leaves(30)] == [("web-apps", 20.0), ("teams", 10.0)]
    assert p.school_bandwidth_rule().rule == "mext-2024"


def test_strictest_keeps_a_warn_only_below_the_fail():
    got = strictest([("a", Limit(100.0, "A", 50.0)), ("b", Limit(40.0, "B"))])
    assert got == Limit(40.0, "b: B")
    got = strictest([("a", Limit(100.0, "A", 20.0)), ("b", Limit(40.0, "B", 30.0))])
    assert got == Limit(40.0, "fail: b: B; warn: a: A", 20.0)
    assert strictest([("a", Limit(1.0, "S", 0.5)), ("b", Limit(1.0, "S", 0.5))]) == Limit(1.0, "a, b: S", 0.5)


def test_profile_mix_uses_shares_of_the_classroom(tmp_path):
    write(
        tmp_path,
        "lesson-mix",
        {
            "extends": "default",
            "mix": [
                {"profile": "web-apps", "share": 0.8, "source": "most of the class"},
                {"profile": "teams", "share": 0.2, "source": "a group calls another school"},
            ],
        },
    )
    p = load_profile("lesson-mix", dirs=profile_dirs(extra=str(tmp_path), env={}))
    assert p.need_down_mbps(35) == pytest.approx(0.8 * 35 * 0.5 + 0.2 * 35 * 1.2)
    assert p.need_up_mbps(35) == pytest.approx(0.8 * 35 * 0.5 + 0.2 * 35 * 1.2)
    assert p.limits["loss_pct"].warn == 0.1 and p.limits["rtt_ms"] == shipped("default").limits["rtt_ms"]
    assert [m.profile.name for m in p.mix] == ["web-apps", "teams"] and "most of the class" in p.sources["mix"]
    # a mix inside a mix: the parts nest
    write(
        tmp_path,
        "outer",
        {"mix": [{"profile": "lesson-mix", "share": 0.5, "source": "s"}, {"profile": "cbt", "share": 0.5, "source": "s"}]},
    )
    outer = load_profile("outer", dirs=profile_dirs(extra=str(tmp_path), env={}))
    assert outer.need_down_mbps(10) == pytest.approx(0.5 * p.need_down_mbps(10) + 0.5 * 10 * 0.5)
    assert {leaf.name for leaf, _ in outer.leaves(10)} == {"web-apps", "teams", "cbt"}


def test_mix_that_includes_itself_is_an_error(tmp_path):
    write(tmp_path, "loop", {"mix": [{"profile": "loop2", "share": 1, "source": "s"}]})
    write(tmp_path, "loop2", {"mix": [{"profile": "loop", "share": 1, "source": "s"}]})
    with pytest.raises(ConfigError) as info:
        load_profile("loop", dirs=[tmp_path])
    assert "mix includes this profile again" in str(info.value) and info.value.key == "mix[0].profile"


def test_unknown_part_of_a_site_mix_is_named():
    with pytest.raises(UnknownProfileError) as info:
        load_profile("web-apps*3+vidoe-lesson*2", dirs=profile_dirs(env={}))
    assert "did you mean 'video-lesson'" in str(info.value)


# ----------------------------------------------------------------------- the site file

SITE = """\
school: {id: s1, name: Mixed School, students: 420}
profile: default
classrooms:
  - {name: "3-2", devices: 35}
  - {name: PC room, devices: 40, profile: video-lesson}
  - name: "5-1"
    mix:
      - {profile: web-apps, devices: 30}
      - {profile: video-lesson, devices: 5}
  - {name: meeting, devices: 20, profile: teams}
  - name: hybrid
    devices: 30
    mix: [{profile: web-apps, devices: 20}, {profile: teams, devices: 10}]
targets: {gateway: 192.168.1.1, internet: ["http://203.0.113.5:8080"]}
"""


def test_site_mix_becomes_a_mix_spec_and_devices_default_to_the_sum(tmp_path):
    site = load_site(write(tmp_path, "site", SITE))
    assert [(r.name, r.devices, r.profile) for r in site.classrooms] == [
        ("3-2", 35, "default"),
        ("PC room", 40, "video-lesson"),
        ("5-1", 35, "web-apps*30+video-lesson*5"),
        ("meeting", 20, "teams"),
        ("hybrid", 30, "web-apps*20+teams*10"),
    ]


@pytest.mark.parametrize(
    "room, fragments",
    [
        ("{name: a, profile: teams, mix: [{profile: web-apps, devices: 3}]}", ["classrooms[0].profile", "either profile: or mix:"]),
        ("{name: a, devices: 4, mix: [{profile: web-apps, devices: 3}]}", ["classrooms[0].devices", "add up to 3"]),
        ("{name: a, mix: [{profile: web-apps}]}", ["classrooms[0].mix[0].devices", "missing required key"]),
        ("{name: a, mix: [{profile: 'a*3', devices: 3}]}", ["classrooms[0].mix[0].profile", "without '+' or '*'"]),
        ("{name: a, mix: []}", ["classrooms[0].mix", "non-empty list"]),
        ("{name: a, mix: [{profile: web-apps, devices: 3, share: 0.5}]}", ["classrooms[0].mix[0].share", "unknown key"]),
    ],
)
def test_site_mix_errors(tmp_path, room, fragments):
    p = write(tmp_path, "site", f"classrooms:\n  - {room}\n")
    with pytest.raises(ConfigError) as info:
        load_site(p)
    msg = str(info.value)
    assert str(p) in msg and "\n" not in msg
    for f in fragments:
        assert f in msg, msg


def test_classrooms_on_different_profiles_and_a_mix_get_their_own_thresholds(tmp_path):
    site = load_site(write(tmp_path, "site", SITE))
    profiles = load_profiles(site)
    m = measurements(
        [latency("gateway", 1.0), latency("internet", 70.0)],
        [bandwidth("internet", 30.0), bandwidth("internet", 22.0, direction="upload")],
    )
    checks = evaluate(facts(m), site.school, site.classrooms, profiles, main_profile=site.profile)

    down = {c.classroom: (c.threshold, c.status) for c in checks if c.id == "classroom.bandwidth.down"}
    assert down == {
        "3-2": (24.5, "warn"),
        "PC room": (80.0, "fail"),
        "5-1": (25.0, "warn"),
        "meeting": (24.0, "pass"),
        "hybrid": (22.0, "pass"),
    }  # 30 >= 1.25 x need
    up = {c.classroom: c.threshold for c in checks if c.id == "classroom.bandwidth.up"}
    assert up == {"3-2": 21.0, "PC room": 48.0, "5-1": 21.0, "meeting": 24.0, "hybrid": 22.0}

    rtt = {c.classroom: (c.warn_at, c.threshold, c.status) for c in checks if c.id == "classroom.rtt"}
    assert rtt["3-2"] == (50.0, 100.0, "warn") and rtt["meeting"] == (60.0, 100.0, "warn")
    loss = {c.classroom: c.warn_at for c in checks if c.id == "classroom.loss"}
    assert loss == {"3-2": 0.5, "PC room": 0.5, "5-1": 0.5, "meeting": 0.1, "hybrid": 0.1}

    mixed = check_by(checks, "classroom.bandwidth.down", "5-1")
    assert mixed.source.startswith("profile web-apps*30+video-lesson*5: ")
    assert "web-apps: Google Workspace" in mixed.source and "video-lesson: MEXT" in mixed.source
    assert "web-apps 0.5 Mbps x 30 devices" in mixed.detail and "video-lesson 2 Mbps x 5 devices" in mixed.detail
    hybrid_loss = check_by(checks, "classroom.loss", "hybrid")
    assert "teams" in hybrid_loss.source and "Microsoft Teams" in hybrid_loss.source
    assert check_by(checks, "classroom.rtt", "meeting").source.startswith("profile teams: Microsoft Teams")
    school = check_by(checks, "school.bandwidth.mext")
    assert school.threshold == 466.5 and school.source.startswith("profile default: MEXT")


def test_the_json_result_records_the_mixed_classroom_and_its_thresholds(tmp_path):
    site = load_site(write(tmp_path, "site", SITE))
    profiles = load_profiles(site)
    result = conclude(run_result(school=site.school, classrooms=site.classrooms, profile=site.profile), profiles)
    doc = json.loads(json.dumps(to_dict(result)))
    assert {"name": "5-1", "devices": 35, "profile": "web-apps*30+video-lesson*5"} in doc["classrooms"]
    got = {(c["id"], c["classroom"]): c["threshold"] for c in doc["checks"] if c["classroom"]}
    assert got[("classroom.bandwidth.down", "5-1")] == 25.0 and got[("classroom.bandwidth.down", "PC room")] == 80.0
    assert got[("classroom.loss", "meeting")] == 1.0
    # report re-evaluates a saved result from the mix spec alone
    again = conclude(result, load_profiles(site))
    assert again.checks == result.checks


# --------------------------------------------------------------- folders and shadowing


def test_precedence_cli_then_site_then_env_then_shipped(tmp_path):
    cli, site, env1, env2 = (tmp_path / n for n in ("cli", "site", "env1", "env2"))
    import os

    dirs = profile_dirs(extra=str(site), env={PROFILES_ENV: f"{env1}{os.pathsep}{env2}"}, cli=str(cli))
    assert dirs == [cli, site, env1, env2, SHIPPED]
    assert profile_dirs(extra=str(SHIPPED), env={}) == [SHIPPED]  # no folder twice
    for d in (env2, env1, site, cli):
        write(d, "room", {"extends": "default", "description": f"from {d.name}"})
        assert load_profile("room", dirs=dirs).description == f"from {d.name}"


def test_a_user_profile_named_like_a_shipped_one_wins_but_says_so(tmp_path):
    user = write(
        tmp_path,
        "default",
        {
            "extends": "default",
            "description": "our board's default",
            "limits": {"rtt_ms": {"warn": 40, "fail": 80, "source": "board rule"}},
        },
    )
    p = load_profile("default", dirs=profile_dirs(extra=str(tmp_path), env={}))
    assert (p.path, p.shadows) == (str(user), str(SHIPPED / "default.yaml"))
    assert p.limits["rtt_ms"] == Limit(80.0, "board rule", 40.0)
    assert p.limits["jitter_ms"] == shipped("default").limits["jitter_ms"]  # extended the shipped default it shadows
    checks = evaluate(facts(measurements([latency("internet", 10.0)])), School(), (Classroom("a", 30, "default"),), {"default": p})
    assert f"shadows {SHIPPED / 'default.yaml'}" in check_by(checks, "classroom.rtt").source
    assert shipped("default").shadows is None


def test_list_profile_files_reports_who_shadows_whom(tmp_path):
    write(tmp_path, "teams", {"extends": "default"})
    files = {(f.name, f.shipped): f for f in list_profile_files(profile_dirs(extra=str(tmp_path), env={}))}
    assert files[("teams", False)].shadows == SHIPPED / "teams.yaml"
    assert files[("teams", True)].shadowed_by == tmp_path / "teams.yaml"
    assert files[("cbt", True)].shadows is None and files[("cbt", True)].shadowed_by is None


def test_a_profile_loaded_by_path_finds_its_neighbours_first(tmp_path):
    write(tmp_path, "base", {"extends": "default", "classroom": {"down_mbps_per_device": {"value": 9, "source": "s"}}})
    child = write(tmp_path, "child", {"extends": "base"})
    assert load_profile(str(child), dirs=profile_dirs(env={})).down_mbps_per_device == 9.0
    rel = write(tmp_path / "sub", "rel", {"extends": "../base.yaml"})
    assert load_profile(str(rel), dirs=profile_dirs(env={})).down_mbps_per_device == 9.0
