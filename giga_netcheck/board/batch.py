"""Many saved results -> board-level summaries (``giga-netcheck batch``).

Three steps, each usable on its own:

1. :func:`read_inputs` reads result JSON files, history JSON Lines files, folders and globs, and
   flattens every run into one row (:data:`RUN_COLUMNS`) plus its check and cause rows. A file
   that cannot be read is *skipped* with its reason; one bad file never stops the batch.
2. :func:`write_dataset` writes the rows as a Parquet dataset partitioned by board and date
   (``runs/board=<id>/month=<YYYY-MM>/…`` by default, or ``day=<YYYY-MM-DD>``; the Hive layout
   every SQL engine reads).
3. :func:`aggregate` runs the SQL files in ``sql/`` on DuckDB over that layout (or over
   Arrow tables in memory); :func:`aggregate_spark` runs the same files on Spark SQL
   (``batch --engine spark``, board/spark.py), and :func:`aggregate_dataset` is the one place
   the engine is chosen. The SQL is standard: the same files run on DuckDB, Spark SQL and Trino
   (docs/boards.md; :func:`to_dialect` isolates the one spelling that differs, Trino's median).

Renderers (CSV with a BOM for Excel, the HTML dashboard) work on the :class:`Summary` only.
"""

from __future__ import annotations

import csv
import datetime as dt
import glob
import importlib
import io
import math
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from giga_netcheck.board import spark
from giga_netcheck.config.site import load_site
from giga_netcheck.core.board_summary import Inputs, Skipped, Summary, Table
from giga_netcheck.core.errors import ResultFileError
from giga_netcheck.core.models import RunResult, claims, from_dict
from giga_netcheck.core.reference import national_share_2024
from giga_netcheck.core.results import DocumentError, _safe, parse_document, upgrade, write_atomic
from giga_netcheck.core.thresholds import mext_recommended_mbps
from giga_netcheck.monitor.history import Lessons, Record, record_of
from giga_netcheck.render.common import csv_cell
from giga_netcheck.render.html import load_ramp

REFERENCE_TABLE = "reference_figures"
"""The one-row table of reference figures the SQL reads (``board_summary.sql``: the national share),
registered on every connection from giga_netcheck/data/reference.yaml (core/reference.py)."""

CONTEXT_FIELDS = ("region", "isp", "line_type", "contract", "ipv4_method", "connection_model")
"""Site context a board breaks its results down by (site file ``context:``)."""

BOARD_EXTRA_MODULES = ("duckdb", "pyarrow")
"""What a batch needs beyond the default install: the ``[board]`` extra (pyproject.toml)."""
BOARD_EXTRA_INSTALL = "pip install 'giga-netcheck[board]' (pipx: pipx inject giga-netcheck duckdb pyarrow)"
"""How to add the extra, in the one line ``batch`` prints without it."""


def missing_board_modules() -> list[str]:
    """The modules of the ``[board]`` extra that do not import here; empty: a batch can run.

    Imports them (heavy, so only when a batch is about to run): a module that is present but
    broken counts as missing too.
    """
    missing = []
    for name in BOARD_EXTRA_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


SQL_DIR = Path(__file__).parent / "sql"
QUERIES = (
    "school_causes",
    "school_summary",
    "school_checks",
    "board_summary",
    "board_ranking",
    "board_causes",
    "board_weekly",
    "board_weekly_causes",
    "context_breakdown",
)
"""Run in this order; each result is a table the later files may read (``school_causes``,
``school_summary``), so the big tables are scanned as few times as possible."""

ORDER = {
    "school_summary": "board, school_id",
    "school_checks": "board, school_id, check_id",
    "school_causes": "board, school_id, cause_rank",
    "board_summary": "board",
    "board_ranking": "board, worst_rank",
    "board_causes": "board, runs DESC, cause_id",
    "board_weekly": "board, week",
    "board_weekly_causes": "board, week, runs DESC, cause_id",
    "context_breakdown": "board, field, value",
}
"""How each result is fetched; :func:`order_by` spells out where NULLs go."""


def order_by(name: str) -> str:
    """``ORDER[name]`` with ``NULLS LAST`` on every key: DuckDB puts NULLs last by default, Spark
    first on ascending keys, so the placement is spelled out and both engines agree row for row."""
    return ", ".join(f"{key} NULLS LAST" for key in ORDER[name].split(", "))


