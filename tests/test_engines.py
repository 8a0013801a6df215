"""Throughput engines beside the own one: speedtest-cli (the real package) and LibreSpeed, offline.

speedtest-cli always fetches speedtest.net's configuration, even with ``--mini``; here it reaches
``serve``'s offline stand-ins through ``http_proxy`` (urllib honours it), so nothing ever leaves
loopback (the autouse guard in conftest.py fails any in-process connection elsewhere).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import speedtest

from giga_netcheck.config.site import load_site
from giga_netcheck.core.errors import ConfigError
from giga_netcheck.core.models import Target
from giga_netcheck.measure.engines import ENGINES, ThroughputPlan, registry
from giga_netcheck.measure.engines.librespeed import LibreSpeedEngine, parse_server_list
from giga_netcheck.measure.engines.speedtest_cli import NOTE, SpeedtestEngine
from tests.conftest import clean_env, loopback_site
from tests.fakes import FakeServer

ROOT = Path(__file__).resolve().parent.parent
PLAN = dict(streams=2, duration_s=1.5, warmup_s=0.2)


def _plan(direction: str, **kw) -> ThroughputPlan:
    return ThroughputPlan(direction, **{**PLAN, **kw})


def _proxy_env(server_url: str) -> dict[str, str]:
    """speedtest.net's URLs go to serve (its offline stand-ins); loopback goes direct."""
    return {"http_proxy": server_url, "HTTP_PROXY": server_url, "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}


@pytest.fixture
def via_serve(server, monkeypatch):
    for k, v in _proxy_env(server.url).items():
        monkeypatch.setenv(k, v)
    return server


def test_registry_names_match_the_site_file_spelling():
    assert tuple(registry()) == ENGINES == ("http", "speedtest", "librespeed", "cloudflare", "ndt7")


# --------------------------------------------------------------------------- speedtest-cli itself


def test_speedtest_cli_entry_point_mini_mode_against_serve(server, tmp_path):
    env = {**os.environ, **_proxy_env(server.url), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "speedtest", "--mini", server.url + "/", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["server"]["sponsor"] == "Speedtest Mini"
    assert doc["server"]["url"] == f"{server.url}/speedtest/upload.php"
    assert doc["download"] > 0 and doc["upload"] > 0
    assert doc["bytes_received"] > 100e6  # all 40 random*.jpg files (about 409 MB on loopback)


def test_speedtest_python_api_mini_path_against_serve(via_serve):
    st = speedtest.Speedtest(timeout=10)  # get_config: serve's stand-in, through http_proxy
    st.config["length"] = {"download": 2, "upload": 2}
    best = st.get_best_server(st.set_mini_server(via_serve.url))
    assert best["url"].endswith("/speedtest/upload.php") and best["latency"] < 1000
    assert st.download(threads=2) > 0
    assert st.upload(threads=2, pre_allocate=False) > 0


# ------------------------------------------------------------------------------ speedtest engine


def test_speedtest_engine_mini_keeps_its_own_figures_beside_ours(server):
    engine = SpeedtestEngine()
    t = Target("internet", "internet", "127.0.0.1", server.url, engine="speedtest")
    for direction in ("download", "upload"):
        m = engine.measure(t, _plan(direction), threading.Event())
        assert m.error is None, m.error
        assert m.engine == "speedtest" and m.goodput_mbps and m.goodput_mbps > 0
        assert m.server["kind"] == "speedtest-mini" and m.server["url"] == f"{server.url}/speedtest/upload.php"
        raw = m.engine_raw
        assert raw["tool"] == "speedtest-cli" and raw["version"] == speedtest.__version__
        assert raw["results"][direction] > 0 and raw["speedtest_mbps"] == pytest.approx(raw["results"][direction] / 1e6, rel=1e-3)
        assert NOTE in m.notes
        assert m.bytes_total > 0


def test_speedtest_engine_ookla_path_by_id_and_nearest_offline(via_serve):
    for sid in ("1", None):
        t = Target("internet", "internet", "www.speedtest.net", None, engine="speedtest", server_id=sid)
        m = SpeedtestEngine().measure(t, _plan("download"), threading.Event())
        assert m.error is None, m.error
        assert m.server["kind"] == "ookla" and str(m.server["id"]) == "1" and m.server["sponsor"].startswith("giga-netcheck")
        assert m.goodput_mbps > 0


def test_speedtest_engine_unknown_server_id_is_one_line_naming_the_target(via_serve):
    t = Target("internet-2", "internet", "www.speedtest.net", None, engine="speedtest", server_id="999")
    m = SpeedtestEngine().measure(t, _plan("download"), threading.Event())
    assert m.goodput_mbps is None and m.error_kind == "no-server"
    assert m.error.startswith("internet-2") and "\n" not in m.error


# ------------------------------------------------------------------------------ librespeed engine


@pytest.mark.parametrize("suffix", ["", "/backend", "/backend/"])
def test_librespeed_engine_against_serve(server, suffix):
    engine = LibreSpeedEngine()
    t = Target("center", "center", "127.0.0.1", server.url + suffix, engine="librespeed")
    for direction in ("download", "upload"):
        m = engine.measure(t, _plan(direction), threading.Event())
        assert m.error is None, m.error
        assert m.goodput_mbps > 0 and len(m.per_stream_mbps) == 2
        assert m.url.endswith("/backend/garbage.php" if direction == "download" else "/backend/empty.php")
        assert m.server["kind"] == "librespeed"
        assert m.engine_raw["client_ip"] == "127.0.0.1" and len(m.engine_raw["ping_ms"]) == 10


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_librespeed_server_list_lowest_ping_and_by_id(server, tmp_path):
    host = server.url.split("//", 1)[1]
    servers = [
        {
            "id": 7,
            "name": "dead",
            "server": f"http://127.0.0.1:{_free_port()}/",
            "dlURL": "garbage.php",
            "ulURL": "empty.php",
            "pingURL": "empty.php",
            "getIpURL": "getIP.php",
        },
        {
            "id": 8,
            "name": "board center",
            "server": f"//{host}/backend",
            "dlURL": "garbage.php",
            "ulURL": "empty.php",
            "pingURL": "empty.php",
            "getIpURL": "getIP.php",
        },
    ]
    lst = tmp_path / "servers.json"
    lst.write_text(json.dumps(servers))
    m = LibreSpeedEngine().measure(
        Target("center", "center", "127.0.0.1", None, engine="librespeed", server_list=str(lst)), _plan("download"), threading.Event()
    )
    assert m.error is None, m.error
    assert m.server["name"] == "board center" and m.server["id"] == "8"
    assert m.engine_raw["selection_ping_ms"]["dead"] is None
    for sid in ("8", "board center"):
        t = Target("center", "center", "127.0.0.1", None, engine="librespeed", server_list=str(lst), server_id=sid)
        assert LibreSpeedEngine().measure(t, _plan("upload"), threading.Event()).server["name"] == "board center"
    t = Target("center", "center", "127.0.0.1", None, engine="librespeed", server_list=str(lst), server_id="nope")
    m = LibreSpeedEngine().measure(t, _plan("upload"), threading.Event())
    assert m.goodput_mbps is None and "nope" in m.error and m.error.startswith("center")


@pytest.mark.parametrize(
    "entry,needle",
    [
        ("[]", "JSON array"),
        ('[{"name": "a", "server": "//x/"}]', "[0].dlURL"),
        ("{", "not JSON"),
    ],
)
def test_server_list_format_errors_name_the_entry(entry, needle):
    with pytest.raises(ValueError, match=None) as exc:
        parse_server_list(entry, "list.json")
    assert needle in str(exc.value)


# ---------------------------------------------------------------------------- a server of garbage


@pytest.mark.parametrize("mode", ["not-ours", "garbage"])
@pytest.mark.parametrize("engine", ["speedtest", "librespeed"])
def test_a_server_answering_garbage_is_a_one_line_error_naming_the_target(mode, engine):
    with FakeServer(mode) as fake:
        t = Target("center", "center", "127.0.0.1", fake.url, engine=engine)
        m = registry()[engine]().measure(t, _plan("download"), threading.Event())
    assert m.goodput_mbps is None and m.bytes_total == 0
    assert m.error and "\n" not in m.error and len(m.error) <= 300
    assert m.error.startswith("center") and fake.url in m.error
    assert m.error_kind in ("protocol", "unreachable", "reset", "refused")


# -------------------------------------------------------------------------------- site file, run


def _engine_site(server_url: str, **targets) -> dict:
    site = loopback_site(server_url)
    site["targets"] = {"gateway": "127.0.0.1", **targets}
    return site


def test_site_file_chooses_the_engine_per_target(server, write_site, tmp_path):
    lst = tmp_path / "ls.json"
    lst.write_text(
        json.dumps(
            [
                {
                    "id": 3,
                    "name": "c",
                    "server": server.url + "/",
                    "dlURL": "backend/garbage.php",
                    "ulURL": "backend/empty.php",
                    "pingURL": "backend/empty.php",
                    "getIpURL": "backend/getIP.php",
                }
            ]
        )
    )
    site = load_site(
        write_site(
            _engine_site(
                server.url,
                center={"url": server.url, "engine": "librespeed"},
                internet=[
                    server.url,
                    {"engine": "speedtest", "server_id": 12345, "secure": True},
                    {"engine": "speedtest", "url": server.url},
                    {"engine": "librespeed", "server_list": "ls.json", "server_id": 3},
                ],
            )
        )
    )
    ts = {t.name: t for t in site.targets(None)}
    assert ts["center"].engine == "librespeed" and ts["center"].url == server.url
    assert ts["internet-1"].engine == "http"
    assert (ts["internet-2"].engine, ts["internet-2"].server_id, ts["internet-2"].secure, ts["internet-2"].url) == (
        "speedtest",
        "12345",
        True,
        None,
    )
    assert ts["internet-2"].host == "www.speedtest.net"
    assert ts["internet-3"].url == server.url and ts["internet-3"].engine == "speedtest"
    assert ts["internet-4"].server_list == str(lst) and ts["internet-4"].host == "127.0.0.1"


@pytest.mark.parametrize(
    "target,key",
    [
        ({"engine": "speedtst", "url": "http://127.0.0.1:1"}, "targets.internet[0].engine"),
        ({"engine": "speedtest", "url": "http://127.0.0.1:1", "server_id": 5}, "targets.internet[0].server_id"),
        ({"engine": "speedtest", "server_id": "abc"}, "targets.internet[0].server_id"),
        ({"engine": "librespeed"}, "targets.internet[0].url"),
        ({"engine": "librespeed", "server_list": "missing.json"}, "targets.internet[0].server_list"),
        ({"engine": "http", "server_list": "x.json", "url": "http://127.0.0.1:1"}, "targets.internet[0].server_list"),
        ({"engine": "http"}, "targets.internet[0].url"),
        ({"engine": "librespeed", "url": "http://127.0.0.1:1", "servers": 1}, "targets.internet[0].servers"),
    ],
)
def test_bad_engine_targets_name_the_key(server, write_site, target, key):
    with pytest.raises(ConfigError) as exc:
        load_site(write_site(_engine_site(server.url, internet=[target])))
    assert key in str(exc.value) and "\n" not in str(exc.value)


def _run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {
        **clean_env(),
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "200",
        **(env or {}),
    }
    return subprocess.run([sys.executable, "-m", "giga_netcheck", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def test_run_records_engine_server_and_the_speedtest_warning(server, write_site, tmp_path):
    site = write_site(
        _engine_site(server.url, center={"url": server.url, "engine": "librespeed"}, internet=[{"engine": "speedtest", "url": server.url}])
    )
    proc = _run_cli(
        [
            "run",
            "--site",
            str(site),
            "--out",
            str(tmp_path / "r"),
            "--json",
            str(tmp_path / "res.json"),
            "--format",
            "md",
            "--no-progress",
            "--lang",
            "en",
        ],
        tmp_path,
    )
    doc = json.loads((tmp_path / "res.json").read_text())
    bw = doc["measurements"]["bandwidth"]
    assert {(b["target"], b["engine"]) for b in bw} == {("center", "librespeed"), ("internet", "speedtest")}, proc.stderr
    assert all(b["server"] and b["goodput_mbps"] for b in bw), [b["error"] for b in bw]
    assert all("engine.speedtest.archived" in b["notes"] for b in bw if b["engine"] == "speedtest")
    assert not any(p["probe"].startswith("identify:") for p in doc["probes"])  # not asked for /id
    md = next((tmp_path / "r").glob("*.md")).read_text()
    assert "speedtest-cli is archived" in md and "engine librespeed" in md


def test_run_engine_option_overrides_every_server_target(server, write_site, tmp_path):
    site = write_site(_engine_site(server.url, internet=[server.url]))
    proc = _run_cli(
        [
            "run",
            "--site",
            str(site),
            "--engine",
            "librespeed",
            "--out",
            str(tmp_path / "r"),
            "--json",
            str(tmp_path / "res.json"),
            "--format",
            "json",
            "--no-progress",
        ],
        tmp_path,
    )
    doc = json.loads((tmp_path / "res.json").read_text())
    assert {b["engine"] for b in doc["measurements"]["bandwidth"]} == {"librespeed"}, proc.stderr
    bad = _run_cli(["run", "--site", str(site), "--engine", "iperf", "--no-progress"], tmp_path)
    assert bad.returncode == 2 and "--engine" in bad.stderr


def test_run_against_a_garbage_librespeed_target_fails_in_one_line(server, write_site, tmp_path):
    with FakeServer("not-ours") as fake:
        site = write_site(_engine_site(server.url, internet=[{"engine": "librespeed", "url": fake.url}]))
        _run_cli(
            [
                "run",
                "--site",
                str(site),
                "--out",
                str(tmp_path / "r"),
                "--json",
                str(tmp_path / "res.json"),
                "--format",
                "json",
                "--no-progress",
            ],
            tmp_path,
        )
    doc = json.loads((tmp_path / "res.json").read_text())
    rec = next(p for p in doc["probes"] if p["probe"] == "bandwidth")
    assert rec["status"] == "failed" and rec["reason"].startswith("internet") and fake.url in rec["reason"]
    assert "\n" not in rec["reason"]


# --------------------------------------------------------------------------- reports, redaction


def _speedtest_result():
    from dataclasses import replace

    from tests.factories import bandwidth, healthy_measurements, run_result

    m = healthy_measurements()
    st = replace(
        bandwidth("internet", 380.0),
        engine="speedtest",
        notes=(NOTE,),
        server={"kind": "ookla", "id": "48463", "sponsor": "IPA CyberLab", "host": "speed.example.jp:8080"},
        engine_raw={"results": {"client": {"ip": "203.0.113.50"}}, "speedtest_mbps": 301.2},
    )
    return run_result(replace(m, bandwidth=m.bandwidth + (st,)))


def test_reports_print_the_speedtest_warning_in_both_languages():
    from io import StringIO

    from rich.console import Console

    from giga_netcheck.core.i18n import Messages
    from giga_netcheck.render.markdown import render
    from giga_netcheck.render.terminal import show

    r = _speedtest_result()
    for lang, needle in (("en", "speedtest-cli is archived"), ("ja", "speedtest-cli はアーカイブ済み")):
        md = render(r, Messages(lang))
        assert needle in md and "Ookla #48463 IPA CyberLab" in md
        buf = StringIO()
        show(Console(file=buf, width=200), r, Messages(lang))
        assert buf.getvalue().count(needle) == 1


def test_redaction_keeps_note_keys_and_hides_addresses_in_engine_figures():
    from giga_netcheck.core.redact import redact

    b = next(b for b in redact(_speedtest_result()).measurements.bandwidth if b.engine == "speedtest")
    assert b.notes == (NOTE,)
    assert "203.0.113.50" not in json.dumps(b.engine_raw) and "speed.example.jp" not in json.dumps(b.server)


def test_engine_option_without_internet_targets_means_the_nearest_ookla_server():
    from giga_netcheck.cli.run import _with_engine
    from giga_netcheck.config.site import default_site

    site = _with_engine(default_site(env={}), "speedtest")
    t = [t for t in site.targets("192.168.1.1") if t.role == "internet"]
    assert [(x.engine, x.url, x.server_id, x.host) for x in t] == [("speedtest", None, None, "www.speedtest.net")]
    assert [x.engine for x in site.targets("192.168.1.1") if x.role == "gateway"] == ["http"]
    with pytest.raises(ConfigError):
        _with_engine(default_site(env={}), "iperf3")


def test_session_cache_opens_once_and_remembers_the_mapped_error():
    from giga_netcheck.core.models import Target
    from giga_netcheck.measure.engines import SessionCache

    calls: list[str] = []

    def open_(target):
        calls.append(target.name)
        if target.name == "bad":
            raise OSError("refused")
        return object()

    cache = SessionCache(open_, lambda exc, target: RuntimeError(f"{target.name}: {exc}"))
    good, bad = Target("good", "center", "127.0.0.1"), Target("bad", "internet", "127.0.0.2")
    assert cache.get(good) is cache.get(good)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="bad: refused"):
            cache.get(bad)
    assert calls == ["good", "bad"]
