"""JSON: the result document itself (see docs/result-schema.md)."""

from __future__ import annotations

from giga_netcheck.core.i18n import Messages
from giga_netcheck.core.models import RunResult
from giga_netcheck.core.results import dumps


def render(result: RunResult, m: Messages) -> str:
    return dumps(result) + "\n"
