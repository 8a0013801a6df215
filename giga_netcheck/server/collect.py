"""Server-side collection of results uploaded by schools (``serve --collect DIR``).

``POST /results`` with ``Authorization: Bearer <token>`` and the JSON result as the body.

- **Tokens** come from a YAML file (``--tokens``) that only its owner may read (a world-readable
  or world-writable file is refused at start): a token is either a school's (it may upload that
  school's results only) or a board's (any school of that board, or only those it lists)::

      tokens:
        - {token: "s3cret-minato-01", school: tokyo-minato-01, board: minato}
        - {token: "s3cret-minato-board", board: minato}
        - {token: "s3cret-minato-relay", board: minato, schools: [tokyo-minato-01, tokyo-minato-02]}

  Tokens are compared as SHA-256 digests in constant time; a token may also be given as
  ``sha256: <hex>`` so the file need not hold the secret itself.
- **Binding**: the board a result is stored under is the one its token proves, never the one the
  upload names. A board token cannot store results of a school that the file gives to another
  board; a school token without ``board:`` takes its school's board from the file, or none
  (``unknown``); a ``context.board`` that is not a non-empty string (``0``, ``""``) is refused,
  and one that differs from the token's board is refused.
- **Size and time**: bodies above ``max_bytes`` are refused (413) before they are read; a body
  must arrive within ``body_deadline_s`` (408) in at most ``max_chunks`` chunks (413).
- **Quota per token**: at most ``in_flight`` uploads at once and ``quota_mb`` MiB of bodies per
  UTC day (429 with the reason; the client keeps the result in its spool and sends it later).
- **Schema**: the body must pass the one safe result loader (``core.results.parse_document``:
  bounded depth, numbers and size, no lone surrogates) and the schema check ``batch`` and
  ``report`` apply.
- **Idempotent by run id**: the stored file is ``DIR/<board>/<school>/<run_id>.json``, created
  with an exclusive hard link from a fully written temporary file: the first upload of a run
  wins, a retry of the same document answers ``duplicate`` (200), and a *different* document
  under an existing run id is refused (409). Nothing is ever overwritten or half-written. The
  claim is the file system's, not this process's: it holds across ``serve --workers`` processes.
- **Durable before answered**: checking runs in a small thread pool; accepted files go to the
  group commit (commit.py), which writes and fsyncs many at once, file and folder, and only then
  is the upload answered (201/200; 507 if the disk refused). The stored file is the upload's own
  bytes with ``collected`` added (:func:`_with_collected`).

Every refusal is a 4xx JSON body ``{"error": <code>, "reason": <text>}``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import stat
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from giga_netcheck.board.batch import board_id, validate_document
from giga_netcheck.core.errors import ConfigError, ResultFileError
from giga_netcheck.core.results import DocumentError, _safe, parse_document
from giga_netcheck.server.commit import STORED, GroupCommit
from giga_netcheck.server.http import BodyTooLarge, HttpError, Request, within

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
"""A full result with raw samples is tens of KB; 4 MiB leaves room and bounds memory."""
DEFAULT_BODY_DEADLINE_S = 60.0
"""The whole body within this: a 4 MiB result needs 0.6 Mbit/s, a usual one (50 kB) a few kbit/s."""
DEFAULT_SCHOOL_QUOTA_MB = 64
"""Per school token and UTC day: a result every 15 minutes with every raw sample is about 5 MiB."""
DEFAULT_BOARD_QUOTA_MB = 1024
"""Per board token and UTC day (it may upload for hundreds of schools); ``quota_mb:`` changes either."""
DEFAULT_IN_FLIGHT = 4
"""Uploads one token may have open at once (a spool sends one at a time)."""

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")

# the loader's refusal codes -> the status the collector answers with
_DOCUMENT_STATUS = {"too-large": 413}


def max_chunks_for(max_bytes: int) -> int:
    """Chunks a body of at most ``max_bytes`` may come in: 1 KiB a chunk on average, at least 256."""
    return max(256, max_bytes // 1024)


@dataclass(frozen=True)
class Grant:
    """What one token may do: upload for one school, or for the schools of one board."""

    board: Optional[str]
    school: Optional[str] = None
    schools: frozenset[str] = frozenset()
    """A board token's list of schools (``schools:``); empty: any school of the board."""
    quota_bytes: int = field(default=DEFAULT_BOARD_QUOTA_MB << 20, compare=False)
    """Body bytes this token may send per UTC day."""
    key: str = field(default="", compare=False)
    """A short digest prefix naming the token in quotas (never the token)."""

    @property
    def label(self) -> str:
        return f"school:{self.school}" if self.school else f"board:{self.board}"


