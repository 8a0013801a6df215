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


def test_refused_results_move_aside_with_the_reason(tmp_path, school, tokens):
    store, box = tmp_path / "store", tmp_path / "spool"
    with _center(0, store, tokens) as center:
        out = upload(_doc(school, 1), center.url, "wrong-token-0123456789", box, **NO_WAIT)
        assert out.rejected and "401" in out.rejected[0][1] and out.pending == 0
        assert pending(box) == []
        assert len(list((box / "rejected").glob("*.json"))) == 1
        reason = next((box / "rejected").glob("*.reason.txt")).read_text()
        assert "unauthorized" in reason
    assert _stored(store) == []


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
        assert res.exit_code in (0, 1), res.output
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
