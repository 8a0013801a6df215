"""Fuzz the profile and site loaders: whatever the file holds, the only exception is ConfigError.

Three kinds of input: random YAML-ish trees built from the real key names (so the loaders get
deep before they object), random text, and random bytes. A profile that loads must also
evaluate, show and compose without an exception.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from giga_netcheck.cli.profiles import describe
from giga_netcheck.config.profiles import load_profile, profile_dirs
from giga_netcheck.config.site import load_site
from giga_netcheck.core.errors import ConfigError
from giga_netcheck.core.i18n import Messages
from giga_netcheck.core.models import Classroom, School
from giga_netcheck.core.reference import shipped_profiles_dir
from giga_netcheck.core.thresholds import evaluate, school_needs
from tests.factories import facts, healthy_measurements

FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
_WORK = Path(tempfile.mkdtemp(prefix="gnc-fuzz-"))  # not tmp_path: hypothesis reruns one test many times
atexit.register(shutil.rmtree, _WORK, True)
DIRS = [_WORK, shipped_profiles_dir()]

PROFILE_KEYS = [
    "name",
    "description",
    "source",
    "extends",
    "classroom",
    "mix",
    "limits",
    "school",
    "title",
    "published",
    "down_mbps_per_device",
    "up_mbps_per_device",
    "active_share",
    "warn_margin",
    "devices",
    "value",
    "warn",
    "fail",
    "rtt_ms",
    "jitter_ms",
    "loss_pct",
    "recommended_bandwidth",
    "rule",
    "points",
    "students",
    "down_mbps",
    "up_mbps",
    "down_mbps_per_user",
    "minimum_mbps",
    "users",
    "goodput_factor",
    "profile",
    "share",
]
SITE_KEYS = [
    "school",
    "id",
    "name",
    "students",
    "staff",
    "profile",
    "profiles_dir",
    "classrooms",
    "devices",
    "mix",
    "targets",
    "gateway",
    "center",
    "internet",
    "dns",
    "resolvers",
    "names",
    "probes",
    "bandwidth",
    "latency",
    "streams",
    "duration_s",
    "warmup_s",
    "enabled",
    "count",
    "interval_s",
    "timeout_s",
    "method",
    "queries",
]
WORDS = [
    "default",
    "video-lesson",
    "web-apps",
    "teams",
    "self",
    "nope",
    "mext-2024",
    "per_user",
    "fixed",
    "table",
    "none",
    "students_and_staff",
    "../x.yaml",
    "/",
    "a*3+b*2",
    "web-apps*3+teams*2",
    "http://[::1",
    "http://x:99999",
    "https://203.0.113.5:8080",
    "ftp://x",
    "",
    " ",
    "\t",
    "2024-13-45",
    "1e400",
]

numbers = st.one_of(st.integers(-10, 2000), st.integers(-(10**30), 10**30), st.floats(allow_nan=True, allow_infinity=True))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.sampled_from(WORDS), st.text(max_size=12))


def trees(keys: list[str]):
    key = st.one_of(st.sampled_from(keys), st.text(max_size=6), st.integers(0, 3))
    return st.recursive(
        scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(key, inner, max_size=6)), max_leaves=40
    )


def valued(num=numbers):
    return st.fixed_dictionaries({}, optional={"value": num, "source": scalars, "warn": num, "fail": num})


profile_like = st.fixed_dictionaries(
    {},
    optional={
        "name": scalars,
        "extends": st.one_of(st.sampled_from(WORDS), scalars),
        "source": st.one_of(st.fixed_dictionaries({"title": scalars, "published": scalars}), trees(PROFILE_KEYS)),
        "classroom": st.one_of(
            st.dictionaries(
                st.sampled_from(["down_mbps_per_device", "up_mbps_per_device", "active_share", "warn_margin", "devices", "other"]),
                valued(),
                max_size=5,
            ),
            trees(PROFILE_KEYS),
        ),
        "mix": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {}, optional={"profile": st.sampled_from(WORDS), "share": numbers, "source": scalars, "devices": numbers}
                ),
                max_size=3,
            ),
            trees(PROFILE_KEYS),
        ),
        "limits": st.one_of(
            st.dictionaries(
                st.sampled_from(
                    [
                        "rtt_ms",
                        "jitter_ms",
                        "loss_pct",
                        "gateway_loss_pct",
                        "loaded_rtt_increase_ms",
                        "dns_p50_ms",
                        "dns_timeout_pct",
                        "rtt",
                    ]
                ),
                valued(),
                max_size=7,
            ),
            trees(PROFILE_KEYS),
        ),
        "school": st.fixed_dictionaries(
            {},
            optional={
                "recommended_bandwidth": st.one_of(
                    st.sampled_from(WORDS),
                    st.fixed_dictionaries(
                        {"rule": st.sampled_from(["mext-2024", "table", "per_user", "fixed", "other"])},
                        optional={
                            "source": scalars,
                            "users": st.sampled_from(WORDS + ["students"]),
                            "points": st.lists(st.fixed_dictionaries({}, optional={"students": numbers, "down_mbps": numbers}), max_size=4),
                            "down_mbps_per_user": valued(),
                            "minimum_mbps": valued(),
                            "down_mbps": valued(),
                            "up_mbps": valued(),
                            "goodput_factor": valued(st.floats(0, 2)),
                        },
                    ),
                    trees(PROFILE_KEYS),
                )
            },
        ),
    },
)

site_like = st.fixed_dictionaries(
    {},
    optional={
        "school": st.fixed_dictionaries({}, optional={"id": scalars, "name": scalars, "students": numbers, "staff": numbers}),
        "profile": st.sampled_from(WORDS),
        "profiles_dir": st.one_of(st.sampled_from(WORDS), scalars),
        "classrooms": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "name": scalars,
                    "devices": numbers,
                    "profile": st.sampled_from(WORDS),
                    "mix": st.one_of(
                        st.lists(st.fixed_dictionaries({}, optional={"profile": st.sampled_from(WORDS), "devices": numbers}), max_size=3),
                        scalars,
                    ),
                },
            ),
            max_size=3,
        ),
        "targets": st.fixed_dictionaries(
            {},
            optional={
                "gateway": scalars,
                "center": st.sampled_from(WORDS),
                "internet": st.one_of(st.lists(st.sampled_from(WORDS), max_size=3), scalars),
            },
        ),
        "probes": trees(SITE_KEYS),
        "dns": trees(SITE_KEYS),
    },
)


def _write(name: str, content: bytes) -> Path:
    p = _WORK / name
    p.write_bytes(content)
    return p


def _dump(data) -> bytes:
    return yaml.safe_dump(data, allow_unicode=True).encode("utf-8")


def _profile_survives(content: bytes) -> None:
    path = _write("self.yaml", content)  # "self" in extends/mix points back at this very file
    try:
        p = load_profile(str(path), DIRS)
    except ConfigError as exc:
        assert "\n" not in str(exc), str(exc)
        return
    p.need_down_mbps(35), p.need_up_mbps(35), p.leaves(35)
    rule = p.school_bandwidth_rule()
    if rule is not None:
        school_needs(rule, School(students=420))
    describe(p, Messages("en"), students=420)
    evaluate(facts(healthy_measurements()), School(students=420), (Classroom("a", 30, "p"),), {"p": p})


def _site_survives(content: bytes) -> None:
    path = _write("site.yaml", content)
    try:
        site = load_site(path)
    except ConfigError as exc:
        assert "\n" not in str(exc), str(exc)
        return
    site.targets("192.168.1.1")
    for room in site.classrooms:
        try:
            load_profile(room.profile, profile_dirs(extra=site.profiles_dir, env={}))
        except ConfigError:
            pass


@FUZZ
@given(profile_like)
def test_profile_loader_on_profile_like_trees(data):
    _profile_survives(_dump(data))


@FUZZ
@given(trees(PROFILE_KEYS))
def test_profile_loader_on_random_trees(data):
    _profile_survives(_dump(data))


@FUZZ
@given(site_like)
def test_site_loader_on_site_like_trees(data):
    _site_survives(_dump(data))


@FUZZ
@given(trees(SITE_KEYS))
def test_site_loader_on_random_trees(data):
    _site_survives(_dump(data))


@FUZZ
@given(
    st.one_of(
        st.text(max_size=300),
        st.sampled_from(
            [
                "a: &x [*x]\n",
                "a: !!python/object:os.system ls\n",
                "x: 2024-13-45\n",
                "students: " + "9" * 5000 + "\n",
                "[" * 2000,
                "? [a, b]\n: c\n",
                "a: *undefined\n",
                "%YAML 9.9\n---\n",
                "\ufeffname: x\n",
            ]
        ),
    )
)
def test_both_loaders_on_random_text(text):
    content = text.encode("utf-8", "surrogatepass") if text else b""
    _profile_survives(content)
    _site_survives(content)


@FUZZ
@given(st.binary(max_size=300))
def test_both_loaders_on_random_bytes(content):
    _profile_survives(content)
    _site_survives(content)