ENGINES = ("duckdb", "spark")
"""``batch --engine``: DuckDB in this process (the default), or Spark SQL (board/spark.py)."""

RUN_COLUMNS = (
    "run_id",
    "source",
    "file",
    "board",
    "school_id",
    "school_name",
    *CONTEXT_FIELDS,
    "students",
    "started_at",
    "day",
    "week",
    "hour",
    "lesson",
    "status",
    "mode",
    "down_mbps",
    "up_mbps",
    "down_center_mbps",
    "rtt_gateway_ms",
    "rtt_center_ms",
    "rtt_internet_ms",
    "loss_pct",
    "dns_p50_ms",
    "knee_connections",
    "knee_mbps",
    "mext_mbps",
    "mext_estimate",
    "mext_ok",
    "causes",
)
CHECK_COLUMNS = ("run_id", "board", "day", "school_id", "check_id", "classroom", "status")
CAUSE_COLUMNS = ("run_id", "board", "day", "week", "school_id", "cause_id")

MAX_RESULT_BYTES = 64 * 1024 * 1024
"""A result file larger than this is skipped, not read (bounded memory)."""


# ----------------------------------------------------------------------------- context


@dataclass(frozen=True)
class SchoolInfo:
    """What a site file says about a school that its history lines do not carry."""

    name: Optional[str] = None
    students: Optional[int] = None
    context: dict[str, str] = field(default_factory=dict)
    lessons: Lessons = Lessons()


def load_sites(paths: Iterable[str | Path]) -> dict[str, SchoolInfo]:
    """School id -> :class:`SchoolInfo` from site files (raises ConfigError for a bad one)."""
    out: dict[str, SchoolInfo] = {}
    for p in paths:
        site = load_site(p)
        out[site.school.id] = SchoolInfo(
            site.school.name,
            site.school.students,
            dict(getattr(site, "context", {}) or {}),
            Lessons(site.schedule.lesson_hours, tuple(site.schedule.lesson_days)),
        )
    return out


# ----------------------------------------------------------------------------- reading


def expand(paths: Sequence[str | Path]) -> tuple[list[Path], list[Skipped]]:
    """Files named by paths, folders (recursively: *.json, *.jsonl) and globs; sorted, unique."""
    found: list[Path] = []
    missing: list[Skipped] = []
    for raw in paths:
        text = str(raw)
        if any(ch in text for ch in "*?["):
            hits = sorted(Path(h) for h in glob.glob(text, recursive=True))
            files = [h for h in hits if h.is_file()]
            for d in (h for h in hits if h.is_dir()):
                files += _folder(d)
            if not files:
                missing.append(Skipped(text, "no file matches this pattern"))
            found += files
        elif Path(text).is_dir():
            found += _folder(Path(text))
        elif Path(text).is_file():
            found.append(Path(text))
        else:
            missing.append(Skipped(text, "no such file or folder"))
    seen: set[str] = set()
    unique = []
    for p in found:
        key = str(p.resolve())
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique, missing


def _folder(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.is_file() and p.suffix in (".json", ".jsonl") and not p.name.startswith("."))


def read_inputs(paths: Sequence[str | Path], sites: Optional[dict[str, SchoolInfo]] = None) -> Inputs:
    """Read and flatten every run under ``paths``; bad files are skipped with their reason."""
    sites = sites or {}
    files, skipped = expand(paths)
    acc = Inputs(skipped=skipped)
    seen: dict[str, str] = {}  # run id -> source ("result" wins over "history")
    for p in files:
        acc.files += 1
        try:
            if p.stat().st_size > MAX_RESULT_BYTES:
                raise ResultFileError(f"larger than {MAX_RESULT_BYTES // (1 << 20)} MiB")
            data = p.read_bytes()
        except OSError as exc:
            acc.skipped.append(Skipped(str(p), f"cannot read: {exc.strerror or exc}"))
            continue
        except ResultFileError as exc:
            acc.skipped.append(Skipped(str(p), str(exc)))
            continue
        if _looks_like_history(p, data):
            n_before = len(acc.runs)
            good, bad = _read_history(p, data, sites, acc, seen)
            if good == 0 and len(acc.runs) == n_before and bad:
                acc.skipped.append(Skipped(str(p), f"no readable history line ({bad} malformed)"))
            else:
                acc.history_files += 1
                acc.bad_lines += bad
            continue
        try:
            doc = _parse_result(data, str(p))
            row, checks, causes = flatten_result(doc, str(p), sites)
        except ResultFileError as exc:
            acc.skipped.append(Skipped(str(p), _reason(exc, p)))
            continue
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:  # a shape the schema check let through
            acc.skipped.append(Skipped(str(p), f"malformed result: {type(exc).__name__}: {exc}"))
            continue
        acc.result_files += 1
        if row["run_id"] and row["run_id"] in seen:
            acc.duplicates += 1
            if seen[row["run_id"]] == "result":
                continue
            _drop_run(acc, row["run_id"])
        seen[row["run_id"]] = "result"
        acc.runs.append(row)
        acc.checks += checks
        acc.causes += causes
    return acc


