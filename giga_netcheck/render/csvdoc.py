"""CSV: one row per check, for Excel (also on Japanese Windows) and for boards' spreadsheets.

UTF-8 with a byte-order mark (Excel reads BOM-less UTF-8 as Shift_JIS on a Japanese machine
and garbles every kanji), CRLF line endings, headers from the message catalogue. Numbers are
written as measured (no thousands separators, no units: the unit has its own column), so a
spreadsheet can compute with them. Text from outside (school names, classrooms, ids, sources) that
would start a formula is neutralised with a leading ``'`` (``render.common.csv_cell``, OWASP's
advice against CSV injection); numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from typing import Optional

from giga_netcheck.core.i18n import Messages
from giga_netcheck.core.models import RunResult
from giga_netcheck.render.common import csv_cell, joined, source_text
from giga_netcheck.render.html import label_for_check

BOM = "\ufeff"
COLUMNS = (
    "school_id",
    "school_name",
    "run_id",
    "started_at",
    "classroom",
    "check_id",
    "check_label",
    "measured",
    "threshold",
    "warn_at",
    "unit",
    "status",
    "source",
    "estimate",
)
"""Column order; each header is the catalogue's ``csv.<column>``."""


def _number(v: Optional[float]) -> str:
    if v is None:
        return ""
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def render(r: RunResult, m: Messages) -> str:
    """The checks table as CSV text, BOM first (pure: no I/O)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow([m(f"csv.{c}") for c in COLUMNS])
    roles = {t.name: t.role for t in r.targets}
    for c in r.checks:
        status = m(f"status_word.{c.status}") if m.has(f"status_word.{c.status}") else c.status
        row = [
            r.school.id,
            r.school.name,
            r.run_id,
            r.started_at,
            c.classroom or "",
            c.id,
            label_for_check(m, c, roles),
            _number(c.measured),
            _number(c.threshold),
            _number(c.warn_at),
            c.unit,
            status,
            joined(source_text(m, c)[0]),
            m("value.yes") if c.estimate else m("value.no"),
        ]
        w.writerow([csv_cell(x) for x in row])
    return BOM + buf.getvalue()
