"""What every renderer shares: labels, number formats, recorded sentences in the reader's language."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from giga_netcheck.core.i18n import Messages, catalogue, translate_parts
from giga_netcheck.core.models import Check, Evidence, ProbeRecord, RunResult


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


def fmt_check_value(c: Check, m: Optional[Messages] = None) -> tuple[str, str]:
    """(measured, threshold) as display text, with the comparison sign."""
    if c.id.startswith(("path.reachable.", "path.server.")):
        m = m or Messages("en")
        return (m("value.yes") if c.measured else m("value.no")), ""
    sign = "≥" if c.better == "higher" else "≤"
    return fmt_value(c.measured, c.unit), f"{sign} {fmt_value(c.threshold, c.unit)}"


# ------------------------------------------------------------- recorded sentences, translated

LEGACY_PREFIXES = ("reason.", "evidence.", "not_measured.")
"""Catalogue sections whose English sentences older results hold as free text."""


def legacy_key(text: Optional[str]) -> Optional[str]:
    """The key of a placeholder-free English sentence recorded before results carried keys.

    Results written before ``note_key``/``reason_key`` existed hold the English sentence alone;
    where it is exactly a catalogue sentence without values, the report can still translate it.
    """
    if not text:
        return None
    return _legacy_index().get(text.replace("`", ""))


_LEGACY: dict[str, str] = {}


def _legacy_index() -> dict[str, str]:
    if not _LEGACY:
        for key, value in catalogue("en").items():
            if key.startswith(LEGACY_PREFIXES) and "{" not in value:
                _LEGACY.setdefault(value.replace("`", ""), key)
    return _LEGACY


Pieces = list[tuple[str, bool]]
"""A sentence as (text, is_value) pieces: values are data (names, numbers, recorded errors)."""


def phase_text(m: Messages, phase: str) -> str:
    """A latency series' phase (``idle``, ``download:<target>``, ``load:<devices>``) in words."""
    kind, _, where = phase.partition(":")
    if kind == "idle":
        return m("phase.idle")
    if kind in ("download", "upload"):
        return m(f"phase.{kind}", target=where) if where else m("chart.loaded_down" if kind == "download" else "chart.loaded_up")
    if kind == "load" and where:
        return m("phase.load", devices=where)
    return phase


def say(m: Messages, key: Optional[str], args: Optional[dict], text: Optional[str]) -> tuple[Pieces, bool]:
    """(pieces, translated): a recorded sentence in ``m``'s language, else as recorded (data, or old).

    A value named ``phase`` is a phase id (``download:center``) and is said as a noun
    ("download to center"), so a sentence can put it in its own grammar.
    """
    if args and isinstance(args.get("phase"), str):
        kind, _, where = args["phase"].partition(":")
        if where and m.has(f"phase_noun.{kind}"):
            args = {**args, "phase": m(f"phase_noun.{kind}", target=where, devices=where)}
    return translate_parts(m, key or legacy_key(text), args, text)


def joined(pieces: Pieces) -> str:
    return "".join(t for t, _ in pieces)


def note_text(m: Messages, e: Evidence) -> tuple[Pieces, bool]:
    """An evidence note in the reader's language; (the recorded text, False) when the note is data."""
    return say(m, e.note_key, e.note_args, e.note)


def source_text(m: Messages, c: Check) -> tuple[Pieces, bool]:
    """Where a check's threshold comes from, in the reader's language (the citation stays as written)."""
    return say(m, c.source_key, c.source_args, c.source)


def detail_text(m: Messages, c: Check) -> tuple[Pieces, bool]:
    """How a check's figure or threshold was arrived at, in the reader's language."""
    return say(m, c.detail_key, c.detail_args, c.detail)


def reason_text(m: Messages, p: ProbeRecord) -> tuple[Pieces, bool]:
    """Why a probe failed or was skipped, in the reader's language where the reason has a key."""
    return say(m, p.reason_key, p.reason_args, p.reason)


@dataclass(frozen=True)
class NotMeasuredLine:
    subject: Optional[str]
    """What was not measured, in the reader's language (None: the sentence names it itself)."""
    pieces: Pieces
    translated: bool
    """False: the sentence is recorded text (a result from before keys, or a writer without one)."""
    subject_is_id: bool = False
    """True: ``subject`` is a probe's name (no catalogue label), to be shown as an id."""

    @property
    def text(self) -> str:
        return joined(self.pieces)


def not_measured_lines(m: Messages, r: RunResult) -> list[NotMeasuredLine]:
    """``r.not_measured`` in the reader's language, subject first, in the recorded order."""
    by_text = {n.text: n for n in r.not_measured_messages}
    out = []
    for text in r.not_measured:
        n = by_text.get(text)
        head, colon, rest = text.partition(":")
        subject = n.subject if n is not None and n.subject else (head.strip() if colon else None)
        key = f"not_measured.subject.{subject}"
        label = m(key) if subject and m.has(key) else None
        if n is not None:
            pieces, ok = translate_parts(m, n.key, n.args, text)
            if ok:
                out.append(NotMeasuredLine(label or subject, pieces, True, label is None))
                continue
        if label:  # "subject: sentence" from an older writer: the subject at least is known
            pieces, ok = say(m, None, None, rest.strip())
            out.append(NotMeasuredLine(label, pieces, ok))
        else:
            out.append(NotMeasuredLine(None, [(text, True)], False))
    return out


