"""No human-facing English outside the catalogues: recorded sentences carry message keys.

Two nets, each of which can fail (the ``*_can_fail`` tests prove it):

1. A source scan (AST) of the code that writes sentences into a result -- triage.py, runner.py,
   facts.py, thresholds.py, scheduled.py, history.py, cli/probe.py, probes/*.py -- for a string literal or f-string passed where a reader
   will see it: an evidence ``note``, a probe ``reason``, a probe's ``check()`` answer, a
   ``not_measured`` line, a check's ``source`` or ``detail``. Those must be
   ``i18n.Text(key, **values)``.
2. Rendered reports in Japanese (Markdown, HTML, terminal) of many results -- the stored ones,
   the same re-judged with today's rules, every triage rule firing, and real runs on loopback
   whose probes fail or are skipped -- must contain no word of the English catalogue's
   sentences once the data values (names, addresses, error texts the OS gave, values of message
   keys) and ids in code spans are taken out.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterable

import pytest
from rich.console import Console

import giga_netcheck
from giga_netcheck.config.profiles import load_profile
from giga_netcheck.config.site import load_site
from giga_netcheck.core.i18n import Messages, Text, catalogue
from giga_netcheck.core.models import Evidence, Measurements, ProbeRecord, RunResult, to_dict
from giga_netcheck.core.results import load
from giga_netcheck.core.triage import triage
from giga_netcheck.measure.runner import conclude, run
from giga_netcheck.render import html as html_render, markdown
from giga_netcheck.render.common import legacy_key, not_measured_lines, note_text, reason_text
from giga_netcheck.render.terminal import show
from tests.conftest import loopback_site
from tests.factories import run_result
from tests.fakes import FakeServer
from tests.lab.dnsserver import DnsServer
from tests.test_triage import FIRES

PACKAGE = Path(giga_netcheck.__file__).parent
GOLDEN = Path(__file__).parent / "golden" / "results"

# ------------------------------------------------------------------------------ 1. source scan

SCANNED = [
    "core/triage.py",
    "measure/runner.py",
    "core/facts.py",
    "core/thresholds.py",
    "monitor/scheduled.py",
    "monitor/history.py",
    "cli/probe.py",
    *sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "measure" / "probes").glob("*.py")),
]
"""Modules that write sentences a report shows (evidence notes, probe reasons, not-measured lines)."""

SENTENCE_KEYWORDS = {"note", "reason", "detail", "source"}
"""Keyword arguments whose value a reader sees (``Evidence(note=...)``, ``ProbeOutput(reason=...)``,
``Check(source=..., detail=...)``)."""
POSITIONAL = {"_ev": 5, "Evidence": 5, "ProbeRecord": 2, "SchoolNeed": 4}
"""Callables whose n-th positional argument is a note or a reason."""


def _literal_parts(node: ast.AST) -> Iterable[ast.AST]:
    """The string literals and f-strings that would end up in the value of ``node``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.search(r"[A-Za-z]{2}", node.value):
        yield node
    elif isinstance(node, ast.JoinedStr):
        yield node
    elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        yield from _literal_parts(node.left)
        yield from _literal_parts(node.right)
    elif isinstance(node, ast.BoolOp):
        for v in node.values:
            yield from _literal_parts(v)
    elif isinstance(node, ast.IfExp):
        yield from _literal_parts(node.body)
        yield from _literal_parts(node.orelse)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join":
        yield from _literal_parts(node.func.value) if not isinstance(node.func.value, ast.Constant) else ()
        for a in node.args:  # "; ".join(f"..." for ...) builds a sentence from pieces
            if isinstance(a, (ast.GeneratorExp, ast.ListComp)):
                yield from _literal_parts(a.elt)


