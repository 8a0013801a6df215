"""Realistic board data without a network: result documents and flattened run rows.

Everything starts from the real result documents the golden tests keep (tests/golden/results:
a healthy school, uplink and LAN capacity limits, DNS failure, failed probes); values are then
varied per school (its line, its size, its context) and per hour (lesson-time dips).

- :func:`make_schools` and :func:`make_doc` build whole result documents (collection and batch tests).
- :func:`make_rows` builds millions of flattened run rows as Arrow tables for the benchmark.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GOLDEN = ROOT / "tests" / "golden" / "results"
TEMPLATES = ("healthy", "uplink-capacity", "lan-capacity", "dns-failure", "failed-probes")
JST = dt.timezone(dt.timedelta(hours=9))
SIZES = (60, 120, 180, 280, 420, 560, 770, 1050, 1400)
REGIONS = ("north", "south", "east", "west", "island")
ISPS = ("ntt-east", "kddi", "softbank", "local-cable", "edu-net")
LINE_TYPES = ("ftth-1g", "ftth-10g", "catv", "dedicated")
CONTRACTS = ("best-effort",) * 19 + ("guaranteed",)  # 95% of boards buy best-effort lines
IPV4 = ("pppoe", "ipoe", "v4-over-v6")
MODELS = ("center", "local-breakout")


def templates() -> dict[str, dict[str, Any]]:
    return {name: json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8")) for name in TEMPLATES}


@dataclass(frozen=True)
class FakeSchool:
    id: str
    name: str
    students: int
    board: str
    context: dict[str, str]
    quality: float
    """Multiplies the template's bandwidth: 0.2 (a poor line) .. 2.0 (a fast one)."""
    template: str


def make_schools(n: int, boards: int = 3, seed: int = 7) -> list[FakeSchool]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        board = f"board-{i % boards + 1:02d}"
        ctx = {
            "board": board,
            "region": rng.choice(REGIONS),
            "isp": rng.choice(ISPS),
            "line_type": rng.choice(LINE_TYPES),
            "contract": rng.choice(CONTRACTS),
            "ipv4_method": rng.choice(IPV4),
            "connection_model": rng.choice(MODELS),
        }
        quality = rng.lognormvariate(0.0, 0.5)
        if ctx["ipv4_method"] == "pppoe":
            quality *= 0.6
        tpl = rng.choices(TEMPLATES, weights=(6, 3, 2, 1, 1))[0]
        out.append(FakeSchool(f"{board}-s{i:05d}", f"第{i + 1}小学校", rng.choice(SIZES), board, ctx, quality, tpl))
    return out


def lesson_factor(when: dt.datetime) -> float:
    """Bandwidth share left at this hour: lessons (esp. 11-12時) are slower than early morning."""
    h = when.hour + when.minute / 60
    if when.weekday() >= 5:
        return 1.0
    if 10.5 <= h < 12.5:
        return 0.55
    if 8.5 <= h < 15.5:
        return 0.7
    return 1.0


def make_doc(
    tpls: dict[str, dict[str, Any]], school: FakeSchool, when: dt.datetime, run_no: int, rng: Optional[random.Random] = None
) -> dict[str, Any]:
    """One varied result document for ``school`` at ``when`` (a deep copy of a real one)."""
    rng = rng or random.Random(run_no)
    doc = copy.deepcopy(tpls[school.template])
    f = school.quality * lesson_factor(when) * rng.uniform(0.8, 1.2)
    g = rng.uniform(0.8, 1.4) / max(lesson_factor(when), 0.5)
    doc["run_id"] = f"{abs(hash(school.id)) % 10**8:08d}-{run_no:012d}"
    doc["started_at"] = when.isoformat(timespec="seconds")
    doc["finished_at"] = (when + dt.timedelta(seconds=57)).isoformat(timespec="seconds")
    doc["school"] = {"id": school.id, "name": school.name, "students": school.students, "staff": None}
    doc["context"] = dict(school.context)
    for b in doc["measurements"]["bandwidth"]:
        if b.get("goodput_mbps") is not None:
            b["goodput_mbps"] = round(b["goodput_mbps"] * f, 1)
    for s in doc["measurements"]["latency"]:
        st = s["stats"]
        for k in ("min_ms", "p50_ms", "p95_ms", "max_ms"):
            if st.get(k) is not None:
                st[k] = round(st[k] * g, 2)
    for d in doc["measurements"]["dns"]:
        if d.get("p50_ms") is not None:
            d["p50_ms"] = round(d["p50_ms"] * rng.uniform(0.7, 1.5), 2)
    return doc