class Tokens:
    """Token digests -> grants, loaded from the tokens file."""

    def __init__(self, grants: dict[bytes, Grant], school_boards: Optional[dict[str, str]] = None) -> None:
        self._grants = grants
        self.school_boards: dict[str, str] = dict(school_boards or {})
        """School id -> its board, as the file's school tokens give it."""

    @classmethod
    def load(cls, path: str | Path) -> Tokens:
        _check_private(path)
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the tokens file: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        items = (data or {}).get("tokens") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{path}: tokens: expected a list of {{token, school and/or board}}")
        grants: dict[bytes, Grant] = {}
        school_boards: dict[str, str] = {}
        for i, item in enumerate(items):
            where = f"{path}: tokens[{i}]"
            if not isinstance(item, dict):
                raise ConfigError(f"{where}: expected a mapping")
            school, board = item.get("school"), item.get("board")
            if not school and not board:
                raise ConfigError(f"{where}: needs a school or a board")
            if item.get("token"):
                token = str(item["token"])
                if len(token) < 12:
                    raise ConfigError(f"{where}: token: at least 12 characters")
                digest = hashlib.sha256(token.encode()).digest()
            elif item.get("sha256"):
                try:
                    digest = bytes.fromhex(str(item["sha256"]))
                except ValueError:
                    raise ConfigError(f"{where}: sha256: expected 64 hex digits") from None
                if len(digest) != 32:
                    raise ConfigError(f"{where}: sha256: expected 64 hex digits")
            else:
                raise ConfigError(f"{where}: needs token or sha256")
            listed = item.get("schools")
            if listed is not None and (school or not isinstance(listed, list) or not all(isinstance(s, str) and s for s in listed)):
                raise ConfigError(f"{where}: schools: a list of school ids, on a board token (no school:) only")
            quota = item.get("quota_mb", DEFAULT_SCHOOL_QUOTA_MB if school else DEFAULT_BOARD_QUOTA_MB)
            if isinstance(quota, bool) or not isinstance(quota, int) or quota <= 0:
                raise ConfigError(f"{where}: quota_mb: expected a whole number of MiB above 0")
            if school and board:
                known = school_boards.setdefault(str(school), str(board))
                if known != str(board):
                    raise ConfigError(f"{where}: school {school} is given to board {known} by another token")
            grants[digest] = Grant(
                str(board) if board else None,
                str(school) if school else None,
                frozenset(listed or ()),
                quota << 20,
                digest.hex()[:12],
            )
        for g in grants.values():
            stray = sorted(s for s in g.schools if school_boards.get(s, g.board) != g.board)
            if stray:
                raise ConfigError(f"{path}: the board token of {g.board} lists {stray[0]}, a school of board {school_boards[stray[0]]}")
        return cls(grants, school_boards)

    def __len__(self) -> int:
        return len(self._grants)

    def check(self, token: Optional[str]) -> Optional[Grant]:
        if not token:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for known, grant in self._grants.items():  # constant time per entry; no early exit
            if hmac.compare_digest(known, digest):
                found = grant
        return found


def _check_private(path: str | Path) -> None:
    """Refuse a tokens file every user of the machine may read (the secrets would be theirs) or write."""
    if os.name != "posix":
        return  # Windows: ACLs, not mode bits; the folder's ACL is the owner's business
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # the read that follows says what is wrong
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        what = "readable" if mode & stat.S_IROTH else "writable"
        raise ConfigError(f"{path}: {what} by every user of this machine (mode {stat.S_IMODE(mode):o}): chmod 600 {path}")


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]


