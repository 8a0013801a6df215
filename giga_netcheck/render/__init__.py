"""Renderers: a result in, text out (pure). An explicit registry maps format names to them."""

from __future__ import annotations

from typing import Callable

from ..i18n import Messages
from ..models import Check, RunResult

Renderer = Callable[[RunResult, Messages], str]


def registry() -> dict[str, Renderer]:
    from . import csv_render, html, json_render, markdown

    return {"json": json_render.render, "md": markdown.render, "html": html.render, "csv": csv_render.render}


EXTENSIONS = {"json": "json", "md": "md", "html": "html", "csv": "csv"}


def check_label(m: Messages, c: Check) -> str:
    path_check = c.id.startswith(("path.reachable.", "path.server."))
    key = c.id.rsplit(".", 1)[0] if path_check else c.id
    label = m(f"check.{key}")
    if path_check:
        label += f" ({c.id.rsplit('.', 1)[1]})"
    return label


def fmt_value(v, unit: str) -> str:
    if v is None:
        return "—"
    text = f"{v:,.1f}" if abs(v) >= 10 else f"{v:,.2f}"
    return f"{text} {unit}".strip()


def fmt_check_value(c: Check) -> tuple[str, str]:
    """(measured, threshold) as display text, with the comparison sign."""
    if c.id.startswith(("path.reachable.", "path.server.")):
        return ("yes" if c.measured else "no"), ""
    sign = "≥" if c.better == "higher" else "≤"
    return fmt_value(c.measured, c.unit), f"{sign} {fmt_value(c.threshold, c.unit)}"


def evidence_text(e) -> str:
    parts = [e.metric]
    if e.target:
        parts.append(f"@{e.target}")
    text = " ".join(parts) + f" = {fmt_value(e.value, e.unit)}"
    if e.check_id:
        text += f" [{e.check_id}]"
    if e.note:
        text += f" ({e.note})"
    return text
