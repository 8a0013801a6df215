"""``batch --engine spark``: the same SQL files as DuckDB, on Spark SQL through pyspark.

The engine's half only: start a session, register views over the Parquet dataset
``batch.write_dataset`` writes (Hive layout, partitioned by board and month or day) and the
reference table, run one query, return a :class:`Table`. What to run, in which order, is
batch.py's (``batch.connect_spark``, ``batch.aggregate_spark``), so this module does not import
it. The results equal DuckDB's row for row (tests/test_batch_spark.py), so the CSV files, the
dashboard and the summaries do not depend on the engine.

Local mode (``local[*]``) by default, tuned for a small machine: few shuffle partitions, a
bounded driver heap, no web UI, and every listener on loopback. ``master`` names a cluster
(``spark://host:7077``, ``yarn``...); there the driver must be reachable by the executors, so it
keeps Spark's own address settings.

pyspark and a Java runtime are the ``[spark]`` extra (pyproject.toml): without them
:func:`missing_spark` says what is absent and ``batch`` prints :data:`SPARK_EXTRA_INSTALL`.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Optional

from giga_netcheck.core.board_summary import Table

DEFAULT_MASTER = "local[*]"
MIN_JAVA = 17
"""pyspark 4 (the ``[spark]`` extra) runs on Java 17 or later."""
SPARK_EXTRA_INSTALL = (
    "pip install 'giga-netcheck[spark]' and a Java 17+ runtime (Debian/Ubuntu: apt-get install default-jre-headless; or set JAVA_HOME)"
)
"""How to add what ``--engine spark`` needs, in the one line ``batch`` prints without it."""

LOCAL_CONF = {
    "spark.driver.host": "127.0.0.1",  # no listener beyond loopback in local mode
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",  # the progress bar would interleave with batch's output
    "spark.driver.memory": "2g",  # local mode: the driver is the executor; 10M runs fit (docs/boards.md)
    # small data per shuffle here: re-planning each stage (adaptive execution) cost more than it
    # saved (100k runs: about 17 against 24 s for the nine files on a loaded 2-core machine)
    "spark.sql.adaptive.enabled": "false",
}
"""Local mode only: a cluster's driver must be reachable from its executors."""

COMMON_CONF = {
    # partition folders (board=, month=, day=) stay strings, as written
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",  # errors, not silent NULLs, on overflow or a division by zero
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}

# Spark's own start-up lines (log4j defaults, the native-hadoop warning) go: errors only.
_LOG4J = """rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark: %p %c{1}: %m%n
"""


