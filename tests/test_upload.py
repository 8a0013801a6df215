"""run --upload and the spool: results wait while the center is down and arrive exactly once."""

from __future__ import annotations

import datetime as dt
import json
import socket
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from bench.board_data import JST, make_doc, make_schools, templates
from giga_netcheck.board.upload import deliver, pending, results_url, spool, upload
from giga_netcheck.cli.main import app
from giga_netcheck.server.app import ServerConfig, ServerThread
from giga_netcheck.server.collect import Collector, Tokens

runner = CliRunner()
TOKEN = "school-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def school():
    return make_schools(1)[0]


@pytest.fixture
def tokens(tmp_path, school) -> Path:
    p = tmp_path / "tokens.yaml"
    p.write_text(yaml.safe_dump({"tokens": [{"token": TOKEN, "school": school.id, "board": school.board}]}))
    p.chmod(0o600)
    return p


def _center(port: int, store: Path, tokens: Path) -> ServerThread:
    c = Collector(store, Tokens.load(tokens))
    return ServerThread(ServerConfig(host="127.0.0.1", port=port, collector=c))


def _doc(school, n: int) -> dict:
    return make_doc(templates(), school, dt.datetime(2026, 6, 2, 9, n % 60, tzinfo=JST), n)


def _stored(store: Path) -> list[Path]:
    return sorted(store.rglob("*.json"))


NO_WAIT = dict(retries=1, backoff_s=0.0, timeout_s=2.0, sleep=lambda s: None)


def test_results_url():
    assert results_url("http://c:8080") == "http://c:8080/results"
    assert results_url("http://c:8080/") == "http://c:8080/results"
    assert results_url("https://c/gnc/results") == "https://c/gnc/results"
    with pytest.raises(ValueError):
        results_url("c:8080")


def test_spooled_while_down_delivered_once_when_back(tmp_path, school, tokens):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    box = tmp_path / "spool"
    store = tmp_path / "store"
    docs = [_doc(school, i) for i in range(4)]
    for d in docs[:3]:  # the center is down: every upload stays in the spool
        out = upload(d, url, TOKEN, box, **NO_WAIT)
        assert out.stored == [] and out.pending >= 1 and out.error
    assert len(pending(box)) == 3

    with _center(port, store, tokens):
        out = upload(docs[3], url, TOKEN, box, **NO_WAIT)  # the next run sends the backlog too
        assert sorted(out.stored) == sorted(d["run_id"] for d in docs) and out.pending == 0
        assert pending(box) == []
        # a result whose answer was lost is sent again: the center keeps one copy
        spool(docs[0], box)
        again = deliver(box, url, TOKEN, **NO_WAIT)
        assert again.duplicates == [docs[0]["run_id"]] and again.stored == []
        assert deliver(box, url, TOKEN, **NO_WAIT).stored == []  # nothing left to send
    files = _stored(store)
    assert len(files) == 4
    assert {json.loads(p.read_text(encoding="utf-8"))["run_id"] for p in files} == {d["run_id"] for d in docs}


def test_an_unknown_token_leaves_every_result_in_the_spool(tmp_path, school, tokens):
    """#17: a 401 (expired or mistyped token) is configuration, not a bad result: it moved every
    spooled result to rejected/ before, where they were never sent again."""
    store, box = tmp_path / "store", tmp_path / "spool"
    docs = [_doc(school, i) for i in range(3)]
    with _center(0, store, tokens) as center:
        for d in docs[:2]:
            spool(d, box)
        out = upload(docs[2], center.url, "wrong-token-0123456789", box, **NO_WAIT)
        assert out.rejected == [] and out.stored == []
        assert out.auth_error and "401" in out.auth_error and "unauthorized" in out.auth_error
        assert out.pending == 3 and len(pending(box)) == 3
        assert not (box / "rejected").exists()
        fixed = deliver(box, center.url, TOKEN, **NO_WAIT)  # the token is fixed: everything goes
        assert sorted(fixed.stored) == sorted(d["run_id"] for d in docs) and fixed.pending == 0
    assert len(_stored(store)) == 3


