"""``run``, ``report``, ``serve`` and ``version``: parse, call the library, map errors to exit codes."""

from __future__ import annotations

import dataclasses
import enum
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Optional

import typer

from giga_netcheck import __version__
from giga_netcheck.cli.board import upload_after_run
from giga_netcheck.cli.common import Exit, RichProgress, err, fail as _fail, messages as _messages, out, progress_bar
from giga_netcheck.cli.schedule import Unattended, resolve_mode  # scheduled mode, history, Prometheus
from giga_netcheck.config.site import SPEEDTEST_HOST, ProbeSettings, Site, default_site, load_site
from giga_netcheck.core.errors import ConfigError, ResultFileError
from giga_netcheck.core.i18n import Messages
from giga_netcheck.core.models import Classroom, RunResult, School
from giga_netcheck.core.redact import redact
from giga_netcheck.core.results import load as load_result, report_basename, write_atomic
from giga_netcheck.measure.engines import ENGINES
from giga_netcheck.measure.hostinfo import detect
from giga_netcheck.measure.probes.base import Progress
from giga_netcheck.measure.runner import conclude, load_profiles, run
from giga_netcheck.render import EXTENSIONS, registry as renderers
from giga_netcheck.render.terminal import show
from giga_netcheck.server.app import ServerConfig, ServerThread, tls_context
from giga_netcheck.server.collect import Collector, Tokens
from giga_netcheck.server.dns import DnsResponder
from giga_netcheck.server.workers import serve as serve_workers

