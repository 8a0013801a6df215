"""Renderers replayed over stored results: golden files byte for byte, plus the facts a reader relies on.

The stored results live in tests/golden/results/ (built by ``python -m tests.golden.make_results``);
the expected outputs in tests/golden/out/. Regenerate the outputs after an intended change with

    GNC_UPDATE_GOLDEN=1 python -m pytest tests/test_render.py

and read the diff before committing it. The structural tests below say *why* an output is right
(the verdict, the causes, the suspect segment in the diagram), so a failure names the broken
fact, not just a changed byte.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import json
import os
import re
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Optional

import pytest
from rich.console import Console

from giga_netcheck.core.i18n import LANGS, Messages, catalogue
from giga_netcheck.core.models import Cause, Evidence, ProbeRecord, RunResult, School, claims, to_dict
from giga_netcheck.core.results import load
from giga_netcheck.render import EXTENSIONS, csvdoc, html as html_render, registry, svg
from giga_netcheck.render.terminal import show

GOLDEN = Path(__file__).parent / "golden"
RESULTS = GOLDEN / "results"
OUT = GOLDEN / "out"
UPDATE = os.environ.get("GNC_UPDATE_GOLDEN") == "1"
FORMATS = ("md", "html", "csv", "json")
NAMES = sorted(p.stem for p in RESULTS.glob("*.json"))

# What each stored result is for, and what its report must say. These come from the stored
# files, so they change only when someone rebuilds the fixtures on purpose.
EXPECT = {
    "healthy": ("pass", [], []),
    "dns-failure": ("fail", ["dns-failure", "dns-slow"], ["dns"]),
    # bufferbloat at grade C outranks the shortfall that fills the queue (triage, 5d70f45)
    "uplink-capacity": ("fail", ["bufferbloat", "uplink-capacity"], ["uplink"]),
    "lan-capacity": ("fail", ["lan-capacity"], ["lan"]),
    "failed-probes": ("fail", ["lan-loss", "no-connectivity"], ["lan", "uplink"]),
    "nothing-measured": ("no-connectivity", ["no-connectivity"], ["uplink"]),
    "v1-schema": ("warn", [], []),
    # IPv4 (PPPoE) a tenth of IPv6 to the same server; a proxy chosen by PAC; a traceroute; an Ookla figure
    "proxy-ipv6-path": ("fail", ["ipv4-congestion"], ["uplink"]),
}


def result(name: str) -> RunResult:
    return load(RESULTS / f"{name}.json")


def golden_path(name: str, lang: str, fmt: str) -> Path:
    # JSON does not depend on the language: one file serves both
    return OUT / (f"{name}.json" if fmt == "json" else f"{name}.{lang}.{EXTENSIONS[fmt]}")


# --------------------------------------------------------------------------- golden files


def test_the_stored_results_cover_what_the_issue_asks_for():
    assert set(NAMES) == set(EXPECT), "a stored result without expectations (or the reverse): update EXPECT"
    v1 = json.loads((RESULTS / "v1-schema.json").read_text(encoding="utf-8"))
    assert v1["schema_version"] == 1


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", NAMES)
def test_golden(name, lang, fmt):
    text = registry()[fmt](result(name), Messages(lang))
    data = text.encode("utf-8")
    path = golden_path(name, lang, fmt)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"{path} missing: run GNC_UPDATE_GOLDEN=1 python -m pytest tests/test_render.py"
    expected = path.read_bytes()
    if data != expected:
        diff = difflib.unified_diff(expected.decode("utf-8").splitlines(), text.splitlines(), "golden", "rendered", lineterm="", n=1)
        shown = "\n".join(list(diff)[:40])
        pytest.fail(
            f"{fmt} ({lang}) of {name} differs from {path.name}; if the change is intended, "
            f"regenerate with GNC_UPDATE_GOLDEN=1 and review the diff:\n{shown}"
        )


def test_no_stray_golden_files():
    wanted = {golden_path(n, lang, f).name for n in NAMES for lang in LANGS for f in FORMATS}
    stray = sorted(p.name for p in OUT.iterdir() if p.name not in wanted) if OUT.exists() else []
    assert not stray, f"golden outputs for no stored result: {stray}"


# ---------------------------------------------------------------------------- HTML parsing


class Page(HTMLParser):
    """The few things the tests read from a rendered page."""

    VOID = {"meta", "link", "br", "img", "input", "hr", "rect", "line", "circle", "polyline", "path"}

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict]] = []
        self.elements: list[tuple[str, dict]] = []
        self.visible: list[str] = []
        """Text a reader sees that the renderer wrote (not recorded data, ids or CSS)."""
        self.all_text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.elements.append((tag, a))
        if tag not in self.VOID:
            self.stack.append((tag, a))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        self.all_text.append(data)
        hidden = any(t in ("style", "code", "title") or "raw" in a.get("class", "").split() for t, a in self.stack)
        if not hidden:
            self.visible.append(data)

    def find(self, tag: Optional[str] = None, **attrs: str) -> list[dict]:
        return [a for t, a in self.elements if (tag is None or t == tag) and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


def page(name: str, lang: str) -> tuple[str, Page]:
    text = html_render.render(result(name), Messages(lang))
    return text, Page(text)


# ------------------------------------------------------------------------ structural facts


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", sorted(EXPECT))
def test_html_states_the_verdict_causes_and_suspect_segments(name, lang):
    status, causes, suspects = EXPECT[name]
    m = Messages(lang)
    text, p = page(name, lang)
    verdict = p.find("section", id="verdict")
    assert verdict and verdict[0]["data-status"] == status, f"verdict should be {status}"
    assert m(f"status.{status}") in text
    named = [a["data-cause"] for t, a in p.elements if t == "li" and "data-cause" in a]
    assert named == causes, f"the verdict should name {causes} in order, named {named}"
    for c in causes:
        assert m(f"cause.{c}") in text, f"{c} is not named in {lang}"
    marked = sorted(a["data-segment"] for a in p.find(data_suspect="true") if a["data-segment"] in svg.PATH_ORDER + ("dns",))
    assert marked == sorted(suspects), f"the diagram should mark {suspects} as suspect, marks {marked}"
    flags = sorted(a["data-flag"] for _, a in p.elements if "data-flag" in a)
    assert flags == sorted(suspects), "each suspect segment carries a visible flag"
    if not causes:
        assert m("no_claim") in text


@pytest.mark.parametrize("name", ["dns-failure", "uplink-capacity", "lan-capacity", "failed-probes"])
def test_html_shows_the_evidence_and_rule_ids_of_each_claimed_cause(name):
    r = result(name)
    text, p = page(name, "en")
    for c in claims(r.causes):
        art = p.find("article", id=f"cause-{c.id}")
        assert art and art[0]["data-segment"] == c.segment
        block = text.split(f'id="cause-{c.id}"', 1)[1].split("</article>", 1)[0]
        for rule in c.rules:
            assert f"<code>{rule}</code>" in block, f"rule {rule} not shown beside {c.id}"
        for ev in c.evidence:
            assert f"<code>{ev.metric}</code>" in block
            if ev.check_id:
                assert f"<code>{ev.check_id}</code>" in block
        assert escape(Messages("en")(c.advice)) in block


def test_html_bandwidth_chart_has_the_mext_line_and_a_bar_per_classroom():
    r = result("uplink-capacity")
    text, p = page("uplink-capacity", "ja")
    mext = next(c for c in r.checks if c.id == "school.bandwidth.mext")
    chart = text.split('id="chart-bw_down"', 1)[1].split("</svg>", 1)[0]
    assert 'class="ref"' in chart and f"{mext.threshold:,.1f} Mbps" in chart
    assert "当面の推奨帯域" in chart
    measured = re.findall(r'class="bar-measured" data-value="([0-9.]+)"', chart)
    needed = re.findall(r'class="bar-needed" data-value="([0-9.]+)"', chart)
    rooms = [c for c in r.checks if c.id == "classroom.bandwidth.down"]
    assert [float(x) for x in measured] == [c.measured for c in rooms]
    assert [float(x) for x in needed] == [c.threshold for c in rooms]


def test_html_latency_chart_shows_idle_and_loaded_p50_per_hop():
    r = result("uplink-capacity")
    text, _ = page("uplink-capacity", "en")
    chart = text.split('id="chart-latency"', 1)[1].split("</svg>", 1)[0]
    for t in r.targets:
        idle = next(s for s in r.measurements.latency if s.target == t.name and s.phase == "idle")
        loaded = max(
            (s for s in r.measurements.latency if s.target == t.name and s.phase.startswith("download:")), key=lambda s: s.stats.p50_ms
        )
        assert f'class="bar-idle" data-value="{idle.stats.p50_ms}"' in chart
        assert f'class="bar-down" data-value="{loaded.stats.p50_ms}"' in chart
    assert "(grade C)" in chart  # the bufferbloat grade of a +142 ms rise


def test_html_dns_chart_has_cold_and_warm_per_resolver():
    r = result("dns-failure")
    text, _ = page("dns-failure", "ja")
    chart = text.split('id="chart-dns"', 1)[1].split("</svg>", 1)[0]
    servers = {d.server for d in r.measurements.dns}
    for s in servers:
        assert s in chart
    assert chart.count('class="bar-cold"') >= len(servers) and chart.count('class="bar-warm"') >= len(servers)
    assert "タイムアウト" in chart


def test_html_load_ramp_not_measured_and_charted_when_present():
    r = result("healthy")
    m = Messages("en")
    text = html_render.render(r, m)
    assert 'data-not-measured="load"' in text and m("chart.load.not_measured") in text
    from tests.factories import load_result, load_step

    # goodput levels off at 8 connections, where the devices stop meeting their activity
    ramp = load_result([load_step(n, 1.0 if n <= 8 else 0.5, goodput_mbps=min(n * 60.0, 420.0)) for n in (1, 2, 4, 8, 16, 32)])
    r2 = dataclasses.replace(r, measurements=dataclasses.replace(r.measurements, load=ramp))
    text2 = html_render.render(r2, m)
    assert 'id="chart-load"' in text2 and 'data-knee="1"' in text2
    assert 'data-not-measured="load"' not in text2
    assert m("chart.knee", connections="8", value="420.0 Mbps") in text2


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("lang", LANGS)
def test_html_is_self_contained(name, lang):
    text, p = page(name, lang)
    assert not p.find("script") and not p.find("link") and not p.find("img") and not p.find("iframe")
    assert not re.search(r"\b(src|href|action|srcset|poster)\s*=", text), "no attribute may point anywhere"
    assert "@import" not in text and "url(" not in text
    csp = p.find("meta", http_equiv="Content-Security-Policy")
    assert csp and "default-src 'none'" in csp[0]["content"]
    assert p.find("html")[0]["lang"] == lang
    style = text.split("<style>", 1)[1].split("</style>", 1)[0]
    for font in ("Hiragino", "Yu Gothic", "Meiryo", "Noto Sans CJK JP"):
        assert font in style
    assert "@page{size:A4" in style and "@media print" in style


def test_html_escapes_every_value():
    r = result("failed-probes")
    evil = "<script>alert(\"x\")</script> & 'q'"
    r = dataclasses.replace(
        r,
        school=School("x<y", evil, 10),
        not_measured=(f"center: {evil}",),
        probes=r.probes + (ProbeRecord("latency", "failed", f"<img src=x onerror=alert(1)> {evil}"),),
        causes=(Cause("dns-slow", "dns", 0.9, (Evidence("m<x>", 1.0, "ms", "<t>", "<c>", evil),), "advice.dns-slow", ("r<1>",)),),
    )
    text = html_render.render(r, Messages("ja"))
    assert "<script" not in text and "<img" not in text and "onerror=alert" not in text.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;q&#x27;" in text
    assert "x&lt;y" in text and "r&lt;1&gt;" in text


# --------------------------------------------------------------------- words outside catalogues

# English words the HTML or CSV renderers would show if they wrote UI text themselves instead of
# asking the catalogue. Recorded data (probe errors, threshold sources) is excluded: it is
# marked class="raw", ids are in <code>.
ENGLISH_UI = (
    "verdict",
    "likely",
    "cause",
    "causes",
    "evidence",
    "measured",
    "needed",
    "threshold",
    "classroom",
    "bandwidth",
    "latency",
    "download",
    "upload",
    "idle",
    "loaded",
    "resolver",
    "segment",
    "confidence",
    "advice",
    "next step",
    "not measured",
    "status",
    "pass",
    "warn",
    "fail",
    "failed",
    "error",
    "checks",
    "probe",
    "probes",
    "reason",
    "metric",
    "value",
    "unit",
    "target",
    "note",
    "rules",
    "source",
    "estimate",
    "suspect",
    "gateway",
    "uplink",
    "center",
    "centre",
    "internet",
    "device",
    "devices",
    "host",
    "interface",
    "proxy",
    "yes",
    "none",
    "grade",
    "timeouts",
    "timed out",
    "cold",
    "warm",
    "cached",
    "knee",
    "connections",
    "school",
    "recommended",
    "started",
    "finished",
    "duration",
    "version",
    "site file",
    "no answer",
    "run details",
    "chart",
    "time",
    "mode",
    "full",
    "quick",
    "stub",
    "local",
)


@pytest.mark.parametrize("name", NAMES)
def test_japanese_html_has_no_english_ui_words(name):
    _, p = page(name, "ja")
    visible = " ".join(p.visible)
    found = sorted({w for w in ENGLISH_UI if re.search(rf"(?<![A-Za-z]){re.escape(w)}(?![A-Za-z])", visible, re.IGNORECASE)})
    assert not found, f"English UI words in the Japanese report (write them in messages/*.yaml): {found}"


def test_the_english_ui_word_check_can_fail():
    text = html_render.render(result("healthy"), Messages("ja")).replace("</main>", "<p>Verdict: 3 checks failed</p></main>")
    visible = " ".join(Page(text).visible)
    assert re.search(r"(?<![A-Za-z])verdict(?![A-Za-z])", visible, re.IGNORECASE)


def test_japanese_csv_headers_and_words_come_from_the_catalogue():
    text = csvdoc.render(result("dns-failure"), Messages("ja"))
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == [catalogue("ja")[f"csv.{c}"] for c in csvdoc.COLUMNS]
    statuses = {row[csvdoc.COLUMNS.index("status")] for row in rows[1:]}
    assert statuses <= {catalogue("ja")[f"status_word.{s}"] for s in ("pass", "warn", "fail", "not-measured")}
    labels = [row[csvdoc.COLUMNS.index("check_label")] for row in rows[1:]]
    assert all(not re.search(r"[A-Za-z]{4,}", re.sub(r"\(.*?\)|RTT|DNS", "", lab)) for lab in labels), labels


@pytest.mark.parametrize("lang", LANGS)
def test_every_message_key_the_renderers_use_exists_in_both_catalogues(lang):
    # tests/test_messages.py checks that en and ja carry the same keys; this checks that the keys
    # html.py and csvdoc.py ask for exist at all (a typo would print the key itself).
    cat = catalogue(lang)
    src = "".join((Path(html_render.__file__).parent / f).read_text(encoding="utf-8") for f in ("html.py", "csvdoc.py"))
    keys = set(re.findall(r'm\(\s*f?"([a-z_]+\.[a-z0-9_.\-]+)"', src)) | {f"csv.{c}" for c in csvdoc.COLUMNS}
    keys |= set(re.findall(r'"((?:col|meta|label|chart|diagram|heading|html|value|not_measured)\.[a-z0-9_.\-]+)"', src))
    assert keys, "the scan found no keys: the pattern is broken"
    missing = sorted(k for k in keys if "{" not in k and k not in cat)
    assert not missing, f"{lang}.yaml lacks {missing}"


# ---------------------------------------------------------------------------------- CSV


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", NAMES)
def test_csv_is_excel_friendly_one_row_per_check(name, lang):
    r = result(name)
    data = csvdoc.render(r, Messages(lang)).encode("utf-8")
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM (Excel on Japanese Windows)"
    assert data.count(b"\r\n") == data.count(b"\n"), "CRLF line endings only"
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert len(rows) == 1 + len(r.checks)
    assert rows[0] == [Messages(lang)(f"csv.{c}") for c in csvdoc.COLUMNS]
    col = {c: i for i, c in enumerate(csvdoc.COLUMNS)}
    for row, c in zip(rows[1:], r.checks):
        assert row[col["check_id"]] == c.id and row[col["school_id"]] == r.school.id and row[col["run_id"]] == r.run_id
        assert row[col["measured"]] == (
            "" if c.measured is None else f"{c.measured:g}" if c.measured != int(c.measured) else str(int(c.measured))
        )
        assert row[col["unit"]] == c.unit and row[col["classroom"]] == (c.classroom or "")


def test_csv_numbers_are_plain():
    assert csvdoc._number(1234567.0) == "1234567" and csvdoc._number(30.625) == "30.625" and csvdoc._number(None) == ""


# --------------------------------------------------------------------- JSON, Markdown, terminal


@pytest.mark.parametrize("name", NAMES)
def test_json_is_the_result_document_in_any_language(name):
    r = result(name)
    en, ja = registry()["json"](r, Messages("en")), registry()["json"](r, Messages("ja"))
    assert en == ja and json.loads(en) == to_dict(r)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", NAMES)
def test_markdown_states_verdict_and_causes(name, lang):
    r, m = result(name), Messages(lang)
    text = registry()["md"](r, m)
    assert m(f"status.{r.status}") in text
    for c in claims(r.causes):
        assert m(f"cause.{c.id}") in text and c.id in text


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", NAMES)
def test_terminal_summary_still_works(name, lang):
    r, m = result(name), Messages(lang)
    buf = io.StringIO()
    show(Console(file=buf, width=120, color_system=None, force_terminal=False), r, m)
    out = buf.getvalue()
    assert m(f"status.{r.status}") in out
    for c in claims(r.causes):
        assert m(f"cause.{c.id}") in out


def test_registry_and_extensions_agree():
    assert set(registry()) == set(EXTENSIONS) == {"json", "md", "html", "csv"}


# -------------------------------------------------------------------------- SVG helpers


def test_nice_max_and_clip():
    assert [svg.nice_max(x) for x in (0, 0.7, 9, 11, 460, 1000, 1100)] == [1.0, 1.0, 10.0, 20.0, 500.0, 1000.0, 2000.0]
    assert svg.clip("speed.edu-net.example.jp", 11, 92).endswith("…")
    assert svg.clip("10.0.0.1", 11, 92) == "10.0.0.1"


def test_path_diagram_marks_only_the_suspects():
    nodes = [svg.Node(s, s.upper()) for s in svg.PATH_ORDER + ("dns",)]
    out = svg.path_diagram(nodes, ["center", "dns"], suspect_label="S")
    p = Page(out)
    assert sorted(a["data-segment"] for a in p.find(data_suspect="true")) == ["center", "center-upstream", "dns"]
    assert sorted(a["data-segment"] for a in p.find(data_suspect="false")) == ["device", "gateway", "internet", "lan", "uplink"]
