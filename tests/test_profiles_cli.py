"""``giga-netcheck profiles list | show | validate``: output lines and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from giga_netcheck.cli.main import app
from giga_netcheck.cli.profiles import profiles_app
from giga_netcheck.config.profiles import PROFILES_ENV
from giga_netcheck.core.reference import shipped_profiles_dir
from tests.conftest import clean_env

BAD = Path(__file__).resolve().parent / "data" / "bad-profiles"
SHIPPED = shipped_profiles_dir()

# file in tests/data/bad-profiles -> words its one error line must hold (key path, bad value, expectation)
EXPECTED = {
    "yaml-syntax.yaml": ["line 5", "YAML syntax error"],
    "unknown-key.yaml": ["limts", "did you mean 'limits'"],
    "wrong-type.yaml": ["classroom.down_mbps_per_device.value", "'fast'", "a number"],
    "missing-source.yaml": ["classroom.down_mbps_per_device.source", "missing required key 'source'"],
    "share-above-one.yaml": ["classroom.active_share.value", "1.5", "from 0 to 1"],
    "negative-need.yaml": ["classroom.up_mbps_per_device.value", "-1", ">= 0"],
    "infinite-limit.yaml": ["limits.rtt_ms.fail", "inf", ">= 0"],
    "warn-above-fail.yaml": ["limits.jitter_ms", "warn (40) must not exceed fail (30)"],
    "extends-unknown.yaml": ["extends", "'defualt'", "did you mean 'default'"],
    "extends-cycle-a.yaml": ["extends", "extends itself through"],
    "extends-cycle-b.yaml": ["extends", "extends itself through"],
    "missing-limits.yaml": ["limits.rtt_ms", "missing"],
    "bad-school-rule.yaml": ["school.recommended_bandwidth.rule", "'per-user'", "did you mean 'per_user'"],
    "rule-missing-figure.yaml": ["school.recommended_bandwidth.down_mbps_per_user", "missing required key", "per_user"],
    "rule-foreign-key.yaml": ["school.recommended_bandwidth.down_mbps_per_user", "belongs to rule per_user", "not to rule fixed"],
    "table-not-increasing.yaml": ["points[2].students", "200", "more students than the previous point (300)"],
    "mix-unknown-profile.yaml": ["mix[1].profile", "'video-lessson'", "did you mean 'video-lesson'"],
    "mix-shares-above-one.yaml": ["mix", "add up to 1.3", "at most 1"],
    "mix-with-figures.yaml": ["classroom.down_mbps_per_device", "takes its need from the mix"],
    "source-without-date.yaml": ["source.published", "missing required key 'published'"],
    "top-level-list.yaml": ["(top level)", "a mapping"],
    "not-utf8.yml": ["not UTF-8"],
    "duplicate-key.yaml": ["line 6, column 1", "duplicate key 'limits'", "first at line 4"],
}


@pytest.fixture(autouse=True)
def _no_user_profiles(monkeypatch):
    monkeypatch.delenv(PROFILES_ENV, raising=False)
    monkeypatch.setenv("COLUMNS", "250")


def invoke(*args: str):
    return CliRunner().invoke(app, ["profiles", *args])


def test_the_bad_folder_holds_every_kind_of_mistake_the_test_expects():
    files = sorted(p.name for p in BAD.iterdir() if p.suffix in (".yaml", ".yml"))
    assert files == sorted(EXPECTED) and len(files) >= 10


def test_validate_a_folder_of_broken_profiles_prints_one_clear_line_each_and_exits_2():
    r = invoke("validate", str(BAD), "--lang", "en")
    assert r.exit_code == 2, r.output
    lines = r.output.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == len(EXPECTED) and "Traceback" not in r.output
    assert lines[-1] == f"0 valid, {len(EXPECTED)} with errors"
    for name, fragments in EXPECTED.items():
        [line] = [e for e in errors if e.startswith(f"error: {BAD / name}: ")]
        for f in fragments:
            assert f in line, f"{name}: {f!r} not in {line!r}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_validate_one_broken_file_exits_2(name):
    r = invoke("validate", str(BAD / name), "--lang", "en")
    assert r.exit_code == 2 and len([x for x in r.output.splitlines() if x.startswith("error: ")]) == 1


def test_validate_the_shipped_folder_exits_0():
    r = invoke("validate", str(SHIPPED), "--lang", "en")
    assert r.exit_code == 0, r.output
    names = sorted(p.stem for p in SHIPPED.glob("*.yaml"))
    assert sorted(line.split("(")[-1].rstrip(")") for line in r.output.splitlines() if line.startswith("ok: ")) == names


def test_validate_a_good_user_folder_that_extends_shipped_profiles(tmp_path):
    (tmp_path / "pc-room.yaml").write_text(yaml.safe_dump({"extends": "video-lesson", "description": "our PC room"}))
    (tmp_path / "pc-room-cbt.yaml").write_text(
        yaml.safe_dump(
            {
                "extends": "pc-room",
                "mix": [
                    {"profile": "cbt", "share": 0.5, "source": "half the room"},
                    {"profile": "pc-room", "share": 0.5, "source": "the rest"},
                ],
            }
        )
    )
    r = invoke("validate", str(tmp_path), "--lang", "en")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-1] == "2 valid, 0 with errors"


@pytest.mark.parametrize(
    "args",
    [["validate", "/nonexistent/x"], ["validate", "EMPTY"], ["show", "vidoe-lesson"], ["list", "--profiles-dir", "/nonexistent/dir"]],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, args):
    args = [str(tmp_path) if a == "EMPTY" else a for a in args]
    r = invoke(*args, "--lang", "en")
    assert r.exit_code == 2
    assert len([line for line in r.output.splitlines() if line.strip()]) == 1 and "configuration error" in r.output


def test_list_shows_every_shipped_profile_with_need_rule_and_origin():
    r = invoke("list", "--lang", "en")
    assert r.exit_code == 0, r.output
    rows = {line.split()[0]: line for line in r.output.splitlines()[1:]}
    assert set(rows) == {p.stem for p in SHIPPED.glob("*.yaml")}
    assert "2 / 1.2 Mbps x 1" in rows["video-lesson"] and "mext-2024" in rows["video-lesson"] and "shipped" in rows["video-lesson"]
    assert "per_user" in rows["fcc-erate"] and "fixed" in rows["uk-dfe-primary"] and "none" in rows["home-online-lesson"]
    assert "warning" not in r.output


def test_list_warns_when_a_user_profile_shadows_a_shipped_one(tmp_path):
    (tmp_path / "default.yaml").write_text(yaml.safe_dump({"extends": "default", "description": "board default"}))
    (tmp_path / "broken.yaml").write_text("limts: {}\n")
    r = invoke("list", "--profiles-dir", str(tmp_path), "--lang", "en")
    assert r.exit_code == 0, r.output
    [warn] = [line for line in r.output.splitlines() if line.startswith("warning:")]
    assert str(tmp_path / "default.yaml") in warn and str(SHIPPED / "default.yaml") in warn and "'default'" in warn
    [row] = [line for line in r.output.splitlines() if line.startswith("default ")]
    assert str(tmp_path / "default.yaml") in row and "board default" in row
    [err] = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert "broken.yaml" in err and "did you mean 'limits'" in err


def test_list_reads_the_environment_variable(tmp_path, monkeypatch):
    (tmp_path / "gym.yaml").write_text(yaml.safe_dump({"extends": "web-apps", "description": "gym"}))
    monkeypatch.setenv(PROFILES_ENV, str(tmp_path))
    r = invoke("list", "--lang", "ja")
    assert r.exit_code == 0 and any(line.startswith("gym ") for line in r.output.splitlines())
    assert "名前" in r.output.splitlines()[0]


def test_show_prints_every_number_with_its_source():
    r = invoke("show", "teams", "--devices", "10", "--lang", "en")
    assert r.exit_code == 0, r.output
    out = r.output
    assert "Profile teams" in out and str(SHIPPED / "teams.yaml") in out and "extends: " + str(SHIPPED / "default.yaml") in out
    assert "rtt_ms: 60 / 100 — Microsoft Teams" in out and "loss_pct: 0.1 / 1 — Microsoft Teams" in out
    assert "download per device (Mbps): 1.2 — Microsoft Teams" in out
    assert "a classroom of 10 devices needs 12 Mbps down and 12 Mbps up" in out
    assert "mext-2024: MEXT recommended bandwidth" in out and "1400: 834" in out


def test_show_school_rule_with_a_worked_example():
    r = invoke("show", "itu-giga-2030", "--students", "1000", "--lang", "en")
    assert "per_user: 0.05 Mbps per user (students), at least 20 Mbps" in r.output
    assert "a school of 1000 students needs 50 Mbps (school.bandwidth.per_user" in r.output
    r = invoke("show", "uk-dfe-primary", "--lang", "en")
    assert "fixed: 100 Mbps down, 30 Mbps up x 0.94 (line rate to TCP goodput)" in r.output


def test_show_a_mix_spec_and_a_shadowing_user_profile(tmp_path):
    r = invoke("show", "web-apps*30+video-lesson*5", "--lang", "en")
    assert r.exit_code == 0, r.output
    assert "30 devices: web-apps" in r.output and "5 devices: video-lesson" in r.output
    assert "a classroom of 35 devices needs 25 Mbps down and 21 Mbps up" in r.output
    (tmp_path / "cbt.yaml").write_text(yaml.safe_dump({"extends": "cbt"}))
    r = invoke("show", "cbt", "--profiles-dir", str(tmp_path), "--lang", "en")
    assert f"shadows (hides the profile of the same name in): {SHIPPED / 'cbt.yaml'}" in r.output


def test_show_json_is_the_resolved_profile():
    r = invoke("show", "home-online-lesson", "--json")
    doc = json.loads(r.output)
    assert (doc["name"], doc["default_devices"], doc["school_recommendation"]) == ("home-online-lesson", 1, "none")
    assert doc["limits"]["rtt_ms"]["fail"] == 100.0


def test_every_profiles_command_and_option_is_documented():
    group = typer.main.get_command(app).commands["profiles"]
    assert group.help and set(group.commands) == {"list", "show", "validate"}
    for name, cmd in group.commands.items():
        assert cmd.help and len(cmd.help) > 20, name
        for param in cmd.params:
            if param.name != "help":
                assert getattr(param, "help", None), f"profiles {name} {param.name} lacks help"


def test_the_installed_entry_point_runs_validate(tmp_path):
    env = clean_env()
    proc = subprocess.run(
        [sys.executable, "-m", "giga_netcheck", "profiles", "validate", str(BAD / "unknown-key.yaml"), "--lang", "en"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "did you mean 'limits'" in proc.stdout
    assert profiles_app.info.help


def test_site_option_searches_the_site_files_profiles_dir(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "gym.yaml").write_text(yaml.safe_dump({"extends": "web-apps", "description": "the gym"}))
    site = tmp_path / "site.yaml"
    site.write_text("profiles_dir: mine\nprofile: gym\n")
    r = invoke("show", "gym", "--site", str(site), "--lang", "en")
    assert r.exit_code == 0 and "the gym" in r.output
    assert invoke("show", "gym", "--lang", "en").exit_code == 2
    bad = tmp_path / "bad-site.yaml"
    bad.write_text("profiles_dri: mine\n")
    r = invoke("list", "--site", str(bad), "--lang", "en")
    assert r.exit_code == 2 and "did you mean 'profiles_dir'" in r.output