def test_upload_command_delivers_the_spool(tmp_path, school, tokens):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    box, store = tmp_path / "spool", tmp_path / "store"
    spool(_doc(school, 1), box)
    spool(_doc(school, 2), box)
    res = runner.invoke(app, ["upload", "--spool", str(box), "--url", url, "--token", TOKEN, "--retries", "0", "--lang", "en"])
    assert res.exit_code == 1, res.output  # the center is down: both wait
    assert len(pending(box)) == 2
    with _center(port, store, tokens):
        res = runner.invoke(app, ["upload", "--spool", str(box), "--url", url, "--token", TOKEN, "--lang", "en"])
        assert res.exit_code == 0, res.output
        assert "2 stored" in res.output
    assert len(_stored(store)) == 2 and pending(box) == []


def test_run_upload_end_to_end(tmp_path, write_site, tokens, school):
    """A real (loopback, quick) run uploads its result with the site's context to a collecting center."""
    from tests.conftest import loopback_site

    store = tmp_path / "store"
    with _center(0, store, tokens) as center:
        site = loopback_site(
            center.url,
            school={"id": school.id, "name": "Upload Elementary", "students": 300},
            context={"board": school.board, "contract": "best-effort", "ipv4_method": "ipoe"},
        )
        path = write_site(site)
        res = runner.invoke(
            app,
            [
                "run",
                "--site",
                str(path),
                "--quick",
                "--no-progress",
                "--out",
                str(tmp_path / "reports"),
                "--upload",
                center.url,
                "--upload-token",
                TOKEN,
                "--lang",
                "en",
                "-f",
                "json",
            ],
        )
        assert res.exit_code in (0, 1, 6), res.output  # 6: incomplete (no DNS on loopback); the upload is what counts
        files = _stored(store)
        assert len(files) == 1, res.output
        doc = json.loads(files[0].read_text(encoding="utf-8"))
        assert doc["context"]["contract"] == "best-effort" and doc["collected"]["by"] == f"school:{school.id}"
    assert pending(tmp_path / "reports" / "spool") == []


class _Flaky(httpx.BaseTransport):
    """Forwards to the real center, but loses the answer to the 2nd request (the center stored
    it; the school never hears) and, from the 5th request on, the line is down."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls >= 5:
            raise httpx.ConnectError("line down", request=request)
        response = self.inner.handle_request(request)
        if self.calls == 2:
            response.read()
            raise httpx.ReadError("connection reset before the answer arrived", request=request)
        return response


def test_lost_answers_and_a_line_that_drops_midway_store_each_result_once(tmp_path, school, tokens):
    box, store = tmp_path / "spool", tmp_path / "store"
    docs = [_doc(school, i) for i in range(8)]
    for d in docs:
        spool(d, box)
    with _center(0, store, tokens) as center:
        flaky = _Flaky()
        first = deliver(box, center.url, TOKEN, transport=flaky, **NO_WAIT)
        # 1st stored; 2nd stored but its answer lost, so sent again: a duplicate; 3rd stored;
        # then the line drops: the rest wait in the spool
        assert len(first.stored) == 2 and len(first.duplicates) == 1 and first.error
        assert first.pending == len(docs) - 3 == len(pending(box))
        second = deliver(box, center.url, TOKEN, **NO_WAIT)  # the line is back
        assert len(second.stored) == len(docs) - 3 and second.pending == 0 and not second.error
    assert pending(box) == []
    files = _stored(store)
    assert len(files) == len(docs)
    assert sorted(json.loads(p.read_text(encoding="utf-8"))["run_id"] for p in files) == sorted(d["run_id"] for d in docs)


def test_two_deliveries_at_once_send_each_result_once(tmp_path, school, tokens):
    """Two processes (a scheduled run and a hand-started upload) on one spool: the lock keeps
    them from sending the same files; every result is stored once."""
    from concurrent.futures import ThreadPoolExecutor

    box, store = tmp_path / "spool", tmp_path / "store"
    docs = [_doc(school, i) for i in range(30)]
    for d in docs:
        spool(d, box)
    with _center(0, store, tokens) as center:
        with ThreadPoolExecutor(max_workers=3) as pool:
            runs = list(pool.map(lambda _: deliver(box, center.url, TOKEN, **NO_WAIT), range(3)))
        sent = [r for run in runs for r in run.stored + run.duplicates]
        assert sorted(sent) == sorted(d["run_id"] for d in docs)  # each sent by exactly one delivery
        assert all(run.busy or not run.error for run in runs)
        deliver(box, center.url, TOKEN, **NO_WAIT)
    assert pending(box) == []
    assert len(_stored(store)) == len(docs)


# ------------------------------------------------------------------------------ #17: quarantine, auth, plain HTTP


def _spool_raw(box: Path, name: str, body: bytes, age_s: float) -> Path:
    """A spool file written as is, ``age_s`` older than now (the spool sends oldest first)."""
    import os
    import time

    box.mkdir(parents=True, exist_ok=True)
    p = box / f"{name}.json"
    p.write_bytes(body)
    t = time.time() - age_s
    os.utime(p, (t, t))
    return p


def _with(doc: dict, raw: bytes) -> bytes:
    """A good result's bytes with ``"x": <raw>`` added at its top level."""
    return json.dumps(doc, ensure_ascii=False).encode()[:-1] + b', "x": ' + raw + b"}"


