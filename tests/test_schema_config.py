"""schema + config: site files and profiles load, and every bad file gets a one-line error naming it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from giga_netcheck.config.profiles import PROFILES_ENV, load_profile, profile_dirs
from giga_netcheck.config.site import ProbeSettings, load_site
from giga_netcheck.core.errors import ConfigError, UnknownProfileError
from giga_netcheck.core.models import Classroom, School, Target
from giga_netcheck.core.profile import LIMIT_KEYS, Limit
from giga_netcheck.core.reference import shipped_profiles_dir

EXAMPLE_SITE = """\
# A school with a board data center and two internet points.
school:
  id: tokyo-minato-01
  name: 港区立第一小学校
  students: 420
profile: default
classrooms:
  - name: "3-2"
    devices: 35
  - name: PC room
    devices: 40
    profile: video-lesson
targets:
  gateway: 192.168.1.1
  center: http://10.0.0.10:8080/
  internet:
    - http://203.0.113.5:8080
    - 203.0.113.9
dns:
  resolvers: [system, 10.0.0.53]
  names: [www.mext.go.jp, classroom.google.com]
probes:
  bandwidth: {streams: 8, duration_s: 10, warmup_s: 2}
  latency: {count: 30, interval_s: 0.2, method: tcp-connect}
  dns: {queries: 3, timeout_s: 1}
