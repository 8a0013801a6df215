"""#17, the collector: hostile bodies, token binding, chunk and time bounds, quotas.

Each test sends its traffic to a collecting server on 127.0.0.1 (the fixtures of
tests/test_collect.py) and would have failed before the fix: the bodies dropped the connection
with a traceback in the log, the bindings stored results under a board the token does not
prove, and a chunked upload could go on for as long as its sender liked.
"""

from __future__ import annotations

import json
import select
import socket
import time

import pytest
import yaml

from bench.board_data import make_schools
from giga_netcheck.board import batch
from giga_netcheck.server.app import ServerConfig, ServerThread
from giga_netcheck.server.collect import Collector, Grant, Tokens
from tests.test_collect import MAX, _body, _doc, _post, _stored, _token, _tokens_file

BOARD_TOKEN = "board-01-token-abcdef"


@pytest.fixture
def schools():
    return make_schools(50, boards=3)


@pytest.fixture
def collecting(tmp_path, schools):
    """The collecting center of tests/test_collect.py: 50 school tokens and board-01's token."""
    store = tmp_path / "collected"
    collector = Collector(store, Tokens.load(_tokens_file(tmp_path, schools, [("board-01", BOARD_TOKEN)])), max_bytes=MAX)
    with ServerThread(ServerConfig(host="127.0.0.1", port=0, collector=collector, idle_timeout_s=3)) as s:
        yield s, collector, store


def _with_extra(doc: dict, raw: bytes) -> bytes:
    """The good document's bytes with ``"x": <raw>`` added at its top level."""
    body = _body(doc)
    return body[:-1] + b', "x": ' + raw + b"}"