def _reason(exc: Exception, p: Path) -> str:
    text = str(exc)
    prefix = f"{p}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _looks_like_history(p: Path, data: bytes) -> bool:
    if p.suffix == ".jsonl":
        return True
    head = data.lstrip()[:200]
    return head.startswith(b'{"v":')


def _drop_run(acc: Inputs, run_id: str) -> None:
    acc.runs = [r for r in acc.runs if r["run_id"] != run_id]
    acc.causes = [c for c in acc.causes if c["run_id"] != run_id]


def _parse_result(data: bytes, path: str) -> dict[str, Any]:
    try:
        return parse_document(data, path, max_bytes=MAX_RESULT_BYTES)  # the one safe loader (core/results.py)
    except DocumentError as exc:
        raise ResultFileError(f"{exc}; cut short?" if exc.code == "not-json" else str(exc)) from None


def validate_document(doc: dict[str, Any], path: str) -> RunResult:
    """The schema check shared with collection: upgrade, then build the dataclass tree."""
    doc = upgrade(doc, path)
    try:
        result = from_dict(RunResult, doc)
    except (TypeError, ValueError, KeyError) as exc:
        raise ResultFileError(f"{path}: malformed result: {exc}") from None
    if not isinstance(doc.get("run_id"), str) or not doc.get("run_id"):
        raise ResultFileError(f"{path}: malformed result: no run_id")
    if not isinstance(doc.get("started_at"), str):
        raise ResultFileError(f"{path}: malformed result: no started_at")
    try:
        started = dt.datetime.fromisoformat(result.started_at)
    except ValueError:
        raise ResultFileError(f"{path}: malformed result: started_at {result.started_at!r} is not an ISO time") from None
    if not 1970 <= started.year <= 9998:  # beyond, time zone arithmetic overflows
        raise ResultFileError(f"{path}: malformed result: started_at {result.started_at!r} is out of range")
    if result.school.students is not None and not 0 <= result.school.students <= MAX_STUDENTS:
        raise ResultFileError(f"{path}: malformed result: school.students {result.school.students} is out of range (0-{MAX_STUDENTS})")
    return result


MAX_STUDENTS = 1_000_000
"""school.students above this is refused (the column is 32-bit)."""


def _record_ok(rec: Record) -> bool:
    """A history line's record is safe to aggregate: finite numbers, UTF-8 text, a time in range."""
    texts = (rec.school, rec.status, rec.plan, rec.mode, rec.run_id, *rec.causes)
    if not all(t.isascii() or _utf8(t) for t in texts):  # a lone surrogate ("\\ud800") cannot be written out
        return False
    nums = [*rec.down_mbps.values(), *rec.up_mbps.values(), *rec.rtt_p50_ms.values(), *rec.loss_pct.values(), rec.duration_s]
    if rec.dns_p50_ms is not None:
        nums.append(rec.dns_p50_ms)
    return all(math.isfinite(x) for x in nums) and 1970 <= rec.when.year <= 9998


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _doc_context(doc: dict[str, Any]) -> dict[str, str]:
    ctx: dict[str, str] = {}
    collected = doc.get("collected")
    if isinstance(collected, dict) and isinstance(collected.get("board"), str):
        ctx["board"] = collected["board"]
    raw = doc.get("context")
    if isinstance(raw, dict):
        ctx.update({str(k): str(v) for k, v in raw.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)})
    if isinstance(collected, dict):  # stored by a collector: the board its token proved, never the one the upload claimed
        ctx["board"] = collected["board"] if isinstance(collected.get("board"), str) else ""
    return ctx