def refuse(status: int, error: str, reason: str) -> Outcome:
    return Outcome(status, {"error": error, "reason": reason})


@dataclass(frozen=True)
class _Checked:
    """An upload that passed every check: the file to create and the answer once it is stored."""

    final: Path
    data: bytes
    digest: str
    run_id: str
    stored: Outcome


class Collector:
    """Checks and stores one uploaded result; safe to call from many threads at once."""

    def __init__(
        self,
        root: str | Path,
        tokens: Tokens,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        body_deadline_s: float = DEFAULT_BODY_DEADLINE_S,
        in_flight: int = DEFAULT_IN_FLIGHT,
        commit: Optional[GroupCommit] = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.tokens = tokens
        self.max_bytes = max_bytes
        self.max_chunks = max_chunks_for(max_bytes)
        self.body_deadline_s = body_deadline_s
        self.in_flight = in_flight
        self.commit = commit or GroupCommit()
        """Writes and fsyncs accepted results in batches (group commit); bounds the bytes waiting."""
        self.stored = 0
        self.duplicates = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}
        """Token key -> uploads being read or checked now."""
        self._used: dict[str, tuple[str, int]] = {}
        """Token key -> (UTC day, body bytes received that day)."""

    def authorize(self, authorization: Optional[str]) -> Optional[Grant]:
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.tokens.check(token.strip())

    # ------------------------------------------------------------------ quota per token

    def admit(self, grant: Grant, declared: int = 0) -> Optional[Outcome]:
        """Take one of the token's upload slots, or say why not (429): too many at once, or its
        day's quota used (``declared``: a Content-Length, charged against what is left)."""
        today = dt.datetime.now(dt.timezone.utc).date().isoformat()
        with self._lock:
            day, used = self._used.get(grant.key, (today, 0))
            used = used if day == today else 0
            if used + declared > grant.quota_bytes:
                return refuse(
                    429,
                    "quota",
                    f"this token's quota of {grant.quota_bytes >> 20} MiB a day (UTC) is used up; the result is sent again later",
                )
            if self._open.get(grant.key, 0) >= self.in_flight:
                return refuse(429, "busy", f"this token has {self.in_flight} uploads open already; try again shortly")
            self._open[grant.key] = self._open.get(grant.key, 0) + 1
        return None

    def release(self, grant: Grant, received: int) -> None:
        """Give the slot back and charge the body bytes received (accepted or not)."""
        today = dt.datetime.now(dt.timezone.utc).date().isoformat()
        with self._lock:
            left = self._open.get(grant.key, 1) - 1
            if left > 0:
                self._open[grant.key] = left
            else:
                self._open.pop(grant.key, None)
            day, used = self._used.get(grant.key, (today, 0))
            self._used[grant.key] = (today, (used if day == today else 0) + received)

    # ------------------------------------------------------------------ checking and storing

    def accept(self, body: bytes, grant: Grant) -> Outcome:
        """Validate ``body`` and store it once, durably; never raises for bad input. Blocks until
        the file is committed (or the pending-bytes cap lets it in)."""
        out = self.submit(body, grant)
        return out if isinstance(out, Outcome) else out.result()

    def submit(self, body: bytes, grant: Grant) -> Union[Outcome, Future[Outcome]]:
        """Check ``body`` now; a refusal comes back at once, an accepted result as a future
        that resolves when it is durable (its batch fsynced: :mod:`.commit`)."""
        try:
            out = self._check(body, grant)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
            # a shape the schema check let through: still a refusal with a reason, never a dropped connection
            out = refuse(422, "not-a-result", f"malformed result: {type(exc).__name__}: {exc}")
        if isinstance(out, Outcome):
            if out.status >= 400:
                self.note_refused()
            return out
        checked = out
        answer: Future[Outcome] = Future()
        answer.set_running_or_notify_cancel()  # the store goes ahead whatever the caller does

        def committed(done: Future[str]) -> None:
            try:
                answer.set_result(self._answer(checked, done))
            except BaseException as exc:  # never leave the client waiting
                answer.set_exception(exc)

        self.commit.submit(checked.final, checked.data).add_done_callback(committed)
        return answer

    def note_refused(self) -> None:
        with self._lock:
            self.refused += 1

    def _check(self, body: bytes, grant: Grant) -> Union[Outcome, _Checked]:
        try:
            doc = parse_document(body, "upload", max_bytes=self.max_bytes)
        except DocumentError as exc:
            if exc.code == "too-large":
                return refuse(413, "too-large", f"the result is larger than {self.max_bytes} bytes")
            code = "not-a-result" if exc.code == "not-an-object" else exc.code
            return refuse(_DOCUMENT_STATUS.get(exc.code, 400), code, exc.reason)
        bad_board = _bad_board(doc)  # before the schema check, which would call it only "not a result"
        if bad_board is not None:
            return bad_board
        try:
            result = validate_document(doc, "upload")
        except ResultFileError as exc:
            text = str(exc).removeprefix("upload: ")
            code = "schema-too-new" if "newer" in text else "not-a-result"
            return refuse(422 if code == "not-a-result" else 400, code, text)
        run_id = result.run_id
        if not RUN_ID.fullmatch(run_id):
            return refuse(422, "bad-run-id", "run_id must be 1-128 letters, digits, '-', '_' or '.'")
        school = result.school.id
        board, refused = self._board(grant, school, doc)
        if refused is not None:
            return refused
        final = self.root / board_id(board) / (_safe(school) or "unknown") / f"{run_id}.json"
        digest = hashlib.sha256(body).hexdigest()
        collected = {
            "board": board,
            "by": grant.label,
            "sha256": digest,
            "received_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        data = _with_collected(body, doc, collected)
        return _Checked(final, data, digest, run_id, Outcome(201, {"status": "stored", "run_id": run_id, "school": school, "board": board}))

    def _answer(self, checked: _Checked, done: Future[str]) -> Outcome:
        """What the client hears once its file is durable (runs on the commit thread)."""
        try:
            state = done.result()
        except OSError as exc:
            self.note_refused()
            return Outcome(507, {"error": "cannot-store", "reason": f"the center cannot store the result: {exc.strerror or exc}"})
        if state == STORED:
            with self._lock:
                self.stored += 1
            return checked.stored
        out = self._duplicate(checked.final, checked.digest, checked.run_id)
        if out.status >= 400:
            self.note_refused()
        return out

    def _board(self, grant: Grant, school: str, doc: dict[str, Any]) -> tuple[Optional[str], Optional[Outcome]]:
        """The board the result is stored under: the token's, never the upload's word for it."""
        refused = _bad_board(doc)
        if refused is not None:
            return None, refused
        context = doc.get("context")
        claimed = context.get("board") if isinstance(context, dict) else None
        known = self.tokens.school_boards.get(school)
        if grant.school:
            if school != grant.school:
                return None, refuse(403, "wrong-school", f"this token may upload results of school {grant.school!r} only")
            board = grant.board or known  # a school token without board: takes the file's word, never the upload's
        else:
            if grant.schools and school not in grant.schools:
                return None, refuse(403, "wrong-school", f"this token may upload results of the schools listed for it only, not {school!r}")
            if known is not None and known != grant.board:
                return None, refuse(
                    403, "wrong-board", f"school {school!r} belongs to another board; this token may upload for board {grant.board!r} only"
                )
            board = grant.board
        if claimed is not None and board is not None and claimed != board:
            return None, refuse(403, "wrong-board", f"this token may upload results of board {board!r} only")
        return board, None

    def _duplicate(self, final: Path, digest: str, run_id: str) -> Outcome:
        try:
            have = json.loads(final.read_text(encoding="utf-8")).get("collected", {}).get("sha256")
        except (OSError, ValueError, AttributeError):
            have = None
        if have == digest:
            with self._lock:
                self.duplicates += 1
            return Outcome(200, {"status": "duplicate", "run_id": run_id})
        return refuse(409, "run-id-conflict", f"a different result with run_id {run_id} is already stored")


CHECK_THREADS = 1
"""Threads that parse and check uploads: CPU work under one GIL, so a second thread only takes
turns from the event loop (bench/collect_ingest.py: 2 workers 290-310/s with two, 357-398/s with
one); more cores are more ``--workers``."""
_check_pool: Optional[ThreadPoolExecutor] = None
_check_pool_lock = threading.Lock()


def _checks() -> ThreadPoolExecutor:
    """The process's pool for checking uploads, made on first use (so after a worker's fork)."""
    global _check_pool
    with _check_pool_lock:
        if _check_pool is None:
            _check_pool = ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="gnc-check")
        return _check_pool


