"""batch: many results -> Parquet layout -> SQL on DuckDB -> CSV and the dashboard.

Generated results (bench.board_data, varied from the golden documents) mixed with broken files:
the batch reads what it can, says what it skipped and why, and the SQL figures agree with the
same figures computed directly in Python.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import statistics

import pyarrow.dataset as ds
import pytest
import yaml
from typer.testing import CliRunner

from bench.board_data import make_doc, make_schools, school_times, templates
from giga_netcheck.board import batch
from giga_netcheck.cli.main import app
from giga_netcheck.core.i18n import Messages
from giga_netcheck.core.models import RunResult, from_dict
from giga_netcheck.core.reference import national_share_2024
from giga_netcheck.core.results import write_atomic
from giga_netcheck.monitor.history import append, record_of
from giga_netcheck.render import dashboard as board_html

runner = CliRunner()

BROKEN = {
    "truncated.json": lambda good: good[: len(good) // 2],
    "empty.json": lambda good: "",
    "array.json": lambda good: "[1, 2, 3]",
    "not-a-result.json": lambda good: '{"hello": "world"}',
    "newer.json": lambda good: json.dumps(dict(json.loads(good), schema_version=99)),
    "bad-shape.json": lambda good: json.dumps(dict(json.loads(good), measurements=[1, 2])),
    "garbage.jsonl": lambda good: "\x00\x01 not json\n{also not}\n",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """12 schools in 3 boards over 3 weeks: result files in nested folders, one history file, broken files."""
    root = tmp_path_factory.mktemp("corpus")
    tpls = templates()
    schools = make_schools(12, boards=3, seed=5)
    rng = random.Random(1)
    docs = []
    n = 0
    for s in schools[:9]:  # these upload whole results
        for when in school_times(dt.date(2026, 6, 1), 15, 2, rng):
            n += 1
            doc = make_doc(tpls, s, when, n, rng)
            docs.append(doc)
            write_atomic(root / "collected" / s.board / s.id / f"{doc['run_id']}.json", json.dumps(doc, ensure_ascii=False))
    hist = root / "history" / "history-mixed.jsonl"
    hist_docs = []
    for s in schools[9:]:  # these only keep a history (scheduled runs); context comes from their site files
        for when in school_times(dt.date(2026, 6, 1), 15, 3, rng):
            n += 1
            doc = make_doc(tpls, s, when, n, rng)
            hist_docs.append(doc)
            append(hist, record_of(from_dict(RunResult, doc)))
    with hist.open("a", encoding="utf-8") as fh:
        fh.write("{torn line\n")
    sites = []
    for s in schools[9:]:
        p = root / "sites" / f"{s.id}.yaml"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(
            yaml.safe_dump({"school": {"id": s.id, "name": s.name, "students": s.students}, "context": s.context}, allow_unicode=True),
            encoding="utf-8",
        )
        sites.append(p)
    good = json.dumps(docs[0], ensure_ascii=False)
    for name, make in BROKEN.items():
        (root / "broken").mkdir(exist_ok=True)
        (root / "broken" / name).write_text(make(good), encoding="utf-8")
    # the same run as a result file and as a history line is counted once
    append(root / "history" / "dup.jsonl", record_of(from_dict(RunResult, docs[0])))
    return {"root": root, "docs": docs, "hist_docs": hist_docs, "schools": schools, "sites": sites}


def test_batch_command_reads_what_it_can_and_says_what_it_skipped(corpus, tmp_path):
    root = corpus["root"]
    out = tmp_path / "board"
    args = [
        "batch",
        str(root / "collected"),
        str(root / "history" / "*.jsonl"),
        str(root / "broken"),
        str(root / "missing.json"),
        "--out",
        str(out),
        "--lang",
        "en",
    ]
    for s in corpus["sites"]:
        args += ["--site", str(s)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    n_runs = len(corpus["docs"]) + len(corpus["hist_docs"])
    assert f"Read {n_runs} runs" in res.output
    assert "1 duplicate runs" in res.output and "1 bad history lines" in res.output
    for name in BROKEN:
        line = next(line for line in res.output.splitlines() if name in line)
        assert "skipped" in line and ": " in line
    assert "missing.json: no such file or folder" in res.output
    assert f"{len(BROKEN) + 1} files skipped" in res.output

    for name in batch.QUERIES:
        text = (out / f"{name}.csv").read_bytes()
        assert text.startswith(b"\xef\xbb\xbf") and b"\r\n" in text  # UTF-8 BOM, CRLF: Excel-friendly
    ranking = (out / "board_ranking.csv").read_text(encoding="utf-8-sig")
    assert "第1小学校" in ranking
    html = (out / "board.html").read_text(encoding="utf-8")
    assert html.count('<section class="board"') == 3
    # parquet layout: partitioned by board and date (month by default), every run once
    runs = ds.dataset(out / "parquet" / "runs", format="parquet", partitioning="hive")
    assert runs.count_rows() == n_runs
    dirs = {p.relative_to(out / "parquet" / "runs").parts[:2] for p in (out / "parquet" / "runs").rglob("*.parquet")}
    assert dirs and all(b.startswith("board=board-0") and d == "month=2026-06" for b, d in dirs)
    # one file per partition folder, and the day stays in the rows
    files = list((out / "parquet" / "runs").rglob("*.parquet"))
    assert len(files) == len(dirs)
    assert set(runs.to_table(columns=["day"])["day"].to_pylist()) > {"2026-06-01"}


def test_day_and_month_layouts_give_the_same_summaries(corpus, tmp_path):
    info = batch.load_sites(corpus["sites"])
    paths = [corpus["root"] / "collected", corpus["root"] / "history"]
    by = {part: batch.run_batch(paths, tmp_path / part, sites=info, partition=part) for part in batch.PARTITIONS}
    day_dirs = {p.parent.name for p in (tmp_path / "day" / "parquet" / "runs").rglob("*.parquet")}
    assert all(d.startswith("day=2026-06-") for d in day_dirs) and len(day_dirs) > 1
    mem = batch.Summary(batch.aggregate(batch.connect_arrow(batch.to_tables(batch.read_inputs(paths, info)))), None)
    for name in batch.QUERIES:
        assert by["day"].tables[name].rows == by["month"].tables[name].rows == mem.tables[name].rows, name


def test_nothing_readable_exits_3(tmp_path):
    (tmp_path / "x.json").write_text("{")
    res = runner.invoke(app, ["batch", str(tmp_path), "--out", str(tmp_path / "o"), "--lang", "en"])
    assert res.exit_code == 3
    assert "not valid JSON" in res.output


@pytest.fixture(scope="module")
def summary(corpus, tmp_path_factory):
    info = batch.load_sites(corpus["sites"])
    root = corpus["root"]
    return batch.run_batch([root / "collected", root / "history"], tmp_path_factory.mktemp("out"), sites=info)


def _expected_rows(corpus):
    rows = []
    for d in corpus["docs"]:
        rows.append(batch.flatten_result(d, "x")[0])
    info = batch.load_sites(corpus["sites"])
    for d in corpus["hist_docs"]:
        rec = record_of(from_dict(RunResult, d))
        i = info[rec.school]
        rows.append(
            batch._row(rec, "history", "h", name=i.name, students=i.students, context=i.context, lessons=i.lessons, knee=(None, None))
        )
    return rows


def test_sql_agrees_with_python(summary, corpus):
    """Lesson-hour medians, worst values, compliance and causes: SQL on DuckDB == plain Python."""
    rows = _expected_rows(corpus)
    by_school: dict[str, list[dict]] = {}
    for r in rows:
        by_school.setdefault(r["school_id"], []).append(r)
    got = {r["school_id"]: r for r in summary.tables["school_summary"].dicts()}
    assert set(got) == set(by_school)
    for sid, rs in by_school.items():
        g = got[sid]
        lesson = [r["down_mbps"] for r in rs if r["lesson"] and r["down_mbps"] is not None]
        downs = [r["down_mbps"] for r in rs if r["down_mbps"] is not None]
        assert g["runs"] == len(rs)
        if lesson:
            assert g["lesson_down_mbps_p50"] == pytest.approx(statistics.median(lesson))
        assert g["worst_down_mbps"] == pytest.approx(min(downs)) if downs else g["worst_down_mbps"] is None
        latest = max(rs, key=lambda r: (r["started_at"], r["run_id"]))
        assert g["latest_status"] == latest["status"]
        comp = statistics.median(lesson) if lesson else (statistics.median(downs) if downs else None)
        if comp is not None and rs[0]["mext_mbps"]:
            assert g["mext_compliant"] == (1 if comp >= rs[0]["mext_mbps"] else 0)
        assert g["board"] == rs[0]["board"] and g["contract"] == rs[0]["contract"]
    # board compliance share from the school rows
    for b in summary.tables["board_summary"].dicts():
        mine = [g for g in got.values() if g["board"] == b["board"] and g["mext_compliant"] is not None]
        assert b["schools_assessed"] == len(mine)
        assert b["share_compliant"] == pytest.approx(sum(g["mext_compliant"] for g in mine) / len(mine))
        assert b["national_share_2024"] == pytest.approx(national_share_2024())  # the reference data file's figure
    # causes by frequency per board
    counts: dict[tuple[str, str], int] = {}
    for r in rows:
        for c in filter(None, r["causes"].split(";")):
            counts[(r["board"], c)] = counts.get((r["board"], c), 0) + 1
    assert {(c["board"], c["cause_id"]): c["runs"] for c in summary.tables["board_causes"].dicts()} == counts
    schools: dict[tuple[str, str], set] = {}
    for r in rows:
        for c in filter(None, r["causes"].split(";")):
            schools.setdefault((r["board"], c), set()).add(r["school_id"])
    assert {(c["board"], c["cause_id"]): c["schools"] for c in summary.tables["board_causes"].dicts()} == {
        k: len(v) for k, v in schools.items()
    }
    top = {r["school_id"]: r["cause_id"] for r in summary.tables["school_causes"].dicts() if r["cause_rank"] == 1}
    assert {sid: g["top_cause"] for sid, g in got.items() if g["top_cause"]} == top
    # weekly trend: runs per board and week
    weeks: dict[tuple[str, str], int] = {}
    for r in rows:
        weeks[(r["board"], r["week"])] = weeks.get((r["board"], r["week"]), 0) + 1
    assert {(w["board"], w["week"]): w["runs"] for w in summary.tables["board_weekly"].dicts()} == weeks


def test_the_national_share_is_read_from_the_registered_reference_table(corpus, monkeypatch):
    """The SQL spells no figure: it reads the one-row table batch registers from the reference data file."""
    figure = national_share_2024()
    for name in batch.QUERIES:
        assert repr(figure) not in _code(batch.sql_text(name)), name
    assert batch.REFERENCE_TABLE in batch.sql_text("board_summary")
    inputs = batch.read_inputs([corpus["root"] / "collected"], batch.load_sites(corpus["sites"]))
    monkeypatch.setattr(batch, "reference_row", lambda: {"national_share_2024": figure / 2})
    con = batch.connect_arrow(batch.to_tables(inputs))
    try:
        tables = batch.aggregate(con)
    finally:
        con.close()
    rows = tables["board_summary"].dicts()
    assert rows and all(r["national_share_2024"] == pytest.approx(figure / 2) for r in rows)
    # the dashboard and its catalogue lines show the figure the SQL read, through a placeholder
    m = Messages("ja")
    html = board_html.render(batch.Summary(tables, inputs), m)
    assert m("board.chart.national_ref", national=board_html._pct(figure / 2)) in html


def test_ranking_is_worst_first(summary):
    for board in {r["board"] for r in summary.tables["board_ranking"].dicts()}:
        rs = [r for r in summary.tables["board_ranking"].dicts() if r["board"] == board]
        assert [r["worst_rank"] for r in rs] == list(range(1, len(rs) + 1))
        ratios = [r["mext_ratio"] for r in rs if r["mext_ratio"] is not None]
        assert ratios == sorted(ratios)


def test_context_breakdown_and_pass_rates(summary):
    ctx = summary.tables["context_breakdown"].dicts()
    fields = {r["field"] for r in ctx}
    assert fields == set(batch.CONTEXT_FIELDS)
    national = [r for r in ctx if r["board"] == "*" and r["field"] == "contract"]
    assert sum(r["schools"] for r in national) == len(summary.tables["school_summary"].rows)
    checks = summary.tables["school_checks"].dicts()
    assert checks and all(r["pass_rate"] is None or 0 <= r["pass_rate"] <= 1 for r in checks)
    assert any(r["check_id"] == "school.bandwidth.mext" for r in checks)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_dashboard_is_self_contained(summary, lang):
    html = board_html.render(summary, Messages(lang))
    assert f'<html lang="{lang}">' in html and "Content-Security-Policy" in html
    assert "<script" not in html
    urls = set(re.findall(r'(?:src|href)\s*=\s*["\']?([^"\' >]+)', html))
    assert not urls, urls
    assert set(re.findall(r"https?://[^\s\"'<]+", html)) <= {"http://www.w3.org/2000/svg"}
    assert html.count("<svg") >= 3
    if lang == "ja":
        assert "当面の推奨帯域" in html


def _code(sql: str) -> str:
    return "\n".join(line.split("--")[0] for line in sql.splitlines())


def test_sql_is_portable():
    """No DuckDB-only spellings in the shipped SQL; the Trino dialect swaps percentile_cont."""
    for name in batch.QUERIES:
        sql = _code(batch.sql_text(name))
        for bad in (
            "read_parquet",
            "::",
            "QUALIFY",
            "median(",
            "list_",
            "struct_",
            "epoch(",
            "strftime",
            "date_part",
            "approx_quantile",
            "arg_max",
            "arg_min",
        ):
            assert bad.lower() not in sql.lower(), (name, bad)
        trino = batch.to_dialect(sql, "trino")
        assert "within group" not in trino.lower()
        if "percentile_cont" in sql:
            assert "approx_percentile(" in trino
    sample = "percentile_cont(0.5) WITHIN GROUP (ORDER BY CASE WHEN lesson THEN f(x) END) AS m"
    assert batch.to_dialect(sample, "trino") == "approx_percentile(CASE WHEN lesson THEN f(x) END, 0.5) AS m"
    with pytest.raises(ValueError):
        batch.to_dialect("SELECT 1", "oracle")


def test_trino_spelling_is_well_formed(corpus):
    """The Trino rewrite of every file still parses and runs: DuckDB spells approx_percentile
    approx_quantile, so swap that one name and run the rewritten SQL over the same data."""
    info = batch.load_sites(corpus["sites"])
    inputs = batch.read_inputs([corpus["root"] / "collected", corpus["root"] / "history"], info)
    con = batch.connect_arrow(batch.to_tables(inputs))
    try:
        for name in batch.QUERIES:
            sql = batch.to_dialect(batch.sql_text(name), "trino").replace("approx_percentile(", "approx_quantile(")
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
            assert con.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0] > 0
    finally:
        con.close()


def test_empty_and_arrow_paths(tmp_path):
    empty = batch.run_batch([tmp_path / "nothing-here"], tmp_path / "o")
    assert empty.inputs.runs == [] and empty.tables["school_summary"].rows == []
    assert "nothing-here" in empty.inputs.skipped[0].path


# ----------------------------------------------------------------------------- #17: hostile files, (board, school)

HOSTILE_FILES = {
    "nested.json": lambda good: "[" * 200_000 + "]" * 200_000,
    "long-int.json": lambda good: good[:-1] + ', "x": ' + "9" * 5000 + "}",
    "inf.json": lambda good: good.replace('"duration_s": ', '"duration_s": 1e400, "was": ', 1),
    "surrogate.json": lambda good: good[:-1] + ', "x": "\\ud800"}',
    "students.json": lambda good: json.dumps(dict(json.loads(good), school=dict(json.loads(good)["school"], students=10**15))),
    "year-1.json": lambda good: json.dumps(dict(json.loads(good), started_at="0001-01-01T00:00:00+23:59")),
}


def test_batch_skips_hostile_files_and_lines_and_goes_on(corpus, tmp_path):
    """#17: ``batch`` stopped with a traceback on these (it promises never to stop on one file)."""
    docs = corpus["docs"][:3]
    good = json.dumps(docs[0], ensure_ascii=False)
    folder = tmp_path / "in"
    for name, make in HOSTILE_FILES.items():
        write_atomic(folder / name, make(good))
    for d in docs:
        write_atomic(folder / "ok" / f"{d['run_id']}.json", json.dumps(d, ensure_ascii=False))
    line = record_of(from_dict(RunResult, corpus["hist_docs"][0])).to_json()
    hostile_lines = [
        "[" * 200_000 + "]" * 200_000,
        line.replace('"school":"', '"school":"\\ud800', 1),
        line.replace('"dur_s":', '"dur_s":1e400,"was":', 1),
        re.sub(r'"t":"[^"]+"', '"t":"0001-01-01T00:00:00+23:59"', line, count=1),
    ]
    write_atomic(folder / "history.jsonl", "\n".join([line, *hostile_lines]) + "\n")
    res = runner.invoke(app, ["batch", str(folder), "--out", str(tmp_path / "o"), "--lang", "en", "-f", "csv"])
    assert res.exit_code == 0, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    for name in HOSTILE_FILES:
        [skipped] = [ln for ln in res.output.splitlines() if name in ln]
        assert "skipped" in skipped and ": " in skipped, skipped
    assert "Read 4 runs" in res.output and f"{len(HOSTILE_FILES)} files skipped" in res.output
    assert f"{len(hostile_lines)} bad history lines" in res.output