def flatten_result(
    doc: dict[str, Any], path: str, sites: Optional[dict[str, SchoolInfo]] = None
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """One result document -> its run row, check rows and cause rows (raises ResultFileError)."""
    result = validate_document(doc, path)
    info = (sites or {}).get(result.school.id, SchoolInfo())
    context = {**info.context, **_doc_context(doc)}
    rec = record_of(result)
    knee = _knee(result.measurements.load)
    row = _row(
        rec,
        "result",
        path,
        name=result.school.name or info.name,
        students=result.school.students or info.students,
        context=context,
        lessons=info.lessons,
        knee=knee,
    )
    checks = [
        {
            "run_id": row["run_id"],
            "board": row["board"],
            "day": row["day"],
            "school_id": row["school_id"],
            "check_id": c.id,
            "classroom": c.classroom,
            "status": c.status,
        }
        for c in result.checks
    ]
    return row, checks, _cause_rows(row, [c.id for c in claims(result.causes)])


def _cause_rows(row: dict[str, Any], ids: Iterable[str]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": row["run_id"],
            "board": row["board"],
            "day": row["day"],
            "week": row["week"],
            "school_id": row["school_id"],
            "cause_id": cid,
        }
        for cid in dict.fromkeys(ids)
    ]


def _knee(load: Any) -> tuple[Optional[float], Optional[float]]:
    ramp = load_ramp(load)
    if ramp is None or ramp[1] is None:
        return None, None
    return ramp[1]


def _read_history(p: Path, data: bytes, sites: dict[str, SchoolInfo], acc: Inputs, seen: dict[str, str]) -> tuple[int, int]:
    good = bad = 0
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            rec = Record.from_json(raw)
        except (ValueError, TypeError, KeyError, UnicodeDecodeError, RecursionError):  # RecursionError: nested 200k deep
            bad += 1
            continue
        if not _record_ok(rec):
            bad += 1
            continue
        good += 1
        if rec.run_id and rec.run_id in seen:
            acc.duplicates += 1
            continue
        info = sites.get(rec.school, SchoolInfo())
        row = _row(
            rec,
            "history",
            str(p),
            name=info.name,
            students=info.students,
            context=dict(info.context),
            lessons=info.lessons,
            knee=(None, None),
        )
        if rec.run_id:
            seen[rec.run_id] = "history"
        acc.runs.append(row)
        acc.causes += _cause_rows(row, rec.causes)
    return good, bad


def board_id(text: Optional[str]) -> str:
    """A board id safe as a partition folder name (``unknown`` when absent)."""
    return _safe(str(text or "").strip()) or "unknown"


def _row(
    rec: Record,
    source: str,
    path: str,
    *,
    name: Optional[str],
    students: Optional[int],
    context: dict[str, str],
    lessons: Lessons,
    knee: tuple[Optional[float], Optional[float]],
) -> dict[str, Any]:
    when = rec.when if rec.when.tzinfo else rec.when.astimezone()
    local_day = when.date()
    down = _headline(rec.down_mbps)
    mext, estimate = _mext(students)
    return {
        "run_id": rec.run_id or f"{source}:{path}:{when.isoformat()}",
        "source": source,
        "file": path,
        "board": board_id(context.get("board")),
        "school_id": rec.school,
        "school_name": name or rec.school,
        **{k: (str(context[k]) if context.get(k) not in (None, "") else None) for k in CONTEXT_FIELDS},
        "students": students,
        "started_at": when.astimezone(dt.timezone.utc),
        "day": local_day.isoformat(),
        "week": (local_day - dt.timedelta(days=local_day.weekday())).isoformat(),
        "hour": when.hour,
        "lesson": when in lessons,
        "status": rec.status,
        "mode": rec.mode or rec.plan,
        "down_mbps": down,
        "up_mbps": _headline(rec.up_mbps),
        "down_center_mbps": rec.down_mbps.get("center"),
        "rtt_gateway_ms": rec.rtt_p50_ms.get("gateway"),
        "rtt_center_ms": rec.rtt_p50_ms.get("center"),
        "rtt_internet_ms": rec.rtt_p50_ms.get("internet"),
        "loss_pct": max(rec.loss_pct.values()) if rec.loss_pct else None,
        "dns_p50_ms": rec.dns_p50_ms,
        "knee_connections": knee[0],
        "knee_mbps": knee[1],
        "mext_mbps": mext,
        "mext_estimate": estimate,
        "mext_ok": None if mext is None or down is None else down >= mext,
        "causes": ";".join(dict.fromkeys(rec.causes)),
    }