def literal_sentences(source: str, filename: str = "<src>") -> list[str]:
    """``file:line: code`` for every literal written where a report shows it."""
    tree = ast.parse(source, filename)
    found: list[ast.AST] = []

    def target_names(t: ast.AST) -> list[str]:
        if isinstance(t, ast.Tuple):
            return [n for e in t.elts for n in target_names(e)]
        if isinstance(t, ast.Attribute):
            return [t.attr]
        if isinstance(t, ast.Name):
            return [t.id]
        return []

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            for kw in node.keywords:
                if kw.arg in SENTENCE_KEYWORDS:
                    found += _literal_parts(kw.value)
            if name in POSITIONAL and len(node.args) > POSITIONAL[name]:
                found += _literal_parts(node.args[POSITIONAL[name]])
            if name == "append" and isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "not_measured":
                found += [p for a in node.args for p in _literal_parts(a)]
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                names = target_names(t)
                if isinstance(t, ast.Tuple) and isinstance(node.value, ast.Tuple) and len(t.elts) == len(node.value.elts):
                    for el, val in zip(t.elts, node.value.elts):
                        if set(target_names(el)) & {"reason", "note", "why"}:
                            found += _literal_parts(val)
                elif set(names) & {"reason", "note", "why"}:
                    found += _literal_parts(node.value)
        elif isinstance(node, ast.FunctionDef) and node.name in ("check", "choose_target", "make_plan"):
            for sub in ast.walk(node):  # "why this probe cannot run" answers
                if isinstance(sub, ast.Return) and sub.value is not None:
                    values = sub.value.elts if isinstance(sub.value, ast.Tuple) else [sub.value]
                    for v in values:
                        found += _literal_parts(v)
    lines = source.splitlines()
    return sorted({f"{filename}:{n.lineno}: {lines[n.lineno - 1].strip()}" for n in found})


KNOWN_GAPS: set[str] = set()
"""``file: code`` of literals left on purpose (none today); say why beside each one."""


def test_no_sentence_literals_where_reports_show_them():
    hits = []
    for rel in SCANNED:
        path = PACKAGE / rel
        hits += [h for h in literal_sentences(path.read_text(encoding="utf-8"), rel) if re.sub(r":\d+:", ":", h, count=1) not in KNOWN_GAPS]
    assert not hits, (
        "English written where a report shows it; use i18n.Text('<key>', **values) and add the key to "
        "messages/en.yaml and ja.yaml:\n" + "\n".join(hits)
    )


@pytest.mark.parametrize(
    "snippet",
    [
        'ev = _ev("loss_pct", 1.0, "%", note="loss on the LAN")',
        'ev = _ev("loss_pct", 1.0, "%", "gateway", None, f"{n} probes lost")',
        'out.status, out.reason, out.reason_kind = "failed", "no device could be judged", "no-data"',
        'out.reason = "; ".join(f"{x.target}: {x.error or \'no answer\'}" for x in failed)',
        'not_measured.append(f"{probe.name}: {reason}")',
        'ProbeRecord("load", "skipped", "interrupted before it started")',
        'def check(self, ctx):\n    return "disabled in the site file"',
        'checks.append(Check(id="x", source="a configured target must answer", detail=f"{t.host} by {s.method}"))',
        'return [SchoolNeed(base, "download", need, est, f"{school.students} students", cite)]',
        'out.reason = s.error or "no bytes moved"',
    ],
)
def test_the_source_scan_can_fail(snippet):
    assert literal_sentences(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        'ev = _ev("loss_pct", 1.0, "%", note=Text("evidence.dns_servfail"))',
        'ev = _ev("dns_p50_ms", 1.0, "ms", d.server, "classroom.dns.cold_p50", d.name)',
        'out.status, out.reason, out.reason_kind = "partial", Text("reason.interrupted"), "interrupted"',
        'out.reason = failed[0].error or Text("reason.no_bytes")',
        'not_measured.append(Text("not_measured.no_gateway").about("gateway"))',
    ],
)
def test_the_source_scan_lets_keys_and_data_through(snippet):
    assert not literal_sentences(snippet), snippet


def test_every_text_key_in_the_source_exists_in_both_catalogues():
    keys = set()
    for path in list(PACKAGE.rglob("*.py")) + [Path(__file__).parent / "golden" / "make_results.py"]:
        keys |= set(re.findall(r'\bText\(\s*"([a-z_]+\.[a-z0-9_.\-]+)"', path.read_text(encoding="utf-8")))
        for a, b in re.findall(
            r'\bText\(\s*"([a-z_]+\.[a-z0-9_.\-]+)"\s+if .*? else\s+"([a-z_]+\.[a-z0-9_.\-]+)"', path.read_text(encoding="utf-8")
        ):
            keys |= {a, b}
    assert len(keys) > 20, "the scan found too few keys: the pattern is broken"
    for lang in ("en", "ja"):
        missing = sorted(k for k in keys if k not in catalogue(lang))
        assert not missing, f"{lang}.yaml lacks {missing}"


