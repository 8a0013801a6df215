"""CLI commands for boards of education: ``batch`` (many results -> summaries) and ``upload``
(deliver a spool of results to the center). Registered on the main app by :func:`register`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import typer

from giga_netcheck.board import batch, spark
from giga_netcheck.board.upload import deliver, results_url, upload
from giga_netcheck.cli.common import err, error_line, out
from giga_netcheck.core.errors import ConfigError
from giga_netcheck.core.i18n import Messages, detect_lang
from giga_netcheck.core.models import to_dict
from giga_netcheck.core.results import write_atomic
from giga_netcheck.render import dashboard as board_html

TOKEN_ENV = "GIGA_NETCHECK_UPLOAD_TOKEN"


def batch_cmd(
    paths: list[str] = typer.Argument(
        ..., help="Result JSON files, history JSON Lines files, folders (searched recursively) and globs (quote them: 'results/**/*.json')."
    ),
    out_dir: Path = typer.Option(
        Path("reports/board"), "--out", "-o", help="Folder for the CSV files, the dashboard and the Parquet dataset."
    ),
    sites: list[Path] = typer.Option(
        [],
        "--site",
        "-s",
        help="Site files giving names, student counts, lesson hours and context: to schools whose runs do not carry them (history lines). Repeat the option.",
    ),
    formats: list[str] = typer.Option(
        ["csv", "html", "parquet"], "--format", "-f", help="Outputs: csv, html, parquet (repeat; default all three)."
    ),
    lang: Optional[str] = typer.Option(None, "--lang", help="Dashboard language: en or ja (default: from the locale)."),
    partition: str = typer.Option(
        "month",
        "--partition",
        help="Date granularity of the Parquet folders under board=<id>/: month (month=YYYY-MM, the default: few large files) or day (day=YYYY-MM-DD, for datasets with large days).",
    ),
    engine: str = typer.Option(
        "duckdb",
        "--engine",
        help="SQL engine: duckdb (in this process, the default) or spark (Spark SQL through pyspark: the [spark] extra and Java 17+).",
    ),
    spark_master: Optional[str] = typer.Option(
        None,
        "--spark-master",
        help="With --engine spark: the cluster to run on (spark://host:7077, yarn, ...); default local[*], this machine.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not list each skipped file."),
) -> None:
    """Summarise many schools' results for a board: per school and per board, as CSV, an HTML dashboard and Parquet.

    Bad or partial files are skipped with their reason; the batch never stops on one. Exit codes:
    0 done, 2 usage or site-file error (or the [board] extra, or for --engine spark pyspark or Java, is
    not installed), 3 no run could be read.
    """
    m = Messages(lang or detect_lang())
    missing = batch.missing_board_modules()
    if missing:  # the [board] extra is not installed (pyproject.toml)
        err.print(
            error_line(m("batch.needs_board", modules=", ".join(missing), command=batch.BOARD_EXTRA_INSTALL)),
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    if engine not in batch.ENGINES:
        err.print(
            error_line(m("error.config", message=f"--engine: expected duckdb or spark, got {engine!r}")), highlight=False, soft_wrap=True
        )
        raise typer.Exit(2)
    if spark_master and engine != "spark":
        err.print(error_line(m("error.config", message="--spark-master needs --engine spark")), highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    if engine == "spark":
        missing = spark.missing_spark()
        if missing:  # the [spark] extra or Java is not installed (pyproject.toml)
            err.print(error_line(m("error.config", message=spark.missing_line(missing))), highlight=False, soft_wrap=True)
            raise typer.Exit(2)
    if partition not in batch.PARTITIONS:
        err.print(error_line(m("error.config", message=f"--partition: expected month or day, got {partition!r}")))
        raise typer.Exit(2)
    unknown = [f for f in formats if f not in ("csv", "html", "parquet")]
    if unknown:
        err.print(error_line(m("error.config", message=f"--format: unknown format {unknown[0]!r} (known: csv, html, parquet)")))
        raise typer.Exit(2)
    try:
        info = batch.load_sites(sites)
    except ConfigError as exc:
        err.print(error_line(m("error.config", message=str(exc))), highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    summary = batch.run_batch(
        paths, out_dir, sites=info, parquet="parquet" in formats, partition=partition, engine=engine, spark_master=spark_master
    )
    inp = summary.inputs
    if not quiet:
        for s in inp.skipped:
            err.print(f"· {m('batch.skipped', path=s.path, reason=s.reason)}", style="yellow", highlight=False, soft_wrap=True)
    err.print(
        m(
            "batch.read",
            runs=len(inp.runs),
            files=inp.files,
            results=inp.result_files,
            histories=inp.history_files,
            skipped=len(inp.skipped),
            bad_lines=inp.bad_lines,
            duplicates=inp.duplicates,
        ),
        highlight=False,
        soft_wrap=True,
    )
    if not inp.runs:
        err.print(error_line(m("batch.nothing")))
        raise typer.Exit(3)
    written: list[Path] = []
    if "csv" in formats:
        written += [batch.write_csv(t, out_dir / f"{name}.csv") for name, t in summary.tables.items()]
    if "html" in formats:
        written.append(write_atomic(out_dir / "board.html", board_html.render(summary, m)))
    if "parquet" in formats:
        written.append(out_dir / "parquet")
    for p in written:
        out.print(m("batch.written", path=str(p)), highlight=False, soft_wrap=True)


def upload_cmd(
    spool_dir: Path = typer.Option(..., "--spool", help="The spool folder that run --upload keeps (default there: OUT/spool)."),
    url: str = typer.Option(..., "--url", help="The center's collection server, e.g. http://center.example:8080."),
    token: Optional[str] = typer.Option(None, "--token", envvar=TOKEN_ENV, help=f"Upload token (or ${TOKEN_ENV})."),
    retries: int = typer.Option(3, "--retries", min=0, max=10, help="Tries per result after the first, with backoff."),
    lang: Optional[str] = typer.Option(None, "--lang", help="Message language: en or ja."),
) -> None:
    """Send the results waiting in a spool to the center (each is stored there exactly once).

    Exit codes: 0 spool empty, 1 some results still wait (center unreachable) or were refused, 2 usage error.
    """
    m = Messages(lang or detect_lang())
    try:
        results_url(url)
    except ValueError as exc:
        err.print(error_line(m("error.config", message=f"--url: {exc}")))
        raise typer.Exit(2) from None
    d = deliver(spool_dir, url, token, retries=retries)
    report_delivery(m, d, spool_dir)
    raise typer.Exit(0 if not d.pending and not d.rejected else 1)


def report_delivery(m: Messages, d: Any, spool_dir: Path) -> None:
    """Print what a delivery did (shared with ``run --upload``)."""
    plain = dict(markup=False, highlight=False, soft_wrap=True)  # the center's reasons are shown as written
    if d.insecure:
        err.print(m("upload.insecure", host=d.insecure), style="yellow", **plain)
    if d.stored or d.duplicates:
        err.print(m("upload.stored", stored=len(d.stored), duplicates=len(d.duplicates)), highlight=False, soft_wrap=True)
    for run_id, reason in d.rejected:
        err.print(
            m("upload.rejected", run_id=run_id, reason=reason, folder=str(Path(spool_dir) / "rejected")),
            style="red",
            highlight=False,
            soft_wrap=True,
        )
    for run_id, reason in d.held:
        err.print(m("upload.held", run_id=run_id, reason=reason, spool=str(spool_dir)), style="yellow", **plain)
    if d.busy:
        err.print(m("upload.busy", spool=str(spool_dir), n=d.pending), highlight=False, soft_wrap=True)
    elif d.auth_error:
        err.print(m("upload.auth", reason=d.auth_error, n=d.pending, spool=str(spool_dir)), style="red", **plain)
    elif d.pending and (d.error or not d.held):
        err.print(
            m("upload.pending", n=d.pending, spool=str(spool_dir), error=d.error or ""), style="yellow", highlight=False, soft_wrap=True
        )


def upload_after_run(m: Messages, result: Any, url: str, token: Optional[str], spool_dir: Path) -> None:
    """``run --upload``: the result (it carries the site's context:) to the spool, then the spool to the center."""
    doc = to_dict(result)
    try:
        d = upload(doc, url, token or os.environ.get(TOKEN_ENV), spool_dir)
    except ValueError as exc:  # a bad URL: the reports are written, the upload is not possible
        err.print(error_line(m("error.config", message=f"--upload: {exc}")), highlight=False, soft_wrap=True)
        return
    except OSError as exc:  # the spool cannot be written (disk full, permissions)
        err.print(
            error_line(m("error.config", message=f"--spool {spool_dir}: {exc.strerror or exc}")),
            highlight=False,
            soft_wrap=True,
        )
        return
    report_delivery(m, d, spool_dir)


def register(app: typer.Typer) -> None:
    app.command("batch")(batch_cmd)
    app.command("upload")(upload_cmd)