def _headline(by_role: dict[str, float]) -> Optional[float]:
    """The school's figure: to the internet when measured (what lessons use), else the farthest point."""
    for role in ("internet", "center", "gateway"):
        if by_role.get(role) is not None:
            return by_role[role]
    return None


_MEXT_CACHE: dict[int, tuple[float, bool]] = {}


def _mext(students: Optional[int]) -> tuple[Optional[float], Optional[bool]]:
    if not students or students <= 0:
        return None, None
    if students not in _MEXT_CACHE:
        mbps, est = mext_recommended_mbps(students)
        _MEXT_CACHE[students] = (round(mbps, 1), est)
    return _MEXT_CACHE[students]


# ----------------------------------------------------------------------------- Parquet


def _schemas():
    import pyarrow as pa  # heavy to import: only when a batch runs

    s, f, i, b = pa.string(), pa.float64(), pa.int32(), pa.bool_()
    ts = pa.timestamp("us", tz="UTC")
    runs = pa.schema(
        [
            ("run_id", s),
            ("source", s),
            ("file", s),
            ("board", s),
            ("school_id", s),
            ("school_name", s),
            *[(k, s) for k in CONTEXT_FIELDS],
            ("students", i),
            ("started_at", ts),
            ("day", s),
            ("week", s),
            ("hour", i),
            ("lesson", b),
            ("status", s),
            ("mode", s),
            ("down_mbps", f),
            ("up_mbps", f),
            ("down_center_mbps", f),
            ("rtt_gateway_ms", f),
            ("rtt_center_ms", f),
            ("rtt_internet_ms", f),
            ("loss_pct", f),
            ("dns_p50_ms", f),
            ("knee_connections", f),
            ("knee_mbps", f),
            ("mext_mbps", f),
            ("mext_estimate", b),
            ("mext_ok", b),
            ("causes", s),
        ]
    )
    checks = pa.schema([(k, s) for k in CHECK_COLUMNS])
    causes = pa.schema([(k, s) for k in CAUSE_COLUMNS])
    return {"runs": runs, "checks": checks, "causes": causes}


def to_tables(inputs: Inputs) -> dict[str, Any]:
    """Rows -> Arrow tables (``runs``, ``checks``, ``causes``)."""
    import pyarrow as pa  # heavy to import: only when a batch runs

    schemas = _schemas()
    rows = {"runs": inputs.runs, "checks": inputs.checks, "causes": inputs.causes}
    return {name: pa.Table.from_pylist(rows[name], schema=schemas[name]) for name in schemas}


DATASETS = ("runs", "checks", "causes")


PARTITIONS = ("month", "day")
"""Date granularity of the partition folders: ``month=YYYY-MM`` (the default) or ``day=YYYY-MM-DD``."""


def write_dataset(tables: dict[str, Any], out_dir: str | Path, *, partition: str = "month") -> Path:
    """Write ``runs``/``checks``/``causes`` under ``out_dir`` partitioned by board and date (Hive layout).

    ``partition="month"`` (the default) makes ``board=<id>/month=<YYYY-MM>/`` folders (the ``day``
    column stays in the files); ``"day"`` makes ``board=<id>/day=<YYYY-MM-DD>/``. Monthly folders
    keep files few and large: a board's day is a few hundred to a few thousand runs, and every
    file costs a reader an open, a footer and a row group of its own; 1M runs in 30 boards made
    7,568 daily files, read and aggregated in 3.1 s, against 270 monthly ones in 0.65 s
    (docs/boards.md). Rows are sorted by partition, so each folder gets one file. Each table's
    folder is replaced as a whole, so partitions of an earlier batch do not linger.
    """
    import pyarrow.compute as pc  # heavy to import: only when a batch runs
    import pyarrow.dataset as ds  # heavy to import: only when a batch runs

    if partition not in PARTITIONS:
        raise ValueError(f"partition: expected one of {', '.join(PARTITIONS)}, got {partition!r}")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    for name in DATASETS:
        target = root / name
        if target.exists():
            shutil.rmtree(target)
        table = tables[name]
        if partition == "month":
            table = table.append_column("month", pc.utf8_slice_codeunits(table["day"], 0, 7))
        # sorted by partition: one file per folder (unsorted input makes pyarrow close and reopen
        # files once more partitions are open than max_open_files, leaving many small ones)
        table = table.sort_by([("board", "ascending"), (partition, "ascending")])
        ds.write_dataset(
            table,
            str(target),
            format="parquet",
            partitioning=["board", partition],
            partitioning_flavor="hive",
            existing_data_behavior="overwrite_or_ignore",
            max_partitions=1_000_000,
            max_open_files=512,
            basename_template="part-{i}.parquet",
        )
        if table.num_rows == 0:
            target.mkdir(parents=True, exist_ok=True)
    return root


