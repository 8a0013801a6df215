"""Run giga-netcheck inside a lab scenario and read its verdict (shared by tests and bench)."""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .netlab import Lab


@dataclass(frozen=True)
class Verdict:
    scenario: str
    expected: Optional[str]
    expected_segment: Optional[str]
    top: Optional[str]
    """Id of the highest-ranked claim (confidence >= 0.5), or None when nothing is claimed."""
    top_segment: Optional[str]
    claims: tuple[tuple[str, str, float], ...]
    status: str
    exit_code: int
    result: dict[str, Any]

    @property
    def correct(self) -> bool:
        return self.top == self.expected and (self.expected is None or self.top_segment == self.expected_segment)


def diagnose(lab: Lab, *, quick: bool = True, extra: tuple[str, ...] = (), timeout: float = 180.0) -> Verdict:
    """``giga-netcheck run --site <lab site>`` in the client namespace; parse the JSON result."""
    with tempfile.TemporaryDirectory(prefix="gnc-triage-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            "-m",
            "giga_netcheck",
            "run",
            "--site",
            str(lab.site_file),
            "--json",
            str(out),
            "--out",
            tmp,
            "--no-progress",
            "--lang",
            "en",
            *(("--quick",) if quick else ()),
            *extra,
        ]
        proc = lab.run("client", cmd, timeout=timeout)
        if not out.exists():
            raise AssertionError(f"no result from giga-netcheck (exit {proc.returncode}): {proc.stderr[-800:]}")
        doc = json.loads(out.read_text())
    claims = tuple((c["id"], c["segment"], c["confidence"]) for c in doc["causes"] if c["confidence"] >= 0.5)
    sc = lab.scenario
    return Verdict(
        scenario=sc.name,
        expected=sc.cause,
        expected_segment=sc.segment,
        top=claims[0][0] if claims else None,
        top_segment=claims[0][1] if claims else None,
        claims=claims,
        status=doc["status"],
        exit_code=proc.returncode,
        result=doc,
    )
