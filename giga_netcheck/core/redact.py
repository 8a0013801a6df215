"""Redaction for reports that leave the board: addresses, MACs, host names and SSIDs -> placeholders.

``redact(result)`` returns a new :class:`RunResult` in which every IP address (v4 and v6), MAC
address, host name and Wi-Fi SSID/BSSID is replaced by a placeholder (``ip-1``, ``ip6-1``,
``mac-1``, ``host-1``, ``ssid-1``). The same original always maps to the same placeholder, in
every field, free text included (probe errors, reasons, check details, evidence notes, the
site file path, the host information), so a redacted report still reads consistently: the
gateway is ``ip-1`` in the diagram, in the checks and in the evidence.

What counts as a host name: the names the result itself records as hosts (targets' hosts and
URLs, the machine's host name, resolvers, proxy hosts and no-proxy entries, DNS names queried
and the answers, the hosts in any URL in any text). A free-text host name that the result
records nowhere else is not guessed at: a word with dots could be a file or a check id.
The new sections count too: IPv4/IPv6 addresses per family, proxy and PAC URLs (a URL's
``user:password@`` becomes ``***@``), the hops of a discovered path, and the engine's server
(Ookla host, LibreSpeed URLs) beside a bandwidth figure.
The site file keeps only its file name (folders often carry a user name).

Ids the reader needs to follow the reasoning (check ids, rule ids, cause ids, metric names,
units, statuses, timestamps, the school id) are left alone. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from typing import Any, Iterable, Optional
from urllib.parse import urlsplit

from giga_netcheck.core.models import BandwidthMeasurement, RunResult, to_dict

_MAC = re.compile(
    r"(?<![0-9A-Fa-f:.-])(?:[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})(?![0-9A-Fa-f:.-]?[0-9A-Fa-f])"
)
_IPV6 = re.compile(
    r"(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?:%[0-9A-Za-z_.\-]+)?(?![0-9A-Za-z]|:[0-9A-Za-z:]|\.\d)"
)
_IPV4 = re.compile(r"(?<![0-9A-Za-z.])(?:\d{1,3}\.){3}\d{1,3}(?![0-9A-Za-z]|\.\d)")
_DNS_NAME = re.compile(
    r"(?<![A-Za-z0-9_.\-])(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){2,}[A-Za-z]{2,24}(?![A-Za-z0-9_\-]|\.[A-Za-z0-9])"
    r"|(?<![A-Za-z0-9_.\-])(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+(?:local|lan|internal|intra|corp|home|localdomain|test|example|invalid)(?![A-Za-z0-9_\-]|\.[A-Za-z0-9])",
    re.IGNORECASE,
)
"""A host name in free text that the result records nowhere else: three or more labels ending in
letters (``ntp.board.example.jp``), or two with an internal suffix (``proxy.local``). Ids in this
project have fewer dots or underscores, file names two labels (``site.yaml``)."""
_ID_PREFIXES = frozenset({"classroom", "school", "path", "check", "cause", "advice", "segment", "status", "probe"})
"""First labels of this project's own dotted ids (check ids, message keys): never host names."""
_URL_HOST = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/\s]*@)?(\[[^\]]+\]|[^/:\s?#\"'<>]+)")
_USERINFO = re.compile(r"(?<=://)[^@/\s\"'<>]+@(?=[^\s])")
"""``user:password@`` in a URL (a proxy URL with credentials): never shown, whoever reads the report."""
CREDENTIALS = "***@"
_HOST_CHARS = r"[A-Za-z0-9_\-]"
_PLACEHOLDER = re.compile(r"(?:ip|ip6|mac|host|ssid)-\d+(?:%\S+)?")

MIN_IN_TEXT = 4
"""Host names and SSIDs shorter than this are replaced only where a whole field equals them:
inside free text, a two-letter host name ("pc") would eat ordinary words ("PC room")."""

SKIP: dict[str, frozenset[str]] = {
    "RunResult": frozenset(
        {"schema_version", "run_id", "tool_version", "started_at", "finished_at", "duration_s", "status", "profile", "mode", "interrupted"}
    ),
    "School": frozenset({"id", "name", "students"}),
    "Classroom": frozenset({"profile", "devices"}),
    "Target": frozenset({"role"}),
    "LatencySeries": frozenset({"role", "method", "error_kind"}),
    "BandwidthMeasurement": frozenset({"notes", "role", "direction", "engine", "error_kind"}),
    "DnsSeries": frozenset({"kind", "rcodes", "error_kind"}),
    "ProbeRecord": frozenset({"status", "reason_kind", "reason_key"}),
    "Check": frozenset({"id", "metric", "unit", "better", "status", "source_key", "detail_key"}),
    "Evidence": frozenset({"metric", "unit", "check_id", "note_key"}),
    "NotMeasured": frozenset({"key", "subject"}),
    "Cause": frozenset({"id", "segment", "advice", "rules"}),
}
"""Fields that hold ids, enums or times, never an address: left exactly as they are."""

ARGS = frozenset({"note_args", "reason_args", "source_args", "detail_args", "args"})
"""Values of a message key's placeholders: the values are redacted, the placeholder names are not."""


class Redactor:
    """One mapping from originals to placeholders, applied to any text."""

    def __init__(self) -> None:
        self.map: dict[tuple[str, str], str] = {}
        """(kind, normalised original) -> placeholder."""
        self.counts: dict[str, int] = {}
        self.hosts: dict[str, str] = {}
        """lower-cased host name -> placeholder."""
        self.literals: dict[str, str] = {}
        """SSIDs and odd BSSIDs (exact text) -> placeholder."""
        self._host_re: Optional[re.Pattern[str]] = None
        self._host_re_size = -1

    # ------------------------------------------------------------------ registering
    def _placeholder(self, kind: str, key: str) -> str:
        if (kind, key) not in self.map:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.map[(kind, key)] = f"{kind}-{self.counts[kind]}"
        return self.map[(kind, key)]

    def ip(self, text: str) -> Optional[str]:
        """Placeholder for an IP address (zone and brackets allowed), or None if it is not one."""
        core = text.strip("[]")
        zone = ""
        if "%" in core:
            core, zone = core.split("%", 1)
            zone = "%" + zone
        try:
            addr = ipaddress.ip_address(core)
        except ValueError:
            return None
        kind = "ip" if addr.version == 4 else "ip6"
        return self._placeholder(kind, addr.compressed) + zone

    def mac(self, text: str) -> str:
        key = re.sub(r"[^0-9a-f]", "", text.lower())
        return self._placeholder("mac", key)

    def host(self, name: Any) -> None:
        """Register something the result records as a host: an address or a host name."""
        if not isinstance(name, str):
            return
        name = name.strip().rstrip(".")
        if "://" in name:
            host = urlsplit(name).hostname
            if host:
                self.host(host)
            return
        if name.startswith("*."):
            name = name[2:]
        name = name.lstrip(".")
        if "@" in name:  # dns agreement keys: "label@server"
            for part in name.split("@"):
                self.host(part)
            return
        if _PLACEHOLDER.fullmatch(name):  # already redacted: redacting twice changes nothing
            return
        if not name or name.startswith("<") or name in ("system", "localhost") or "/" in name or " " in name:
            if "/" in name:  # a prefix in no_proxy: 10.0.0.0/8
                self.ip(name.split("/", 1)[0])
            return
        if self.ip(name) is not None:
            return
        if _MAC.fullmatch(name):
            self.mac(name)
            return
        key = name.lower()
        if key not in self.hosts:
            self.hosts[key] = self._placeholder("host", key)

    def literal(self, text: Any, kind: str) -> None:
        """An SSID (or a masked BSSID): replaced wherever its exact text appears."""
        if not isinstance(text, str) or not text.strip():
            return
        if kind == "mac" and _MAC.fullmatch(text):
            self.mac(text)
            return
        if text not in self.literals:
            self.literals[text] = self._placeholder(kind, text)

    # -------------------------------------------------------------------- applying
    def _hosts_pattern(self) -> Optional[re.Pattern[str]]:
        if not self.hosts:
            return None
        if self._host_re is None or self._host_re_size != len(self.hosts):
            self._host_re_size = len(self.hosts)
            names = sorted((n for n in self.hosts if len(n) >= MIN_IN_TEXT), key=len, reverse=True)
            if not names:
                return None
            alt = "|".join(re.escape(n) for n in names)
            self._host_re = re.compile(rf"(?<!{_HOST_CHARS})(?:{alt})(?!{_HOST_CHARS})", re.IGNORECASE)
        return self._host_re

    def text(self, s: str) -> str:
        """Every address, MAC, known host and SSID in ``s`` replaced."""
        if not s:
            return s
        if s in self.literals:
            return self.literals[s]
        if s.strip().rstrip(".").lower() in self.hosts:
            return self.hosts[s.strip().rstrip(".").lower()]
        for lit in sorted(self.literals, key=len, reverse=True):
            if len(lit) >= MIN_IN_TEXT and lit in s:
                s = s.replace(lit, self.literals[lit])
        s = _USERINFO.sub(CREDENTIALS, s)
        for m in _URL_HOST.finditer(s):  # hosts in URLs: register them so they are replaced below
            host = m.group(1)
            if self.ip(host) is None:
                self.host(host)
        for m in _DNS_NAME.finditer(s):
            if m.group(0).split(".", 1)[0].lower() not in _ID_PREFIXES:
                self.host(m.group(0))
        s = _MAC.sub(lambda m: self.mac(m.group(0)), s)
        s = _IPV6.sub(self._v6, s)
        s = _IPV4.sub(lambda m: self.ip(m.group(0)) or m.group(0), s)
        pat = self._hosts_pattern()
        if pat is not None:
            s = pat.sub(lambda m: self.hosts[m.group(0).lower()], s)
        return s

    def _v6(self, m: re.Match[str]) -> str:
        text = m.group(0)
        hit = self.ip(text)
        if hit is None and text.endswith(":"):  # "2001:db8::53: SERVFAIL": the colon is the sentence's
            hit = self.ip(text[:-1])
            return hit + ":" if hit else text
        return hit or text

    def value(self, v: Any) -> Any:
        """Any JSON-like value (host info, load data): strings redacted, keys included."""
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, dict):
            return {self.text(k) if isinstance(k, str) else k: self.value(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return type(v)(self.value(x) for x in v)
        return v

    def args(self, args: dict[str, Any]) -> dict[str, Any]:
        """A message key's values redacted; the placeholder names and nested keys are not."""
        out = {}
        for k, v in args.items():
            if isinstance(v, dict) and set(v) == {"key", "args"} and isinstance(v["args"], dict):
                out[k] = {"key": v["key"], "args": self.args(v["args"])}
            else:
                out[k] = self.value(v)
        return out

    def tree(self, obj: Any) -> Any:
        """A dataclass tree with every field outside :data:`SKIP` redacted."""
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            skip = SKIP.get(type(obj).__name__, frozenset())
            changes = {}
            for f in dataclasses.fields(obj):
                if f.name in skip:
                    continue
                old = getattr(obj, f.name)
                if f.name in ARGS and isinstance(old, dict):
                    new = self.args(old)
                    if new == old:
                        new = old
                else:
                    new = self.tree(old)
                if new is not old:
                    changes[f.name] = new
            return dataclasses.replace(obj, **changes) if changes else obj
        if isinstance(obj, tuple):
            return tuple(self.tree(x) for x in obj)
        if isinstance(obj, (str, dict, list)):
            return self.value(obj)
        return obj


def _collect(r: RunResult, red: Redactor) -> None:
    """Register every host the result records, nearest first, so numbering follows the path."""
    h: dict[str, Any] = r.host or {}
    wifi: dict[str, Any] = h["wifi"] if isinstance(h.get("wifi"), dict) else {}
    red.literal(wifi.get("ssid"), "ssid")
    red.literal(wifi.get("bssid"), "mac")
    for t in r.targets:
        red.host(t.host)
        red.host(t.url)
    red.host(h.get("hostname"))
    for key in ("gateway_ipv4", "gateway_ipv6", "stub_resolver"):
        red.host(h.get(key))
    for x in h.get("resolvers") or ():
        red.host(x)
    proxy: dict[str, Any] = h["proxy"] if isinstance(h.get("proxy"), dict) else {}
    for key in ("http", "https", "pac_url"):
        red.host(proxy.get(key))
    for x in proxy.get("no_proxy") or ():
        red.host(x)
    for d in r.measurements.dns:
        for x in (d.resolver, d.server, d.name, *d.answers):
            red.host(x)
    for a in r.measurements.dns_agreement:
        red.host(a.name)
        for k, v in a.answers.items():
            red.host(k)
            for x in v:
                red.host(x)
    for series in r.measurements.latency:
        red.host(series.host)
    for b in r.measurements.bandwidth:
        _bandwidth_hosts(b, red)
    for f in r.measurements.families:
        red.host(f.address)
        for x in (f.rtt, f.download):
            if x is not None and hasattr(x, "host"):
                red.host(x.host)
        if f.download is not None:
            _bandwidth_hosts(f.download, red)
    p = r.measurements.proxy
    if p is not None:
        for x in (p.http, p.https, p.pac_url, *p.no_proxy):
            red.host(x)
        for pp in p.paths:
            red.host(pp.url)
            red.host(pp.proxy)
            for conn in (pp.connect, pp.ttfb):
                if conn is not None:
                    red.host(conn.host)
    for trace in r.measurements.paths:
        red.host(trace.host)
        for hop in trace.hops:
            red.host(hop.address)
            for x in hop.other_addresses:
                red.host(x)


def _bandwidth_hosts(b: BandwidthMeasurement, red: Redactor) -> None:
    """The test's URL and the engine's server (Ookla host and URL, LibreSpeed URLs): hosts."""
    red.host(b.url)
    red.host(b.proxy)
    srv = b.server if isinstance(b.server, dict) else {}
    for key in ("host", "url", "server", "dlURL", "ulURL", "pingURL", "getIpURL"):
        v = srv.get(key)
        if isinstance(v, str) and key == "host" and "://" not in v and v.count(":") == 1:
            v = v.split(":", 1)[0]  # "speed.example.jp:8080"
        red.host(v)


def _site_file(path: Optional[str], red: Redactor) -> Optional[str]:
    if not path:
        return path
    name = re.split(r"[\\/]", path)[-1]
    return red.text(name)


def redact(result: RunResult, redactor: Optional[Redactor] = None) -> RunResult:
    """A copy of ``result`` with addresses, MACs, host names and SSIDs replaced consistently."""
    red = redactor or Redactor()
    _collect(result, red)
    out: RunResult = red.tree(result)
    return dataclasses.replace(out, site_file=_site_file(result.site_file, red))


def originals(result: RunResult) -> list[str]:
    """Every identifier :func:`redact` replaces in ``result`` (for tests and a ``--redact`` check)."""
    red = Redactor()
    _collect(result, red)
    found: set[str] = set(red.hosts) | set(red.literals)

    def scan(v: Any) -> Iterable[str]:
        if isinstance(v, str):
            yield from (m.group(0) for m in _MAC.finditer(v))
            yield from (m.group(0) for m in _IPV6.finditer(v) if red.ip(m.group(0)))
            yield from (m.group(0) for m in _IPV4.finditer(v) if red.ip(m.group(0)))
        elif isinstance(v, dict):
            for k, x in v.items():
                yield from scan(k)
                yield from scan(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                yield from scan(x)

    found |= set(scan(to_dict(result)))
    return sorted(found)