# ----------------------------------------------------------------------------- SQL


def sql_text(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


_PERCENTILE = re.compile(r"percentile_cont\(\s*([0-9.]+)\s*\)\s*WITHIN\s+GROUP\s*\(\s*ORDER\s+BY\s+", re.I)


def to_dialect(sql: str, dialect: str) -> str:
    """The shipped SQL in another engine's spelling. ``duckdb``, ``spark`` and ``postgres`` take it
    as written; ``trino`` has no ``percentile_cont ... WITHIN GROUP`` and gets ``approx_percentile``.

    DuckDB and Spark SQL differ elsewhere, and the files are written so that it does not matter
    (tests/test_batch_spark.py runs both and compares every row): NULL placement in ORDER BY is
    spelled out (``NULLS LAST``; :func:`order_by` for the fetch); every share divides a ``CAST(...
    AS DOUBLE)``; booleans are summed through ``CASE WHEN ... THEN 1 ELSE 0 END``; weeks and
    lesson flags are columns, so no date function is called. sqlglot would translate more, but
    there is nothing left to translate for Spark, and Trino's one rewrite is below."""
    if dialect in ("duckdb", "spark", "postgres", "ansi"):
        return sql
    if dialect != "trino":
        raise ValueError(f"unknown SQL dialect {dialect!r} (duckdb, spark, trino, postgres)")
    out, pos = [], 0
    for m in _PERCENTILE.finditer(sql):
        out.append(sql[pos : m.start()])
        # the ORDER BY expression runs to the parenthesis that closes WITHIN GROUP (
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        expr = sql[m.end() : i - 1].strip()
        out.append(f"approx_percentile({expr}, {m.group(1)})")
        pos = i
    out.append(sql[pos:])
    return "".join(out)


def connect_parquet(root: str | Path, *, materialize: bool = False):
    """A DuckDB connection with ``runs``, ``checks``, ``causes`` over the Parquet layout.

    By default they are views over the files: each query reads only the columns it names
    (projection pushdown) straight from Parquet, on every core, and nothing is copied. That is
    faster and leaner than ``materialize`` (copy every column into DuckDB's storage once), which
    spent more time converting columns no query reads than the queries saved on rescans
    (1M runs: about 1.2 against 4 CPU seconds).
    """
    import duckdb  # heavy to import: only when a batch runs

    con = duckdb.connect()
    base = Path(root)
    for name in DATASETS:
        pattern = str(base / name / "**" / "*.parquet").replace("'", "''")
        if not any((base / name).rglob("*.parquet")):
            _empty_view(con, name)
            continue
        # DuckDB-only spelling, isolated here: the SQL files see plain tables (docs/boards.md).
        kind = "TABLE" if materialize else "VIEW"
        con.execute(
            f"CREATE {kind} {name} AS SELECT * FROM read_parquet('{pattern}', hive_partitioning = true, hive_types_autocast = false)"
        )
    register_reference(con)
    return con


def connect_arrow(tables: dict[str, Any]):
    """A DuckDB connection over Arrow tables in memory (tests, the benchmark)."""
    import duckdb  # heavy to import: only when a batch runs

    con = duckdb.connect()
    for name in DATASETS:
        con.register(name, tables[name])
    register_reference(con)
    return con


def reference_row() -> dict[str, float]:
    """The row of :data:`REFERENCE_TABLE`: column name -> value, from the reference data file."""
    return {"national_share_2024": national_share_2024()}


def register_reference(con: Any) -> None:
    """Create :data:`REFERENCE_TABLE` on ``con`` (the figures passed as parameters, never spelled in SQL)."""
    row = reference_row()
    columns = ", ".join(f"CAST(? AS DOUBLE) AS {name}" for name in row)
    con.execute(f"CREATE TABLE {REFERENCE_TABLE} AS SELECT {columns}", list(row.values()))


def _empty_view(con, name: str) -> None:
    import pyarrow as pa  # heavy to import: only when a batch runs

    schema = _schemas()[name]
    con.register(f"_{name}_empty", pa.Table.from_pylist([], schema=schema))
    con.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}_empty")


