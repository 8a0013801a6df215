"""``batch --engine spark`` (#19 items 1-3): the same SQL files on Spark SQL give DuckDB's summaries.

One SparkSession for the module (one JVM start). Every check that needs it is in one test, so
``pytest -n 2`` cannot hand two of them to two workers and start a second JVM on a 2-core machine.
The exit-2 paths (no pyspark, no Java, an old Java) are simulated by monkeypatching, no JVM.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import re
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from bench.board_data import make_doc, make_rows, make_schools, school_times, templates
from giga_netcheck.board import batch, spark
from giga_netcheck.cli.main import app
from giga_netcheck.core.results import write_atomic

REL = 1e-9  # medians: DuckDB and Spark interpolate in different (equally exact) spellings


@pytest.fixture(scope="module")
def session():
    missing = spark.missing_spark()
    if missing:  # a failure, not a skip: CI installs both (README, .ci/run)
        pytest.fail(spark.missing_line(missing))
    s = spark.session()
    yield s
    s.stop()


def _dataset(root: Path) -> Path:
    """100k runs of 400 schools in 6 boards over 4 months; a tenth of the schools have no student
    count (no MEXT figure: NULL ratios, unassessed schools, NULLs to order)."""
    tables = make_rows(100_000, n_schools=400, boards=6, seed=5, start=dt.date(2026, 4, 6), days=120)
    runs = tables["runs"]
    unknown = pc.is_in(runs["school_id"], pa.array([f"board-{i % 6 + 1:02d}-s{i:05d}" for i in range(0, 400, 10)]))
    for col in ("students", "mext_mbps", "mext_ok", "mext_estimate"):
        i = runs.schema.get_field_index(col)
        runs = runs.set_column(i, col, pc.if_else(unknown, pa.scalar(None, runs.schema.field(col).type), runs[col]))
    tables["runs"] = runs
    return batch.write_dataset(tables, root)


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, float) and isinstance(b, float) and math.isclose(a, b, rel_tol=REL, abs_tol=0.0)
    return type(a) is type(b) and a == b and batch._cell(a) == batch._cell(b)  # the CSV prints the same text


def _agree(duck: dict[str, batch.Table], other: dict[str, batch.Table]) -> int:
    n = 0
    assert list(other) == list(duck) == list(batch.QUERIES)
    for name in batch.QUERIES:
        a, b = duck[name], other[name]
        assert b.columns == a.columns, name
        assert len(b.rows) == len(a.rows), name
        for i, (ra, rb) in enumerate(zip(a.rows, b.rows)):
            for col, x, y in zip(a.columns, ra, rb):
                assert _same(x, y), f"{name} row {i} {col}: duckdb {x!r} != spark {y!r}"
                n += 1
    return n


def _corpus(root: Path) -> Path:
    """A few result files as the collector stores them (the CLI's input)."""
    tpls = templates()
    rng = random.Random(3)
    for i, school in enumerate(make_schools(12, boards=2, seed=3)):
        for j, when in enumerate(school_times(dt.date(2026, 5, 11), 3, 2, rng)):
            doc = make_doc(tpls, school, when, i * 100 + j, rng)
            write_atomic(root / school.board / school.id / f"{doc['run_id']}.json", json.dumps(doc, ensure_ascii=False))
    return root


def test_spark_gives_duckdbs_summaries_row_for_row_and_the_same_files(session, tmp_path):
    # the session is tuned for a small machine and listens on loopback only
    conf = session.sparkContext.getConf()
    assert conf.get("spark.driver.host") == "127.0.0.1" and conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert conf.get("spark.ui.enabled") == "false"
    assert int(session.conf.get("spark.sql.shuffle.partitions")) <= 64

    # 1. every query, row for row, over the Parquet dataset batch writes
    root = _dataset(tmp_path / "ds")
    duck = batch.aggregate_dataset(root)
    spark_tables = batch.aggregate_spark(batch.connect_spark(root, session=session))
    n = _agree(duck, spark_tables)
    assert n > 50_000  # values compared
    ranked = spark_tables["board_ranking"].dicts()
    assert any(r["mext_ratio"] is None for r in ranked)  # the NULLs the ORDER BY places are there
    for board in {r["board"] for r in ranked}:
        ratios = [r["mext_ratio"] for r in ranked if r["board"] == board]
        assert None not in ratios[: ratios.index(None)] if None in ratios else True
        assert all(x is None for x in ratios[ratios.index(None) :]) if None in ratios else True  # NULLS LAST, as DuckDB

    # 2. the reference table exists on Spark, with the figure batch registers
    ref = session.sql(f"SELECT * FROM {batch.REFERENCE_TABLE}").collect()
    assert [r.asDict() for r in ref] == [batch.reference_row()]

    # 3. the command: --engine spark writes the same CSV files and dashboard as DuckDB (the running
    # session is reused and left running)
    corpus = _corpus(tmp_path / "collected")
    runner = CliRunner()
    outs = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / f"out-{engine}"
        res = runner.invoke(app, ["batch", str(corpus), "--out", str(out), "--lang", "en", "--engine", engine, "--quiet"])
        assert res.exit_code == 0, res.output
        outs[engine] = out
    names = sorted(p.name for p in outs["duckdb"].iterdir() if p.is_file())
    assert "school_summary.csv" in names and "board.html" in names
    assert names == sorted(p.name for p in outs["spark"].iterdir() if p.is_file())
    made = re.compile(rb"Made \d{4}-\d\d-\d\dT[0-9:+-]+ ")  # the dashboard's own "made at" time
    for name in names:
        spark_bytes, duck_bytes = ((outs[e] / name).read_bytes() for e in ("spark", "duckdb"))
        assert made.sub(b"Made T ", spark_bytes) == made.sub(b"Made T ", duck_bytes), name
    assert not session.sparkContext._jsc.sc().isStopped()

    # 4. an empty dataset: empty views of the right columns, as DuckDB's
    empty = batch.write_dataset(batch.to_tables(batch.Inputs()), tmp_path / "empty")
    con = batch.connect_parquet(empty)
    try:
        duck_empty = {name: batch.aggregate(con)[name] for name in ("school_summary",)}
    finally:
        con.close()
    batch.connect_spark(empty, session=session)
    for name in ("school_causes", "school_summary"):
        t = spark.run_query(session, name, batch.sql_text(name), batch.order_by(name), cache=False)
        assert t.rows == []
    assert t.columns == duck_empty["school_summary"].columns


# ----------------------------------------------------------------------------- without pyspark or Java (no JVM)


def _batch_cli(tmp_path: Path, *extra: str):
    (tmp_path / "results").mkdir(exist_ok=True)
    out = tmp_path / "board"
    res = CliRunner().invoke(app, ["batch", str(tmp_path / "results"), "--out", str(out), "--lang", "en", *extra])
    return res, out


def _one_line(res) -> str:
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    return lines[0]


@pytest.mark.parametrize("absent", ["pyspark", "java", "pyspark,java", "old-java"])
def test_engine_spark_without_pyspark_or_java_is_one_line_exit_2(tmp_path, monkeypatch, absent):
    if "pyspark" in absent:
        monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark -> ImportError, as when not installed
    if "java" in absent.split(","):
        monkeypatch.setattr(spark, "java_command", lambda: None)
    if absent == "old-java":
        monkeypatch.setattr(spark, "java_major", lambda java: 11)
    res, out = _batch_cli(tmp_path, "--engine", "spark")
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    line = _one_line(res)
    assert "pip install 'giga-netcheck[spark]'" in line and "default-jre-headless" in line
    for name in absent.split(","):
        assert (name if name != "old-java" else "java 17+ (found 11)") in line
    assert not out.exists()  # nothing half-written


def test_java_is_found_through_java_home_or_path(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    assert spark.java_command() is None  # a JAVA_HOME without bin/java is no Java, whatever PATH has
    fake = tmp_path / "jdk" / "bin" / "java"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 'openjdk version \"21.0.2\" 2024-01-16' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    assert spark.java_command() == str(fake)
    assert spark.java_major(str(fake)) == 21
    fake.write_text("#!/bin/sh\necho 'java version \"1.8.0_392\"' >&2\n")
    assert spark.java_major(str(fake)) == 8


def test_engine_and_master_options_are_checked(tmp_path):
    res, out = _batch_cli(tmp_path, "--engine", "oracle")
    assert res.exit_code == 2 and "--engine" in _one_line(res)
    res, out = _batch_cli(tmp_path, "--spark-master", "local[1]")
    assert res.exit_code == 2 and "--engine spark" in _one_line(res)
    with pytest.raises(ValueError):
        batch.aggregate_dataset(tmp_path, engine="oracle")


def test_spark_extra_and_test_extra_name_pyspark():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    assert any(r.startswith("pyspark") for r in extras["spark"]) and "giga-netcheck[board]" in extras["spark"]
    assert any(r.startswith("pyspark") for r in extras["test"])
    assert not any(r.startswith("pyspark") for r in project["dependencies"])