def java_command() -> Optional[str]:
    """The ``java`` Spark will start: ``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        exe = Path(home) / "bin" / "java"
        return str(exe) if exe.is_file() and os.access(exe, os.X_OK) else None
    return shutil.which("java")


def java_major(java: str) -> Optional[int]:
    """The major version of ``java`` (``java -version``), or None when it does not answer."""
    try:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def missing_spark() -> list[str]:
    """What ``--engine spark`` needs and does not find here: ``pyspark``, ``java`` (or ``java 17+``).

    Empty: Spark can start. Imports pyspark (heavy, so only when a Spark batch is about to run).
    """
    missing = []
    try:
        importlib.import_module("pyspark")
    except ImportError:
        missing.append("pyspark")
    java = java_command()
    if java is None:
        missing.append("java")
    else:
        major = java_major(java)
        if major is None or major < MIN_JAVA:
            missing.append(f"java {MIN_JAVA}+ (found {major or 'an unreadable version'})")
    return missing


def missing_line(missing: list[str]) -> str:
    """The one line ``batch --engine spark`` prints when something is missing."""
    return f"--engine spark needs {', '.join(missing)}, which the default install leaves out (the [spark] extra): {SPARK_EXTRA_INSTALL}"


def is_local(master: str) -> bool:
    return master == "local" or master.startswith("local[")


def running() -> bool:
    """A SparkSession is active in this process (a caller's, or a test's): reused, never stopped by batch."""
    from pyspark.sql import SparkSession  # heavy to import: only when a Spark batch runs

    return SparkSession.getActiveSession() is not None


def session(master: Optional[str] = None, app_name: str = "giga-netcheck batch") -> Any:
    """A SparkSession (the running one when there is one): local by default, tuned for a small machine."""
    from pyspark.sql import SparkSession  # heavy to import: only when a Spark batch runs

    master = master or DEFAULT_MASTER
    conf = dict(COMMON_CONF)
    if is_local(master):
        conf.update(LOCAL_CONF)
        cores = os.cpu_count() or 2
        conf["spark.sql.shuffle.partitions"] = str(2 * cores)  # default 200: 200 tiny tasks per shuffle
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile=file:{_log4j_file()}"
    builder = SparkSession.builder.master(master).appName(app_name)
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _log4j_file() -> Path:
    path = Path(tempfile.gettempdir()) / f"giga-netcheck-spark-log4j2-{os.getuid() if hasattr(os, 'getuid') else 0}.properties"
    if not path.is_file() or path.read_text(encoding="utf-8") != _LOG4J:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(_LOG4J, encoding="utf-8")
        os.replace(tmp, path)
    return path


def _spark_schema(arrow_schema: Any) -> Any:
    """An Arrow schema (batch._schemas()) as a Spark StructType, for a table with no file yet."""
    import pyarrow as pa  # heavy to import: only when a Spark batch runs
    from pyspark.sql import types as T  # the same

    def one(t: Any) -> Any:
        if pa.types.is_string(t):
            return T.StringType()
        if pa.types.is_float64(t):
            return T.DoubleType()
        if pa.types.is_int32(t):
            return T.IntegerType()
        if pa.types.is_boolean(t):
            return T.BooleanType()
        if pa.types.is_timestamp(t):
            return T.TimestampType()
        raise TypeError(f"no Spark type for {t}")

    return T.StructType([T.StructField(f.name, one(f.type), True) for f in arrow_schema])


def register_parquet(spark: Any, root: str | Path, schemas: dict[str, Any]) -> None:
    """A view per table of ``schemas`` (``runs``, ``checks``, ``causes``) over ``root/<name>``.

    ``basePath`` makes the Hive folders (``board=``, ``month=`` or ``day=``) columns; with type
    inference off they stay strings, as written. A table with no file yet gets an empty view of
    its schema (Spark cannot infer one from no file).
    """
    base = Path(root)
    for name, schema in schemas.items():
        folder = base / name
        if folder.is_dir() and any(folder.rglob("*.parquet")):
            df = spark.read.option("basePath", str(folder)).parquet(str(folder))
        else:
            df = spark.createDataFrame([], _spark_schema(schema))
        df.createOrReplaceTempView(name)


def register_reference(spark: Any, table: str, row: dict[str, float]) -> None:
    """The one-row reference table (batch.register_reference on DuckDB): each value a DOUBLE."""
    from pyspark.sql import types as T  # heavy to import: only when a Spark batch runs

    schema = T.StructType([T.StructField(k, T.DoubleType(), True) for k in row])
    spark.createDataFrame([tuple(float(v) for v in row.values())], schema).createOrReplaceTempView(table)


def run_query(spark: Any, name: str, sql: str, order: str, *, cache: bool = False) -> Table:
    """Run ``sql`` as the view ``name`` (kept in memory with ``cache``: later queries read it) and
    fetch its rows ordered by ``order``."""
    df = spark.sql(sql)
    if cache:
        df = df.cache()
    df.createOrReplaceTempView(name)
    return _table(spark.sql(f"SELECT * FROM {name} ORDER BY {order}"))


def uncache(spark: Any, names: Any) -> None:
    for name in names:
        spark.catalog.uncacheTable(name)


def _table(df: Any) -> Table:
    """Rows as DuckDB returns them: Python values; timestamps aware, in the local time zone
    (DuckDB's default), so the CSV files and the dashboard print the same text."""
    arrow = df.toArrow()
    cols = []
    for i, field in enumerate(arrow.schema):
        values = arrow.column(i).to_pylist()
        if str(field.type).startswith("timestamp"):
            values = [v if v is None else v.astimezone() for v in values]
        cols.append(values)
    return Table(list(arrow.schema.names), list(zip(*cols)))