def _with_collected(body: bytes, doc: dict[str, Any], collected: dict[str, Any]) -> bytes:
    """The stored file: the uploaded document with ``collected`` added at its top level.

    ``body`` passed the safe loader as a JSON object, so it ends in ``}`` (after whitespace) and
    ``collected`` goes in front of it, the upload's own bytes kept as they came (re-encoding
    28 KiB of JSON cost a sixth of the collector's CPU). A document that names a ``collected``
    of its own, or none of any key, is written out again instead, ours replacing theirs."""
    end = body.rstrip(b" \t\r\n")
    if doc and "collected" not in doc and end.endswith(b"}"):
        return b"".join((end[:-1].rstrip(b" \t\r\n"), b',\n "collected": ', json.dumps(collected, ensure_ascii=False).encode(), b"\n}\n"))
    stored = dict(doc)
    stored["collected"] = collected
    return json.dumps(stored, ensure_ascii=False, indent=1, allow_nan=False).encode("utf-8")


def _bad_board(doc: dict[str, Any]) -> Optional[Outcome]:
    """``context.board``, when sent, must be a board id: a non-empty string (422 ``bad-board``)."""
    context = doc.get("context")
    claimed = context.get("board") if isinstance(context, dict) else None
    if claimed is not None and not (isinstance(claimed, str) and claimed.strip()):
        return refuse(422, "bad-board", f"context.board must be a board id (a non-empty string), not {claimed!r}")
    return None