"""


def write(tmp_path: Path, text: str, name: str = "site.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def config_error(path: Path, loader=load_site) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        loader(path)
    return info.value


def assert_one_line_naming(err: Exception, path: Path) -> str:
    msg = str(err)
    assert "\n" not in msg, f"error spans lines: {msg!r}"
    assert str(path) in msg
    return msg


# ------------------------------------------------------------------------------- sites


def test_example_site_loads(tmp_path):
    p = write(tmp_path, EXAMPLE_SITE)
    site = load_site(p)
    assert site.school == School("tokyo-minato-01", "港区立第一小学校", 420)
    assert site.profile == "default"
    assert site.classrooms == (Classroom("3-2", 35, "default"), Classroom("PC room", 40, "video-lesson"))
    assert site.gateway == "192.168.1.1"
    assert site.center == "http://10.0.0.10:8080/"
    assert site.internet == ("http://203.0.113.5:8080", "203.0.113.9")
    assert site.resolvers == ("system", "10.0.0.53")
    assert site.names == ("www.mext.go.jp", "classroom.google.com")
    assert site.probes == ProbeSettings(
        streams=8,
        duration_s=10.0,
        warmup_s=2.0,
        latency_count=30,
        latency_interval_s=0.2,
        latency_method="tcp-connect",
        dns_queries=3,
        dns_timeout_s=1.0,
    )
    assert site.path == str(p)
    assert site.targets("10.9.9.9") == [
        Target("gateway", "gateway", "192.168.1.1"),  # the file wins over the detected gateway
        Target("center", "center", "10.0.0.10", "http://10.0.0.10:8080"),
        Target("internet-1", "internet", "203.0.113.5", "http://203.0.113.5:8080"),
        Target("internet-2", "internet", "203.0.113.9"),
    ]


def test_minimal_site_takes_defaults(tmp_path):
    site = load_site(write(tmp_path, "targets:\n  internet: http://203.0.113.5:8080\n"))
    assert site.school == School()
    assert site.profile == "default"
    assert site.classrooms == (Classroom("classroom", 35, "default"),)
    assert site.gateway == "auto"
    assert site.center is None
    assert site.internet == ("http://203.0.113.5:8080",)  # a single string is a one-item list
    assert site.resolvers == ("system",)
    assert site.probes == ProbeSettings()
    assert [t.name for t in site.targets("192.168.0.1")] == ["gateway", "internet"]
    assert site.targets("192.168.0.1")[0].host == "192.168.0.1"  # auto takes the detected one
    assert [t.name for t in site.targets(None)] == ["internet"]


def test_empty_site_file_is_the_default_site(tmp_path):
    site = load_site(write(tmp_path, ""))
    assert site.internet == () and site.classrooms == (Classroom("classroom", 35, "default"),)


def test_classroom_profile_defaults_to_site_profile(tmp_path):
    site = load_site(
        write(
            tmp_path,
            """\
        profile: video-lesson
        classrooms:
          - {name: a, devices: 10}
          - {name: b, devices: 20, profile: default}
        """,
        )
    )
    assert [(r.name, r.profile) for r in site.classrooms] == [("a", "video-lesson"), ("b", "default")]


def test_whole_number_written_as_float_becomes_an_int(tmp_path):
    site = load_site(write(tmp_path, "school: {students: 420.0}\nclassrooms:\n  - {name: a, devices: 30.0}\n"))
    assert site.classrooms[0].devices == 30 and type(site.classrooms[0].devices) is int
    assert type(site.school.students) is int


def test_relative_profiles_dir_is_relative_to_the_site_file(tmp_path):
    (tmp_path / "sub").mkdir()
    site = load_site(write(tmp_path / "sub", "profiles_dir: my-profiles\n"))
    assert site.profiles_dir == str((tmp_path / "sub" / "my-profiles").resolve())


SITE_ERRORS = [
    pytest.param("school:\n  id: a\n name: b\nprofile: default\n", ["line 3", "YAML syntax error"], id="yaml-syntax"),
    pytest.param(
        "classrooms:\n  - {name: a, devices: 30}\n  - {name: b, devices: thirty}\n",
        ["classrooms[1].devices", "'thirty'", "integer"],
        id="wrong-type",
    ),
    pytest.param("clasrooms:\n  - {name: a, devices: 30}\n", ["clasrooms", "did you mean 'classrooms'"], id="unknown-key"),
    pytest.param("school: {id: a, nmae: b}\n", ["school.nmae", "did you mean 'name'"], id="unknown-nested-key"),
    pytest.param("classrooms:\n  - {name: a}\n", ["classrooms[0].devices", "missing required key 'devices'"], id="missing-required"),
    pytest.param("targets:\n  internet: [ftp://203.0.113.5]\n", ["targets.internet[0]", "ftp://203.0.113.5"], id="bad-url-scheme"),
    pytest.param("targets:\n  center: 'http://:8080'\n", ["targets.center"], id="bad-url-no-host"),
    pytest.param("targets:\n  internet: ['http://x.example:notaport']\n", ["targets.internet[0]", "bad port"], id="bad-url-port"),
    pytest.param("targets:\n  internet: ['h', 'http://x.example:99999']\n", ["targets.internet[1]", "bad port"], id="bad-url-port-range"),
    pytest.param("targets:\n  internet: 5\n", ["targets.internet", "a list or a string"], id="internet-not-list"),
    pytest.param("school: {students: -5}\n", ["school.students", "-5"], id="negative-students"),
    pytest.param("school: {students: 30.5}\n", ["school.students", "integer"], id="fractional-students"),
    pytest.param("classrooms:\n  - {name: a, devices: true}\n", ["classrooms[0].devices"], id="bool-is-not-a-number"),
    pytest.param("classrooms: {name: a, devices: 3}\n", ["classrooms", "a list"], id="classrooms-not-list"),
    pytest.param(
        "probes:\n  bandwidth: {duration_s: 2, warmup_s: 2}\n", ["probes.bandwidth.warmup_s", "shorter"], id="warmup-equals-duration"
    ),
    pytest.param("probes:\n  bandwidth: {duration_s: 2, warmup_s: 5}\n", ["probes.bandwidth.warmup_s"], id="warmup-longer"),
    pytest.param("probes:\n  latency: {method: icmpp}\n", ["probes.latency.method", "did you mean 'icmp'"], id="bad-choice"),
    pytest.param("probes:\n  bandwidth: {streams: 0}\n", ["probes.bandwidth.streams"], id="streams-below-min"),
    pytest.param("- just\n- a list\n", ["(top level)", "mapping"], id="top-level-list"),
    pytest.param("dns:\n  resolvers: system\n", ["dns.resolvers", "a list"], id="resolvers-not-list"),
    # impossible addresses, ports and names (more in test_site_validation.py)
    pytest.param("dns:\n  resolvers: ['999.1.1.1:99999']\n", ["dns.resolvers[0]", "999.1.1.1:99999", "IPv4"], id="resolver-impossible"),
    pytest.param("dns:\n  names: ['..']\n", ["dns.names[0]", "empty label"], id="name-dots"),
    pytest.param("targets:\n  gateway: 192.168.1.300\n", ["targets.gateway", "192.168.1.300"], id="gateway-octet"),
    pytest.param("targets:\n  internet: ['http://x.example:0']\n", ["targets.internet[0]", "bad port 0"], id="bad-url-port-zero"),
]


@pytest.mark.parametrize("text, fragments", SITE_ERRORS)
def test_site_errors_are_one_line_and_name_the_file_and_key(tmp_path, text, fragments):
    p = write(tmp_path, text)
    err = config_error(p)
    msg = assert_one_line_naming(err, p)
    assert err.path == str(p)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"


def test_missing_site_file(tmp_path):
    p = tmp_path / "nope.yaml"
    msg = assert_one_line_naming(config_error(p), p)
    assert "not found" in msg


def test_site_path_is_a_folder(tmp_path):
    msg = assert_one_line_naming(config_error(tmp_path), tmp_path)
    assert "folder" in msg


def test_yaml_error_key_is_the_line_and_column(tmp_path):
    p = write(tmp_path, "school:\n  id: a\n name: b\n")
    assert config_error(p).key == "line 3, column 2"


# ---------------------------------------------------------------------------- profiles

FULL_LIMITS = {
    "rtt_ms": {"warn": 50, "fail": 100, "source": "s"},
    "jitter_ms": {"warn": 15, "fail": 30, "source": "s"},
    "loss_pct": {"warn": 0.5, "fail": 1, "source": "s"},
    "gateway_loss_pct": {"warn": 0.1, "fail": 1, "source": "s"},
    "loaded_rtt_increase_ms": {"warn": 30, "fail": 60, "source": "s"},
    "dns_p50_ms": {"warn": 50, "fail": 100, "source": "s"},
    "dns_timeout_pct": {"fail": 5, "source": "s"},
}


def full_profile(**over) -> dict:
    data = {
        "name": "base",
        "classroom": {
            "down_mbps_per_device": {"value": 1.0, "source": "d"},
            "up_mbps_per_device": {"value": 0.5, "source": "u"},
            "active_share": {"value": 0.5, "source": "a"},
        },
        "limits": {k: dict(v) for k, v in FULL_LIMITS.items()},
    }
    data.update(over)
    return data


def write_profile(folder: Path, name: str, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return p


def test_shipped_default_profile():
    p = load_profile("default")
    assert (p.name, p.down_mbps_per_device, p.up_mbps_per_device, p.active_share, p.warn_margin) == ("default", 0.7, 0.6, 1.0, 1.25)
    assert p.limits["rtt_ms"] == Limit(100.0, p.limits["rtt_ms"].source, 50.0)
    assert p.limits["loaded_rtt_increase_ms"].fail == 60.0
    assert set(p.limits) == set(LIMIT_KEYS)
    assert all(lim.source for lim in p.limits.values())
    assert all(p.sources[k] for k in ("down_mbps_per_device", "up_mbps_per_device", "active_share"))
    assert p.school_recommendation == "mext-2024"
    assert p.need_down_mbps(35) == pytest.approx(24.5)
    assert p.need_up_mbps(35) == pytest.approx(21.0)
    assert Path(p.path).parent == shipped_profiles_dir()


def test_shipped_video_lesson_extends_default():
    base, video = load_profile("default"), load_profile("video-lesson")
    assert video.name == "video-lesson"
    assert (video.down_mbps_per_device, video.up_mbps_per_device) == (2.0, 1.2)
    assert video.active_share == base.active_share and video.warn_margin == base.warn_margin
    assert video.limits == base.limits  # inherited unchanged
    assert "video conference" in video.sources["down_mbps_per_device"]
    assert video.sources["active_share"] == base.sources["active_share"]
    assert video.need_down_mbps(40) == pytest.approx(80.0)  # MEXT: 40 devices -> 80 Mbps


def test_extends_merges_nested_keys(tmp_path):
    write_profile(tmp_path, "base", full_profile())
    write_profile(
        tmp_path,
        "child",
        {
            "name": "child",
            "extends": "base",
            "classroom": {"down_mbps_per_device": {"value": 3.0, "source": "child d"}},
            "limits": {"rtt_ms": {"warn": 20, "fail": 40, "source": "child rtt"}},
        },
    )
    p = load_profile("child", dirs=[tmp_path])
    assert p.name == "child"
    assert p.down_mbps_per_device == 3.0 and p.sources["down_mbps_per_device"] == "child d"
    assert p.up_mbps_per_device == 0.5 and p.active_share == 0.5  # from base
    assert p.limits["rtt_ms"] == Limit(40.0, "child rtt", 20.0)
    assert p.limits["jitter_ms"] == Limit(30.0, "s", 15.0)  # from base
    assert p.limits["dns_timeout_pct"].warn is None
    assert p.warn_margin == 1.0  # neither sets it: no warn band
    assert p.path == str(tmp_path / "child.yaml")


def test_profile_can_extend_a_shipped_profile(tmp_path):
    write_profile(tmp_path, "slow-room", {"extends": "default", "classroom": {"active_share": {"value": 0.5, "source": "half"}}})
    p = load_profile("slow-room", dirs=profile_dirs(extra=str(tmp_path), env={}))
    assert p.active_share == 0.5 and p.down_mbps_per_device == 0.7
    assert p.path == str(tmp_path / "slow-room.yaml")


def test_profile_without_name_is_named_after_its_file_not_its_parent(tmp_path):
    write_profile(tmp_path, "slow-room", {"extends": "default", "classroom": {"active_share": {"value": 0.5, "source": "half"}}})
    assert load_profile("slow-room", dirs=profile_dirs(extra=str(tmp_path), env={})).name == "slow-room"


def test_profile_dirs_order_and_first_match_wins(tmp_path):
    extra, envdir = tmp_path / "extra", tmp_path / "env"
    dirs = profile_dirs(extra=str(extra), env={PROFILES_ENV: str(envdir)})
    assert dirs == [extra, envdir, shipped_profiles_dir()]
    assert profile_dirs(env={}) == [shipped_profiles_dir()]
    write_profile(envdir, "default", full_profile(name="env-default"))
    assert load_profile("default", dirs=dirs).name == "env-default"
    write_profile(extra, "default", full_profile(name="extra-default"))
    assert load_profile("default", dirs=dirs).name == "extra-default"


def test_profile_by_path(tmp_path):
    p = write_profile(tmp_path, "by-path", full_profile(name="by-path"))
    assert load_profile(str(p), dirs=[]).name == "by-path"


@pytest.mark.parametrize(
    "name, hint",
    [
        ("vidoe-lesson", "did you mean 'video-lesson'"),
        ("defualt", "did you mean 'default'"),
        ("zzzzzz", "known: cbt, default, digital-textbook"),
    ],
)
def test_unknown_profile_has_a_hint(name, hint):
    with pytest.raises(UnknownProfileError) as info:
        load_profile(name, dirs=profile_dirs(env={}))
    msg = str(info.value)
    assert "\n" not in msg and f"'{name}'" in msg and hint in msg


def test_unknown_profile_is_a_config_error():
    assert issubclass(UnknownProfileError, ConfigError)


def test_extends_unknown_parent_names_the_child_file(tmp_path):
    child = write_profile(tmp_path, "child", {"extends": "nope"})
    err = config_error("child", loader=lambda n: load_profile(n, dirs=[tmp_path]))
    msg = assert_one_line_naming(err, child)
    assert err.key == "extends" and "nope" in msg


@pytest.mark.parametrize("chain", [["a", "b"], ["a", "b", "c"], ["a"]], ids=["two", "three", "self"])
def test_extends_cycle_is_an_error(tmp_path, chain):
    for name, parent in zip(chain, chain[1:] + chain[:1]):
        write_profile(tmp_path, name, full_profile(name=name, extends=parent))
    err = config_error("a", loader=lambda n: load_profile(n, dirs=[tmp_path]))
    assert "\n" not in str(err) and err.key == "extends" and "extends itself" in str(err)
    assert str(tmp_path) in str(err)


PROFILE_ERRORS = [
    pytest.param(lambda d: d["limits"].pop("dns_p50_ms"), ["limits.dns_p50_ms", "missing"], id="missing-limit"),
    pytest.param(lambda d: d["classroom"].pop("active_share"), ["classroom.active_share", "missing"], id="missing-classroom-key"),
    pytest.param(lambda d: d["limits"]["rtt_ms"].update(warn=150), ["limits.rtt_ms", "must not exceed"], id="warn-above-fail"),
    pytest.param(
        lambda d: d["limits"]["rtt_ms"].pop("source"), ["limits.rtt_ms.source", "missing required key"], id="limit-without-source"
    ),
    pytest.param(
        lambda d: d["classroom"]["active_share"].update(value=1.5), ["classroom.active_share.value", "from 0 to 1"], id="share-above-one"
    ),
    pytest.param(lambda d: d["limits"].update(rtt=d["limits"]["rtt_ms"]), ["limits.rtt", "did you mean 'rtt_ms'"], id="unknown-limit"),
    pytest.param(
        lambda d: d.update(school={"recommended_bandwidth": "mext"}), ["school.recommended_bandwidth", "mext-2024"], id="bad-choice"
    ),
]


@pytest.mark.parametrize("mutate, fragments", PROFILE_ERRORS)
def test_profile_errors(tmp_path, mutate, fragments):
    data = full_profile()
    mutate(data)
    path = write_profile(tmp_path, "bad", data)
    err = config_error("bad", loader=lambda n: load_profile(n, dirs=[tmp_path]))
    msg = assert_one_line_naming(err, path)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"


def test_warn_equal_to_fail_is_allowed(tmp_path):
    data = full_profile()
    data["limits"]["rtt_ms"]["warn"] = 100
    write_profile(tmp_path, "eq", data)
    assert load_profile("eq", dirs=[tmp_path]).limits["rtt_ms"] == Limit(100.0, "s", 100.0)


def test_limit_inherited_through_extends_satisfies_the_child(tmp_path):
    base = full_profile()
    write_profile(tmp_path, "base", base)
    write_profile(tmp_path, "child", {"extends": "base"})
    assert set(load_profile("child", dirs=[tmp_path]).limits) == set(LIMIT_KEYS)


def test_limit_missing_in_the_whole_chain_names_the_child(tmp_path):
    base = full_profile()
    del base["limits"]["jitter_ms"]
    write_profile(tmp_path, "base", base)
    child = write_profile(tmp_path, "child", {"extends": "base"})
    err = config_error("child", loader=lambda n: load_profile(n, dirs=[tmp_path]))
    assert str(child) in str(err) and "limits.jitter_ms" in str(err)


@pytest.mark.parametrize("limit, expected", [(Limit(10.0, "s", 5.0), 5.0), (Limit(10.0, "s"), 10.0)])
def test_limit_warn_or_fail(limit, expected):
    assert limit.warn_or_fail() == expected
