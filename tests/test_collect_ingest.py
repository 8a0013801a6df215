"""Collector ingestion (issue 19 item 6): group commit, exactly-once under races, several workers.

- an upload is answered 201 only after its file and its folder were fsynced (the order of the
  fsyncs and of the answer is recorded through the real server);
- a folder that cannot be made durable is a 507, never a 201;
- files submitted while a batch is being made durable are committed together in the next batch,
  and a full queue makes the submitter wait (bounded memory);
- the same run id uploaded many times at once is stored once; the rest are ``duplicate``;
- two ``serve --workers 2`` processes behind one port store every run id exactly once.

Loopback only; bounded counts and generous deadlines.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.board_data import make_schools
from giga_netcheck.board import batch
from giga_netcheck.server import app, commit
from giga_netcheck.server.app import ServerConfig, ServerThread
from giga_netcheck.server.collect import Collector, Grant, Tokens
from giga_netcheck.server.commit import GroupCommit
from tests.test_collect import MAX, _body, _doc, _post, _stored, _token, _tokens_file

ROOT = Path(__file__).resolve().parent.parent
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and SO_REUSEPORT: Linux")


@pytest.fixture
def schools():
    return make_schools(12, boards=3)


def _center(tmp_path: Path, schools, **kw) -> tuple[ServerThread, Collector, Path]:
    store = tmp_path / "collected"
    collector = Collector(store, Tokens.load(_tokens_file(tmp_path, schools)), max_bytes=MAX, **kw)
    return ServerThread(ServerConfig(host="127.0.0.1", port=0, collector=collector, idle_timeout_s=3)), collector, store


# ------------------------------------------------------------------------------ durability before the answer


@linux_only
def test_a_201_is_written_only_after_its_file_and_folder_were_fsynced(tmp_path, schools, monkeypatch):
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    real_fsync, real_respond = os.fsync, app.respond

    def fsync(fd: int) -> None:
        real_fsync(fd)
        with lock:
            events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))

    async def respond(writer, status, body=b"", **kw):
        if status == 201:
            with lock:
                events.append(("answer", json.loads(body)["run_id"]))
        return await real_respond(writer, status, body, **kw)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(app, "respond", respond)
    server, _, store = _center(tmp_path, schools)
    docs = [_doc(s, i) for i, s in enumerate(schools)]
    with server, ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda d: _post(server.url, _body(d), _token(d["school"]["id"])), docs))
    assert [a.status_code for a in answers] == [201] * len(docs)
    for d in docs:
        folder = store / d["school"]["id"].split("-s")[0] / d["school"]["id"]
        run_id = d["run_id"]
        answered = events.index(("answer", run_id))
        before = events[:answered]
        file_synced = [i for i, (kind, path) in enumerate(before) if kind == "fsync" and Path(path).name.startswith(f".{run_id}.")]
        folder_synced = [i for i, (kind, path) in enumerate(before) if kind == "fsync" and Path(path) == folder]
        assert file_synced, f"{run_id}: answered before its file was fsynced"
        assert folder_synced and max(folder_synced) > min(file_synced), f"{run_id}: answered before its folder was fsynced"
        assert (folder / f"{run_id}.json").is_file()


def test_a_folder_that_cannot_be_made_durable_is_a_507_not_a_201(tmp_path, schools, monkeypatch):
    def broken(path: Path) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(commit, "_fsync_dir", broken)
    c = Collector(tmp_path / "c", Tokens({}), max_bytes=MAX)
    out = c.accept(_body(_doc(schools[0])), Grant(schools[0].board, schools[0].id))
    assert out.status == 507 and out.body["error"] == "cannot-store" and "Input/output error" in out.body["reason"]
    assert c.stored == 0 and c.refused == 1
    assert not [p for p in (tmp_path / "c").rglob("*") if p.name.startswith(".")], "no temporary file left"


def test_files_that_arrive_during_a_commit_go_together_in_the_next(tmp_path, monkeypatch):
    gate, entered = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_first(fd: int) -> None:
        if not entered.is_set():
            entered.set()
            assert gate.wait(30)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_first)
    gc = GroupCommit()
    first = gc.submit(tmp_path / "a" / "first.json", b"{}")
    assert entered.wait(30)  # the writer is inside the first batch's fsync
    rest = [gc.submit(tmp_path / "b" / f"r{i}.json", b'{"i": %d}' % i) for i in range(10)]
    again = gc.submit(tmp_path / "b" / "r3.json", b"{}")  # the same name twice in one batch
    gate.set()
    assert first.result(30) == commit.STORED
    assert [f.result(30) for f in rest] == [commit.STORED] * 10
    assert again.result(30) == commit.EXISTS
    assert gc.stats.batches == 2 and gc.stats.largest_batch == 11 and gc.stats.files == 12
    assert json.loads((tmp_path / "b" / "r3.json").read_text()) == {"i": 3}  # the first one won, unchanged
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(f"r{i}.json" for i in range(10))


def test_a_full_commit_queue_makes_the_submitter_wait(tmp_path, monkeypatch):
    gate, entered = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def held(fd: int) -> None:
        entered.set()
        assert gate.wait(30)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", held)
    gc = GroupCommit(max_pending_bytes=100)
    gc.submit(tmp_path / "one.json", b"x" * 60)
    assert entered.wait(30)
    second: list = []
    t = threading.Thread(target=lambda: second.append(gc.submit(tmp_path / "two.json", b"y" * 60)))
    t.start()
    t.join(0.5)
    assert t.is_alive() and not second, "a submit past the cap must wait"
    assert gc.pending_bytes == 60
    gate.set()
    t.join(30)
    assert second and second[0].result(30) == commit.STORED
    assert gc.flush(30) and gc.pending_bytes == 0


# ------------------------------------------------------------------------------ exactly once


def test_the_same_run_id_uploaded_at_once_is_stored_once(tmp_path, schools):
    server, collector, store = _center(tmp_path, schools[:1], in_flight=16)  # one token, 16 at once
    s = schools[0]
    doc = _doc(s, 5)
    other = dict(doc, duration_s=1.5)  # another document under the same run id
    with server, ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda b: _post(server.url, b, _token(s.id)), [_body(doc)] * 16))
        late = _post(server.url, _body(other), _token(s.id))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 15 + [201], codes
    assert {a.json()["status"] for a in answers} == {"stored", "duplicate"}
    assert late.status_code == 409 and late.json()["error"] == "run-id-conflict"
    [stored] = _stored(store)
    assert json.loads(stored.read_text(encoding="utf-8"))["duration_s"] == doc["duration_s"]
    assert collector.stored == 1 and collector.duplicates == 15
    assert [r["run_id"] for r in batch.read_inputs([store]).runs] == [doc["run_id"]]


def test_an_uploaded_collected_key_is_replaced_and_the_upload_kept_as_sent(tmp_path, schools):
    s = schools[0]
    c = Collector(tmp_path / "c", Tokens({}), max_bytes=MAX)
    plain = _doc(s, 1)
    forged = dict(_doc(s, 2), collected={"board": "someone-else", "by": "board:x"})
    for doc in (plain, forged):
        assert c.accept(_body(doc), Grant(s.board, s.id)).status == 201
    files = {json.loads(p.read_text(encoding="utf-8"))["run_id"]: p for p in _stored(tmp_path / "c")}
    kept = files[plain["run_id"]].read_bytes()
    assert kept.startswith(_body(plain)[:-1])  # the upload's bytes, then ours
    for p in files.values():
        text = p.read_text(encoding="utf-8")
        assert text.count('"collected"') == 1
        assert json.loads(text)["collected"]["board"] == s.board
    inputs = batch.read_inputs([tmp_path / "c"])
    assert len(inputs.runs) == 2 and not inputs.skipped


# ------------------------------------------------------------------------------ several workers


def _serve_workers(tmp_path: Path, schools, workers: int) -> tuple[subprocess.Popen, int, list[str]]:
    tokens = _tokens_file(tmp_path, schools)
    cmd = [sys.executable, "-m", "giga_netcheck.cli.main", "serve", "--host", "127.0.0.1", "--port", "0", "--lang", "en"]
    cmd += ["--collect", str(tmp_path / "store"), "--tokens", str(tokens), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    ports: list[int] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            m = re.search(r"measurement server on 127\.0\.0\.1:(\d+)", line)
            if m:
                ports.append(int(m.group(1)))
                if len(ports) == workers:
                    ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(60):
        proc.kill()
        pytest.fail("serve --workers did not start:\n" + "".join(lines[-20:]))
    assert len(set(ports)) == 1, f"the workers listen on one port, not {ports}"
    return proc, ports[0], lines


@linux_only
def test_two_workers_behind_one_port_store_every_run_once(tmp_path, schools):
    proc, port, lines = _serve_workers(tmp_path, schools, 2)
    url = f"http://127.0.0.1:{port}"
    docs = [_doc(s, n) for n in (1, 2) for s in schools]  # 24 distinct results
    sends = [d for d in docs for _ in range(3)]  # each sent three times, at once, each on its own connection
    try:
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda d: _post(url, _body(d), _token(d["school"]["id"])), sends))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    time.sleep(0.2)  # the reader thread takes the last lines
    by_run: dict[str, list[int]] = {}
    for d, a in zip(sends, answers):
        by_run.setdefault(d["run_id"], []).append(a.status_code)
    assert all(sorted(codes) == [200, 200, 201] for codes in by_run.values()), by_run
    files = _stored(tmp_path / "store")
    assert sorted(p.stem for p in files) == sorted(d["run_id"] for d in docs)
    assert not [p for p in (tmp_path / "store").rglob(".*")], "no temporary files left"
    assert len(batch.read_inputs([tmp_path / "store"]).runs) == len(docs)
    stats = [re.search(r"collector pid (\d+): stored (\d+), duplicates (\d+)", line) for line in lines]
    stats = [m for m in stats if m]
    assert len({m.group(1) for m in stats}) == 2, "both workers report at their stop"
    assert sum(int(m.group(2)) for m in stats) == len(docs) and sum(int(m.group(3)) for m in stats) == 2 * len(docs)
    assert all(int(m.group(2)) + int(m.group(3)) > 0 for m in stats), "the kernel spread the connections over both workers"
    assert proc.returncode == 0


def test_serve_refuses_a_bad_worker_count(tmp_path, schools):
    from typer.testing import CliRunner

    from giga_netcheck.cli.main import app as cli

    tokens = _tokens_file(tmp_path, schools)
    res = CliRunner().invoke(cli, ["serve", "--collect", str(tmp_path / "c"), "--tokens", str(tokens), "--workers", "0", "--lang", "en"])
    assert res.exit_code == 2 and "--workers" in res.output and "Traceback" not in res.output
