"""messages: en and ja carry the same keys and placeholders, and cover every id the code can emit."""

from __future__ import annotations

import dataclasses
import re
import string
from pathlib import Path

import pytest
import yaml

import giga_netcheck
from giga_netcheck.core import thresholds
from giga_netcheck.core.i18n import LANGS, Messages, catalogue, detect_lang
from giga_netcheck.core.models import Classroom, School, Target
from giga_netcheck.core.reference import national_share_2024
from giga_netcheck.core.thresholds import evaluate
from giga_netcheck.core.triage import CAUSE_SEGMENTS, RULES, triage
from tests.factories import (
    ALL_TARGETS,
    bandwidth,
    facts,
    family_path,
    healthy_measurements,
    latency,
    load_result,
    load_step,
    measurements,
    profile,
    proxy_report,
)
from tests.test_triage import FIRES, SEGMENTS

MESSAGES = Path(giga_netcheck.__file__).parent / "messages"


def raw(lang: str) -> dict:
    return yaml.safe_load((MESSAGES / f"{lang}.yaml").read_text(encoding="utf-8"))


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_catalogues_are_flat_string_maps():
    for lang in LANGS:
        data = raw(lang)
        assert isinstance(data, dict) and data
        bad = {k: v for k, v in data.items() if not isinstance(k, str) or not isinstance(v, str) or not v.strip()}
        assert not bad, f"{lang}: {bad}"


@pytest.mark.parametrize("lang, other", [("en", "ja"), ("ja", "en")])
def test_every_key_exists_in_both_languages(lang, other):
    missing = sorted(set(catalogue(lang)) - set(catalogue(other)))
    assert not missing, f"in {lang}.yaml but not {other}.yaml: {missing}"


def test_placeholders_match_between_languages():
    en, ja = catalogue("en"), catalogue("ja")
    differ = {k: (placeholders(en[k]), placeholders(ja[k])) for k in en.keys() & ja.keys() if placeholders(en[k]) != placeholders(ja[k])}
    assert not differ


@pytest.mark.parametrize("lang", LANGS)
def test_reference_figures_come_through_placeholders(lang):
    # the national share lives in the reference data file only; a catalogue line formats it
    figure = f"{national_share_2024() * 100:g}"
    assert [k for k, v in catalogue(lang).items() if figure in v] == []
    for key in ("board.chart.national_ref", "board.compliance_sentence"):
        assert "national" in placeholders(catalogue(lang)[key]), key


def test_no_duplicate_keys_in_the_files():
    # yaml.safe_load silently keeps the last of two equal keys; count the raw lines instead
    for lang in LANGS:
        keys = [
            line.split(":", 1)[0]
            for line in (MESSAGES / f"{lang}.yaml").read_text(encoding="utf-8").splitlines()
            if line and not line.startswith(("#", " "))
        ]
        assert len(keys) == len(set(keys)), f"{lang}: {sorted(k for k in keys if keys.count(k) > 1)}"


def test_japanese_catalogue_is_japanese():
    ja, en = catalogue("ja"), catalogue("en")
    translated = [k for k in ja if ja[k] != en.get(k)]
    # only strings that are the same in both (product names, 'DNS') may be untranslated
    assert len(translated) >= 0.9 * len(ja)


@pytest.mark.parametrize("cause", sorted(CAUSE_SEGMENTS))
@pytest.mark.parametrize("lang", LANGS)
def test_every_cause_has_a_name_and_advice(lang, cause):
    cat = catalogue(lang)
    assert f"cause.{cause}" in cat and f"advice.{cause}" in cat


@pytest.mark.parametrize("lang", LANGS)
def test_every_rule_cause_has_messages(lang):
    cat = catalogue(lang)
    for r in RULES:
        assert f"cause.{r.cause}" in cat and f"advice.{r.cause}" in cat, r.id


@pytest.mark.parametrize("lang", LANGS)
def test_every_segment_has_a_label(lang):
    cat = catalogue(lang)
    used = {s for s in CAUSE_SEGMENTS.values() if s} | SEGMENTS
    # and every segment a firing rule actually produced in the triage tests
    used |= {case.segment for case in FIRES if case.segment}
    assert sorted(s for s in used if f"segment.{s}" not in cat) == []


