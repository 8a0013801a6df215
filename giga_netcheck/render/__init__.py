"""Renderers: a result in, text out (pure). An explicit registry maps format names to them.

Helpers every renderer shares live in :mod:`giga_netcheck.render.common`; the renderers import
them from there, so this package imports its renderers at the top without a cycle.
"""

from __future__ import annotations

from typing import Callable

from giga_netcheck.core.i18n import Messages
from giga_netcheck.core.models import RunResult
from giga_netcheck.render import csvdoc, html, jsondoc, markdown

Renderer = Callable[[RunResult, Messages], str]


def registry() -> dict[str, Renderer]:
    return {"json": jsondoc.render, "md": markdown.render, "html": html.render, "csv": csvdoc.render}


EXTENSIONS = {"json": "json", "md": "md", "html": "html", "csv": "csv"}