def test_schools_are_keyed_by_board_and_school(corpus):
    """#17: school summaries grouped by school id alone, so another board's later run under the
    same id moved the real school's row (and its causes) to that board."""
    real = [d for d in corpus["docs"] if d["school"]["id"] == corpus["docs"][0]["school"]["id"]]
    board = real[0]["context"]["board"]
    impostor = json.loads(json.dumps(real[0]))
    impostor["run_id"] = "impostor-1"
    impostor["context"]["board"] = "board-99"
    impostor["started_at"] = "2026-12-01T10:00:00+09:00"  # later than every real run
    impostor["school"]["name"] = "Impostor"
    rows, checks, causes = [], [], []
    for d in [*real, impostor]:
        r, c, k = batch.flatten_result(d, "x")
        rows.append(r)
        checks += c
        causes += k
    inputs = batch.Inputs(runs=rows, checks=checks, causes=causes)
    con = batch.connect_arrow(batch.to_tables(inputs))
    try:
        tables = batch.aggregate(con)
    finally:
        con.close()
    summary = {(r["board"], r["school_id"]): r for r in tables["school_summary"].dicts()}
    sid = real[0]["school"]["id"]
    assert set(summary) == {(board, sid), ("board-99", sid)}
    assert summary[(board, sid)]["runs"] == len(real) and summary[(board, sid)]["school_name"] != "Impostor"
    assert summary[("board-99", sid)]["runs"] == 1
    assert {r["board"] for r in tables["school_causes"].dicts()} <= {board, "board-99"}
    assert sum(r["checks"] for r in tables["school_checks"].dicts() if r["board"] == board) == sum(1 for c in checks if c["board"] == board)
    mine = [r for r in tables["board_summary"].dicts() if r["board"] == board]
    assert mine and mine[0]["schools"] == 1 and mine[0]["runs"] == len(real)


def test_run_result_carries_site_context_into_batch(tmp_path, server, dns_server, write_site):
    """A result written by `run` carries the site's context: (issue 19), so `batch` breaks it
    down by region and contract with no site file beside it."""
    from tests.conftest import loopback_site

    ctx = {"board": "board-ctx", "region": "北部", "isp": "isp-x", "contract": "best-effort"}
    path = write_site(loopback_site(server.url, dns_server.port, context=ctx))
    out = tmp_path / "reports"
    res = runner.invoke(app, ["run", "--site", str(path), "--quick", "--no-progress", "--out", str(out), "-f", "json"])
    assert res.exit_code in (0, 1, 6), res.output
    (result,) = out.glob("*.json")
    assert json.loads(result.read_text(encoding="utf-8"))["context"] == ctx
    inputs = batch.read_inputs([result])  # no site file
    (row,) = inputs.runs
    assert (row["board"], row["region"], row["isp"], row["contract"]) == ("board-ctx", "北部", "isp-x", "best-effort")
