"""Server-side collection of results uploaded by schools (``serve --collect DIR``).

``POST /results`` with ``Authorization: Bearer <token>`` and the JSON result as the body.

- **Tokens** come from a YAML file (``--tokens``): a token is either a school's (it may upload
  that school's results only) or a board's (any school of that board)::

      tokens:
        - {token: "s3cret-minato-01", school: tokyo-minato-01, board: minato}
        - {token: "s3cret-minato-board", board: minato}

  Tokens are compared as SHA-256 digests in constant time; a token may also be given as
  ``sha256: <hex>`` so the file need not hold the secret itself.
- **Size**: bodies above ``max_bytes`` are refused (413) before they are read.
- **Schema**: the body must be a result document that ``results.upgrade`` and ``from_dict``
  accept (the same check ``batch`` and ``report`` apply).
- **Idempotent by run id**: the stored file is ``DIR/<board>/<school>/<run_id>.json``, created
  with an exclusive hard link from a fully written temporary file: the first upload of a run
  wins, a retry of the same document answers ``duplicate`` (200), and a *different* document
  under an existing run id is refused (409). Nothing is ever overwritten or half-written.

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
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from giga_netcheck.board.batch import board_id, validate_document
from giga_netcheck.core.errors import ConfigError, ResultFileError
from giga_netcheck.core.results import _safe
from giga_netcheck.server.http import HttpError, Request

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
"""A full result with raw samples is tens of KB; 4 MiB leaves room and bounds memory."""

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class Grant:
    """What one token may do: upload for one school, or for every school of one board."""

    board: Optional[str]
    school: Optional[str] = None

    @property
    def label(self) -> str:
        return f"school:{self.school}" if self.school else f"board:{self.board}"


class Tokens:
    """Token digests -> grants, loaded from the tokens file."""

    def __init__(self, grants: dict[bytes, Grant]) -> None:
        self._grants = grants

    @classmethod
    def load(cls, path: str | Path) -> Tokens:
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
            grants[digest] = Grant(str(board) if board else None, str(school) if school else None)
        return cls(grants)

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


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]


def refuse(status: int, error: str, reason: str) -> Outcome:
    return Outcome(status, {"error": error, "reason": reason})


class Collector:
    """Checks and stores one uploaded result; safe to call from many threads at once."""

    def __init__(self, root: str | Path, tokens: Tokens, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.tokens = tokens
        self.max_bytes = max_bytes
        self.stored = 0
        self.duplicates = 0
        self.refused = 0

    def authorize(self, authorization: Optional[str]) -> Optional[Grant]:
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.tokens.check(token.strip())

    def accept(self, body: bytes, grant: Grant) -> Outcome:
        """Validate ``body`` and store it once; never raises for bad input."""
        out = self._accept(body, grant)
        if out.status >= 400:
            self.refused += 1
        return out

    def _accept(self, body: bytes, grant: Grant) -> Outcome:
        if len(body) > self.max_bytes:
            return refuse(413, "too-large", f"the result is larger than {self.max_bytes} bytes")
        try:
            doc = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            return refuse(400, "not-utf8", "the body is not UTF-8 text")
        except json.JSONDecodeError as exc:
            return refuse(400, "not-json", f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")
        if not isinstance(doc, dict):
            return refuse(400, "not-a-result", "the top level is not an object")
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
        if grant.school and school != grant.school:
            return refuse(403, "wrong-school", f"this token may upload results of school {grant.school!r} only")
        claimed = doc.get("context", {}).get("board") if isinstance(doc.get("context"), dict) else None
        if grant.board and claimed and str(claimed) != grant.board:
            return refuse(403, "wrong-board", f"this token may upload results of board {grant.board!r} only")
        board = grant.board or (str(claimed) if claimed else None)
        folder = self.root / board_id(board) / (_safe(school) or "unknown")
        final = folder / f"{run_id}.json"
        digest = hashlib.sha256(body).hexdigest()
        if final.exists():
            return self._duplicate(final, digest, run_id)
        stored = dict(doc)
        stored["collected"] = {
            "board": board,
            "by": grant.label,
            "sha256": digest,
            "received_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        text = json.dumps(stored, ensure_ascii=False, indent=1)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{run_id}.", suffix=".tmp", dir=str(folder))
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
                try:
                    os.link(tmp, final)  # exclusive: fails if the run id is already stored
                except FileExistsError:
                    return self._duplicate(final, digest, run_id)
            finally:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        except OSError as exc:
            return Outcome(507, {"error": "cannot-store", "reason": f"the center cannot store the result: {exc.strerror or exc}"})
        self.stored += 1
        return Outcome(201, {"status": "stored", "run_id": run_id, "school": school, "board": board})

    def _duplicate(self, final: Path, digest: str, run_id: str) -> Outcome:
        try:
            have = json.loads(final.read_text(encoding="utf-8")).get("collected", {}).get("sha256")
        except (OSError, ValueError, AttributeError):
            have = None
        if have == digest:
            self.duplicates += 1
            return Outcome(200, {"status": "duplicate", "run_id": run_id})
        return refuse(409, "run-id-conflict", f"a different result with run_id {run_id} is already stored")


async def handle(collector: Collector, request: Request) -> Outcome:
    """One ``POST /results``: authorize, read the bounded body, check and store it off the loop.

    Raises ConnectionError/IncompleteReadError/TimeoutError when the client vanished mid-body
    (nothing is stored then). An unauthorized request is answered without reading its body.
    """
    grant = collector.authorize(request.headers.get("authorization"))
    if grant is None:
        collector.refused += 1
        return refuse(401, "unauthorized", "missing or unknown token (Authorization: Bearer <token>)")
    if not request.body.declared:
        collector.refused += 1
        return refuse(411, "length-required", "send Content-Length or chunked encoding")
    try:
        # A moderately oversized body (up to 8x the cap) is read and dropped so the client, still
        # sending, gets the 413 and its reason instead of a reset; anything bigger is cut off at once.
        body = await request.body.read(collector.max_bytes, drain_up_to=8 * collector.max_bytes)
    except HttpError as exc:
        collector.refused += 1
        reason = f"the result is larger than {collector.max_bytes} bytes" if exc.status == 413 else exc.reason
        return refuse(exc.status, exc.code, reason)
    loop = asyncio.get_running_loop()
    # JSON parsing, the schema check and fsync are blocking: keep them off the event loop so
    # measurements served by the same process are not stalled.
    return await loop.run_in_executor(None, collector.accept, body, grant)
