"""results: the versioned JSON result round-trips, refuses what it cannot read, writes atomically."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import pytest

from giga_netcheck.config.profiles import load_profile
from giga_netcheck.core.errors import ResultFileError
from giga_netcheck.core.models import SCHEMA_VERSION, RunResult, School, from_dict, to_dict
from giga_netcheck.core.results import dumps, load, report_basename, upgrade, write_atomic
from giga_netcheck.core.stats import summarize_rtts
from giga_netcheck.measure.runner import conclude
from tests.factories import measurements, run_result


def _all_dataclass_types(obj, seen=None) -> set[type]:
    seen = set() if seen is None else seen
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        seen.add(type(obj))
        for f in dataclasses.fields(obj):
            _all_dataclass_types(getattr(obj, f.name), seen)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            _all_dataclass_types(x, seen)
    elif isinstance(obj, dict):
        for x in obj.values():
            _all_dataclass_types(x, seen)
    return seen


def test_full_result_exercises_every_model_type():
    import giga_netcheck.core.models as models

    every = {getattr(models, n) for n in models.__all__ if dataclasses.is_dataclass(getattr(models, n, None))}
    assert _all_dataclass_types(run_result()) == every


def test_to_dict_from_dict_round_trip():
    r = run_result()
    data = to_dict(r)
    assert json.loads(json.dumps(data)) == data  # plain JSON data, tuples became lists
    assert from_dict(RunResult, data) == r


def test_round_trip_through_text(tmp_path):
    r = run_result()
    p = tmp_path / "r.json"
    p.write_text(dumps(r), encoding="utf-8")
    assert load(p) == r
    assert "港区立第一小学校" in p.read_text(encoding="utf-8")  # written as UTF-8, not \\u escapes


def test_round_trip_of_an_empty_result():
    r = run_result(measurements(), checks=(), causes=(), probes=(), targets=(), not_measured=())
    assert from_dict(RunResult, to_dict(r)) == r


def test_to_dict_shape():
    data = to_dict(run_result())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["school"] == {"id": "tokyo-minato-01", "name": "港区立第一小学校", "students": 420, "staff": None}
    assert data["measurements"]["latency"][0]["rtts_ms"][:2] == [0.8, 1.2]
    assert data["measurements"]["dns_agreement"][0]["answers"]["system@192.168.1.1"] == ["203.0.113.80"]
    assert isinstance(data["targets"], list) and data["targets"][0] == {
        "name": "gateway",
        "role": "gateway",
        "host": "192.168.1.1",
        "url": None,
        "engine": "http",
        "server_id": None,
        "secure": False,
        "server_list": None,
    }


def test_from_dict_ignores_unknown_keys_and_defaults_missing_ones():
    data = to_dict(run_result())
    data["added_by_a_newer_minor"] = {"x": 1}
    data["school"]["motto"] = "learn"
    for key in ("checks", "causes", "not_measured", "interrupted"):
        del data[key]
    r = from_dict(RunResult, data)
    assert (r.checks, r.causes, r.not_measured, r.interrupted) == ((), (), (), False)
    assert r.school == School("tokyo-minato-01", "港区立第一小学校", 420)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(duration_s="57"),
        lambda d: d.update(school=["not", "an", "object"]),
        lambda d: d["measurements"].update(latency={"not": "a list"}),
        lambda d: d.update(schema_version=True),
        lambda d: d.update(interrupted="no"),
    ],
    ids=["string-for-number", "list-for-object", "object-for-list", "bool-for-int", "string-for-bool"],
)
def test_from_dict_refuses_wrong_shapes(mutate):
    data = to_dict(run_result())
    mutate(data)
    with pytest.raises((TypeError, ValueError)):
        from_dict(RunResult, data)


def test_from_dict_accepts_integers_for_floats():
    data = to_dict(run_result())
    data["duration_s"] = 57
    r = from_dict(RunResult, data)
    assert r.duration_s == 57.0 and isinstance(r.duration_s, float)


# ----------------------------------------------------------------------------- load


def _write(tmp_path, text: str, name: str = "result.json"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _load_error(p) -> str:
    with pytest.raises(ResultFileError) as info:
        load(p)
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert str(p) in msg
    return msg


def test_load_refuses_a_newer_schema_version(tmp_path):
    data = to_dict(run_result())
    data["schema_version"] = SCHEMA_VERSION + 1
    msg = _load_error(_write(tmp_path, json.dumps(data)))
    assert f"schema_version {SCHEMA_VERSION + 1}" in msg and "newer" in msg and "upgrade" in msg


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("this is not json", "not valid JSON (line 1, column 1"),
        ('{"schema_version": 1,\n  "run_id": }', "not valid JSON (line 2"),
        ("", "not valid JSON"),
        ("[1, 2, 3]", "top level is not an object"),
        ('"a string"', "top level is not an object"),
        ("null", "top level is not an object"),
        ('{"run_id": "x"}', "no schema_version"),
        ('{"schema_version": "1"}', "no schema_version"),
        ('{"schema_version": 1, "run_id": 5}', "malformed result"),
    ],
    ids=["text", "syntax", "empty", "list", "string", "null", "no-version", "string-version", "malformed"],
)
def test_load_refuses_what_is_not_a_result(tmp_path, text, fragment):
    assert fragment in _load_error(_write(tmp_path, text))


def test_load_missing_file(tmp_path):
    assert "not found" in _load_error(tmp_path / "nope.json")


def test_load_undecodable_bytes(tmp_path):
    p = tmp_path / "bin.json"
    p.write_bytes(b"\xff\xfe\x00garbage")
    assert "cannot read" in _load_error(p)


def test_upgrade_passes_the_current_version_through():
    data = {"schema_version": SCHEMA_VERSION, "run_id": "x"}
    assert upgrade(data, "p") == data


# ---------------------------------------------------------------------- write_atomic


def test_write_atomic_writes_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "reports" / "school-1.json"
    assert write_atomic(target, "first") == target
    assert write_atomic(target, "second — 二回目") == target
    assert target.read_text(encoding="utf-8") == "second — 二回目"
    assert os.listdir(target.parent) == ["school-1.json"]


def test_write_atomic_keeps_newlines_as_given(tmp_path):
    target = tmp_path / "a.md"
    write_atomic(target, "a\nb\r\n")
    assert target.read_bytes() == b"a\nb\r\n"


def test_write_atomic_cleans_up_when_the_rename_fails(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_text("x")  # a non-empty folder: the rename must fail
    with pytest.raises(OSError):
        write_atomic(target, "text")
    assert sorted(os.listdir(tmp_path)) == ["taken"]


def test_write_atomic_cleans_up_when_encoding_fails(tmp_path):
    target = tmp_path / "ascii.txt"
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "日本語", encoding="ascii")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------- report names

SAFE = re.compile(r"^[\w\-]+$")


@pytest.mark.parametrize(
    "school_id, started_at, expected",
    [
        ("tokyo-minato-01", "2026-06-03T11:20:05+09:00", "tokyo-minato-01-20260603-112005"),
        ('a/b\\c:d*e?f"g<h>i|j', "2026-06-03T11:20:05", "a_b_c_d_e_f_g_h_i_j-20260603-112005"),
        ("../../etc", "2026-06-03T11:20:05.123456+00:00", "______etc-20260603-112005"),
        ("", "2026-01-02T03:04:05Z", "site-20260102-030405"),
        ("港区 第一小", "2026-06-03T11:20:05+09:00", "港区_第一小-20260603-112005"),
    ],
)
def test_report_basename(school_id, started_at, expected):
    r = run_result(school=School(school_id, "x"), started_at=started_at)
    name = report_basename(r)
    assert name == expected
    assert SAFE.match(name), name


def test_report_basename_is_safe_for_any_started_at():
    r = run_result(started_at="../../../tmp/x")
    assert SAFE.match(report_basename(r))


# ------------------------------------------------------------------ documented example

DOC = Path(__file__).resolve().parent.parent / "docs" / "result-schema.md"


def test_documented_example_loads_and_is_consistent(tmp_path):
    block = re.search(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S).group(1)
    r = load(_write(tmp_path, block))
    assert r.schema_version == SCHEMA_VERSION
    for s in r.measurements.latency:  # the summaries are the samples' summaries
        assert s.stats == summarize_rtts(s.rtts_ms)
    again = conclude(r, {"default": load_profile("default")})
    assert (again.status, again.causes) == (r.status, r.causes)


def test_documented_fields_are_the_model_fields():
    """Every dataclass field in models.py has a row in docs/result-schema.md, and no row is stale."""
    import giga_netcheck.core.models as models

    text = DOC.read_text(encoding="utf-8")
    sections = {m.group(1): m.group(2) for m in re.finditer(r"^##+ `?(\w+)`?[^\n]*\n(.*?)(?=^##|\Z)", text, re.S | re.M)}
    for name in models.__all__:
        cls = getattr(models, name)
        if not dataclasses.is_dataclass(cls):
            continue
        key = "RunResult" if cls is RunResult else name
        assert key in sections, f"no section for {name}"
        rows = set(re.findall(r"^\| `(\w+)` \|", sections[key], re.M))
        assert rows == {f.name for f in dataclasses.fields(cls)}, name


# ----------------------------------------------------------------------------- #17: the one safe loader

HOSTILE_JSON = {
    "nested-200k": ("[" * 200_000 + "]" * 200_000, "too-deep", "nested deeper than"),
    "nested-65": ('{"schema_version": 1, "x": ' + "[" * 64 + "]" * 64 + "}", "too-deep", "nested deeper than 64"),
    "int-5000-digits": ('{"schema_version": ' + "9" * 5000 + "}", "number-too-long", "longer than 20 digits"),
    "int-21-digits": ('{"schema_version": 1, "x": -' + "9" * 21 + "}", "number-too-long", "longer than 20 digits"),
    "float-1e400": ('{"schema_version": 1, "duration_s": 1e400}', "not-finite", "finite"),
    "float--1e400": ('{"schema_version": 1, "duration_s": -1e400}', "not-finite", "finite"),
    "nan": ('{"schema_version": 1, "duration_s": NaN}', "not-finite", "NaN"),
    "infinity": ('{"schema_version": 1, "duration_s": -Infinity}', "not-finite", "Infinity"),
    "lone-surrogate": ('{"schema_version": 1, "run_id": "a\\ud800b"}', "lone-surrogate", "\\ud800"),
    "lone-low-surrogate-key": ('{"schema_version": 1, "\\udc00": 1}', "lone-surrogate", "\\udc00"),
    "reversed-pair": ('{"schema_version": 1, "x": ["\\ude00\\ud83d"]}', "lone-surrogate", "surrogate"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_JSON))
def test_parse_document_refuses_hostile_json_with_its_reason(name):
    from giga_netcheck.core.results import DocumentError, parse_document

    text, code, fragment = HOSTILE_JSON[name]
    for data in (text, text.encode()):
        with pytest.raises(DocumentError) as info:
            parse_document(data, "f.json")
        assert info.value.code == code and fragment in info.value.reason, info.value.reason
        assert str(info.value).startswith("f.json: ") and "\n" not in str(info.value)


def test_parse_document_bounds_size_and_keeps_what_is_fine():
    from giga_netcheck.core.results import DocumentError, parse_document

    with pytest.raises(DocumentError) as info:
        parse_document(b"{}" + b" " * 100, "f.json", max_bytes=100)
    assert info.value.code == "too-large"
    ok = '{"a": ' + "[" * 63 + '"\\ud83d\\ude00", 12345678901234567890, -1.5e300' + "]" * 63 + "}"
    doc = parse_document(ok.encode(), "f.json")
    inner = doc["a"]
    for _ in range(62):
        inner = inner[0]
    assert inner == ["\U0001f600", 12345678901234567890, -1.5e300]


@pytest.mark.parametrize("name", sorted(HOSTILE_JSON))
def test_load_and_report_refuse_hostile_json_in_one_line(tmp_path, name):
    """#17: ``report`` crashed (a traceback) on the bodies that crashed the collector."""
    from typer.testing import CliRunner

    from giga_netcheck.cli.main import app

    text, _, fragment = HOSTILE_JSON[name]
    p = _write(tmp_path, text)
    assert fragment in _load_error(p)
    res = CliRunner().invoke(app, ["report", str(p), "--lang", "en"])
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and p.name in lines[0] and fragment in res.output.replace("\n", ""), res.output


def test_a_hostile_value_in_an_otherwise_good_result_is_refused(tmp_path):
    data = dumps(run_result())
    p = _write(tmp_path, data.replace('"duration_s": ', '"duration_s": 1e400, "was": ', 1))
    assert "finite" in _load_error(p)
    school = run_result().school.id
    p = _write(tmp_path, data.replace(f'"id": "{school}"', '"id": "\\udfff"', 1), "b.json")
    assert "surrogate" in _load_error(p)
