"""JSON: the result document itself (see docs/result-schema.md)."""

from __future__ import annotations

from ..i18n import Messages
from ..models import RunResult
from ..results import dumps


def render(result: RunResult, m: Messages) -> str:
    return dumps(result) + "\n"
