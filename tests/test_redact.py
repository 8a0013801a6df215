"""--redact: no address, MAC, host name or SSID of the input survives in any format; placeholders are consistent."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from giga_netcheck.cli.main import app
from giga_netcheck.core.i18n import LANGS, Messages
from giga_netcheck.core.models import Evidence, ProbeRecord, RunResult, from_dict
from giga_netcheck.core.redact import Redactor, originals, redact
from giga_netcheck.core.results import dumps, load
from giga_netcheck.render import registry
from giga_netcheck.render.terminal import show
from tests.factories import load_result, load_step

RESULTS = Path(__file__).parent / "golden" / "results"

SECRETS = [
    # addresses and names the stored results record (targets, host info, DNS) ...
    "192.168.10.1",
    "10.20.0.10",
    "10.20.0.53",
    "127.0.0.53",
    "203.0.113.80",
    "142.250.196.110",
    "fe80::1",
    "speed.edu-net.example.jp",
    "proxy.minato.example.jp",
    "minato.example.jp",
    "gnc-laptop-07",
    "www.mext.go.jp",
    "classroom.google.com",
    "GIGA-Minato-5G",
    "a4:2b:b0:12:34:56",
    "A4-2B-B0-12-34-56",
    # ... and what the rich result below adds in free text
    "2001:db8:10::53",
    "198.51.100.23",
    "00:1a:2b:3c:4d:5e",
    "tanaka",
    "ntp.board.example.jp",
    "fe80::a00:27ff:fe4e:66a1",
]


def rich_result() -> RunResult:
    """The Wi-Fi + proxy fixture with identifiers sprinkled into every free-text field."""
    r = load(RESULTS / "lan-capacity.json")
    host = dict(
        r.host,
        notes=["wifi: roamed from 00:1a:2b:3c:4d:5e to a4:2b:b0:12:34:56", "ntp.board.example.jp unreachable from A4-2B-B0-12-34-56"],
        resolvers=["192.168.10.1", "2001:db8:10::53"],
        gateway_ipv6="fe80::a00:27ff:fe4e:66a1%wlp2s0",
    )
    probes = r.probes + (
        ProbeRecord(
            "identify:internet", "failed", "http://speed.edu-net.example.jp:8080/id: timed out via proxy.minato.example.jp:3128", "timeout"
        ),
        ProbeRecord("dns", "partial", "2001:db8:10::53: SERVFAIL for www.mext.go.jp; 198.51.100.23 answered", "servfail"),
    )
    checks = tuple(dataclasses.replace(c, detail=f"{c.detail or ''}; via 192.168.10.1 (GIGA-Minato-5G)") for c in r.checks)
    causes = tuple(
        dataclasses.replace(
            c, evidence=c.evidence + (Evidence("x_ms", 1.0, "ms", "10.20.0.53", None, "seen at [fe80::1]:53 from gnc-laptop-07"),)
        )
        for c in r.causes
    )
    return dataclasses.replace(
        r,
        host=host,
        probes=probes,
        checks=checks,
        causes=causes,
        site_file="/home/tanaka/sites/minato-01.yaml",
        not_measured=r.not_measured + ("dns: 2001:db8:10::53 did not answer",),
        measurements=dataclasses.replace(
            r.measurements,
            load=load_result(
                [load_step(10, 0.5, errors={"reset": 5}, error_examples=("reset: from a4:2b:b0:12:34:56",))], url="http://10.20.0.10:8080"
            ),
        ),
    )


def all_outputs(r: RunResult) -> dict[str, str]:
    out = {}
    for lang in LANGS:
        m = Messages(lang)
        for fmt, render in registry().items():
            out[f"{fmt}.{lang}"] = render(r, m)
        buf = io.StringIO()
        show(Console(file=buf, width=160, color_system=None), r, m)
        out[f"terminal.{lang}"] = buf.getvalue()
    return out


def leaks(text: str, secrets: list[str]) -> list[str]:
    low = text.lower()
    return [s for s in secrets if s.lower() in low]


def test_the_check_can_fail():
    # every secret is really in the unredacted outputs, so the test below would see a leak
    outputs = all_outputs(rich_result())
    missing = [s for s in SECRETS if not any(leaks(t, [s]) for t in outputs.values())]
    assert not missing, f"secrets the rich result never shows (the leak test would be blind to them): {missing}"


def test_no_original_identifier_in_any_format_or_language():
    r = rich_result()
    secrets = sorted(set(SECRETS) | set(originals(r)))
    for name, text in all_outputs(redact(r)).items():
        assert not leaks(text, secrets), f"{name} still shows {leaks(text, secrets)}"


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.json")), ids=lambda p: p.stem)
def test_every_stored_result_redacts_clean(path):
    r = load(path)
    secrets = originals(r)
    assert secrets, "every stored result records some address"
    for name, text in all_outputs(redact(r)).items():
        assert not leaks(text, secrets), f"{name} still shows {leaks(text, secrets)}"


def test_same_original_same_placeholder_everywhere():
    r = redact(rich_result())
    gw = r.targets[0].host
    assert re.fullmatch(r"ip-\d+", gw)
    assert r.host["gateway_ipv4"] == gw and r.host["resolvers"][0] == gw
    assert all(d.server == gw for d in r.measurements.dns if d.resolver == "system")
    assert all(f"via {gw} (" in (c.detail or "") for c in r.checks)
    internet = next(t for t in r.targets if t.role == "internet")
    assert re.fullmatch(r"host-\d+", internet.host) and internet.url == f"http://{internet.host}:8080"
    assert f"http://{internet.host}:8080/id" in next(p.reason for p in r.probes if p.probe == "identify:internet")
    ssid = r.host["wifi"]["ssid"]
    assert re.fullmatch(r"ssid-\d+", ssid) and all(f"({ssid})" in (c.detail or "") for c in r.checks)
    bssid = r.host["wifi"]["bssid"]
    assert re.fullmatch(r"mac-\d+", bssid) and bssid in r.host["notes"][0]
    center = next(t for t in r.targets if t.name == "center")
    assert r.measurements.load.steps[0].error_examples == (f"reset: from {bssid}",) and r.measurements.load.url == center.url
    assert r.site_file == "minato-01.yaml"
    v6 = r.host["resolvers"][1]
    assert re.fullmatch(r"ip6-\d+", v6) and any(v6 in p.reason for p in r.probes if p.reason) and any(v6 in x for x in r.not_measured)


def test_ids_numbers_and_structure_are_kept():
    r = rich_result()
    red = redact(r)
    assert [c.id for c in red.checks] == [c.id for c in r.checks]
    assert [(c.id, c.segment, c.confidence, c.rules, c.advice) for c in red.causes] == [
        (c.id, c.segment, c.confidence, c.rules, c.advice) for c in r.causes
    ]
    assert [(e.metric, e.value, e.unit, e.check_id) for c in red.causes for e in c.evidence] == [
        (e.metric, e.value, e.unit, e.check_id) for c in r.causes for e in c.evidence
    ]
    assert [b.goodput_mbps for b in red.measurements.bandwidth] == [b.goodput_mbps for b in r.measurements.bandwidth]
    assert [s.rtts_ms for s in red.measurements.latency] == [s.rtts_ms for s in r.measurements.latency]
    assert (red.school, red.run_id, red.started_at, red.status) == (r.school, r.run_id, r.started_at, r.status)
    assert [t.name for t in red.targets] == [t.name for t in r.targets]
    assert from_dict(RunResult, json.loads(dumps(red))) == red  # still a valid result document
    assert redact(red) == red  # redacting twice changes nothing


@pytest.mark.parametrize(
    "text, expect",
    [
        ("gw 192.168.1.1.", "gw ip-1."),
        ("[2001:db8::1]:8080 and fe80::1%eth0", "[ip6-1]:8080 and ip6-2%eth0"),
        ("::ffff:10.0.0.1", "ip6-1"),
        ("A4-2B-B0-12-34-56 = a4:2b:b0:12:34:56 = a42b.b012.3456", "mac-1 = mac-1 = mac-1"),
        ("at 2026-06-03T11:20:05+09:00 took 12:30:45", "at 2026-06-03T11:20:05+09:00 took 12:30:45"),
        ("classroom.dns.warm_p50 in site.yaml, v1.2.3.4, 1.2.3.4.5", "classroom.dns.warm_p50 in site.yaml, v1.2.3.4, 1.2.3.4.5"),
        ("https://cdn.example.org/x and http://10.0.0.9:80/", "https://host-1/x and http://ip-1:80/"),
    ],
)
def test_text_patterns(text, expect):
    assert Redactor().text(text) == expect


def test_known_host_names_are_replaced_case_insensitively_and_as_parts():
    red = Redactor()
    red.host("Speed.Example.JP")
    red.host("pc")  # too short to hunt for in free text: only a field that is exactly "pc" is replaced
    # longer names around a known one are host names of their own (found by their shape)
    assert red.text("SPEED.example.jp timed out; abc.speed.example.jp; speed.example.jp.cdn.net") == "host-1 timed out; host-3; host-4"
    assert (
        red.text("ntp.board.example.jp, proxy.local, site.yaml, classroom.dns.timeouts, 3.11.2")
        == "host-5, host-6, site.yaml, classroom.dns.timeouts, 3.11.2"
    )
    assert red.text("PC room") == "PC room" and red.text("pc") == "host-2"


def test_report_redact_cli_writes_no_original(tmp_path):
    src = tmp_path / "r.json"
    src.write_text(dumps(rich_result()), encoding="utf-8")
    secrets = sorted(set(SECRETS) | set(originals(rich_result())))
    runner = CliRunner()
    for fmt in ("html", "csv", "md", "json"):
        out = tmp_path / f"out.{fmt}"
        res = runner.invoke(app, ["report", str(src), "--format", fmt, "--lang", "ja", "--as-saved", "--redact", "--out", str(out)])
        assert res.exit_code in (0, 1), res.output
        assert not leaks(out.read_text(encoding="utf-8"), secrets), fmt
    res = runner.invoke(app, ["report", str(src), "--format", "terminal", "--as-saved", "--redact", "--lang", "en"])
    assert not leaks(res.output, secrets)
    unredacted = runner.invoke(app, ["report", str(src), "--format", "md", "--as-saved", "--lang", "en"])
    assert leaks(unredacted.output, secrets), "without --redact the addresses are shown"


def test_run_redact_default_formats(tmp_path):
    """run --demo --quick --redact on loopback: the default formats (json + html) carry no 127.0.0.1;
    the demo measures all a classroom needs (its own loopback resolver included), so it can pass."""
    out = tmp_path / "reports"
    res = CliRunner().invoke(app, ["run", "--demo", "--quick", "--no-progress", "--redact", "--lang", "ja", "--out", str(out)])
    assert res.exit_code == 0, res.output
    written = sorted(p.suffix for p in out.iterdir())
    assert written == [".html", ".json"]
    doc = json.loads(next(out.glob("*.json")).read_text(encoding="utf-8"))
    assert doc["status"] in ("pass", "warn") and not doc["missing"], doc["missing"]
    dns = doc["measurements"]["dns"]
    assert {d["kind"] for d in dns} == {"cold", "warm"}
    assert all(d["p50_ms"] is not None and set(d["rcodes"]) == {"NOERROR"} and not d["timeouts"] for d in dns), dns
    for p in out.iterdir():
        text = p.read_text(encoding="utf-8")
        assert "127.0.0.1" not in text and "www.mext.go.jp" not in text, p.name
        assert "ip-1" in text


# ------------------------------------------------- IPv4 vs IPv6, proxy, discovered path, engine servers

SECTION_SECRETS = [
    "198.18.3.2",
    "2001:2::10",
    "2001:2:0:3::2",
    "198.18.2.2",
    "user:pw",
    "proxy.example",
    "wpad.school.example",
    "198.51.100.9",
    "10.0.0.1",
    "10.9.9.9",
    "ookla.example.net",
    "ls.example.org",
]


def sections_result() -> RunResult:
    """A result with families (v4 + v6), a proxy with credentials and a PAC URL, a traceroute, engine servers."""
    from tests.factories import bandwidth, discovered_path, family_path, proxy_report, replace_dc

    r = rich_result()
    fams = (
        family_path("internet", "ipv4", 90.0),
        replace_dc(family_path("internet", "ipv6", 60.0), address="2001:2::10"),
        family_path("internet", "ipv6", None, None, status="not-measured", reason="2001:2:0:3::2: no route to host"),
    )
    proxy = replace_dc(
        proxy_report(proxy="http://user:pw@proxy.example:3128"),
        pac_url="http://wpad.school.example/proxy.pac",
        pac_status="evaluated",
        no_proxy=("10.0.0.0/8", "*.school.example"),
        notes=("pac: DIRECT for 198.18.3.2",),
    )
    path = discovered_path(
        hops=(
            ("192.168.10.1", "gateway", "gateway"),
            ("10.0.0.1", "hop-2", "hop"),
            (None, None, None),
            ("198.51.100.9", "extra", "internet"),
        )
    )
    st = replace_dc(
        bandwidth("internet", 380.0),
        engine="speedtest",
        notes=("engine.speedtest.archived",),
        server={
            "kind": "ookla",
            "id": "48463",
            "sponsor": "Example ISP",
            "host": "ookla.example.net:8080",
            "url": "http://ookla.example.net:8080/speedtest/upload.php",
        },
    )
    ls = replace_dc(
        bandwidth("internet", 210.0),
        engine="librespeed",
        server={"kind": "librespeed", "name": "Tokyo", "url": "https://ls.example.org/backend/"},
    )
    m = dataclasses.replace(r.measurements, families=fams, proxy=proxy, paths=(path,), bandwidth=r.measurements.bandwidth + (st, ls))
    return dataclasses.replace(r, measurements=m)


def test_new_sections_can_leak_and_redact_clean():
    r = sections_result()
    secrets = sorted(set(SECRETS) | set(SECTION_SECRETS) | set(originals(r)))
    raw = dumps(r)
    missing = [s for s in SECTION_SECRETS if s.lower() not in raw.lower()]
    assert not missing, f"the fixture lacks {missing}"
    red = redact(r)
    for name, text in {**all_outputs(red), "saved.json": dumps(red)}.items():
        assert not leaks(text, secrets), f"{name} still shows {leaks(text, secrets)}"
    assert red.measurements.proxy.http.startswith("http://") and "@" in red.measurements.proxy.http  # credentials masked, form kept
    assert redact(red) == red
    assert {f.family for f in red.measurements.families} == {"ipv4", "ipv6"}
    assert [h.ttl for h in red.measurements.paths[0].hops] == [1, 2, 3, 4]