HOSTILE = {
    "nested-120k": (lambda doc: b"[" * 120_000 + b"]" * 120_000, "too-deep"),  # 240 kB: under the fixture's cap
    "nested-in-a-result": (lambda doc: _with_extra(doc, b'{"a": ' * 100 + b"1" + b"}" * 100), "too-deep"),
    "int-5000-digits": (lambda doc: _with_extra(doc, b"9" * 5000), "number-too-long"),
    "int-21-digits": (lambda doc: _with_extra(doc, b"-" + b"9" * 21), "number-too-long"),
    "float-1e400": (lambda doc: _body(doc).replace(b'"duration_s": ', b'"duration_s": 1e400, "was": ', 1), "not-finite"),
    "nan": (lambda doc: _with_extra(doc, b"NaN"), "not-finite"),
    "lone-surrogate": (lambda doc: _with_extra(doc, b'"\\ud800"'), "lone-surrogate"),
    "surrogate-in-a-key": (lambda doc: _with_extra(doc, b'{"\\udfff": 1}'), "lone-surrogate"),
    "surrogate-in-school-id": (
        lambda doc: _body(doc).replace(f'"id": "{doc["school"]["id"]}"'.encode(), b'"id": "\\ud83d"', 1),
        "lone-surrogate",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_every_hostile_body_gets_a_4xx_with_its_reason(collecting, schools, name):
    server, collector, store = collecting
    s = schools[0]
    make, code = HOSTILE[name]
    r = _post(server.url, make(_doc(s, 1)), _token(s.id))
    assert 400 <= r.status_code < 500, r.text
    answer = r.json()
    assert answer["error"] == code and answer["reason"] and "\n" not in answer["reason"]
    # nothing stored, and the same connection pool keeps working: the next result is stored
    assert _stored(store) == []
    assert _post(server.url, _body(_doc(s, 2)), _token(s.id)).status_code == 201
    assert collector.refused >= 1


def test_a_surrogate_pair_and_deep_but_bounded_nesting_are_fine(collecting, schools):
    server, _, store = collecting
    s = schools[0]
    ok = _with_extra(_doc(s, 3), b'["\\ud83d\\ude00", ' + b"[" * 40 + b"]" * 40 + b", 12345678901234567890]")
    r = _post(server.url, ok, _token(s.id))
    assert r.status_code == 201, r.text
    assert json.loads(_stored(store)[0].read_text(encoding="utf-8"))["x"][0] == "\U0001f600"


# ------------------------------------------------------------------------------ binding


def test_a_board_token_cannot_store_another_boards_school(collecting, schools):
    """Before: board-01's token stored a result of board-02's school when the upload named
    board-01 (or no board), and the school's summary row moved to board-01."""
    server, _, store = collecting
    theirs = next(s for s in schools if s.board == "board-02")
    for board in ("board-01", None):
        doc = _doc(theirs, 7)
        if board is None:
            doc["context"].pop("board")
        else:
            doc["context"]["board"] = board
        r = _post(server.url, _body(doc), BOARD_TOKEN)
        assert r.status_code == 403 and r.json()["error"] == "wrong-board", r.text
    assert _stored(store) == []


@pytest.mark.parametrize("claimed", [0, "", "  ", False, [], {"id": "board-01"}])
def test_a_board_that_is_not_a_board_id_is_refused(collecting, schools, claimed):
    """Before: ``context.board: 0`` or ``""`` passed the check (falsy), and batch then filed the
    result under board "0"."""
    server, _, store = collecting
    s = next(s for s in schools if s.board == "board-01")
    for token in (_token(s.id), BOARD_TOKEN):
        doc = _doc(s, 8)
        doc["context"]["board"] = claimed
        r = _post(server.url, _body(doc), token)
        assert r.status_code == 422 and r.json()["error"] == "bad-board", r.text
    assert _stored(store) == []


def _center(tmp_path, items, **kw) -> tuple[ServerThread, Collector]:
    p = tmp_path / "tokens.yaml"
    p.write_text(yaml.safe_dump({"tokens": items}), encoding="utf-8")
    p.chmod(0o600)
    collector = Collector(tmp_path / "store", Tokens.load(p), **kw)
    return ServerThread(ServerConfig(host="127.0.0.1", port=0, collector=collector, idle_timeout_s=3)), collector


def test_a_school_token_without_board_does_not_trust_the_board_named_in_the_upload(tmp_path, schools):
    """Before: the result was stored under (and counted in) whatever board the upload named."""
    s = schools[0]
    doc = _doc(s, 9)
    doc["context"]["board"] = "someone-elses-board"
    server, _ = _center(tmp_path, [{"token": _token(s.id), "school": s.id}])
    with server:
        r = _post(server.url, _body(doc), _token(s.id))
    assert r.status_code == 201 and r.json()["board"] is None, r.text
    [stored] = _stored(tmp_path / "store")
    assert stored.parent.parent.name == "unknown"
    inputs = batch.read_inputs([tmp_path / "store"])
    assert [row["board"] for row in inputs.runs] == ["unknown"]


def test_a_school_token_without_board_takes_its_board_from_the_tokens_file(tmp_path, schools):
    s = schools[0]
    items = [
        {"token": _token(s.id), "school": s.id},
        {"token": "second-device-token-0123", "school": s.id, "board": s.board},
    ]
    server, _ = _center(tmp_path, items)
    with server:
        doc = _doc(s, 10)
        doc["context"]["board"] = "someone-elses-board"
        assert _post(server.url, _body(doc), _token(s.id)).json()["error"] == "wrong-board"
        doc["context"]["board"] = s.board
        r = _post(server.url, _body(doc), _token(s.id))
        assert r.status_code == 201 and r.json()["board"] == s.board


def test_a_board_token_with_a_list_of_schools_stores_those_only(tmp_path, schools):
    mine = [s for s in schools if s.board == "board-01"]
    server, _ = _center(tmp_path, [{"token": BOARD_TOKEN, "board": "board-01", "schools": [mine[0].id]}])
    with server:
        assert _post(server.url, _body(_doc(mine[0], 11)), BOARD_TOKEN).status_code == 201
        r = _post(server.url, _body(_doc(mine[1], 12)), BOARD_TOKEN)
        assert r.status_code == 403 and r.json()["error"] == "wrong-school"


# ------------------------------------------------------------------------------ chunks, deadline, quota


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _answer(sock: socket.socket, wait_s: float) -> str:
    """What the server answered within ``wait_s`` ('' if nothing)."""
    got = b""
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        ready, _, _ = select.select([sock], [], [], max(0.0, end - time.monotonic()))
        if not ready:
            break
        try:
            data = sock.recv(65536)
        except ConnectionError:
            break
        if not data:
            break
        got += data
        if b"\r\n\r\n" in got:
            head, _, rest = got.partition(b"\r\n\r\n")
            length = next((int(v) for k, _, v in (h.partition(b":") for h in head.split(b"\r\n")) if k.lower() == b"content-length"), 0)
            if len(rest) >= length:
                break
    return got.decode("utf-8", "replace")


def test_a_chunked_upload_of_tiny_chunks_is_refused_at_the_chunk_bound(collecting, schools):
    """Before: 300k one-byte chunks were all read (+39 MB of server memory per 1.8 MB on the
    wire); now the chunk after the bound is refused with a 413 and its reason."""
    server, collector, _ = collecting
    s = schools[0]
    bound = 256  # max(256, MAX // 1024) for the fixture's 256 KiB cap
    with _connect(server.url) as sock:
        head = f"POST /results HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {_token(s.id)}\r\nTransfer-Encoding: chunked\r\n\r\n"
        # exactly the bound's chunks and the size line of one more: nothing is left unread when
        # the server answers, so its close is a FIN (a reset could swallow the answer)
        sock.sendall(head.encode() + b"1\r\n{\r\n" * bound + b"1\r\n")
        answer = _answer(sock, 5.0)
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "too-many-chunks" in answer and "256 chunks" in answer
    assert collector.max_chunks == bound


def test_a_chunked_upload_must_end_within_the_body_deadline(tmp_path, schools):
    """Before: a chunked upload that keeps sending (16 KiB every 0.3 s here, enough for every
    per-read progress rule) was read for as long as it went on."""
    s = schools[0]
    server, collector = _center(tmp_path, [{"token": _token(s.id), "school": s.id, "board": s.board}], body_deadline_s=1.0)
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    with server:
        started = time.monotonic()
        with _connect(server.url) as sock:
            head = f"POST /results HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {_token(s.id)}\r\nTransfer-Encoding: chunked\r\n\r\n"
            sock.sendall(head.encode())
            answer = ""
            for _ in range(100):  # 30 s of body at most, far past the deadline
                try:
                    sock.sendall(chunk)
                except ConnectionError:
                    break
                answer = _answer(sock, 0.3)
                if answer:
                    break
        took = time.monotonic() - started
    assert answer.startswith("HTTP/1.1 408") and "body-timeout" in answer, answer
    assert took < 10, took  # the 1 s deadline, with wide margin; the body alone would take 30 s
    assert _stored(tmp_path / "store") == [] and collector.refused == 1


def test_a_token_has_a_daily_quota(tmp_path, schools):
    s = schools[0]
    items = [{"token": _token(s.id), "school": s.id, "board": s.board, "quota_mb": 1}]
    server, collector = _center(tmp_path, items)
    junk = b"x" * (400 * 1024)
    with server:
        answers = [_post(server.url, junk, _token(s.id)) for _ in range(3)]
        late = _post(server.url, _body(_doc(s, 13)), _token(s.id))
    # 400 KiB + 400 KiB were read (and refused as not JSON); a third would pass 1 MiB: refused unread
    assert [a.status_code for a in answers] == [400, 400, 429]
    assert answers[2].json()["error"] == "quota" and "1 MiB" in answers[2].json()["reason"]
    assert late.status_code == 201  # what is left of the day still takes a real result


def test_a_token_has_a_bound_on_uploads_at_once(tmp_path):
    c = Collector(tmp_path / "store", Tokens({}), in_flight=2)
    g, other = Grant("b", "s", key="k1"), Grant("b", "t", key="k2")
    assert c.admit(g) is None and c.admit(g) is None
    busy = c.admit(g)
    assert busy is not None and busy.status == 429 and busy.body["error"] == "busy"
    assert c.admit(other) is None  # another token is not held back
    c.release(g, 100)
    assert c.admit(g) is None


def test_the_tokens_file_default_quotas_and_its_checks(tmp_path):
    p = tmp_path / "tokens.yaml"
    p.touch(mode=0o600)
    p.write_text(
        yaml.safe_dump(
            {"tokens": [{"token": "school-token-0001", "school": "a", "board": "b"}, {"token": "board-token-00001", "board": "b"}]}
        )
    )
    t = Tokens.load(p)
    assert t.check("school-token-0001").quota_bytes == 64 << 20 and t.check("board-token-00001").quota_bytes == 1024 << 20
    assert t.school_boards == {"a": "b"}
    from giga_netcheck.core.errors import ConfigError

    for bad in (
        [{"token": "board-token-00001", "board": "b", "quota_mb": 0}],
        [{"token": "board-token-00001", "board": "b", "schools": "a"}],
        [{"token": "school-token-0001", "school": "a", "schools": ["a"]}],
        [{"token": "school-token-0001", "school": "a", "board": "b"}, {"token": "school-token-0002", "school": "a", "board": "c"}],
        [{"token": "school-token-0001", "school": "a", "board": "b"}, {"token": "board-token-00001", "board": "c", "schools": ["a"]}],
    ):
        p.write_text(yaml.safe_dump({"tokens": bad}))
        with pytest.raises(ConfigError):
            Tokens.load(p)


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o602])
def test_a_tokens_file_others_may_read_or_write_is_refused(tmp_path, mode):
    from typer.testing import CliRunner

    from giga_netcheck.cli.main import app
    from giga_netcheck.core.errors import ConfigError

    p = tmp_path / "tokens.yaml"
    p.write_text(yaml.safe_dump({"tokens": [{"token": "board-token-00001", "board": "b"}]}))
    p.chmod(mode)
    with pytest.raises(ConfigError, match="chmod 600"):
        Tokens.load(p)
    res = CliRunner().invoke(app, ["serve", "--collect", str(tmp_path / "c"), "--tokens", str(p), "--lang", "en"])
    assert res.exit_code == 2 and "by every user" in res.output and "chmod 600" in res.output
    assert "Traceback" not in res.output
    p.chmod(0o640)  # the owner's group may read it (a service group)
    assert len(Tokens.load(p)) == 1


