"""Find and remove labs left behind: by a crashed run, a ``kill -9``, or ``up --detach``.

A lab namespace is named ``gnc-<run id>-<host>`` (topology.NS_PREFIX); only names of exactly
that shape are touched, so other tools' namespaces are safe even if they start with ``gnc-``.
Every process of a lab lives in one of its namespaces (services through ``ip netns exec``, the
forwarder by ``setns`` once its TUN devices exist), so killing what is inside the namespaces
and deleting them removes everything, veths and TUN devices included.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .netlab import ETC_NETNS, STATE_ROOT
from .netns import kill_pids, netns_delete, netns_list, pids_in_netns, process_start, wait_gone
from .topology import HOSTS, NS_PREFIX

__all__ = ["LabRecord", "find_labs", "clean", "clean_orphans"]

_NAME = re.compile(rf"^{re.escape(NS_PREFIX)}([0-9a-z]{{1,10}})-({'|'.join(HOSTS)})$")


@dataclass(frozen=True)
class LabRecord:
    """A lab found on this machine: its namespaces and, when it wrote one, its state file."""

    run_id: str
    namespaces: list[str]
    state: Optional[dict]
    """state.json as the lab wrote it on coming up (scenario, site file, pids), if present."""

    @property
    def scenario(self) -> str:
        """Scenario name, or ``?`` without a state file."""
        return str((self.state or {}).get("scenario", "?"))

    @property
    def owner_alive(self) -> bool:
        """True while the process that built the lab still runs (and has not detached it).

        The owner is its pid and start time together: after pids wrap, an unrelated process
        with the owner's pid does not keep a dead run's lab alive."""
        state = self.state or {}
        pid = state.get("owner_pid")
        if not isinstance(pid, int) or state.get("detached"):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        start = state.get("owner_start")
        return not isinstance(start, int) or process_start(pid) == start

    @property
    def orphaned(self) -> bool:
        """Left behind by a run that died (a SIGKILL, a CI timeout): it has a state file that
        names an owner, the owner is gone, and it was not detached for a person to use. Only
        such labs are removed without being named; a lab without a readable state file may
        belong to a run whose state lives elsewhere (another TMPDIR) and is left alone."""
        state = self.state or {}
        return isinstance(state.get("owner_pid"), int) and not state.get("detached") and not self.owner_alive


def _read_state(run_id: str) -> Optional[dict]:
    try:
        return json.loads((STATE_ROOT / run_id / "state.json").read_text())
    except (OSError, ValueError):
        return None


def find_labs() -> list[LabRecord]:
    """Labs on this machine: namespaces of the lab's shape, plus state dirs without them."""
    by_id: dict[str, list[str]] = {}
    for name in netns_list(NS_PREFIX):
        match = _NAME.match(name)
        if match:
            by_id.setdefault(match.group(1), []).append(name)
    if STATE_ROOT.is_dir():
        for entry in STATE_ROOT.iterdir():
            by_id.setdefault(entry.name, [])
    records = []
    for run_id, names in sorted(by_id.items()):
        records.append(LabRecord(run_id, sorted(names), _read_state(run_id)))
    # Newest first, so "the current lab" is records[0].
    records.sort(key=lambda r: (r.state or {}).get("started", 0), reverse=True)
    return records


def clean(run_id: Optional[str] = None, include_live: bool = False) -> list[str]:
    """Kill the processes of labs and delete their namespaces; the names of what went.

    Without ``run_id``, every lab whose owner is gone (crashed, killed, or ``up --detach``);
    ``include_live`` also takes labs whose owner still runs (a test run, a foreground ``up``).
    """
    removed = []
    for record in find_labs():
        if run_id is not None and record.run_id != run_id:
            continue
        if run_id is None and record.owner_alive and not include_live:
            continue
        killed = [pid for pids in pids_in_netns(record.namespaces).values() for pid in pids]
        kill_pids(killed)
        wait_gone(killed)
        netns_delete(record.namespaces)
        for name in record.namespaces:
            shutil.rmtree(ETC_NETNS / name, ignore_errors=True)
        shutil.rmtree(STATE_ROOT / record.run_id, ignore_errors=True)
        removed.extend(record.namespaces or [f"{STATE_ROOT / record.run_id} (state only)"])
    # ip netns exec's per-namespace /etc files of labs whose namespaces are already gone.
    if ETC_NETNS.is_dir():
        for entry in ETC_NETNS.iterdir():
            match = _NAME.match(entry.name)
            if match and (run_id is None or match.group(1) == run_id) and entry.name not in netns_list(NS_PREFIX):
                shutil.rmtree(entry, ignore_errors=True)
    return removed


def clean_orphans() -> list[str]:
    """Remove the labs of runs that died (:attr:`LabRecord.orphaned`): their forwarders and
    servers would otherwise go on using CPU beside every later run. What went, by name."""
    removed = []
    for record in find_labs():
        if record.orphaned:
            removed.extend(clean(record.run_id))
    return removed


def state_path(run_id: str) -> Path:
    """Where lab ``run_id`` keeps its state file."""
    return STATE_ROOT / run_id / "state.json"
