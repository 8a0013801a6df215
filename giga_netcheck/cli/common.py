"""What every command shares: exit codes, the two consoles, messages, the one-line failure.

Exit codes (the README's table):
  0 every check passed (or only warnings)   1 a check failed
  2 usage or configuration error            3 nothing could be measured
  4 another scheduled run holds the lock    5 the run hit its --time-limit (partial result kept)
  130 interrupted (Ctrl-C) — the partial result is still written
"""

from __future__ import annotations

import enum
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import Progress as RichBar

from giga_netcheck.core.i18n import Messages, detect_lang
from giga_netcheck.measure.probes.base import Progress


class Exit(enum.IntEnum):
    OK = 0
    CHECK_FAILED = 1
    USAGE = 2
    NOTHING_MEASURED = 3
    LOCKED = 4
    TIME_LIMIT = 5
    INTERRUPTED = 130


err = Console(stderr=True)
out = Console()


def messages(lang: Optional[str]) -> Messages:
    return Messages(lang or detect_lang())


def fail(m: Messages, key: str, code: Exit, **kw: Any) -> None:
    err.print(f"[bold red]giga-netcheck:[/] {m(key, **kw)}", highlight=False, soft_wrap=True)
    raise typer.Exit(int(code))


class RichProgress(Progress):
    """Progress on stderr: one line per step with a bar when the step's length is known."""

    def __init__(self, bar: RichBar) -> None:
        self.bar = bar
        self.task: Optional[int] = None

    def step(self, text: str, total: Optional[float] = None) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=self.bar.tasks[self.task].total or 1)
        self.task = self.bar.add_task(text, total=total)

    def advance(self, amount: float = 1.0) -> None:
        if self.task is not None:
            self.bar.advance(self.task, amount)

    def note(self, text: str) -> None:
        self.bar.console.print(f"[yellow]· {text}[/]", highlight=False)