# --------------------------------------------------------------------------- Text and models


def test_a_text_is_its_english_sentence_and_the_models_keep_its_key():
    t = Text("evidence.gateway_loss_count", lost=3, sent=60)
    assert t == "3 of 60 probes, idle and under load" and isinstance(t, str)
    e = Evidence("loss_pct", 5.0, "%", "gateway", note=t)
    assert (e.note_key, e.note_args) == ("evidence.gateway_loss_count", {"lost": 3, "sent": 60})
    assert to_dict(e)["note"] == "3 of 60 probes, idle and under load" and type(to_dict(e)["note"]) is str
    assert joined(note_text(Messages("ja"), e)[0]) == "60 回中 3 回消失 (アイドル時と負荷時の合計)"
    p = ProbeRecord("dns", "skipped", Text("reason.no_resolver"))
    assert p.reason_key == "reason.no_resolver" and joined(reason_text(Messages("ja"), p)[0]).startswith("問い合わせる DNS サーバー")
    line = Text("not_measured.no_gateway").about("gateway")
    assert line == "gateway: no default gateway detected"
    r = run_result(not_measured=(line, "dns: 2001:db8::53 did not answer"), not_measured_messages=())
    assert [n.key for n in r.not_measured_messages] == ["not_measured.no_gateway"]
    lines = not_measured_lines(Messages("ja"), r)
    assert (lines[0].subject, lines[0].text, lines[0].translated) == ("ゲートウェイ", "デフォルトゲートウェイを検出できませんでした", True)
    assert (lines[1].subject, lines[1].text, lines[1].translated) == ("名前解決 (DNS)", "2001:db8::53 did not answer", False)


def test_old_results_without_keys_still_render_and_known_sentences_are_translated():
    r = load(GOLDEN / "v1-schema.json")  # written before results carried keys
    assert not r.not_measured_messages
    lines = not_measured_lines(Messages("ja"), r)
    assert lines[0].translated and lines[0].subject == "センター" and "切り分けられません" in lines[0].text
    assert legacy_key("no resolver to ask (none configured and none detected)") == "reason.no_resolver"
    assert legacy_key("no answer to 20 ICMP echo requests") is None


def test_values_that_do_not_fit_the_catalogue_fall_back_to_the_recorded_text():
    e = Evidence("m", 1.0, "", note="recorded sentence", note_key="evidence.gateway_loss_count", note_args={"lost": 1})
    assert note_text(Messages("ja"), e) == ([("recorded sentence", True)], False)
    e = Evidence("m", 1.0, "", note="from a newer version", note_key="evidence.not_yet_known")
    assert note_text(Messages("ja"), e) == ([("from a newer version", True)], False)


# ------------------------------------------------------------------------ 2. rendered reports


def _english_words() -> frozenset[str]:
    """Words of the English catalogue's sentences that the Japanese catalogue never uses."""
    en, ja = catalogue("en"), catalogue("ja")

    def words(text: str) -> set[str]:
        text = re.sub(r"\{[^}]*\}|`[^`]*`", " ", text)
        return {w.lower() for w in re.findall(r"(?<![A-Za-z0-9_\-.])[A-Za-z]{3,}(?![A-Za-z0-9_\-])", text)}

    used_in_ja = set().union(*({w.lower() for w in re.findall(r"[A-Za-z]{3,}", re.sub(r"\{[^}]*\}", " ", v))} for v in ja.values()))
    return frozenset(set().union(*(words(v) for k, v in en.items() if ja.get(k) != v)) - used_in_ja)


