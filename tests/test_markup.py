"""Text from outside is never Rich markup or an emoji code (issue 17, "Everywhere text from
outside is shown"): school and classroom names, site-file values, a center's refusal reason,
error messages. Fixed once, in the consoles (cli/common.py) and the terminal renderer.

Before the fix: ``[/bogus]`` in a school name crashed ``report`` (MarkupError, exit 1); the
same in a site file's value crashed ``run`` with exit 1 instead of the usage error's 2; a
center's refusal reason crashed ``upload``; ``:x:`` was printed as an emoji.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from giga_netcheck.board.upload import Delivery
from giga_netcheck.cli import common
from giga_netcheck.cli.board import report_delivery
from giga_netcheck.cli.main import app
from giga_netcheck.core.i18n import Messages
from giga_netcheck.core.models import Classroom, School
from giga_netcheck.core.results import dumps, load
from giga_netcheck.render.terminal import ramp_table, show
from tests import factories as f

GOLDEN = Path(__file__).parent / "golden" / "results"
HOSTILE = "[/bogus] [bold]x[/bold] :x: [link=http://198.18.0.1]y[/link]"
runner = CliRunner()


def _saved(tmp_path: Path, name: str, **over) -> Path:
    r = replace(load(GOLDEN / f"{name}.json"), **over)
    p = tmp_path / f"{name}.json"
    p.write_text(dumps(r), encoding="utf-8")
    return p


@pytest.mark.parametrize("retriage", ["--retriage", "--as-saved"])
def test_report_shows_a_hostile_school_name_as_written(tmp_path, retriage):
    src = _saved(tmp_path, "healthy", school=School("x-1", HOSTILE, 420))
    res = runner.invoke(app, ["report", str(src), "--format", "terminal", retriage, "--lang", "en"])
    assert res.exit_code == 0, res.output  # healthy passes: the exit code is the status's, not a crash's 1
    assert HOSTILE in res.output and "❌" not in res.output


def test_report_shows_hostile_classroom_names_in_the_failed_checks(tmp_path):
    rooms = (Classroom(":x: [red]3-2", 35, "default"), Classroom("[/]PC室", 40, "video-lesson"))
    r = load(GOLDEN / "dns-failure.json")
    checks = tuple(replace(c, classroom={"3-2": rooms[0].name, "PC室": rooms[1].name}.get(c.classroom, c.classroom)) for c in r.checks)
    src = tmp_path / "r.json"
    src.write_text(dumps(replace(r, classrooms=rooms, checks=checks)), encoding="utf-8")
    res = runner.invoke(app, ["report", str(src), "--format", "terminal", "--as-saved", "--lang", "en"], env={"COLUMNS": "200"})
    assert res.exit_code == 1, res.output  # dns-failure fails
    assert ":x: [red]3-2" in res.output and "[/]PC室" in res.output


def test_run_with_a_hostile_value_in_the_site_file_is_a_usage_error(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("classrooms:\n  - {name: a, devices: '[/bogus] :x:'}\n", encoding="utf-8")
    res = runner.invoke(app, ["run", "--site", str(site), "--no-progress", "--lang", "en"])
    assert res.exit_code == 2, res.output
    assert "[/bogus] :x:" in res.output and "❌" not in res.output


def test_run_with_a_hostile_school_name_does_not_crash(tmp_path, write_site):
    # nothing answers on purpose (no echo on the gateway, no resolver): the run ends with its own exit
    # code (3, no connectivity), not a crash's 1, and prints the name as written
    site = write_site(
        {
            "school": {"id": "x", "name": HOSTILE},
            "classrooms": [{"name": "[/a]", "devices": 3}],
            "targets": {"gateway": "127.0.0.1"},
            "dns": {"resolvers": []},
            "probes": {"latency": {"method": "udp-echo", "count": 3, "interval_s": 0.02}},  # loopback runs no echo
            "load": {"enabled": False},
        }
    )
    res = runner.invoke(
        app, ["run", "--site", str(site), "--no-progress", "--lang", "en", "--out", str(tmp_path / "out")], env={"COLUMNS": "300"}
    )
    assert res.exit_code == 3, res.output
    assert HOSTILE in res.output and "Traceback" not in res.output


def test_a_centers_refusal_reason_is_shown_as_written(tmp_path):
    with common.err.capture() as cap:  # cli/board.py prints on this console
        report_delivery(Messages("en"), Delivery(rejected=[("run-1", "422 bad-result: " + HOSTILE)]), tmp_path)
    assert HOSTILE in cap.get().replace("\n", "")


def test_the_consoles_read_no_markup_and_no_emoji():
    for console in (common.out, common.err):
        with console.capture() as cap:
            console.print(HOSTILE)
            console.print(common.error_line(HOSTILE))
        assert cap.get().splitlines() == [HOSTILE, "giga-netcheck: " + HOSTILE]


def test_progress_shows_step_text_as_written():
    buf = io.StringIO()
    console = Console(file=buf, width=300, force_terminal=True, color_system=None)
    bar = common.progress_bar(console)
    progress = common.RichProgress(bar)
    with bar:
        progress.step("[/bogus] :x: step", total=1)
        progress.note("[/bogus] :x: note")
        bar.refresh()
    out = buf.getvalue()
    assert "[/bogus] :x: note" in out and "[/bogus] :x: step" in out


def test_the_terminal_renderer_is_safe_on_any_console():
    # a console that does read markup (Rich's default), as a library user's would
    load = replace(f.sample_load(), activity={"kind": "[/bogus] :x:"}, target="[/t]")
    r = f.run_result(replace(f.healthy_measurements(), load=load), school=School("[/id]", HOSTILE, None))
    buf = io.StringIO()
    console = Console(file=buf, width=300, color_system=None)
    show(console, r, Messages("ja"))
    console.print(ramp_table(load, Messages("en")))
    out = buf.getvalue()
    assert HOSTILE in out and "[/id]" in out and "[/bogus] :x:" in out and "❌" not in out