app = typer.Typer(
    help="Find out why a school's network is slow: measure bandwidth, latency and DNS from where you "
    "stand, compare with what the classrooms need, and name the likely causes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _host_info() -> dict[str, Any]:
    return detect().to_dict()


def _write_reports(result: RunResult, m: Messages, out_dir: Path, formats: list[str]) -> list[Path]:
    base = report_basename(result)
    table = renderers()
    return [write_atomic(out_dir / f"{base}.{EXTENSIONS[f]}", table[f](result, m)) for f in formats]


EXIT_BY_STATUS = {
    "pass": Exit.OK,
    "warn": Exit.OK,
    "fail": Exit.CHECK_FAILED,
    "incomplete": Exit.INCOMPLETE,
    "no-connectivity": Exit.NO_CONNECTIVITY,
    "error": Exit.NOTHING_MEASURED,  # results written before 0.2, and runs that produced none
}


def _exit_code(result: RunResult) -> Exit:
    if result.interrupted:
        return Exit.INTERRUPTED
    return EXIT_BY_STATUS.get(result.status, Exit.NOTHING_MEASURED)


def _demo_site(url: str, resolver: str) -> Site:
    return Site(
        school=School("demo", "Demo (loopback)", None),
        profile="default",
        classrooms=(Classroom("demo", 35, "default"),),
        gateway="127.0.0.1",
        center=None,
        internet=(url,),
        resolvers=(resolver,),
        names=("www.mext.go.jp",),
        probes=ProbeSettings(),
        path=None,
    )


def _with_engine(site: Site, engine: str) -> Site:
    """``run --engine``: every center and internet target measured by ``engine``; with speedtest and
    no internet target, the nearest Ookla server is one."""
    if engine not in ENGINES:
        raise ConfigError(f"--engine: unknown engine {engine!r} (known: {', '.join(ENGINES)})")
    if engine == "speedtest" and not site.internet:
        site = dataclasses.replace(site, internet=(SPEEDTEST_HOST,))
    return dataclasses.replace(site, engine=engine)


class RunMode(str, enum.Enum):
    full = "full"
    quick = "quick"
    scheduled = "scheduled"


@app.command("run")
def run_cmd(
    site: Optional[Path] = typer.Option(
        None,
        "--site",
        "-s",
        help="Site file (YAML). Without it: the OS gateway and resolvers, the default profile, and servers from $GIGA_NETCHECK_SERVERS (none: Cloudflare's public speed test; see --no-public).",
    ),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the JSON result to this path."),
    out_dir: Path = typer.Option(Path("reports"), "--out", "-o", help="Folder for the reports."),
    quick: bool = typer.Option(
        False, "--quick", help="Shorten every probe (about 20 s instead of about a minute); the same as --mode quick."
    ),
    mode: Optional[RunMode] = typer.Option(
        None,
        "--mode",
        help="full (default), quick, or scheduled: the light unattended plan (at most 5 MB, random start delay, lock, time limit, history line); see docs/scheduled.md.",
    ),
    splay: Optional[float] = typer.Option(
        None,
        "--splay",
        help="Wait a random 0..SECONDS before measuring, so a board's schools do not all start at once (default: 120 in scheduled mode, else 0).",
    ),
    history_file: Optional[Path] = typer.Option(
        None,
        "--history",
        help="Append one line per run to this JSON Lines history (scheduled mode default: the site's schedule.history, else OUT/history-<school id>.jsonl).",
    ),
    prom_file: Optional[Path] = typer.Option(
        None, "--prom", help="Write a Prometheus textfile here (for node_exporter's textfile collector), atomically."
    ),
    time_limit: Optional[float] = typer.Option(
        None,
        "--time-limit",
        help="Stop measuring after SECONDS and keep the partial result; exit code 5 (default: 240 in scheduled mode, else none).",
    ),
    formats: list[str] = typer.Option(
        ["json", "html"], "--format", "-f", help="Report formats to write: json, html, md, csv (repeat the option; default: json and html)."
    ),
    redact_ids: bool = typer.Option(
        False,
        "--redact",
        help="Replace IP and MAC addresses, host names and SSIDs with placeholders (ip-1, host-1 ...) in every report written and shown, for reports sent outside the board.",
    ),
    lang: Optional[str] = typer.Option(None, "--lang", help="Report language: en or ja (default: from the locale)."),
    profiles_dir: Optional[Path] = typer.Option(
        None,
        "--profiles-dir",
        help="A folder of your own profiles, searched before the site file's profiles_dir, $GIGA_NETCHECK_PROFILES and the shipped ones.",
    ),
    demo: bool = typer.Option(
        False,
        "--demo",
        help="Run against a measurement server this command starts on loopback (tries the whole loop on one machine; measures nothing of the network).",
    ),
    engine: Optional[str] = typer.Option(
        None,
        "--engine",
        help="Throughput engine for every center and internet target: http (own, default), speedtest (speedtest-cli: a target URL is a mini server, none the nearest Ookla server), librespeed (LibreSpeed backends); see docs/engines.md.",
    ),
    no_public: bool = typer.Option(
        False,
        "--no-public",
        help="Measure only the board's own servers: with no internet target, measure no internet bandwidth rather than use public speed-test infrastructure (Cloudflare, or M-Lab with --engine ndt7). Site file: targets.public: false.",
    ),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress display (for scripts and cron)."),
    upload_url: Optional[str] = typer.Option(
        None,
        "--upload",
        help="Also send the result to the board's center (serve --collect) at this URL, with retries; kept in the spool until it is stored (docs/boards.md).",
    ),
    upload_token: Optional[str] = typer.Option(
        None, "--upload-token", envvar="GIGA_NETCHECK_UPLOAD_TOKEN", help="Token for --upload (or $GIGA_NETCHECK_UPLOAD_TOKEN)."
    ),
    spool_dir: Optional[Path] = typer.Option(
        None, "--spool", help="Where results wait while the center is unreachable (default: OUT/spool)."
    ),
) -> None:
    """Measure the network from here, compare with the classrooms' needs, write a report.

    Exit codes: 0 all checks pass (warnings allowed), 1 a check failed, 2 usage or configuration
    error, 3 no connectivity (nothing answered), 4 another scheduled run holds the lock, 5 the
    time limit was reached, 6 incomplete (bandwidth, latency or DNS not measured: the first line
    says what and why), 130 interrupted (the partial report is still written).
    """
    m = _messages(lang)
    unknown = [f for f in formats if f not in renderers()]
    if unknown:
        _fail(m, "error.config", Exit.USAGE, message=f"--format: unknown format {unknown[0]!r} (known: {', '.join(renderers())})")
    server = resolver = None
    try:
        if demo:
            server = ServerThread(ServerConfig(host="127.0.0.1", port=0)).start()
            resolver = DnsResponder().start()  # the demo's resolver, so DNS is measured too
            the_site = _demo_site(server.url, resolver.address)
            err.print(m("demo.note"), style="dim")
        else:
            the_site = load_site(site) if site else default_site()
        if profiles_dir:
            the_site = dataclasses.replace(the_site, profiles_cli_dir=str(profiles_dir))
        if no_public:
            the_site = dataclasses.replace(the_site, public=False)
        if engine:
            the_site = _with_engine(the_site, engine)
        load_profiles(the_site)  # a bad profile fails now, before anything is measured
        mode_name = resolve_mode(mode, quick, m)
        quick = mode_name == "quick"
        job = Unattended.prepare(
            m, err, the_site, mode=mode_name, out_dir=out_dir, splay=splay, history=history_file, prom=prom_file, time_limit=time_limit
        )  # None for a plain run
    except ConfigError as exc:
        _fail(m, "error.config", Exit.USAGE, message=str(exc))
    host = {"gateway_ipv4": "127.0.0.1", "resolvers": [], "hostname": "demo"} if demo else _host_info()

    stop = threading.Event()
    done = threading.Event()
    box: dict[str, Any] = {}
    if job:
        job.begin(stop)  # lock (exit 4 when held), random start delay, time limit

    def work(progress: Progress) -> None:
        try:
            box["result"] = job.run(quick, host, progress) if job else run(the_site, quick=quick, host=host, progress=progress, stop=stop)
        except BaseException as exc:  # handed to the main thread
            box["error"] = exc
        finally:
            done.set()

    def on_sigint(signum: int, frame: Any) -> None:
        # First Ctrl-C: ask every probe to stop and keep what it has. Second: leave now.
        # (A KeyboardInterrupt raised inside Thread.join can wrongly mark the worker finished.)
        if stop.is_set():
            raise typer.Exit(int(Exit.INTERRUPTED))
        stop.set()
        err.print(f"{m('error.interrupted')}…", style="yellow")

    bar = progress_bar(err, disable=no_progress)
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with bar:
            threading.Thread(target=work, args=(RichProgress(bar),), daemon=True, name="gnc-run").start()
            while not done.wait(0.2):
                pass
    finally:
        signal.signal(signal.SIGINT, previous)
    if server is not None:
        server.stop()
    if resolver is not None:
        resolver.stop()
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, ConfigError):
            _fail(m, "error.config", Exit.USAGE, message=str(exc))
        raise exc
    result: RunResult = box["result"]
    if redact_ids:
        result = redact(result)
    written = _write_reports(result, m, out_dir, formats) if not job or job.keep_reports(result) else []
    if json_path:
        written.append(write_atomic(json_path, renderers()["json"](result, m)))
    if job:
        job.record(result, written)  # history line, Prometheus file
    if job and job.scheduled:
        job.summary(out, result)  # one line for cron's log
    else:
        show(out, result, m)
    for p in written:
        out.print(m("report_written", path=str(p)), highlight=False)
    if upload_url:
        upload_after_run(m, result, upload_url, upload_token, spool_dir or out_dir / "spool")
    raise typer.Exit(int(job.exit_code(result, _exit_code(result)) if job else _exit_code(result)))


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("0.0.0.0", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", "-p", help="TCP port for HTTP (download, upload, rtt, id)."),
    udp_port: Optional[int] = typer.Option(None, "--udp-port", help="UDP echo port (default: the same number as --port)."),
    max_download_bytes: int = typer.Option(1 << 30, "--max-download-bytes", help="Largest download one request may ask for."),
    max_upload_bytes: int = typer.Option(1 << 30, "--max-upload-bytes", help="Largest upload body one request may send."),
    max_connections: int = typer.Option(4096, "--max-connections", help="Connections served at once; more are closed."),
    collect_dir: Optional[Path] = typer.Option(
        None, "--collect", help="Also accept results uploaded by schools (POST /results) and store them in this folder (docs/boards.md)."
    ),
    tokens_file: Optional[Path] = typer.Option(
        None, "--tokens", help="With --collect: the YAML file of upload tokens (per school or per board)."
    ),
    max_result_bytes: int = typer.Option(4 << 20, "--max-result-bytes", help="With --collect: largest result one upload may send."),
    workers: int = typer.Option(
        1,
        "--workers",
        help="Server processes sharing the port (SO_REUSEPORT, Linux): one core each, for collecting from many schools at once (docs/serve.md).",
    ),
    tls_cert: Optional[Path] = typer.Option(None, "--tls-cert", help="Serve HTTPS with this PEM certificate chain (docs/serve.md)."),
    tls_key: Optional[Path] = typer.Option(None, "--tls-key", help="With --tls-cert: its PEM private key (if not in that file)."),
    lang: Optional[str] = typer.Option(None, "--lang", help="Message language: en or ja."),
) -> None:
    """Run the measurement server (for the board's data center or a second laptop in the school)."""
    m = _messages(lang)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    collector = None
    if collect_dir is not None or tokens_file is not None:
        if collect_dir is None or tokens_file is None:
            _fail(m, "error.config", Exit.USAGE, message="--collect and --tokens go together")
        try:
            collector = Collector(collect_dir, Tokens.load(tokens_file), max_bytes=max_result_bytes)
        except (ConfigError, OSError) as exc:
            _fail(m, "error.config", Exit.USAGE, message=str(exc))
        err.print(m("serve.collecting", path=str(collect_dir), tokens=len(collector.tokens)), highlight=False)
    if tls_key is not None and tls_cert is None:
        _fail(m, "error.config", Exit.USAGE, message="--tls-key needs --tls-cert")
    try:
        tls = tls_context(tls_cert, tls_key) if tls_cert is not None else None
    except ConfigError as exc:
        _fail(m, "error.config", Exit.USAGE, message=str(exc))
    cfg = ServerConfig(
        host=host,
        port=port,
        udp_port=udp_port,
        max_download_bytes=max_download_bytes,
        max_upload_bytes=max_upload_bytes,
        max_connections=max_connections,
        collector=collector,
        tls=tls,
    )
    try:
        serve_workers(cfg, workers)
    except ConfigError as exc:
        _fail(m, "error.config", Exit.USAGE, message=str(exc))
    except KeyboardInterrupt:
        err.print(m("serve.stopped"))
    except OSError as exc:
        _fail(m, "error.config", Exit.USAGE, message=f"cannot listen on {host}:{port}: {exc.strerror or exc}")


