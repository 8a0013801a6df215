"""Collection (serve --collect): tokens, size limit, schema check, idempotence, atomic storage.

The concurrency test runs the real server (ServerThread on 127.0.0.1) and 50 simulated schools
uploading at once, with bad tokens, oversized and malformed bodies, duplicates, conflicts and
connections cut mid-body mixed in.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from bench.board_data import JST, make_doc, make_schools, templates
from giga_netcheck.core.errors import ConfigError
from giga_netcheck.core.results import load
from giga_netcheck.server.app import ServerConfig, ServerThread
from giga_netcheck.server.collect import Collector, Grant, Tokens

MAX = 256 * 1024


def _token(school_id: str) -> str:
    return f"tok-{school_id}-0123456789"


def _tokens_file(tmp_path: Path, schools, board_tokens=()) -> Path:
    items = [{"token": _token(s.id), "school": s.id, "board": s.board} for s in schools]
    items += [{"token": t, "board": b} for b, t in board_tokens]
    p = tmp_path / "tokens.yaml"
    p.write_text(yaml.safe_dump({"tokens": items}), encoding="utf-8")
    p.chmod(0o600)
    return p


@pytest.fixture
def schools():
    return make_schools(50, boards=3)


@pytest.fixture
def collecting(tmp_path, schools):
    store = tmp_path / "collected"
    tokens = Tokens.load(_tokens_file(tmp_path, schools, [("board-01", "board-01-token-abcdef")]))
    collector = Collector(store, tokens, max_bytes=MAX)
    with ServerThread(ServerConfig(host="127.0.0.1", port=0, collector=collector, idle_timeout_s=3)) as s:
        yield s, collector, store


def _doc(school, n: int = 1) -> dict:
    when = dt.datetime(2026, 6, 1 + n % 20, 10, 30, tzinfo=JST)
    return make_doc(templates(), school, when, n)


def _body(doc: dict) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def _post(url: str, body: bytes, token: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{url}/results", content=body, headers=headers, timeout=15)


def _stored(store: Path) -> list[Path]:
    return sorted(p for p in store.rglob("*.json"))


# ------------------------------------------------------------------------------ unit


def test_tokens_file_is_validated(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.touch(mode=0o600)
    for data in (
        {"tokens": []},
        {"tokens": [{"token": "short", "school": "a"}]},
        {"tokens": [{"token": "long-enough-token"}]},
        {"nope": 1},
        {"tokens": [{"sha256": "zz", "board": "b"}]},
    ):
        bad.write_text(yaml.safe_dump(data))
        with pytest.raises(ConfigError):
            Tokens.load(bad)
    import hashlib

    bad.write_text(yaml.safe_dump({"tokens": [{"sha256": hashlib.sha256(b"a-board-secret-1").hexdigest(), "board": "b"}]}))
    assert Tokens.load(bad).check("a-board-secret-1") == Grant("b", None)
    assert Tokens.load(bad).check("a-board-secret-2") is None


def test_accept_is_idempotent_and_refuses_with_reasons(tmp_path, schools):
    c = Collector(tmp_path / "c", Tokens.load(_tokens_file(tmp_path, schools)), max_bytes=MAX)
    s = schools[0]
    grant = Grant(s.board, s.id)
    doc = _doc(s)
    first = c.accept(_body(doc), grant)
    assert first.status == 201 and first.body["status"] == "stored"
    again = c.accept(_body(doc), grant)
    assert again.status == 200 and again.body["status"] == "duplicate"
    changed = dict(doc, duration_s=1.0)
    assert c.accept(_body(changed), grant).body["error"] == "run-id-conflict"
    assert c.accept(b"{not json", grant).body["error"] == "not-json"
    assert c.accept(b"[1, 2]", grant).status == 400
    assert c.accept(_body({"schema_version": 1}), grant).status == 422
    assert c.accept(_body(dict(doc, schema_version=99)), grant).body["error"] == "schema-too-new"
    assert c.accept(_body(dict(doc, run_id="../../etc/passwd")), grant).body["error"] == "bad-run-id"
    assert c.accept(_body(_doc(schools[1])), grant).body["error"] == "wrong-school"
    board_grant = Grant("board-02")
    other = _doc(schools[0], 2)  # schools[0] belongs to board-01
    assert c.accept(_body(other), board_grant).body["error"] == "wrong-board"
    assert c.accept(b"x" * (MAX + 1), grant).status == 413
    files = _stored(tmp_path / "c")
    assert len(files) == 1
    stored = json.loads(files[0].read_text(encoding="utf-8"))
    assert stored["collected"]["board"] == s.board and stored["collected"]["by"] == f"school:{s.id}"
    assert load(files[0]).run_id == doc["run_id"]  # what is stored loads as a result


# ------------------------------------------------------------------------------ through the server


def _cut_mid_body(url: str, token: str, body: bytes) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        head = (
            f"POST /results HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        sock.sendall(head + body[: len(body) // 2])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close


def test_fifty_schools_upload_at_once(collecting, schools):
    server, collector, store = collecting
    url = server.url
    rng = random.Random(3)
    good = {s.id: _doc(s, i) for i, s in enumerate(schools)}
    jobs: list[tuple[str, object]] = []  # (expected outcome, callable)
    for s in schools:
        doc = good[s.id]
        jobs.append(("stored-or-duplicate", lambda s=s, d=doc: _post(url, _body(d), _token(s.id))))
    for s in schools[:10]:  # the same result sent twice at the same time (a retry racing the first try)
        jobs.append(("stored-or-duplicate", lambda s=s: _post(url, _body(good[s.id]), _token(s.id))))
    for s in schools[10:15]:  # unknown tokens
        jobs.append((401, lambda s=s: _post(url, _body(_doc(s, 100)), "not-a-valid-token-at-all")))
    for s in schools[15:18]:  # no token
        jobs.append((401, lambda s=s: _post(url, _body(_doc(s, 101)), None)))
    for s in schools[18:23]:  # oversized
        jobs.append((413, lambda s=s: _post(url, b'{"x": "' + b"a" * (MAX + 10) + b'"}', _token(s.id))))
    for s in schools[23:28]:  # malformed JSON: cut short
        jobs.append((400, lambda s=s: _post(url, _body(_doc(s, 102))[:500], _token(s.id))))
    for s in schools[28:31]:  # JSON, but not a result
        jobs.append((422, lambda s=s: _post(url, b'{"schema_version": 1, "hello": "world"}', _token(s.id))))
    for i, s in enumerate(schools[31:34]):  # another school's token
        jobs.append((403, lambda s=s, i=i: _post(url, _body(_doc(s, 103)), _token(schools[40 + i].id))))
    for s in schools[37:42]:  # connections cut mid-body: nothing stored for these run ids
        jobs.append(("cut", lambda s=s: _cut_mid_body(url, _token(s.id), _body(_doc(s, 104)))))
    rng.shuffle(jobs)

    with ThreadPoolExecutor(max_workers=24) as pool:
        futures = [(want, pool.submit(fn)) for want, fn in jobs]
        outcomes = [(want, f.result(timeout=60)) for want, f in futures]

    for want, resp in outcomes:
        if want == "cut":
            continue
        body = resp.json()
        if want == "stored-or-duplicate":
            assert resp.status_code in (200, 201), body
        else:
            assert resp.status_code == want, body
            assert body["error"] and body["reason"], body

    # conflicts: a changed document under a stored run id is refused and the original kept
    for s in schools[34:37]:
        changed = dict(good[s.id], duration_s=0.5)
        r = _post(url, _body(changed), _token(s.id))
        assert r.status_code == 409 and r.json()["error"] == "run-id-conflict"

    files = _stored(store)
    assert len(files) == len(schools), "every good result stored exactly once"
    by_run = {json.loads(p.read_text(encoding="utf-8"))["run_id"]: p for p in files}
    assert set(by_run) == {d["run_id"] for d in good.values()}
    for s in schools:
        p = by_run[good[s.id]["run_id"]]
        assert p.parent.name == s.id and p.parent.parent.name == s.board
        assert load(p).duration_s == good[s.id]["duration_s"]  # the original, not a conflicting one
    assert not [p for p in store.rglob("*") if p.name.startswith(".")], "no temporary files left behind"
    assert collector.stored == 50 and collector.duplicates == 10

    # the server keeps serving: measurements and uploads alike
    assert httpx.get(f"{url}/rtt", timeout=5).status_code == 200
    assert len(httpx.get(f"{url}/download?bytes=100000", timeout=5).content) == 100000
    late = _doc(schools[0], 500)
    assert _post(url, _body(late), _token(schools[0].id)).status_code == 201

    # the schools whose connections were cut send again (as their spool does): stored once each,
    # nothing of the cut attempt in the way
    for s in schools[37:42]:
        again = _doc(s, 104)
        r = _post(url, _body(again), _token(s.id))
        assert r.status_code == 201, r.text
        assert _post(url, _body(again), _token(s.id)).status_code == 200
    files = _stored(store)
    assert len(files) == len(schools) + 1 + 5
    assert len({json.loads(p.read_text(encoding="utf-8"))["run_id"] for p in files}) == len(files)


def test_board_token_uploads_for_its_schools(collecting, schools):
    server, _, store = collecting
    mine = next(s for s in schools if s.board == "board-01")
    theirs = next(s for s in schools if s.board == "board-02")
    assert _post(server.url, _body(_doc(mine)), "board-01-token-abcdef").status_code == 201
    r = _post(server.url, _body(_doc(theirs)), "board-01-token-abcdef")
    assert r.status_code == 403 and r.json()["error"] == "wrong-board"
    assert len(_stored(store)) == 1


def test_chunked_upload_and_missing_length(collecting, schools):
    server, _, store = collecting
    s = schools[5]
    body = _body(_doc(s))

    def chunks():
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    r = httpx.post(f"{server.url}/results", content=chunks(), headers={"Authorization": f"Bearer {_token(s.id)}"}, timeout=10)
    assert r.status_code == 201, r.text
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"POST /results HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {_token(s.id)}\r\n\r\n".encode())
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 411") and "length-required" in answer
    assert len(_stored(store)) == 1


def test_results_route_is_absent_without_collect(server):
    r = httpx.post(f"{server.url}/results", content=b"{}", timeout=5)
    assert r.status_code == 404


def test_serve_collect_needs_a_valid_tokens_file(tmp_path):
    from typer.testing import CliRunner

    from giga_netcheck.cli.main import app

    runner = CliRunner()
    res = runner.invoke(app, ["serve", "--collect", str(tmp_path / "c"), "--lang", "en"])
    assert res.exit_code == 2 and "--collect and --tokens go together" in res.output
    bad = tmp_path / "tokens.yaml"
    bad.touch(mode=0o600)
    bad.write_text("tokens: [{token: short, school: a}]\n")
    res = runner.invoke(app, ["serve", "--collect", str(tmp_path / "c"), "--tokens", str(bad), "--lang", "en"])
    assert res.exit_code == 2 and "at least 12 characters" in res.output