def _label_key(check_id: str) -> str:
    for prefix in ("path.reachable.", "path.server."):
        if check_id.startswith(prefix):
            return f"check.{prefix[:-1]}"
    return f"check.{check_id}"


def _every_check_id() -> set[str]:
    """Everything evaluate emits for a school with students and targets of each kind (with and without a URL)."""
    targets = ALL_TARGETS + (Target("internet-2", "internet", "198.51.100.7"),)
    m = healthy_measurements()
    m = measurements(m.latency + (latency("internet-2", 30.0),), m.bandwidth + (bandwidth("internet-2", 5.0),), m.dns)
    m = dataclasses.replace(
        m,
        load=load_result([load_step(20, 1.0), load_step(25, 0.5)], 30),
        families=(family_path("internet", "ipv4", 30.0), family_path("internet", "ipv6", 290.0)),
        proxy=proxy_report("internet", 330.0, 30.0),
    )
    checks = evaluate(facts(m, targets), School("s", "S", 300), (Classroom("a", 30, "p"), Classroom("b", 10, "p")), {"p": profile("p")})
    return {c.id for c in checks}


def _check_ids_in_source() -> set[str]:
    """Check ids spelled in thresholds.py: literals, and the f-string prefixes of per-target checks."""
    text = Path(thresholds.__file__).read_text(encoding="utf-8")
    literal = set(re.findall(r'"((?:school|classroom)\.[a-z0-9_.]+)"', text))
    per_target = {f"{p}.<target>" for p in re.findall(r'f"(path\.[a-z_]+)\.\{', text)}
    return literal | per_target


def test_the_scenario_emits_every_check_the_source_spells():
    # if this fails, thresholds gained a check the scenario in _every_check_id does not reach: extend it
    emitted = {_label_key(i) for i in _every_check_id()}
    spelled = {_label_key(i) for i in _check_ids_in_source()}
    assert spelled and spelled <= emitted


@pytest.mark.parametrize("lang", LANGS)
def test_every_check_spelled_in_thresholds_has_a_label(lang):
    cat = catalogue(lang)
    assert sorted(i for i in _check_ids_in_source() if _label_key(i) not in cat) == []


@pytest.mark.parametrize("lang", LANGS)
def test_every_check_has_a_label(lang):
    cat = catalogue(lang)
    assert sorted(i for i in _every_check_id() if _label_key(i) not in cat) == []


@pytest.mark.parametrize("lang", LANGS)
def test_status_words_and_probe_statuses_exist(lang):
    cat = catalogue(lang)
    for s in ("pass", "warn", "fail", "not-measured"):
        assert f"status_word.{s}" in cat
    for s in ("pass", "warn", "fail", "error"):
        assert f"status.{s}" in cat
    for s in ("ok", "partial", "failed", "skipped"):
        assert f"probe_status.{s}" in cat


def test_triage_advice_keys_resolve():
    seen = set()
    for case in FIRES:
        for c in triage(case.scenario().input()):
            seen.add(c.id)
            for lang in LANGS:
                assert Messages(lang).has(c.advice), c.advice
                assert Messages(lang).has(f"cause.{c.id}") and Messages(lang).has(f"segment.{c.segment}")
    assert seen == {r.cause for r in RULES}


# --------------------------------------------------------------------------- Messages


@pytest.mark.parametrize(
    "env, lang",
    [
        ({"LANG": "ja_JP.UTF-8"}, "ja"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LC_ALL": "ja_JP.UTF-8", "LANG": "en_US"}, "ja"),
        ({"LC_ALL": "C", "LANG": "ja_JP.UTF-8"}, "en"),
        ({"LC_MESSAGES": "ja_JP"}, "ja"),
    ],
)
def test_detect_lang(env, lang):
    assert detect_lang(env) == lang


def test_messages_format_and_fall_back():
    en, ja = Messages("en"), Messages("ja")
    assert en("report_written", path="r.md") == "Report written to r.md"
    assert ja("report_written", path="r.md") == "レポートを出力しました: r.md"
    assert en("no.such.key") == "no.such.key"
    assert Messages("fr").lang == "en"
