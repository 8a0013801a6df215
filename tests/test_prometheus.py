"""prometheus: the textfile parses with prometheus_client's parser; written atomically, readable."""

from __future__ import annotations

import os
import stat
from dataclasses import replace

import pytest

from giga_netcheck.core.models import Check
from giga_netcheck.monitor import prometheus
from tests.test_history import _result

parser = pytest.importorskip("prometheus_client.parser", reason="pip install prometheus-client (test extra)")


def families(text: str) -> dict:
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def value(fams: dict, name: str, **labels: str) -> float:
    for s in fams[name].samples:
        if all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError((name, labels))


def test_textfile_parses_and_carries_the_run():
    r = _result()
    r = replace(r, checks=(Check("classroom.rtt", "5-1", "rtt_p50_ms", 35.0, 30.0, 20.0, "ms", "lower", "fail", "p"),))
    text = prometheus.render(r)
    fams = families(text)
    for name in (
        "giga_netcheck_status",
        "giga_netcheck_last_run_timestamp_seconds",
        "giga_netcheck_download_mbps",
        "giga_netcheck_upload_mbps",
        "giga_netcheck_rtt_p50_ms",
        "giga_netcheck_loss_pct",
        "giga_netcheck_dns_p50_ms",
        "giga_netcheck_checks_failed",
        "giga_netcheck_cause_confidence",
        "giga_netcheck_transfer_bytes",
    ):
        assert fams[name].type == "gauge" and fams[name].documentation, name
    assert value(fams, "giga_netcheck_status", school="13-1") == 2  # fail
    assert value(fams, "giga_netcheck_last_run_timestamp_seconds") == 1746407700  # 2025-05-05T10:15:00+09:00
    assert value(fams, "giga_netcheck_download_mbps", target="internet-1") == 80.0  # multi-stream, not the 20 of one stream
    assert value(fams, "giga_netcheck_download_mbps", target="internet-2", role="internet") == 60.0
    assert value(fams, "giga_netcheck_rtt_p50_ms", target="gateway") == 1.5
    assert len(fams["giga_netcheck_rtt_p50_ms"].samples) == 3  # idle series only
    assert value(fams, "giga_netcheck_cause_confidence", cause="dns-slow", segment="dns") == 0.8
    assert len(fams["giga_netcheck_cause_confidence"].samples) == 1  # claims only
    assert value(fams, "giga_netcheck_checks_failed") == 1
    assert value(fams, "giga_netcheck_full_plan") == 0  # mode scheduled: the light plan
    assert text.count("# HELP") == text.count("# TYPE") == len(fams)
    assert set(fams) <= set(prometheus.metric_names())


@pytest.mark.parametrize("status, code", [("pass", 0), ("warn", 1), ("fail", 2), ("error", 3)])
def test_status_values(status, code):
    assert value(families(prometheus.render(replace(_result(), status=status))), "giga_netcheck_status") == code


def test_label_values_are_escaped():
    r = _result()
    r = replace(r, school=replace(r.school, id='a "quoted"\\school\nid'))
    fams = families(prometheus.render(r))
    assert value(fams, "giga_netcheck_status", school='a "quoted"\\school\nid') == 2


def test_unfinished_run_is_status_3():
    fams = families(prometheus.render_unfinished("13-1"))
    assert value(fams, "giga_netcheck_status", school="13-1") == 3
    assert value(fams, "giga_netcheck_run_interrupted") == 1


def test_write_is_atomic_and_world_readable(tmp_path):
    target = tmp_path / "textfile" / "giga_netcheck.prom"
    prometheus.write(target, "old 1\n")
    prometheus.write(target, prometheus.render(_result()))
    assert families(target.read_text())
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["giga_netcheck.prom"]


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "giga_netcheck.prom"
    prometheus.write(target, "giga_netcheck_status 0\n")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)  # inside results.write_atomic, which prometheus uses
    with pytest.raises(OSError):
        prometheus.write(target, prometheus.render(_result()))
    assert target.read_text() == "giga_netcheck_status 0\n"
    assert [p.name for p in tmp_path.iterdir()] == ["giga_netcheck.prom"]  # the temp file went too
