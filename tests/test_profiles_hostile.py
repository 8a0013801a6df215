"""Profiles named or built to hurt: a path out of the profile folders, a mix of thousands of parts.

A profile is a name (letters, digits, ``_``, ``-``) or a path to a .yaml/.yml file; anything else is
refused before a file is opened, so ``profile: ../../../../etc/passwd`` neither reads the file nor
shows a word of it. A mix has at most ``MAX_MIX_TERMS`` parts (nested ones counted) and each file is
read once per load, so a load's cost is linear in its parts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from giga_netcheck.cli.main import app
from giga_netcheck.config import profiles as profiles_module
from giga_netcheck.config.profiles import MAX_DEPTH, MAX_MIX_TERMS, check_reference, load_profile, profile_dirs
from giga_netcheck.config.site import load_site
from giga_netcheck.core.errors import ConfigError, UnknownProfileError
from giga_netcheck.measure.runner import load_profiles

SECRET = "root:x:0:0:TOPSECRET"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file outside every profile folder, not a profile, that must never be read or shown."""
    f = tmp_path / "outside" / "passwd"
    f.parent.mkdir()
    f.write_text(SECRET + "\n")
    return f


@pytest.fixture
def reads(monkeypatch):
    """The files the profile loader reads, in order."""
    seen: list[Path] = []
    real = profiles_module.read_yaml

    def counting(path):
        seen.append(Path(path))
        return real(path)

    monkeypatch.setattr(profiles_module, "read_yaml", counting)
    return seen


def _traversal(secret: Path, start: Path) -> str:
    """``../../..`` from ``start`` to ``secret``, the way an attacker writes it."""
    up = "../" * len(start.resolve().parts[1:])
    return up + str(secret.resolve()).lstrip("/")


def _write(folder: Path, name: str, data) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data, encoding="utf-8")
    return p


# ------------------------------------------------------------------------ names and paths


@pytest.mark.parametrize("ref", ["default", "mext-2024", "my_room-2", "./rooms/gym.yaml", "/srv/p/x.yml", "x.yaml"])
def test_names_and_yaml_paths_are_references(ref):
    check_reference(ref)


@pytest.mark.parametrize("ref", ["../../../../etc/passwd", "/etc/passwd", "a b", "a.b", "", "学校", "x.yaml\x00", "x" * 101, "-\n"])
def test_anything_else_is_refused_on_one_line(ref):
    with pytest.raises(UnknownProfileError) as info:
        check_reference(ref)
    assert "\n" not in str(info.value) and "neither a profile name" in str(info.value)


def test_a_site_file_naming_a_file_outside_the_profile_folders_is_refused_unread(tmp_path, secret, reads):
    site = tmp_path / "site" / "site.yaml"
    site.parent.mkdir()
    site.write_text(f"school: {{id: s, name: S}}\nprofile: {_traversal(secret, Path.cwd())}\n")
    with pytest.raises(ConfigError) as info:
        load_profiles(load_site(site))
    assert "TOPSECRET" not in str(info.value) and "root:" not in str(info.value)
    assert "neither a profile name" in str(info.value) and not reads  # not a single profile file opened


@pytest.mark.parametrize("where", ["extends", "mix"])
def test_a_profile_reaching_out_through_extends_or_mix_is_refused_unread(tmp_path, secret, reads, where):
    ref = _traversal(secret, tmp_path / "p")
    data = {"extends": ref} if where == "extends" else {"mix": [{"profile": ref, "share": 1, "source": "s"}]}
    _write(tmp_path / "p", "evil", data)
    with pytest.raises(ConfigError) as info:
        load_profile("evil", [tmp_path / "p", *profile_dirs(env={})])
    assert "TOPSECRET" not in str(info.value) and "neither a profile name" in str(info.value)
    assert [p.name for p in reads] == ["evil.yaml"]
    assert info.value.key == ("extends" if where == "extends" else "mix[0].profile")


@pytest.mark.parametrize("how", ["relative", "absolute"])
def test_profiles_show_refuses_and_never_echoes_a_file_outside(secret, how):
    ref = _traversal(secret, Path.cwd()) if how == "relative" else str(secret)
    r = CliRunner().invoke(app, ["profiles", "show", ref, "--lang", "en"])
    assert r.exit_code == 2, r.output
    assert "TOPSECRET" not in r.output and "root:" not in r.output and "Traceback" not in r.output
    assert len([x for x in r.output.splitlines() if x.strip()]) == 1


