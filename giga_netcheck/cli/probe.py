"""``giga-netcheck probe ...``: run one probe on its own. Today: ``probe load``.

``probe load`` runs the load probe (docs/load.md) with the site file's targets: it checks which
targets are giga-netcheck measurement servers, shows the caps, ramps the emulated devices,
prints the ramp as a table with the capacity knee, and can write the ``load`` section as JSON.
Ctrl-C stops every device within a second; the steps measured so far are shown and written.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import threading
from pathlib import Path
from typing import Any, Optional

import typer

from giga_netcheck.cli.common import err, error_line, out
from giga_netcheck.config.load import ACTIVITIES
from giga_netcheck.config.site import default_site, load_site
from giga_netcheck.core.errors import ConfigError, ProbeError
from giga_netcheck.core.i18n import Messages, detect_lang, translate
from giga_netcheck.core.models import to_dict
from giga_netcheck.measure.hostinfo import detect
from giga_netcheck.measure.probes.base import ProbeContext, Progress
from giga_netcheck.measure.probes.load import LoadProbe, make_plan
from giga_netcheck.measure.runner import identify, load_profiles
from giga_netcheck.render.terminal import show_load

probe_app = typer.Typer(help="Run one probe on its own (load: a classroom of emulated devices).", no_args_is_help=True)


def _said(m: Messages, text: Optional[str]) -> str:
    """A probe's reason in the reader's language: an ``i18n.Text`` by its key and values, other
    text (a recorded error) as it is."""
    if text is None:
        return "?"
    return translate(m, getattr(text, "key", None), getattr(text, "args", None), str(text))[0]


class _Lines(Progress):
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def note(self, text: str) -> None:
        if self.enabled:
            err.print(f"· {text}", style="dim", highlight=False)


@probe_app.command("load")
def load_cmd(
    site: Optional[Path] = typer.Option(
        None, "--site", "-s", help="Site file (YAML); its load: section and largest classroom set the ramp."
    ),
    quick: bool = typer.Option(False, "--quick", help="Fewer, shorter steps."),
    devices: Optional[int] = typer.Option(None, "--devices", help="Devices the classroom needs (default: the site's largest classroom)."),
    activity: Optional[str] = typer.Option(
        None, "--activity", help=f"One of {', '.join(ACTIVITIES)} (default: from the classroom's profile)."
    ),
    steps: Optional[int] = typer.Option(
        None, "--steps", help="Ramp steps (default: the site file's load.steps, else 3; at most 3 with --quick)."
    ),
    step_s: Optional[float] = typer.Option(
        None, "--step-s", help="Seconds per step (default: load.step_s, else 4; at most 3 with --quick; raised to what the activity needs)."
    ),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the load section (JSON) here."),
    lang: Optional[str] = typer.Option(None, "--lang", help="Message language: en or ja."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress lines."),
) -> None:
    """Emulate a classroom of devices against a measurement server and find how many it carries."""
    m = Messages(lang or detect_lang())
    try:
        the_site = load_site(site) if site else default_site()
        if activity is not None and activity not in ACTIVITIES:
            raise ConfigError(f"--activity: expected one of {', '.join(ACTIVITIES)}, got {activity!r}")
        over = {k: v for k, v in (("devices", devices), ("activity", activity), ("steps", steps), ("step_s", step_s)) if v is not None}
        if over:
            the_site = dataclasses.replace(the_site, load=dataclasses.replace(the_site.load, enabled=True, **over))
        profiles = load_profiles(the_site)  # the classroom's profile declares the activity
    except ConfigError as exc:
        err.print(error_line(m("error.config", message=str(exc))), highlight=False)
        raise typer.Exit(2) from None
    host: dict[str, Any] = {}
    if the_site.gateway in (None, "auto"):
        host = detect().to_dict()
    targets = the_site.targets(host.get("gateway_ipv4"))
    servers: dict[str, dict[str, Any]] = {}
    for t in targets:
        if t.url:
            try:
                servers[t.name] = identify(t)
            except ProbeError as exc:
                err.print(f"· {t.name}: {exc}", style="yellow", highlight=False)
    stop = threading.Event()
    settings = the_site.probes.quick() if quick else the_site.probes
    ctx = ProbeContext(
        site=the_site,
        settings=settings,
        targets=targets,
        servers=servers,
        host=host,
        resolvers={},
        stop=stop,
        progress=_Lines(not no_progress),
        profiles=profiles,
    )
    probe = LoadProbe(quick=quick)
    why = probe.check(ctx)
    plan = None if why else make_plan(ctx, the_site.load, quick)[0]
    if plan is None:
        err.print(error_line(m("load.skipped", reason=_said(m, why))), highlight=False)
        raise typer.Exit(3)
    caps = plan.caps()
    err.print(
        m(
            "load.caps",
            activity=plan.activity.kind,
            devices=max(plan.counts),
            cap=caps.max_devices,
            target=plan.target.name,
            url=plan.target.url,
            steps=caps.steps,
            step_s=f"{plan.step_s:g}",
            seconds=f"{caps.max_duration_s:.0f}",
            mb=f"{caps.max_bytes / 1e6:.0f}",
        ),
        highlight=False,
    )
    box: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["out"] = probe.run(ctx)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            box["error"] = exc
        finally:
            done.set()

    def on_sigint(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise typer.Exit(130)
        stop.set()
        err.print(f"{m('error.interrupted')}…", style="yellow")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        threading.Thread(target=work, daemon=True, name="gnc-load").start()
        while not done.wait(0.2):
            pass
    finally:
        signal.signal(signal.SIGINT, previous)
    if "error" in box:
        raise box["error"]
    result = box["out"]
    load = result.load
    if load is None:
        err.print(error_line(m("load.skipped", reason=_said(m, result.reason))), highlight=False)
        raise typer.Exit(3)
    show_load(out, load, m)
    if json_path:
        json_path.write_text(json.dumps(to_dict(load), indent=1, ensure_ascii=False), encoding="utf-8")
        out.print(m("report_written", path=str(json_path)), highlight=False)
    if stop.is_set():
        raise typer.Exit(130)
    raise typer.Exit(0 if load.supports.enough else 1)


def register(app: typer.Typer) -> None:
    app.add_typer(probe_app, name="probe")