@app.command("report")
def report_cmd(
    result_file: Path = typer.Argument(..., help="A saved JSON result (from run --json or reports/)."),
    fmt: str = typer.Option("terminal", "--format", "-f", help="terminal, json, md, html or csv."),
    out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="Write to this file instead of the terminal."),
    lang: Optional[str] = typer.Option(None, "--lang", help="Report language: en or ja."),
    retriage: bool = typer.Option(True, "--retriage/--as-saved", help="Re-run thresholds and triage with the current rules and profiles."),
    redact_ids: bool = typer.Option(
        False,
        "--redact",
        help="Replace IP and MAC addresses, host names and SSIDs with placeholders (ip-1, host-1 ...), for reports sent outside the board.",
    ),
) -> None:
    """Render a saved result again (re-running thresholds and triage by default)."""
    m = _messages(lang)
    try:
        result = load_result(result_file)
        if retriage:
            site = Site(
                school=result.school,
                profile=result.profile,
                classrooms=result.classrooms,
                gateway=None,
                center=None,
                internet=(),
                resolvers=(),
                names=(),
            )
            result = conclude(result, load_profiles(site))
    except ResultFileError as exc:
        _fail(m, "error.result", Exit.USAGE, message=str(exc))
    except ConfigError as exc:
        _fail(m, "error.config", Exit.USAGE, message=str(exc))
    if redact_ids:
        result = redact(result)
    if fmt == "terminal":
        show(out, result, m)
    elif fmt in renderers():
        text = renderers()[fmt](result, m)
        if out_file:
            write_atomic(out_file, text)
            out.print(m("report_written", path=str(out_file)), highlight=False)
        else:
            sys.stdout.write(text)
    else:
        _fail(m, "error.config", Exit.USAGE, message=f"--format: unknown format {fmt!r} (known: terminal, {', '.join(renderers())})")
    raise typer.Exit(int(_exit_code(result)))


@app.command("version")
def version_cmd() -> None:
    """Print the version of giga-netcheck and exit."""
    out.print(f"giga-netcheck {__version__}")