def test_a_yaml_file_that_is_not_a_mapping_is_not_echoed(tmp_path):
    p = _write(tmp_path, "notes", "- " + SECRET + "\n")
    with pytest.raises(ConfigError) as info:
        load_profile(str(p), profile_dirs(env={}))
    assert "TOPSECRET" not in str(info.value) and "(top level)" in str(info.value) and "got a list" in str(info.value)


# ------------------------------------------------------------------------------ bounds


def test_a_profile_mix_of_5000_parts_is_refused_before_any_part_is_read(tmp_path, reads):
    _write(tmp_path, "huge", {"mix": [{"profile": "web-apps", "share": 0.0001, "source": "s"}] * 5000})
    with pytest.raises(ConfigError) as info:
        load_profile("huge", [tmp_path, *profile_dirs(env={})])
    assert f"at most {MAX_MIX_TERMS} parts" in str(info.value) and info.value.key == "mix"
    assert [p.name for p in reads] == ["huge.yaml"]


def test_a_site_mix_spec_of_5000_parts_is_refused_before_any_part_is_read(reads):
    with pytest.raises(ConfigError) as info:
        load_profile("+".join(["web-apps*1"] * 5000), profile_dirs(env={}))
    assert f"at most {MAX_MIX_TERMS} parts" in str(info.value) and not reads


def test_a_mix_at_the_limit_reads_each_file_once(tmp_path, reads):
    """Before: each part read its file and its parents again (64 parts of web-apps: 129 reads)."""
    _write(tmp_path, "full", {"mix": [{"profile": "web-apps", "share": 0.01, "source": "s"}] * MAX_MIX_TERMS})
    p = load_profile("full", [tmp_path, *profile_dirs(env={})])
    assert len(p.mix) == MAX_MIX_TERMS and p.need_down_mbps(100) == pytest.approx(MAX_MIX_TERMS * 0.01 * 100 * 0.5)
    assert sorted(x.name for x in reads) == ["default.yaml", "full.yaml", "web-apps.yaml"]
    reads.clear()
    spec = load_profile("+".join(["web-apps*1", "teams*2"] * (MAX_MIX_TERMS // 2)), profile_dirs(env={}))
    assert spec.need_down_mbps(0) == pytest.approx(MAX_MIX_TERMS // 2 * (0.5 + 2 * 1.2))
    assert sorted(x.name for x in reads) == ["default.yaml", "teams.yaml", "web-apps.yaml"]


def test_nested_mixes_count_every_part_so_a_small_file_cannot_explode(tmp_path, reads):
    """Eight parts of a profile of eight parts of ... : 8**12 leaves from 12 small files."""
    for k in range(12):
        part = f"n{k + 1}" if k < 11 else "web-apps"
        _write(tmp_path, f"n{k}", {"mix": [{"profile": part, "share": 0.1, "source": "s"}] * 8})
    with pytest.raises(ConfigError) as info:
        load_profile("n0", [tmp_path, *profile_dirs(env={})])
    assert f"at most {MAX_MIX_TERMS} parts" in str(info.value)
    assert len(reads) == len(set(reads)) <= 14  # each file at most once
    ok = load_profile("n11", [tmp_path, *profile_dirs(env={})])  # one level: 8 parts
    assert len(ok.leaves(10)) == 8


def test_extends_deeper_than_the_limit_is_an_error_naming_it(tmp_path):
    for k in range(MAX_DEPTH + 3):
        _write(tmp_path, f"e{k}", {"extends": f"e{k + 1}" if k < MAX_DEPTH + 2 else "default"})
    with pytest.raises(ConfigError) as info:
        load_profile("e0", [tmp_path, *profile_dirs(env={})])
    assert f"extends nests deeper than {MAX_DEPTH} profiles" in str(info.value) and "\n" not in str(info.value)
    assert load_profile(f"e{4}", [tmp_path, *profile_dirs(env={})]).extends  # a shorter chain loads