# ------------------------------------------------------------------------------ fuzz: accept, then batch

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_SURROGATES = st.sampled_from([chr(c) for c in (0xD800, 0xDBFF, 0xDC00, 0xDFFF)])
_EDGES = st.sampled_from([0, -1, 2**31, 10**15, 1e308, "", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"])
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**25), max_value=10**25)
    | st.floats()  # nan and inf included: json.dumps writes NaN/Infinity
    | st.text(st.characters() | _SURROGATES, max_size=12)  # lone surrogates included (written as \\udXXX)
    | _EDGES
)
_VALUES = st.recursive(
    _SCALARS, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3), max_leaves=12
)
_PATHS = [
    ("run_id",),
    ("started_at",),
    ("duration_s",),
    ("status",),
    ("school",),
    ("school", "id"),
    ("school", "name"),
    ("school", "students"),
    ("context",),
    ("context", "board"),
    ("context", "region"),
    ("measurements",),
    ("checks",),
    ("causes",),
    ("probes",),
    ("collected",),
    ("schema_version",),
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=st.sampled_from(_PATHS), value=_VALUES, n=st.integers(min_value=1, max_value=10**6))
def test_fuzz_accept_answers_and_what_it_stores_batch_reads(tmp_path, path, value, n):
    """No exception escapes the collector's accept path, and whatever it stores, batch reads
    without stopping (the property #17 asks of the result loader and the collector)."""
    s = make_schools(1)[0]
    doc = _doc(s, n)
    doc["run_id"] = f"fuzz-{n}"
    node = doc
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node.get(key), dict) else node.__setitem__(key, {}) or node[key]
    node[path[-1]] = value
    body = json.dumps(doc, ensure_ascii=True).encode()
    store = tmp_path / f"store-{n}"
    out = Collector(store, Tokens({})).accept(body, Grant(s.board))
    assert out.status in (200, 201) or (400 <= out.status < 500 and out.body["error"] and out.body["reason"]), out
    if out.status == 201:
        inputs = batch.read_inputs([store])
        assert len(inputs.runs) + len(inputs.skipped) == 1
        con = batch.connect_arrow(batch.to_tables(inputs))
        try:
            batch.aggregate(con)
        finally:
            con.close()
