"""Message catalogues (en, ja): every human-facing string is looked up here."""

from __future__ import annotations

import functools
import locale
import os
from pathlib import Path
from typing import Optional

import yaml

LANGS = ("en", "ja")


@functools.lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    path = Path(__file__).parent / "messages" / f"{lang}.yaml"
    return {str(k): str(v) for k, v in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items()}


def detect_lang(env: Optional[dict[str, str]] = None) -> str:
    """``ja`` when the locale is Japanese (LC_ALL, LC_MESSAGES, LANG), else ``en``."""
    env = dict(os.environ if env is None else env)
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var)
        if value:
            return "ja" if value.lower().startswith("ja") else "en"
    try:
        loc = locale.getlocale()[0] or ""
    except ValueError:
        loc = ""
    return "ja" if loc.lower().startswith("ja") else "en"


class Messages:
    """``m("status.fail")`` or ``m("report_written", path=p)`` in one language."""

    def __init__(self, lang: str = "en") -> None:
        self.lang = lang if lang in LANGS else "en"
        self._cat = catalogue(self.lang)

    def __call__(self, key: str, **kw: object) -> str:
        text = self._cat.get(key)
        if text is None:
            text = catalogue("en").get(key, key)
        return text.format(**kw) if kw else text

    def has(self, key: str) -> bool:
        return key in self._cat
