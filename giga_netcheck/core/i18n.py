"""Message catalogues (en, ja): every human-facing string is looked up here."""

from __future__ import annotations

import functools
import locale
import os
import string
from pathlib import Path
from typing import Any, Optional

import yaml

LANGS = ("en", "ja")


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    path = Path(__file__).parent.parent / "messages" / f"{lang}.yaml"
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
        if any(_nested(v) for v in kw.values()):
            return "".join(t for t, _ in self.parts(key, **kw))
        text = self._cat.get(key)
        if text is None:
            text = catalogue("en").get(key, key)
        return text.format(**kw) if kw else text

    def has(self, key: str) -> bool:
        return key in self._cat

    def parts(self, key: str, **kw: object) -> list[tuple[str, bool]]:
        """The message as (text, is_value) pieces, so a renderer can mark the values as data.

        ``"".join(t for t, _ in m.parts(k, **kw)) == m(k, **kw)``; raises like ``str.format``
        when a placeholder has no value or a value does not fit its format.
        """
        text = self._cat.get(key)
        if text is None:
            text = catalogue("en").get(key, key)
        if not kw:
            return [(text, False)]
        out: list[tuple[str, bool]] = []
        for literal, name, spec, conv in string.Formatter().parse(text):
            if literal:
                out.append((literal, False))
            if name is not None:
                value: Any = kw[name]
                if isinstance(value, Text):
                    value = {"key": value.key, "args": value.args}
                if _nested(value):  # a message inside a message: said in this language too
                    out += self.parts(value["key"], **value["args"])
                    continue
                if conv:
                    value = repr(value) if conv == "r" else str(value)
                out.append((format(value, spec or ""), True))
        return out


class Text(str):
    """A catalogue message that is also its English sentence.

    Code that measures or judges writes ``Text("evidence.dns_servfail")`` (or with values,
    ``Text("reason.no_answer_from", targets=name)``) where it would otherwise write an English
    literal. It *is* a ``str`` -- the English text from ``en.yaml`` -- so logs, progress lines and
    readers of older JSON results keep working unchanged, and it carries ``key`` and ``args`` so
    the models record them next to the text (``note_key``/``note_args`` on Evidence,
    ``reason_key``/``reason_args`` on ProbeRecord, ``not_measured_messages`` on RunResult) and
    every renderer can say it in the reader's language. ``args`` are data (names, numbers,
    addresses, recorded error texts): they are never translated.
    """

    key: str
    args: dict[str, Any]
    subject: Optional[str]

    def __new__(cls, key: str, /, **args: Any) -> Text:
        self = super().__new__(cls, Messages("en")(key, **args))
        self.key, self.args, self.subject = key, dict(args), None
        return self

    def about(self, subject: str) -> Text:
        """The same message as a ``subject: sentence`` line (a not-measured item names what it is about)."""
        out = str.__new__(Text, f"{subject}: {self}")
        out.key, out.args, out.subject = self.key, dict(self.args), subject
        return out

    def __reduce__(
        self,
    ) -> tuple[Any, tuple[str, dict[str, Any], Optional[str]]]:  # pickling and copy keep the key (str's own reduce would drop it)
        return (_rebuild, (self.key, self.args, self.subject))


def encode_args(args: dict[str, Any]) -> dict[str, Any]:
    """Values for the JSON result: a value that is itself a message becomes ``{"key": ..., "args": ...}``."""
    return {k: ({"key": v.key, "args": encode_args(v.args)} if isinstance(v, Text) else v) for k, v in args.items()}


def _nested(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"key", "args"} and isinstance(value["key"], str) and isinstance(value["args"], dict)


def _rebuild(key: str, args: dict[str, Any], subject: Optional[str]) -> Text:
    t = Text(key, **args)
    return t.about(subject) if subject else t


def translate_parts(
    m: Messages, key: Optional[str], args: Optional[dict[str, Any]], fallback: Optional[str]
) -> tuple[list[tuple[str, bool]], bool]:
    """(pieces, translated): the message ``key`` with ``args`` in ``m``'s language, or ``fallback``.

    The pieces are ``Messages.parts``: (text, is_value). Falls back to the recorded text, as one
    value piece (``translated`` False), when there is no key (a result written before the key
    existed, or text that is data), when no catalogue knows the key (a result from a newer
    version), or when the recorded values do not fit the catalogue's placeholders.
    """
    if key and (m.has(key) or catalogue("en").get(key) is not None):
        try:
            return m.parts(key, **(args or {})), True
        except (KeyError, IndexError, ValueError, TypeError):
            pass
    return [(fallback or "", True)], False


def translate(m: Messages, key: Optional[str], args: Optional[dict[str, Any]], fallback: Optional[str]) -> tuple[str, bool]:
    """(text, translated): :func:`translate_parts` joined."""
    pieces, ok = translate_parts(m, key, args, fallback)
    return "".join(t for t, _ in pieces), ok
