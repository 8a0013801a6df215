"""What every command shares: exit codes, the two consoles, messages, the one-line failure.

Exit codes (the README's table):
  0 every check passed (or only warnings)   1 a check failed
  2 usage or configuration error            3 no connectivity: nothing answered
  4 another scheduled run holds the lock    5 the run hit its --time-limit (partial result kept)
  6 incomplete: a need of the classrooms (bandwidth, latency, DNS) was not measured
  130 interrupted (Ctrl-C) — the partial result is still written

The consoles never read markup or emoji codes in what they print: school and classroom names,
site-file values, a server's refusal reason and error messages come from outside and are shown
as written (``[/x]`` stays ``[/x]``, ``:x:`` stays ``:x:``). Colour goes through ``style=`` or
:class:`rich.text.Text` pieces (:func:`styled`), never through markup in a string.
"""

from __future__ import annotations

import enum
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress as RichBar, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from giga_netcheck.core.i18n import Messages, detect_lang
from giga_netcheck.measure.probes.base import Progress


class Exit(enum.IntEnum):
    OK = 0
    CHECK_FAILED = 1
    USAGE = 2
    NOTHING_MEASURED = 3
    NO_CONNECTIVITY = 3
    LOCKED = 4
    TIME_LIMIT = 5
    INCOMPLETE = 6
    INTERRUPTED = 130


err = Console(stderr=True, markup=False, emoji=False)
out = Console(markup=False, emoji=False)


def styled(*parts: str | tuple[str, str]) -> Text:
    """One line from pieces, each plain text or (text, style): nothing in the text is read as markup."""
    return Text.assemble(*parts)


def error_line(text: str) -> Text:
    """``giga-netcheck: TEXT`` with the program name in bold red, for stderr."""
    return styled(("giga-netcheck:", "bold red"), " ", text)


def messages(lang: Optional[str]) -> Messages:
    return Messages(lang or detect_lang())


def fail(m: Messages, key: str, code: Exit, **kw: Any) -> None:
    # the console reads no markup: a value quoted from a file ('[fe80::1]:53') prints as written
    err.print(error_line(m(key, **kw)), highlight=False, soft_wrap=True)
    raise typer.Exit(int(code))


def progress_bar(console: Console, disable: bool = False) -> RichBar:
    """The run's progress display: step text shown as written (a target's name is not markup)."""
    return RichBar(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=disable,
    )


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
        self.bar.console.print(f"· {text}", style="yellow", highlight=False, markup=False, emoji=False)