def missing_said(m: Messages, r: RunResult) -> list[tuple[str, list[Pieces]]]:
    """``r.missing`` in the reader's language: (the need's label, its reasons), one per need not
    measured; a renderer puts them in ``missing.line``, the values in each reason as data."""
    by_need: dict[str, list[Pieces]] = {}
    for n in r.missing:
        pieces = say(m, n.key or None, n.args, n.text)[0]
        reasons = by_need.setdefault(n.subject or "", [])
        if joined(pieces) not in [joined(x) for x in reasons]:
            reasons.append(pieces)
    return [(m(f"not_measured.subject.{need}") if m.has(f"not_measured.subject.{need}") else need, why) for need, why in by_need.items()]


def evidence_text(e: Evidence, m: Optional[Messages] = None) -> str:
    """One evidence line: metric@target = value [check id] (note)."""
    parts = [e.metric]
    if e.target:
        parts.append(f"@{e.target}")
    text = " ".join(parts) + f" = {fmt_value(e.value, e.unit)}"
    if e.check_id:
        text += f" [{e.check_id}]"
    note = joined(note_text(m or Messages("en"), e)[0])
    if note:
        text += f" ({note})"
    return text


# ------------------------------------------- new sections: families, proxy, discovered path, engines


THIRD_PARTY_ENGINES = ("cloudflare", "ndt7", "speedtest")
"""Engines whose servers belong to a third party: the report says who measured and what they keep."""


def third_party_notes(m: Messages, r: RunResult) -> list[str]:
    """One sentence per third party whose servers this run measured against (message ``third_party.<engine>``)."""
    seen: dict[str, str] = {}
    for t in r.targets:
        if t.engine in THIRD_PARTY_ENGINES and t.engine not in seen:
            seen[t.engine] = m(f"third_party.{t.engine}", host=t.host)
    return list(seen.values())


def server_label(b) -> str:
    """The engine's server in a few words: Ookla id and sponsor, LibreSpeed name, or the URL."""
    srv = b.server or {}
    if srv.get("kind") == "ookla":
        return f"Ookla #{srv.get('id')} {srv.get('sponsor', '')} ({srv.get('host', '')})".strip()
    if srv.get("kind") == "librespeed":
        return f"{srv.get('name')} ({srv.get('url', b.url)})"
    return srv.get("url") or b.url or "—"


_TEMPLATES: dict[str, list[tuple[re.Pattern[str], str]]] = {}


def _templates(prefix: str) -> list[tuple[re.Pattern[str], str]]:
    if prefix not in _TEMPLATES:
        out = []
        for key, value in catalogue("en").items():
            if key.startswith(prefix):
                parts = re.split(r"\{([a-z_]+)\}", value)
                seen: set[str] = set()
                rx = ""
                for i, part in enumerate(parts):
                    if i % 2 == 0:
                        rx += re.escape(part)
                    elif part in seen:
                        rx += f"(?P={part})"
                    else:
                        seen.add(part)
                        rx += f"(?P<{part}>.*?)"
                out.append((re.compile(rx, re.DOTALL), key))
        _TEMPLATES[prefix] = out
    return _TEMPLATES[prefix]


def recorded(m: Messages, text: Optional[str], *prefixes: str) -> tuple[Pieces, bool]:
    """A sentence recorded as English text alone (a family's reason, a proxy note: the key is not
    stored) said in ``m``'s language when it is one of the catalogue's sentences under ``prefixes``."""
    if not text:
        return [], True
    for prefix in prefixes:
        for rx, key in _templates(prefix):
            hit = rx.fullmatch(text)
            if hit:
                return say(m, key, hit.groupdict(), text)
    return say(m, None, None, text)


def proxy_probes(m: Messages, probe_paths: dict[str, str], via: str) -> list[tuple[str, str]]:
    """(label, probe id) of the probes whose HTTP goes ``via`` (``proxy`` or ``direct``)."""
    out = []
    for probe, how in sorted(probe_paths.items()):
        if how == via:
            key = f"not_measured.subject.{probe}"
            out.append((m(key) if m.has(key) else "", probe))
    return out


def source_word(m: Messages, source: Optional[str]) -> str:
    key = f"proxy.source.{source}"
    return m(key) if source and m.has(key) else (source or "—")


# ------------------------------------------------------------------------ CSV: text never a formula

FORMULA_START = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
"""What makes a spreadsheet read a cell as a formula (OWASP, CSV injection): ``= + - @``, tab and
carriage return, and a line feed for good measure; also their full-width forms (``＝ ＋ － ＠``),
which Excel on a Japanese machine reads as formulas too."""

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as written: text that would start a formula gets a leading ``'``.

    Numbers (``int``, ``float``, and text that is a plain decimal number such as ``-3.5``) stay
    numbers, so a spreadsheet can still compute with them; any other text whose first character
    (after blanks) is a formula character is neutralised as OWASP recommends. Values other than
    text and numbers pass through (the CSV writer turns them into text).
    """
    if not isinstance(value, str) or not value:
        return value
    head = value.lstrip(" \t\r\n\u3000")[:1] or value[:1]
    if (head in FORMULA_START or value[:1] in FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value
