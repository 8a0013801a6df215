"""Sending results to the board's center (``run --upload URL``, ``upload --spool DIR``).

Every result goes to a local *spool* folder first (one file per run id, written atomically),
and is removed from it only when the center has answered that it stored it (201) or already
had it (200, ``duplicate``). So:

- while the line or the center is down, results wait in the spool; the next run (or
  ``giga-netcheck upload``) sends them;
- a result whose answer was lost on the way is sent again, and the center, idempotent by run
  id, stores it once: at-least-once sending + deduplication = exactly-once storage;
- a result the center refuses as bad (its collector's JSON refusal with a 4xx other than
  401/403/408/429: malformed, too large, too deep, a run id conflict) is *quarantined*: it moves
  to ``spool/rejected/`` with the center's reason beside it, and the results behind it are sent;
- an authentication refusal (401: unknown or expired token; 403: a token for another school or
  board) is configuration, not a bad result: the result stays in the spool and is sent once the
  token is fixed (401 stops the pass: every result would meet it);
- any other 4xx without the collector's refusal (404 from a wrong URL, a proxy's 400) also stops
  the pass and keeps every result: the center, not the result, is wrong.

Transient failures (no connection, timeouts, 5xx, 408, 429) are retried a bounded number of
times with exponential backoff and jitter; then the next result is tried once, so one result
the center cannot take never holds back the rest; when that fails too, delivery stops, keeping
the rest for later.

A bearer token sent over plain ``http://`` to a host that is not this machine crosses the
network in clear: :attr:`Delivery.insecure` names the host so the command can say so.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlsplit, urlunsplit

import httpx

from giga_netcheck.core.files import lock_fd
from giga_netcheck.core.results import _safe, write_atomic

REJECTED = "rejected"
LOCK = ".lock"


@dataclass
class Delivery:
    """What one delivery pass did."""

    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """(run id, the center's reason)."""
    pending: int = 0
    """Results still in the spool (the center unreachable, or another delivery holds the lock)."""
    error: Optional[str] = None
    """Why delivery stopped early, if it did."""
    busy: bool = False
    held: list[tuple[str, str]] = field(default_factory=list)
    """(run id, the center's reason): refused for the token (401/403), kept in the spool."""
    auth_error: Optional[str] = None
    """The center refused the token itself (401): nothing more was sent; fix the token."""
    insecure: Optional[str] = None
    """The host a token was sent to over plain HTTP (not this machine): it crossed the network in clear."""


AUTH = (401, 403)
TRANSIENT = (408, 425, 429)


def plain_http_host(url: str, token: Optional[str]) -> Optional[str]:
    """The host of ``url`` when a token sent there would cross a network in clear (``http://``,
    not a loopback address or ``localhost``); None otherwise."""
    parts = urlsplit(url)
    if not token or parts.scheme != "http":
        return None
    host = (parts.hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return host or None


def results_url(url: str) -> str:
    """``http://center:8080`` -> ``http://center:8080/results`` (a URL ending in /results is kept)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r}: expected an http:// or https:// URL")
    path = parts.path.rstrip("/")
    if not path.endswith("/results"):
        path += "/results"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def spool(doc: dict[str, Any], spool_dir: str | Path) -> Path:
    """Keep ``doc`` in the spool (atomically); the file name is its run id."""
    run_id = str(doc.get("run_id") or "")
    name = _safe(run_id) or f"run-{time.time_ns()}"
    return write_atomic(Path(spool_dir) / f"{name}.json", json.dumps(doc, ensure_ascii=False))


def pending(spool_dir: str | Path) -> list[Path]:
    d = Path(spool_dir)
    if not d.is_dir():
        return []
    return sorted((p for p in d.glob("*.json") if not p.name.startswith(".")), key=lambda p: (p.stat().st_mtime, p.name))


def deliver(
    spool_dir: str | Path,
    url: str,
    token: Optional[str],
    *,
    retries: int = 3,
    backoff_s: float = 1.0,
    timeout_s: float = 20.0,
    transport: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """Send every spooled result, oldest first; see the module docstring for what happens to each."""
    target = results_url(url)
    d = Path(spool_dir)
    d.mkdir(parents=True, exist_ok=True)
    out = Delivery()
    fd = os.open(d / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            lock_fd(fd, wait=False)
        except OSError:
            out.busy = True  # another run is delivering this spool right now
            out.pending = len(pending(d))
            return out
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        with httpx.Client(timeout=timeout_s, transport=transport, follow_redirects=False) as client:
            files = pending(d)
            if files:
                out.insecure = plain_http_host(target, token)
            failed: Optional[Path] = None  # the last result that met a transient failure
            for i, path in enumerate(files):
                try:
                    body = path.read_bytes()
                except OSError:
                    continue  # gone (delivered by someone else) or unreadable: not ours to judge
                run_id = path.stem
                # after a transient failure, the next result gets one try: is it the center or that result?
                tries = 0 if failed is not None else retries
                status, answer, error = _send(client, target, body, headers, tries, backoff_s, sleep)
                reason = f"{status} {answer.get('error', '')}: {answer.get('reason', '')}".strip()
                if status in (200, 201):
                    (out.duplicates if status == 200 else out.stored).append(run_id)
                    _unlink(path)
                    failed = None
                elif status == 401:
                    out.auth_error = reason
                    out.pending = len(pending(d))
                    return out
                elif status == 403:
                    out.held.append((run_id, reason))
                    failed = None
                elif status is not None and 400 <= status < 500 and status not in TRANSIENT:
                    if not isinstance(answer.get("error"), str):  # not the collector's refusal: a wrong URL, a proxy
                        out.error = f"the center answered {status} without a collector's reason (is {target} a giga-netcheck collector?)"
                        out.pending = len(pending(d))
                        return out
                    _reject(d, path, reason)
                    out.rejected.append((run_id, reason))
                    failed = None
                elif failed is None and i + 1 < len(files):
                    failed = path
                    out.error = error or f"the center answered {status}"
                else:
                    out.error = error or f"the center answered {status}"
                    out.pending = len(pending(d))
                    return out
            out.pending = len(pending(d))
        return out
    finally:
        os.close(fd)


def _send(
    client, url: str, body: bytes, headers: dict, retries: int, backoff_s: float, sleep: Callable[[float], None]
) -> tuple[Optional[int], dict, Optional[str]]:
    """POST with bounded retries; (status or None, JSON answer, last error text)."""
    error: Optional[str] = None
    status: Optional[int] = None
    answer: dict = {}
    for attempt in range(retries + 1):
        if attempt:
            sleep(backoff_s * (2 ** (attempt - 1)) * (0.5 + random.random()))
        try:
            r = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
            continue
        status = r.status_code
        try:
            answer = r.json() if isinstance(r.json(), dict) else {}
        except ValueError:
            answer = {}
        if status in (200, 201) or (400 <= status < 500 and status not in TRANSIENT):
            return status, answer, None
        error = f"the center answered {status}"
    return status, answer, error


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _reject(d: Path, path: Path, reason: str) -> None:
    rej = d / REJECTED
    rej.mkdir(exist_ok=True)
    write_atomic(rej / f"{path.stem}.reason.txt", reason + "\n")
    os.replace(path, rej / path.name)


def upload(doc: dict[str, Any], url: str, token: Optional[str], spool_dir: str | Path, **kw: Any) -> Delivery:
    """Spool ``doc``, then deliver the whole spool (earlier results that waited go first)."""
    results_url(url)  # a bad URL fails before anything is spooled
    spool(doc, spool_dir)
    return deliver(spool_dir, url, token, **kw)
