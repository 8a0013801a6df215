"""Stand a lab scenario up by hand and poke at it.

::

    python -m tests.lab list                      # the scenarios, their causes and segments
    python -m tests.lab up bufferbloat            # builds it; Ctrl-C tears it down
    python -m tests.lab up bufferbloat --detach   # builds it and returns; `down` removes it
    python -m tests.lab shell client              # a shell inside the client namespace
    python -m tests.lab shell client -- ping -c 3 198.18.2.2
    python -m tests.lab status                    # labs on this machine
    python -m tests.lab down                      # removes detached and stale labs

Inside the client: ``giga-netcheck run --site $GNC_SITE`` (the site file the lab wrote).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Optional

from . import cleanup
from .netlab import Lab, LabError
from .netns import netns_list
from .scenarios import NOT_IN_LAB, ScenarioError, load_scenarios
from .topology import HOSTS

__all__ = ["main"]


def _cmd_list(args: argparse.Namespace) -> int:
    scenarios = load_scenarios()
    width = max(len(name) for name in scenarios)
    for name, scenario in scenarios.items():
        cause = f"{scenario.cause or '-'} [{scenario.segment or '-'}]"
        print(f"{name:<{width}}  {cause:<34} {scenario.description}")
    print("\nnot produced by the lab:")
    for cause, how in NOT_IN_LAB.items():
        print(f"  {cause:<18} {how}")
    return 0


def _cmd_up(args: argparse.Namespace) -> int:
    lab = Lab(args.scenario, run_id=args.run_id, serve=not args.no_serve, seed=args.seed)
    lab.up()
    print(lab.describe())
    print(f"  up in {lab.timings['up_s']:.2f} s, TCP congestion control {lab.congestion_control}")
    print("\ntry:")
    print(f"  python -m tests.lab shell client -- ping -c 5 {lab.addr('center')}")
    print(f"  python -m tests.lab shell client -- dig @{lab.addr('center')} www.lab.example")
    print(f"  python -m tests.lab shell client -- iperf3 -c {lab.addr('internet')} -R -t 5")
    print(f"  ip netns exec {lab.ns('client')} giga-netcheck run --site {lab.site_file}")
    if args.detach:
        lab.detach()
        print("\ndetached; `python -m tests.lab down` removes it")
        return 0
    print("\nCtrl-C tears it down")
    stop = []
    # The lab's own handler tears down first, then chains here; either way we leave the loop.
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    try:
        # Also end when someone ran `down --all` from another terminal.
        while not stop and set(lab.namespaces.values()) <= set(netns_list(lab.prefix)):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        lab.down()
    print(f"down in {lab.timings.get('down_s', 0):.2f} s")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    removed = cleanup.clean(run_id=args.run_id, include_live=args.all)
    for name in removed:
        print(f"removed {name}")
    skipped = [r for r in cleanup.find_labs() if r.owner_alive]
    for record in skipped:
        print(
            f"kept {record.run_id} ({record.scenario}): its owner (pid {record.state['owner_pid']}) still runs; stop it there or use --all"
        )
    if not removed and not skipped:
        print("no labs")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    records = cleanup.find_labs()
    if not records:
        print("no labs")
    for record in records:
        state = record.state or {}
        owner = (
            "detached" if state.get("detached") else (f"owner pid {state.get('owner_pid')} {'running' if record.owner_alive else 'gone'}")
        )
        print(f"{record.run_id}: scenario {record.scenario}, {owner}, {len(record.namespaces)}/4 namespaces")
        for name in record.namespaces:
            print(f"  {name}")
        if state.get("site_file"):
            print(f"  site file {state['site_file']}")
        for host, error in (state.get("serve_errors") or {}).items():
            print(f"  serve on {host}: {error}")
    return 0


def _find(run_id: Optional[str]) -> cleanup.LabRecord:
    records = [r for r in cleanup.find_labs() if len(r.namespaces) == len(HOSTS)]
    if run_id is not None:
        records = [r for r in records if r.run_id == run_id]
    if not records:
        raise LabError("no lab is up; start one with `python -m tests.lab up SCENARIO`")
    return records[0]


def _cmd_shell(args: argparse.Namespace) -> int:
    record = _find(args.run_id)
    netns = next(n for n in record.namespaces if n.endswith(f"-{args.host}"))
    env = dict(os.environ)
    env["GNC_SITE"] = str((record.state or {}).get("site_file", ""))
    env["PS1"] = f"({args.host}@{record.run_id}) \\w# "
    argv = list(args.command)
    # REMAINDER swallows options written after HOST: take --run-id back from it.
    if argv[:1] == ["--run-id"] and len(argv) >= 2:
        record = _find(argv[1])
        netns = next(n for n in record.namespaces if n.endswith(f"-{args.host}"))
        env["GNC_SITE"] = str((record.state or {}).get("site_file", ""))
        env["PS1"] = f"({args.host}@{record.run_id}) \\w# "
        argv = argv[2:]
    argv = argv[1:] if argv[:1] == ["--"] else argv
    if not argv:
        print(f"shell in {netns} (scenario {record.scenario}); site file in $GNC_SITE; exit to leave")
        argv = [os.environ.get("SHELL", "/bin/bash"), "--norc", "-i"]
    os.execvpe("ip", ["ip", "netns", "exec", netns, *argv], env)
    return 0  # not reached


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of ``python -m tests.lab``."""
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the scenarios").set_defaults(fn=_cmd_list)
    up = sub.add_parser("up", help="bring a scenario up")
    up.add_argument("scenario")
    up.add_argument("--detach", action="store_true", help="return and leave it running")
    up.add_argument("--no-serve", action="store_true", help="do not start giga-netcheck serve")
    up.add_argument("--run-id", help="id in the namespace names (default: random)")
    up.add_argument("--seed", type=int, help="seed for jitter and resolver faults")
    up.set_defaults(fn=_cmd_up)
    down = sub.add_parser("down", help="remove detached and stale labs")
    down.add_argument("run_id", nargs="?", help="only this lab")
    down.add_argument("--all", action="store_true", help="also labs whose owner still runs")
    down.set_defaults(fn=_cmd_down)
    sub.add_parser("status", help="labs on this machine").set_defaults(fn=_cmd_status)
    shell = sub.add_parser("shell", help="a shell (or a command) inside a host's namespace")
    shell.add_argument("host", choices=HOSTS)
    shell.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS... (default: a shell)")
    shell.add_argument("--run-id", help="which lab (default: the newest)")
    shell.set_defaults(fn=_cmd_shell)
    args = parser.parse_args(argv)
    if os.geteuid() != 0 and args.command != "list":
        print("tests.lab: needs root (ip netns, tc, iptables)", file=sys.stderr)
        return 2
    try:
        return int(args.fn(args))
    except (LabError, ScenarioError, KeyError) as exc:
        print(f"tests.lab: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `python -m tests.lab list | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