def school_times(start: dt.date, days: int, per_day: int, rng: random.Random) -> list[dt.datetime]:
    """Run times like a schedule: every few minutes between 07:30 and 17:30, weekdays mostly."""
    out = []
    for d in range(days):
        day = start + dt.timedelta(days=d)
        for _ in range(per_day if day.weekday() < 5 else max(1, per_day // 4)):
            minute = rng.randrange(7 * 60 + 30, 17 * 60 + 30)
            out.append(dt.datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=JST))
    return sorted(out)


# ------------------------------------------------------------------------------ benchmark rows


def base_rows() -> list[tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]:
    """Each golden template flattened once by the real code path (batch.flatten_result)."""
    from giga_netcheck.board.batch import flatten_result

    return [flatten_result(doc, f"golden/{name}.json") for name, doc in templates().items()]


def make_rows(
    n_runs: int, n_schools: int = 3000, boards: int = 30, seed: int = 11, start: dt.date = dt.date(2026, 4, 6), days: int = 84
) -> dict[str, Any]:
    """``n_runs`` flattened run rows (plus check and cause rows) as Arrow tables, varied with numpy."""
    import numpy as np
    import pyarrow as pa

    from giga_netcheck.board.batch import _mext, _schemas

    rng = np.random.default_rng(seed)
    schools = make_schools(n_schools, boards, seed)
    bases = base_rows()
    by_tpl = {name: i for i, name in enumerate(TEMPLATES)}

    sidx = rng.integers(0, n_schools, n_runs)
    day_off = rng.integers(0, days, n_runs)
    minute = rng.integers(7 * 60 + 30, 17 * 60 + 30, n_runs)
    start_ts = np.datetime64(dt.datetime(start.year, start.month, start.day), "m") - np.timedelta64(9 * 60, "m")  # JST midnight in UTC
    local = (
        np.datetime64(dt.datetime(start.year, start.month, start.day), "m")
        + day_off.astype("timedelta64[D]")
        + minute.astype("timedelta64[m]")
    )
    utc = start_ts + day_off.astype("timedelta64[D]") + minute.astype("timedelta64[m]")
    local_day = local.astype("datetime64[D]")
    weekday = (local_day.astype("int64") - 4) % 7  # 1970-01-01 was a Thursday
    week = local_day - weekday.astype("timedelta64[D]")
    hour = minute // 60
    h = minute / 60
    lesson = (weekday < 5) & (minute >= 8 * 60 + 30) & (minute < 15 * 60 + 30)
    factor = np.where(weekday >= 5, 1.0, np.where((h >= 10.5) & (h < 12.5), 0.55, np.where(lesson, 0.7, 1.0)))

    s_quality = np.array([s.quality for s in schools])
    s_tpl = np.array([by_tpl[s.template] for s in schools])
    tpl = s_tpl[sidx]
    # one run in 40 fails outright whatever the school (the line was down)
    broken = rng.random(n_runs) < 0.025
    tpl = np.where(broken, by_tpl["failed-probes"], tpl)

    def col(key: str) -> np.ndarray:
        vals = np.array([np.nan if b[0][key] is None else float(b[0][key]) for b in bases])
        return vals[tpl]

    noise = rng.uniform(0.8, 1.2, n_runs)
    bw = s_quality[sidx] * factor * noise
    slow = rng.uniform(0.8, 1.4, n_runs) / np.maximum(factor, 0.5)
    down, up = col("down_mbps") * bw, col("up_mbps") * bw
    students = np.array([s.students for s in schools])[sidx]
    mext_of = {n: _mext(int(n))[0] for n in set(int(x) for x in students)}
    mext = np.vectorize(mext_of.get)(students).astype(float)
    mext_ok = np.where(np.isnan(down), None, down >= mext)

    strs = lambda arr: pa.array(arr.astype(str))  # noqa: E731
    names = np.array([s.name for s in schools])
    ids = np.array([s.id for s in schools])
    boards_a = np.array([s.board for s in schools])
    run_ids = np.char.add("r", np.arange(n_runs).astype(str))
    statuses = np.array([b[0]["status"] for b in bases])[tpl]
    statuses = np.where(~broken & (statuses != "error") & (down < mext * 0.5), "fail", statuses)
    ctx = {
        k: np.array([s.context[k] for s in schools])[sidx]
        for k in ("region", "isp", "line_type", "contract", "ipv4_method", "connection_model")
    }

    def f64(a: np.ndarray) -> pa.Array:
        return pa.array(a, type=pa.float64(), from_pandas=True)

    day_s = local_day.astype(str)
    week_s = week.astype(str)
    runs = pa.table(
        {
            "run_id": pa.array(run_ids),
            "source": pa.array(np.full(n_runs, "result")),
            "file": pa.array(np.full(n_runs, "bench")),
            "board": strs(boards_a[sidx]),
            "school_id": strs(ids[sidx]),
            "school_name": strs(names[sidx]),
            **{k: strs(v) for k, v in ctx.items()},
            "students": pa.array(students, type=pa.int32()),
            "started_at": pa.array(utc.astype("datetime64[us]"), type=pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC")),
            "day": pa.array(day_s),
            "week": pa.array(week_s),
            "hour": pa.array(hour, type=pa.int32()),
            "lesson": pa.array(lesson),
            "status": strs(statuses),
            "mode": pa.array(np.full(n_runs, "scheduled")),
            "down_mbps": f64(down),
            "up_mbps": f64(up),
            "down_center_mbps": f64(col("down_center_mbps") * bw),
            "rtt_gateway_ms": f64(col("rtt_gateway_ms") * slow),
            "rtt_center_ms": f64(col("rtt_center_ms") * slow),
            "rtt_internet_ms": f64(col("rtt_internet_ms") * slow),
            "loss_pct": f64(col("loss_pct")),
            "dns_p50_ms": f64(col("dns_p50_ms") * rng.uniform(0.7, 1.5, n_runs)),
            "knee_connections": f64(np.where(rng.random(n_runs) < 0.3, rng.integers(8, 64, n_runs), np.nan)),
            "knee_mbps": f64(np.where(rng.random(n_runs) < 0.3, down * 0.9, np.nan)),
            "mext_mbps": f64(mext),
            "mext_estimate": pa.array(np.isin(students, (60, 120, 180, 280, 560, 770, 1050, 1400), invert=True)),
            "mext_ok": pa.array(mext_ok, type=pa.bool_()),
            "causes": pa.array(np.full(n_runs, "")),
        }
    ).cast(_schemas()["runs"])

    # causes: the template's claimed causes per run (+ peak congestion in lesson hours at slow schools)
    cause_lists = [[c["cause_id"] for c in b[2]] for b in bases]
    c_run, c_cause = [], []
    peak = lesson & (bw < 0.5)
    for t_i, causes in enumerate(cause_lists):
        rows_i = np.nonzero(tpl == t_i)[0]
        for cid in causes:
            c_run.append(rows_i)
            c_cause.append(np.full(len(rows_i), cid))
    c_run.append(np.nonzero(peak)[0])
    c_cause.append(np.full(int(peak.sum()), "peak-congestion"))
    cr = np.concatenate(c_run)
    cc = np.concatenate(c_cause)
    causes = pa.table(
        {
            "run_id": pa.array(run_ids[cr]),
            "board": strs(boards_a[sidx][cr]),
            "day": pa.array(day_s[cr]),
            "week": pa.array(week_s[cr]),
            "school_id": strs(ids[sidx][cr]),
            "cause_id": pa.array(cc),
        }
    )
    # checks: the template's check ids and statuses per run (only a sample of runs: full runs carry checks)
    check_runs = np.nonzero(rng.random(n_runs) < 0.1)[0]
    k_run, k_id, k_room, k_status = [], [], [], []
    for t_i, base in enumerate(bases):
        rows_i = check_runs[tpl[check_runs] == t_i]
        for c in base[1]:
            k_run.append(rows_i)
            k_id.append(np.full(len(rows_i), c["check_id"]))
            k_room.append(np.full(len(rows_i), c["classroom"] or ""))
            k_status.append(np.full(len(rows_i), c["status"]))
    kr = np.concatenate(k_run)
    checks = pa.table(
        {
            "run_id": pa.array(run_ids[kr]),
            "board": strs(boards_a[sidx][kr]),
            "day": pa.array(day_s[kr]),
            "school_id": strs(ids[sidx][kr]),
            "check_id": pa.array(np.concatenate(k_id)),
            "classroom": pa.array(np.concatenate(k_room)),
            "status": pa.array(np.concatenate(k_status)),
        }
    )
    return {"runs": runs, "checks": checks, "causes": causes}
