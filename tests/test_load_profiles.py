"""The load activity is a profile key (``load:``): every shipped profile declares one, a custom,
extended or mixed profile gets the activity it declares, and a video call is judged by the
classroom profile's own limits. No profile name picks an activity."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from giga_netcheck.config.load import ACTIVITIES
from giga_netcheck.config.profiles import load_profile, profile_dirs
from giga_netcheck.core.errors import ConfigError
from giga_netcheck.core.reference import shipped_profiles_dir
from giga_netcheck.measure.loadgen.activities import Cbt, Textbook, Video, VideoCall, WebApps, activity_for

SHIPPED = sorted(p.stem for p in shipped_profiles_dir().glob("*.yaml"))
KINDS = {"video": Video, "video-call": VideoCall, "web-apps": WebApps, "textbook": Textbook, "cbt": Cbt}


def write(folder: Path, name: str, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return p


def dirs(folder: Path) -> list[Path]:
    return [folder, *profile_dirs(env={})]


def own_load(name: str) -> dict | None:
    """The ``load:`` a shipped file writes itself, or None when it inherits one."""
    raw = yaml.safe_load((shipped_profiles_dir() / f"{name}.yaml").read_text(encoding="utf-8"))
    return raw.get("load")


# ------------------------------------------------------------------------ shipped profiles


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_declares_its_activity(name):
    p = load_profile(name, profile_dirs(env={}))
    assert p.load is not None and p.load.activity in ACTIVITIES
    if own_load(name) is None:  # inherited: the same activity as the profile it extends
        parent = Path(p.extends[0]).stem
        assert p.load.activity == load_profile(parent, profile_dirs(env={})).load.activity
    else:
        assert p.load.activity == own_load(name)["activity"]


@pytest.mark.parametrize("name", SHIPPED)
def test_the_emulated_device_carries_the_profiles_own_figures(name):
    p = load_profile(name, profile_dirs(env={}))
    a = activity_for(None, None, p)
    assert isinstance(a, KINDS[p.load.activity])
    if isinstance(a, (Video, VideoCall)):
        assert a.bitrate_mbps == p.down_mbps_per_device  # no figure repeated: the profile's per-device need
    if isinstance(a, Cbt):
        assert (a.down_mbps, a.up_mbps) == (p.down_mbps_per_device, p.up_mbps_per_device)
    if isinstance(a, VideoCall):
        assert a.limits == {
            k: p.limits[m].fail for k, m in (("loss_pct", "loss_pct"), ("rtt_p50_ms", "rtt_ms"), ("jitter_ms", "jitter_ms"))
        }


# -------------------------------------------------------------------------- custom profiles


def test_a_custom_profile_gets_the_activity_it_declares(tmp_path):
    write(tmp_path, "gym", {"extends": "default", "load": {"activity": "video", "bitrate_mbps": {"value": 4.0, "source": "s"}}})
    p = load_profile("gym", dirs(tmp_path))
    a = activity_for(None, None, p)
    assert isinstance(a, Video) and a.bitrate_mbps == 4.0 and p.load.source == "s"
    # a user profile named like a shipped one is what it declares, whatever its name
    write(tmp_path, "video-720p", {"extends": "default", "load": {"activity": "textbook"}})
    assert isinstance(activity_for(None, None, load_profile("video-720p", dirs(tmp_path))), Textbook)


def test_an_extended_profile_inherits_the_activity_with_its_own_figure(tmp_path):
    write(tmp_path, "hd", {"extends": "video-720p", "classroom": {"down_mbps_per_device": {"value": 5.0, "source": "1080p"}}})
    a = activity_for(None, None, load_profile("hd", dirs(tmp_path)))
    assert isinstance(a, Video) and a.bitrate_mbps == 5.0
    # a child may keep the parent's activity and set only the bitrate
    write(tmp_path, "hd2", {"extends": "video-720p", "load": {"bitrate_mbps": {"value": 8.0, "source": "4k"}}})
    assert activity_for(None, None, load_profile("hd2", dirs(tmp_path))).bitrate_mbps == 8.0


def test_a_video_call_is_judged_by_the_classroom_profiles_limits(tmp_path):
    strict = {
        "rtt_ms": {"warn": 20, "fail": 40, "source": "s"},
        "jitter_ms": {"warn": 4, "fail": 8, "source": "s"},
        "loss_pct": {"warn": 0.05, "fail": 0.3, "source": "s"},
    }
    write(tmp_path, "strict-call", {"extends": "teams", "limits": strict})
    a = activity_for(None, None, load_profile("strict-call", dirs(tmp_path)))
    assert isinstance(a, VideoCall) and a.limits == {"loss_pct": 0.3, "rtt_p50_ms": 40.0, "jitter_ms": 8.0}
    assert "median RTT < 40 ms" in a.describe()["pass"]


def test_a_profile_without_an_activity_has_none_and_is_never_guessed(tmp_path):
    raw = yaml.safe_load((shipped_profiles_dir() / "default.yaml").read_text(encoding="utf-8"))
    raw.pop("load")
    write(tmp_path, "standalone", raw)
    p = load_profile("standalone", dirs(tmp_path))
    assert p.load is None
    with pytest.raises(ValueError, match="declares no load.activity"):
        activity_for(None, None, p)
    assert isinstance(activity_for("video-call", None, p), VideoCall)  # the site file may still name one


# --------------------------------------------------------------------------------- mixes


def test_a_profile_mix_is_emulated_as_its_largest_part(tmp_path):
    mix = [{"profile": "web-apps", "share": 0.3, "source": "s"}, {"profile": "teams", "share": 0.7, "source": "s"}]
    write(tmp_path, "calls", {"extends": "default", "mix": mix})
    p = load_profile("calls", dirs(tmp_path))
    assert p.load is None and p.load_part(35).name == "teams"
    assert isinstance(activity_for(None, None, p.load_part(35)), VideoCall)
    even = [{"profile": "nhk-video", "share": 0.5, "source": "s"}, {"profile": "teams", "share": 0.5, "source": "s"}]
    write(tmp_path, "even", {"extends": "default", "mix": even})
    assert load_profile("even", dirs(tmp_path)).load_part(35).name == "nhk-video"  # equal parts: the first listed


def test_a_site_mix_is_emulated_as_the_part_with_most_devices():
    d = profile_dirs(env={})
    assert load_profile("web-apps*5+video-720p*30", d).load_part(35).name == "video-720p"
    assert load_profile("web-apps*30+video-720p*5", d).load_part(35).name == "web-apps"


def test_a_mix_profile_cannot_declare_an_activity_of_its_own(tmp_path):
    mix = [{"profile": "web-apps", "share": 0.5, "source": "s"}, {"profile": "teams", "share": 0.5, "source": "s"}]
    write(tmp_path, "bad-mix", {"extends": "default", "mix": mix, "load": {"activity": "video"}})
    with pytest.raises(ConfigError, match="largest part") as exc:
        load_profile("bad-mix", dirs(tmp_path))
    assert exc.value.key == "load"


# --------------------------------------------------------------------------------- schema


@pytest.mark.parametrize(
    "load, key, words",
    [
        ({"activity": "dance"}, "load.activity", "video"),
        ({"activity": "video", "bitrate_mbps": 2.5}, "load.bitrate_mbps", "mapping"),
        ({"activity": "video", "bitrate_mbps": {"value": 0, "source": "s"}}, "load.bitrate_mbps.value", "0.05"),
        ({"activity": "video", "rate": 1}, "load.rate", "bitrate_mbps"),
    ],
)
def test_load_keys_are_validated(tmp_path, load, key, words):
    write(tmp_path, "room", {"extends": "default", "load": load})
    with pytest.raises(ConfigError) as exc:
        load_profile("room", dirs(tmp_path))
    assert exc.value.key == key and words in str(exc.value), str(exc.value)


def test_a_bitrate_without_any_activity_is_an_error(tmp_path):
    raw = yaml.safe_load((shipped_profiles_dir() / "default.yaml").read_text(encoding="utf-8"))
    raw["load"] = {"bitrate_mbps": {"value": 3.0, "source": "s"}}
    write(tmp_path, "half", raw)
    with pytest.raises(ConfigError) as exc:
        load_profile("half", dirs(tmp_path))
    assert exc.value.key == "load.activity"


# ------------------------------------------------------------------------ the site file


def test_the_site_file_names_the_activity_over_the_profile():
    d = profile_dirs(env={})
    default, nhk = load_profile("default", d), load_profile("nhk-video", d)
    assert activity_for("video", 5.0, default).bitrate_mbps == 5.0
    assert activity_for("cbt", 1.0, default).down_mbps == 1.0
    # the profile's own rate when the site names the profile's own activity, else the activity's default
    assert activity_for("video", None, nhk).bitrate_mbps == nhk.down_mbps_per_device
    assert activity_for("video", None, default).bitrate_mbps == Video.DEFAULT_BITRATE_MBPS
    assert isinstance(activity_for("web-apps", None, nhk), WebApps)