ENGLISH = _english_words()
PROSE = {"note", "reason", "not_measured", "text"}
"""Result fields that hold English sentences (with their keys beside them): not data."""
ENUMS = {
    "phase",
    "direction",
    "kind",
    "status",
    "mode",
    "method",
    "role",
    "engine",
    "better",
    "unit",
    "metric",
    "reason_kind",
    "error_kind",
    "segment",
    "advice",
    "key",
    "subject",
    "note_key",
    "reason_key",
    "decided_by",
    "pac_status",
}
"""Fields whose stable words a report must translate (or show as ids in code), never print as words."""


def data_values(r: RunResult) -> list[str]:
    """Every string the result holds as data (names, addresses, recorded errors, values of keys), longest first."""
    out: set[str] = set()

    def walk(v: Any, key: str = "") -> None:
        if key in ("note_args", "reason_args", "source_args", "detail_args", "args") and isinstance(v, dict):
            for x in v.values():  # the values of a message key are data, whatever their name
                if isinstance(x, dict) and set(x) == {"key", "args"}:
                    walk(x["args"], "args")  # a message inside a message: its values are data, its words are not
                elif len(str(x)) >= 2:
                    out.add(str(x))
        elif isinstance(v, dict):
            for k, x in v.items():
                if k in PROSE or k in ENUMS:
                    continue
                walk(x, k)
        elif isinstance(v, list):
            for x in v:
                walk(x, key)
        elif isinstance(v, str) and len(v) >= 2:
            out.add(v)

    walk(to_dict(r))
    return sorted(out, key=len, reverse=True)


def english_left(text: str, r: RunResult) -> list[str]:
    """English catalogue words in ``text`` once code spans and the result's data values are taken out."""
    text = re.sub(r"`[^`\n]*`", " ", text)
    for value in data_values(r):
        text = text.replace(value, " ")
    text = re.sub(r"\S+…", " ", text)  # a value clipped to fit a chart label
    hits = []
    for m in re.finditer(r"(?<![A-Za-z0-9_\-.])[A-Za-z]{3,}(?![A-Za-z0-9_\-])", text):
        if m.group(0).lower() in ENGLISH:
            hits.append(f"{m.group(0)!r} in …{text[max(0, m.start() - 50) : m.end() + 30]!r}…")
    return hits


