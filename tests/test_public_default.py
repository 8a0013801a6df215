"""Zero configuration (issue 15): with no internet target, `run` measures against public
speed-test infrastructure (Cloudflare's endpoints by default, M-Lab's ndt7 with --engine ndt7),
says so in the report, and `--no-public` / `targets.public: false` / $GIGA_NETCHECK_NO_PUBLIC keep
it to the board's own servers. Offline: the public URL is pointed at `serve` on loopback, which
speaks the same paths."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from giga_netcheck.cli.main import app
from giga_netcheck.config import site as site_mod
from giga_netcheck.config.site import default_site, load_site, public_target
from giga_netcheck.core.i18n import Messages

runner = CliRunner()


def _site(dns_port: int, **targets) -> dict:
    return {
        "school": {"id": "pub-1", "name": "Public Default Elementary"},
        "classrooms": [{"name": "5-1", "devices": 35}],
        "targets": {"gateway": "127.0.0.1", **targets},
        "dns": {"resolvers": [f"127.0.0.1:{dns_port}"], "names": ["www.lab.example"]},
        "probes": {
            "bandwidth": {"duration_s": 1.5, "warmup_s": 0.5, "streams": 2},
            "latency": {"count": 5, "interval_s": 0.02},
            "dns": {"queries": 3, "timeout_s": 0.5},
        },
        "load": {"enabled": False},
    }


@pytest.fixture
def public_is_loopback(monkeypatch, server):
    """The public infrastructure's URL is the loopback server; public use allowed again."""
    monkeypatch.delenv("GIGA_NETCHECK_NO_PUBLIC", raising=False)
    monkeypatch.setitem(site_mod.PUBLIC_URLS, "cloudflare", server.url)
    return server


def _run(path, out, *extra):
    res = runner.invoke(
        app, ["run", "--site", str(path), "--quick", "--no-progress", "--out", str(out), "--lang", "en", "-f", "json", *extra]
    )
    docs = list(out.glob("*.json"))
    return res, (json.loads(docs[0].read_text(encoding="utf-8")) if docs else None)


def test_no_internet_target_measures_against_the_public_default(public_is_loopback, dns_server, write_site, tmp_path):
    res, doc = _run(write_site(_site(dns_server.port)), tmp_path / "r")
    assert doc is not None, res.output
    internet = [t for t in doc["targets"] if t["role"] == "internet"]
    assert [(t["engine"], t["url"]) for t in internet] == [("cloudflare", public_is_loopback.url)]
    down = [b for b in doc["measurements"]["bandwidth"] if b["direction"] == "download" and b["target"] == internet[0]["name"]]
    assert down and down[0]["goodput_mbps"] and down[0]["goodput_mbps"] > 0, doc["measurements"]["bandwidth"]
    assert not any(x["subject"] == "bandwidth" for x in doc["missing"]), doc["missing"]
    assert Messages("en")("third_party.cloudflare", host="127.0.0.1").split("(")[0] in res.output


@pytest.mark.parametrize("how", ["--no-public", "site-key", "env"])
def test_no_public_keeps_the_run_to_own_servers(how, public_is_loopback, dns_server, write_site, tmp_path, monkeypatch):
    extra: tuple[str, ...] = ()
    site = _site(dns_server.port)
    if how == "--no-public":
        extra = ("--no-public",)
    elif how == "site-key":
        site["targets"]["public"] = False
    else:
        monkeypatch.setenv("GIGA_NETCHECK_NO_PUBLIC", "1")
    res, doc = _run(write_site(site), tmp_path / "r", *extra)
    assert doc is not None, res.output
    assert [t for t in doc["targets"] if t["role"] == "internet"] == []
    assert doc["status"] == "incomplete" and any(x["subject"] == "bandwidth" for x in doc["missing"])
    assert res.exit_code == 6, res.output


def test_a_configured_internet_target_is_never_replaced(public_is_loopback, dns_server, write_site, server, tmp_path):
    site = load_site(write_site(_site(dns_server.port, internet=[server.url + "/"])))
    (t,) = [t for t in site.targets(None) if t.role == "internet"]
    assert t.engine == "http" and t.url == server.url


def test_public_target_defaults(monkeypatch):
    monkeypatch.delenv("GIGA_NETCHECK_NO_PUBLIC", raising=False)
    cf = public_target()
    assert (cf.engine, cf.url, cf.host) == ("cloudflare", "https://speed.cloudflare.com", "speed.cloudflare.com")
    assert public_target("ndt7").engine == "ndt7" and public_target("http").engine == "cloudflare"
    assert default_site(env={}).public and not default_site(env={"GIGA_NETCHECK_NO_PUBLIC": "1"}).public
    assert [t.engine for t in default_site(env={}).targets("192.0.2.1") if t.role == "internet"] == ["cloudflare"]
    assert [t.role for t in default_site(env={"GIGA_NETCHECK_NO_PUBLIC": "1"}).targets("192.0.2.1")] == ["gateway"]


def test_engine_ndt7_with_no_target_measures_the_line_with_one_connection(monkeypatch, dns_server, write_site, tmp_path):
    """`run --engine ndt7` with no internet target: M-Lab's ndt7 (here serve's ndt7 on loopback).
    One connection by design, so its figure is the line's, the run is not incomplete, and the
    single-stream repeat is not run."""
    from giga_netcheck.server.app import ServerConfig, ServerThread

    with ServerThread(ServerConfig(host="127.0.0.1", port=0, ndt7_duration_s=3.0)) as ndt7:
        monkeypatch.delenv("GIGA_NETCHECK_NO_PUBLIC", raising=False)
        monkeypatch.setitem(site_mod.PUBLIC_URLS, "ndt7", ndt7.url)
        res, doc = _run(write_site(_site(dns_server.port)), tmp_path / "r", "--engine", "ndt7")
    assert doc is not None, res.output
    (t,) = [t for t in doc["targets"] if t["role"] == "internet"]
    assert t["engine"] == "ndt7"
    bw = doc["measurements"]["bandwidth"]
    assert sorted(b["direction"] for b in bw) == ["download", "upload"], bw
    assert all(b["streams"] == 1 and b["goodput_mbps"] and b["goodput_mbps"] > 0 for b in bw), bw
    assert not any(x["subject"] == "bandwidth" for x in doc["missing"]), doc["missing"]
    assert any(c["id"].startswith("classroom.bandwidth.down") and c["status"] != "not-measured" for c in doc["checks"])
    assert "M-Lab" in res.output