HOSTILE = {
    "deep": lambda doc: b"[" * 200_000 + b"]" * 200_000,
    "long-int": lambda doc: _with(doc, b"9" * 5000),
    "inf": lambda doc: json.dumps(doc).replace('"duration_s": ', '"duration_s": 1e400, "was": ', 1).encode(),
    "surrogate": lambda doc: _with(doc, b'"\\ud800"'),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_bad_result_is_quarantined_and_the_one_behind_it_is_sent(tmp_path, school, tokens, name):
    """#17: the collector dropped the connection on these bodies (or stored 1e400 as Infinity);
    the client took a drop for a transient failure and the good result queued behind the bad
    one was never sent."""
    store, box = tmp_path / "store", tmp_path / "spool"
    _spool_raw(box, f"bad-{name}", HOSTILE[name](_doc(school, 99)), age_s=60)
    good = _doc(school, 1)
    with _center(0, store, tokens) as center:
        out = upload(good, center.url, TOKEN, box, **NO_WAIT)
    assert out.stored == [good["run_id"]] and out.pending == 0 and not out.error
    assert [r for r, _ in out.rejected] == [f"bad-{name}"]
    assert (box / "rejected" / f"bad-{name}.json").exists()
    reason = (box / "rejected" / f"bad-{name}.reason.txt").read_text(encoding="utf-8")
    assert reason.startswith("4") and ": " in reason and len(reason.strip().splitlines()) == 1
    assert pending(box) == [] and len(_stored(store)) == 1


def test_a_result_refused_for_the_token_stays_and_does_not_block_the_rest(tmp_path, school, tokens):
    """A 403 (this token may not send that school's result) keeps the result in the spool, not
    in rejected/ (it moved there before), and the results behind it are sent."""
    other = make_schools(2)[1]
    store, box = tmp_path / "store", tmp_path / "spool"
    theirs, mine = _doc(other, 1), _doc(school, 2)
    _spool_raw(box, theirs["run_id"], json.dumps(theirs).encode(), age_s=60)
    with _center(0, store, tokens) as center:
        out = upload(mine, center.url, TOKEN, box, **NO_WAIT)
    assert out.stored == [mine["run_id"]] and out.rejected == []
    assert [r for r, _ in out.held] == [theirs["run_id"]] and "wrong-school" in out.held[0][1]
    assert [p.stem for p in pending(box)] == [theirs["run_id"]] and out.pending == 1
    assert not (box / "rejected").exists()


def _mock(answers: dict[str, httpx.Response], default: httpx.Response) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        run_id = json.loads(request.content).get("run_id")
        return answers.get(run_id, default)

    return httpx.MockTransport(handle)


def test_a_4xx_that_is_not_the_collectors_refusal_keeps_everything(tmp_path, school):
    """A 400 or 404 without the collector's JSON reason (a TLS proxy's 'plain HTTP to an HTTPS
    port', a wrong URL) says the center is wrong, not the result: nothing is quarantined."""
    box = tmp_path / "spool"
    for i in range(3):
        spool(_doc(school, i), box)
    for answer in (httpx.Response(400, text="The plain HTTP request was sent to HTTPS port"), httpx.Response(404, text="not found")):
        out = deliver(box, "https://center.example", TOKEN, transport=_mock({}, answer), **NO_WAIT)
        assert out.rejected == [] and out.pending == 3 and "collector" in out.error
    assert len(pending(box)) == 3 and not (box / "rejected").exists()


def test_a_transient_failure_of_one_result_does_not_hold_back_the_next(tmp_path, school):
    box = tmp_path / "spool"
    docs = [_doc(school, i) for i in range(3)]
    for i, d in enumerate(docs):
        _spool_raw(box, d["run_id"], json.dumps(d).encode(), age_s=60 - i)
    ok = httpx.Response(201, json={"status": "stored"})
    out = deliver(box, "https://center.example", TOKEN, transport=_mock({docs[0]["run_id"]: httpx.Response(502)}, ok), **NO_WAIT)
    assert out.stored == [docs[1]["run_id"], docs[2]["run_id"]]
    assert out.pending == 1 and [p.stem for p in pending(box)] == [docs[0]["run_id"]] and "502" in out.error
    # the center really is down: the pass stops after the next result's single try
    calls = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    for d in docs[1:]:
        spool(d, box)
    out = deliver(box, "https://center.example", TOKEN, transport=httpx.MockTransport(down), **NO_WAIT)
    assert out.pending == 3 and len(calls) == NO_WAIT["retries"] + 1 + 1


def test_plain_http_to_another_host_is_named(tmp_path, school):
    from giga_netcheck.board.upload import plain_http_host

    assert plain_http_host("http://center.example:8080/results", TOKEN) == "center.example"
    assert plain_http_host("http://192.0.2.7/results", TOKEN) == "192.0.2.7"
    for url in ("https://center.example/results", "http://127.0.0.1:8080/results", "http://[::1]:8080/results", "http://localhost/results"):
        assert plain_http_host(url, TOKEN) is None, url
    assert plain_http_host("http://center.example/results", None) is None  # no token, nothing to leak
    box = tmp_path / "spool"
    spool(_doc(school, 1), box)
    ok = httpx.MockTransport(lambda r: httpx.Response(201, json={"status": "stored"}))
    out = deliver(box, "http://center.example:8080", TOKEN, transport=ok, **NO_WAIT)  # no traffic: a mock transport
    assert out.insecure == "center.example" and out.stored


def test_the_command_says_token_problems_and_plain_http_in_one_line_each(tmp_path, capsys):
    from giga_netcheck.board.upload import Delivery
    from giga_netcheck.cli.board import report_delivery
    from giga_netcheck.core.i18n import Messages

    d = Delivery(
        pending=2,
        auth_error="401 unauthorized: missing or unknown token [/bogus]",
        insecure="center.example",
        held=[("run-1", "403 wrong-school: this token may upload results of school 'a' only")],
    )
    report_delivery(Messages("en"), d, tmp_path / "spool")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert any("center.example" in line and "http://" in line and "https://" in line for line in lines)
    assert any("refused the upload token" in line and "[/bogus]" in line and "2 results stay" in line for line in lines)
    assert any("run-1" in line and "stays in" in line for line in lines)