class _Visible(HTMLParser):
    """The text of a page, code and styles left out (the raw spans stay: they must hold data only)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.out: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag not in ("meta", "br", "rect", "line", "circle", "polyline", "path"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.stack:
            del self.stack[len(self.stack) - 1 - self.stack[::-1].index(tag) :]

    def handle_data(self, data):
        if not ({"style", "code"} & set(self.stack)):
            self.out.append(data)


def rendered_ja(r: RunResult) -> dict[str, str]:
    m = Messages("ja")
    buf = io.StringIO()
    show(Console(file=buf, width=200, color_system=None, force_terminal=False), r, m)
    return {"md": markdown.render(r, m), "html": " \n ".join(_Visible(html_render.render(r, m)).out), "terminal": buf.getvalue()}


def assert_japanese(r: RunResult, label: str) -> None:
    problems = [f"{label} ({fmt}): {hit}" for fmt, text in rendered_ja(r).items() for hit in english_left(text, r)]
    assert not problems, "English outside the catalogues in a Japanese report:\n" + "\n".join(problems[:30])


STORED = sorted(p.stem for p in GOLDEN.glob("*.json"))
PROFILES = {n: load_profile(n) for n in ("default", "video-lesson")}


@pytest.mark.parametrize("name", STORED)
def test_stored_results_read_in_japanese(name):
    assert_japanese(load(GOLDEN / f"{name}.json"), name)


@pytest.mark.parametrize("name", STORED)
def test_stored_results_judged_by_todays_rules_read_in_japanese(name):
    r = load(GOLDEN / f"{name}.json")
    assert_japanese(conclude(r, {p: PROFILES.get(p) or load_profile(p) for p in {r.profile} | {c.profile for c in r.classrooms}}), name)


@pytest.mark.parametrize("case", FIRES, ids=[f"{c.rule}:{c.id}" for c in FIRES])
def test_every_triage_rule_reads_in_japanese(case):
    inp = case.scenario().input()
    f = inp.facts
    latency = tuple(f.idle.values()) + tuple(s for ss in f.loaded.values() for s in ss)
    m = Measurements(bandwidth=f.bandwidth, latency=latency, dns=f.dns, load=f.load)
    causes = tuple(triage(inp))
    assert causes or case.segment is None
    probes = (
        ProbeRecord("latency", "ok", seconds=2.5),
        ProbeRecord("dns", "partial", Text("reason.some_resolvers_failed", failures="10.0.0.53: Timeout"), "timeout", 6.0),
    )
    assert_japanese(run_result(m, causes=causes, targets=f.targets, probes=probes), case.id or case.rule)


def test_the_japanese_check_can_fail():
    r = load(GOLDEN / "failed-probes.json")
    bad = dataclasses.replace(r, probes=r.probes + (ProbeRecord("latency", "failed", "the gateway did not answer"),))
    with pytest.raises(AssertionError, match="answer"):
        assert_japanese(bad, "keyless reason")
    cause = dataclasses.replace(
        r.causes[0], evidence=r.causes[0].evidence + (Evidence("loss_pct", 3.0, "%", note="loss on the school LAN"),)
    )
    with pytest.raises(AssertionError, match="loss"):
        assert_japanese(dataclasses.replace(r, causes=(cause,) + r.causes[1:]), "keyless note")
    with pytest.raises(AssertionError, match="skipped"):
        assert_japanese(dataclasses.replace(r, not_measured=r.not_measured + ("load: skipped because the ramp was off",)), "keyless line")


def test_real_failed_and_skipped_probes_read_in_japanese(write_site, tmp_path):
    # a server that answers garbage, a resolver that never answers, a gateway without an echo
    with DnsServer(host="127.0.0.1", port=0, timeout_rate=1.0) as dead, FakeServer("garbage") as junk:
        raw = loopback_site(junk.url, dead.port)
        raw["probes"]["latency"]["method"] = "udp-echo"
        r = run(load_site(write_site(raw)), quick=True, host={"resolvers": []})
    assert any(p.status in ("failed", "skipped") and p.reason_key for p in r.probes), r.probes
    assert r.not_measured_messages
    assert_japanese(r, "failed probes")
    # no measurement server at all, no names to resolve, the load probe on
    raw = loopback_site(
        "http://127.0.0.1:9", None, targets={"gateway": "127.0.0.1"}, dns={"resolvers": ["system"], "names": []}, load={"enabled": True}
    )
    raw["probes"]["latency"]["method"] = "tcp-connect"
    r = run(load_site(write_site(raw, "site2.yaml")), quick=False, host={"resolvers": []})
    skipped = {p.probe: p.reason_key for p in r.probes if p.status == "skipped"}
    assert skipped.get("bandwidth") == "reason.no_server" and skipped.get("dns") == "reason.no_names", skipped
    assert_japanese(r, "skipped probes")


def joined(pieces: list[tuple[str, bool]]) -> str:
    return "".join(t for t, _ in pieces)


def test_udp_echo_without_a_server_says_so_by_key(server):
    from urllib.parse import urlsplit

    from giga_netcheck.measure.probes.rtt import open_method

    method, why = open_method(["udp-echo", "tcp-connect"], "127.0.0.1", udp_port=None, tcp_port=urlsplit(server.url).port)
    method.close()
    assert method.name == "tcp-connect"
    assert why == ["udp-echo: target runs no measurement server"] and why[0].key == "reason.udp_echo_no_server"


def test_probe_load_prints_a_skipped_reason_in_the_readers_language():
    from giga_netcheck.cli.probe import _said

    ja = Messages("ja")
    said = ja("load.skipped", reason=_said(ja, Text("reason.no_server")))
    assert said == ja("load.skipped", reason=ja("reason.no_server")) and "measurement server" not in said
    assert _said(ja, "connection refused") == "connection refused" and _said(ja, None) == "?"


def test_light_plan_not_measured_line_has_a_key():
    t = Text("not_measured.light_plan", mb=3.2).about("bandwidth")
    assert t.startswith("bandwidth: light plan (transfers capped at 3.2 MB") and t.subject == "bandwidth"
    assert Messages("ja").has("not_measured.light_plan")
