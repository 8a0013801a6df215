"""The one YAML reader (config/yamlfile.py) refuses a key written twice, naming the file, line and key.

PyYAML keeps the last of two equal keys without a word: a site file with two ``school:`` blocks
measured the second school, a profile with two ``limits:`` lost the first. Site files and profiles
both go through ``read_yaml``; merge keys (``<<: *anchor``) may still be overridden, as YAML means.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from giga_netcheck.cli.main import app
from giga_netcheck.config.profiles import load_profile, profile_dirs
from giga_netcheck.config.site import load_site
from giga_netcheck.config.yamlfile import read_yaml
from giga_netcheck.core.errors import ConfigError


def _file(tmp_path: Path, text: str, name: str = "f.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "text, key, line, first",
    [
        ("a: 1\nb: 2\na: 3\n", "a", 3, 1),
        ("outer:\n  x: 1\n  y: 2\n  x: 3\n", "x", 4, 2),
        ("a: {x: 1, x: 2}\n", "x", 1, 1),
        ("- {n: 1}\n- {n: 1, n: 2}\n", "n", 2, 2),
        ("1: a\n1: b\n", "1", 2, 1),
        ('"q": 1\nq: 2\n', "q", 2, 1),
    ],
)
def test_a_duplicate_key_is_one_line_naming_file_line_and_key(tmp_path, text, key, line, first):
    p = _file(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        read_yaml(p)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{p}: line {line}, column ")
    assert f"duplicate key '{key}' (first at line {first})" in msg


def test_merge_keys_may_be_overridden_and_equal_values_in_lists_are_fine(tmp_path):
    p = _file(tmp_path, "base: &b {x: 1, y: 2}\nroom:\n  <<: *b\n  x: 3\nnames: [a, a]\n")
    assert read_yaml(p) == {"base": {"x": 1, "y": 2}, "room": {"x": 3, "y": 2}, "names": ["a", "a"]}


def test_a_site_file_with_two_school_blocks_is_refused(tmp_path):
    p = _file(tmp_path, "school: {id: real, name: Real}\nprofile: default\nschool:\n  id: other\n", "site.yaml")
    with pytest.raises(ConfigError) as info:
        load_site(p)
    assert str(info.value) == f"{p}: line 3, column 1: duplicate key 'school' (first at line 1); each key may appear once in a mapping"


def test_a_profile_with_a_limit_written_twice_is_refused(tmp_path):
    _file(
        tmp_path,
        "extends: default\nlimits:\n  rtt_ms: {warn: 50, fail: 100, source: a}\n  rtt_ms: {warn: 10, fail: 20, source: b}\n",
        "twice.yaml",
    )
    with pytest.raises(ConfigError) as info:
        load_profile("twice", [tmp_path, *profile_dirs(env={})])
    assert "twice.yaml: line 4, column 3: duplicate key 'rtt_ms' (first at line 3)" in str(info.value)


def test_run_with_a_duplicate_key_in_the_site_file_exits_2_with_one_line(tmp_path):
    p = _file(tmp_path, "school: {id: a, name: A}\ntargets:\n  gateway: 192.0.2.1\n  gateway: 192.0.2.2\n", "site.yaml")
    r = CliRunner().invoke(app, ["profiles", "show", "default", "--site", str(p), "--lang", "en"])
    assert r.exit_code == 2, r.output
    assert "duplicate key 'gateway'" in r.output and "line 4" in r.output and "Traceback" not in r.output