async def handle(collector: Collector, request: Request) -> Outcome:
    """One ``POST /results``: authorize, read the bounded body, check and store it off the loop.

    Raises ConnectionError/IncompleteReadError when the client vanished mid-body (nothing is
    stored then). An unauthorized or over-quota request is answered without reading its body;
    a body that breaks a bound (size, chunks, deadline) gets its 4xx and reason.
    """
    grant = collector.authorize(request.headers.get("authorization"))
    body = request.body
    if grant is None:
        collector.note_refused()
        return refuse(401, "unauthorized", "missing or unknown token (Authorization: Bearer <token>)")
    if not body.declared:
        collector.note_refused()
        return refuse(411, "length-required", "send Content-Length or chunked encoding")
    busy = collector.admit(grant, 0 if body.chunked else min(body.length, collector.max_bytes))
    if busy is not None:
        collector.note_refused()
        return busy
    body.max_chunks = collector.max_chunks
    try:
        try:
            # A moderately oversized body (up to 8x the cap) is read and dropped so the client, still
            # sending, gets the 413 and its reason instead of a reset; anything bigger is cut off at once.
            # The whole body must arrive within the deadline, however it trickles.
            data = await within(body.read(collector.max_bytes, drain_up_to=8 * collector.max_bytes), collector.body_deadline_s)
        except HttpError as exc:
            collector.note_refused()
            reason = f"the result is larger than {collector.max_bytes} bytes" if isinstance(exc, BodyTooLarge) else exc.reason
            return refuse(exc.status, exc.code, reason)
        except asyncio.TimeoutError:
            collector.note_refused()
            return refuse(408, "body-timeout", f"the result did not arrive within {collector.body_deadline_s:g} s")
        loop = asyncio.get_running_loop()
        # JSON parsing and the schema check are CPU work, and a full commit queue blocks the
        # submit (backpressure): both in a worker thread, so measurements served by the same
        # event loop are not stalled. The answer waits for the batch's fsyncs (group commit).
        out = await loop.run_in_executor(_checks(), collector.submit, data, grant)
        return out if isinstance(out, Outcome) else await asyncio.wrap_future(out)
    finally:
        collector.release(grant, body.received)