def aggregate(con) -> dict[str, Table]:
    """Run every SQL file in :data:`QUERIES` order; each result is kept as a table of that name."""
    out: dict[str, Table] = {}
    for name in QUERIES:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql_text(name)}")
        cur = con.execute(f"SELECT * FROM {name} ORDER BY {order_by(name)}")
        out[name] = Table([d[0] for d in cur.description], cur.fetchall())
    return out


READ_AGAIN = ("school_causes", "school_summary")
"""Results later files read: Spark keeps them in memory (a Spark view is computed again by every reader)."""


def connect_spark(root: str | Path, master: Optional[str] = None, session: Any = None) -> Any:
    """A SparkSession (``session``, or a new one on ``master``, default ``local[*]``) with
    ``runs``, ``checks``, ``causes`` over the Parquet layout and :data:`REFERENCE_TABLE`."""
    s = session if session is not None else spark.session(master)
    spark.register_parquet(s, root, _schemas())
    spark.register_reference(s, REFERENCE_TABLE, reference_row())
    return s


def aggregate_spark(session: Any) -> dict[str, Table]:
    """:func:`aggregate` on Spark SQL: the same files, in the same order, fetched in the same order."""
    try:
        return {
            name: spark.run_query(session, name, to_dialect(sql_text(name), "spark"), order_by(name), cache=name in READ_AGAIN)
            for name in QUERIES
        }
    finally:
        spark.uncache(session, READ_AGAIN)


def aggregate_dataset(root: str | Path, *, engine: str = "duckdb", spark_master: Optional[str] = None) -> dict[str, Table]:
    """The Parquet dataset under ``root`` -> every summary, on ``engine`` (the one place it is chosen)."""
    if engine == "duckdb":
        con = connect_parquet(root)
        try:
            return aggregate(con)
        finally:
            con.close()
    if engine == "spark":
        own = not spark.running()  # a session already running (a notebook's, a test's) is reused and left running
        session = connect_spark(root, spark_master)
        try:
            return aggregate_spark(session)
        finally:
            if own:
                session.stop()
    raise ValueError(f"engine: expected one of {', '.join(ENGINES)}, got {engine!r}")


# ----------------------------------------------------------------------------- outputs


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else round(v, 3)
    if isinstance(v, dt.datetime):
        return v.isoformat(timespec="seconds")
    if isinstance(v, bool):
        return "true" if v else "false"
    return csv_cell(v)  # text that would start a spreadsheet formula gets a leading ' (numbers stay numbers)


def write_csv(table: Table, path: str | Path) -> Path:
    """UTF-8 with a BOM and CRLF line ends: Excel opens Japanese text correctly on double-click."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(table.columns)
    for r in table.rows:
        w.writerow([_cell(v) for v in r])
    return write_atomic(path, "\ufeff" + buf.getvalue())


def run_batch(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    sites: Optional[dict[str, SchoolInfo]] = None,
    parquet: bool = True,
    partition: str = "month",
    engine: str = "duckdb",
    spark_master: Optional[str] = None,
) -> Summary:
    """Read, write the Parquet layout, aggregate on ``engine``. The library half of ``batch``.

    Without ``parquet``, DuckDB aggregates the Arrow tables in memory; Spark reads files, so the
    dataset is written to a temporary folder under ``out_dir`` and removed afterwards.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    inputs = read_inputs(paths, sites)
    tables = to_tables(inputs)
    if parquet:
        root = write_dataset(tables, Path(out_dir) / "parquet", partition=partition)
        return Summary(aggregate_dataset(root, engine=engine, spark_master=spark_master), inputs)
    if engine == "spark":
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".parquet-", dir=out_dir) as tmp:
            root = write_dataset(tables, tmp, partition=partition)
            return Summary(aggregate_dataset(root, engine=engine, spark_master=spark_master), inputs)
    con = connect_arrow(tables)
    try:
        return Summary(aggregate(con), inputs)
    finally:
        con.close()
