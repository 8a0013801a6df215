"""A scheduled (light) run in the lab's healthy school stays within its 5 MB budget, counted
from the client's own interface counters, and finishes within its time limit."""

from __future__ import annotations

import json
import sys
import time

import pytest

pytestmark = pytest.mark.lab


def _iface_bytes(lab) -> int:
    """rx + tx bytes of every interface in the client namespace but lo (/proc/net/dev)."""
    text = lab.run("client", ["cat", "/proc/net/dev"]).stdout
    total = 0
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            continue
        cols = rest.split()
        total += int(cols[0]) + int(cols[8])
    return total


def test_scheduled_run_uses_at_most_5_mb_and_finishes_in_time(healthy_lab, tmp_path):
    lab = healthy_lab
    history = tmp_path / "history.jsonl"
    before = _iface_bytes(lab)
    t0 = time.monotonic()
    proc = lab.run(
        "client",
        [
            sys.executable,
            "-m",
            "giga_netcheck",
            "run",
            "--site",
            str(lab.site_file),
            "--mode",
            "scheduled",
            "--splay",
            "0",
            "--time-limit",
            "90",
            "--history",
            str(history),
            "--out",
            str(tmp_path),
            "--json",
            str(tmp_path / "r.json"),
            "--no-progress",
        ],
        timeout=120,
    )
    took = time.monotonic() - t0
    moved = _iface_bytes(lab) - before
    print(f"scheduled run in the lab: {moved} bytes on the client's interfaces, {took:.1f} s, exit {proc.returncode}")
    assert proc.returncode in (0, 1), proc.stderr[-800:]
    assert moved <= 5_000_000 * 1.1, f"{moved} bytes (budget 5 MB of transfers, 10% allowed for headers, ACKs, probes)"
    assert took < 90
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["mode"] == "scheduled"
    assert all(b["engine"] == "http-capped" for b in doc["measurements"]["bandwidth"])
    lines = history.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["school"]
