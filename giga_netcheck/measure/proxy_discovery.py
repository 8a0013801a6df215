"""Which HTTP proxy a browser on this machine would use for a URL (pure, except ``fetch_pac``).

Settings come, first found wins, from the site file's ``proxy:`` section, then the host's
(``hostinfo``: environment ``http_proxy``/``https_proxy``/``no_proxy``, macOS ``scutil --proxy``,
Windows WinHTTP). A PAC URL (site file or system) is fetched once and evaluated by a small
interpreter for the forms school boards actually ship::

    function FindProxyForURL(url, host) {
        if (isPlainHostName(host) || dnsDomainIs(host, ".board.local")) return "DIRECT";
        if (shExpMatch(host, "*.example.jp") && !isInNet(host, "10.0.0.0", "255.0.0.0")) return "PROXY p:8080";
        return "PROXY proxy.board.local:8080; DIRECT";
    }

``if (...) return "...";`` statements (with or without braces), a final ``return``, and
conditions built from ``isPlainHostName``, ``dnsDomainIs``, ``localHostOrDomainIs``,
``shExpMatch``, ``isInNet`` (on a literal address, or ``dnsResolve(host)`` with the resolver
passed in), ``host == "..."``, ``!``, ``&&``, ``||`` and parentheses. Anything else (variables,
``myIpAddress``, ``weekdayRange``, string functions) makes the script *not understood*: the
result says so and the probes go direct, rather than guess. A full JavaScript engine
(pacparser, pypac with dukpy) would run any script, at the cost of a C extension or a JS
interpreter in the install; the forms above cover the PAC files in Japanese boards' published
examples, so the small interpreter is the trade we make.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Optional
from urllib.parse import urlsplit, urlunsplit

__all__ = ["ProxyChoice", "ProxyConfig", "PacError", "PacScript", "no_proxy_matches", "parse_pac_result"]


@dataclass(frozen=True)
class ProxyChoice:
    """The proxy for one URL (None: direct) and what decided it."""

    proxy: Optional[str]
    decided_by: str
    """``site``, ``env``, ``scutil``, ``winhttp``, ``pac``, ``no_proxy`` or ``none``."""


class PacError(ValueError):
    """The PAC script uses something the small interpreter does not evaluate."""


def without_credentials(url: Optional[str]) -> Optional[str]:
    """``url`` with any ``user:password@`` replaced by ``***@``: what a result may record. The
    password is used to connect and never written, whatever the report's audience."""
    if not url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def _as_url(value: str) -> str:
    value = value.strip()
    return value if "://" in value else f"http://{value}"


@dataclass(frozen=True)
class ProxyConfig:
    """Effective proxy settings: one source, its proxies, bypass list and (evaluated) PAC."""

    source: Optional[str] = None
    http: Optional[str] = None
    https: Optional[str] = None
    no_proxy: tuple[str, ...] = ()
    pac_url: Optional[str] = None
    pac: Optional[PacScript] = None
    pac_status: Optional[str] = None
    """``evaluated``, ``not-understood`` (then: direct) or ``unreachable`` (then: direct)."""
    pac_error: Optional[str] = None

    @property
    def detected(self) -> bool:
        return bool(self.http or self.https or self.pac_url)

    @classmethod
    def from_settings(cls, site: Optional[Mapping[str, Any]], host: Optional[Mapping[str, Any]]) -> ProxyConfig:
        """The site file's ``proxy:`` section wins over the host's settings (``host["proxy"]``).

        ``site`` may say ``{direct: true}``: no proxy, whatever the host says."""
        site = dict(site or {})
        if site.get("direct"):
            return cls(source="site")
        if site.get("url") or site.get("pac"):
            url = _as_url(site["url"]) if site.get("url") else None
            return cls(source="site", http=url, https=url, no_proxy=tuple(site.get("no_proxy") or ()), pac_url=site.get("pac"))
        h = dict(host or {})
        if h.get("http") or h.get("https") or h.get("pac_url"):
            return cls(
                source=h.get("source") or "system",
                http=h.get("http"),
                https=h.get("https"),
                no_proxy=tuple(h.get("no_proxy") or ()),
                pac_url=h.get("pac_url"),
            )
        return cls()

    def with_pac(self, fetch: Callable[[str], str]) -> ProxyConfig:
        """Fetch and compile the PAC script (if any); failures are recorded, never raised."""
        if not self.pac_url:
            return self
        try:
            text = fetch(self.pac_url)
        except Exception as exc:  # unreachable PAC server: browsers then go direct
            return replace(self, pac_status="unreachable", pac_error=str(exc) or type(exc).__name__)
        try:
            return replace(self, pac=PacScript(text), pac_status="evaluated")
        except PacError as exc:
            return replace(self, pac_status="not-understood", pac_error=str(exc))

    def choose(self, url: str, resolve: Optional[Callable[[str], Optional[str]]] = None) -> ProxyChoice:
        """The proxy a browser would use for ``url``."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if self.pac_url:
            if self.pac is None:
                return ProxyChoice(None, "pac")
            try:
                result = self.pac.find(url, host, resolve)
            except PacError:
                return ProxyChoice(None, "pac")
            return ProxyChoice(parse_pac_result(result), "pac")
        proxy = self.https if parts.scheme == "https" else self.http
        if not proxy:
            return ProxyChoice(None, "none" if not self.detected else self.source or "none")
        if no_proxy_matches(self.no_proxy, host, port):
            return ProxyChoice(None, "no_proxy")
        return ProxyChoice(proxy, self.source or "none")


def no_proxy_matches(patterns: tuple[str, ...], host: str, port: int) -> bool:
    """curl/urllib ``no_proxy`` semantics, plus the OS spellings (``*.local``, ``<local>``, CIDR)."""
    host = host.lower().strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for raw in patterns:
        pat = raw.strip().lower()
        if not pat:
            continue
        if pat == "*":
            return True
        if pat == "<local>":
            if "." not in host and ip is None:
                return True
            continue
        if pat.count(":") == 1 and not pat.startswith("["):
            pat, _, pport = pat.partition(":")
            if pport.isdigit() and int(pport) != port:
                continue
        pat = pat.strip("[]")
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(pat, strict=False):
                    return True
            except ValueError:
                pass
            continue
        if "*" in pat:
            if fnmatch.fnmatch(host, pat):
                return True
            continue
        pat = pat.lstrip(".")
        if host == pat or host.endswith("." + pat):
            return True
    return False


def parse_pac_result(result: str) -> Optional[str]:
    """``"PROXY h:p; DIRECT"`` -> ``http://h:p`` (the first entry a browser tries); DIRECT -> None."""
    for entry in result.split(";"):
        words = entry.split()
        if not words:
            continue
        kind = words[0].upper()
        if kind == "DIRECT":
            return None
        if kind in ("PROXY", "HTTP") and len(words) > 1:
            return f"http://{words[1]}"
        if kind == "HTTPS" and len(words) > 1:
            return f"https://{words[1]}"
        if kind in ("SOCKS", "SOCKS5", "SOCKS4") and len(words) > 1:
            return f"socks5://{words[1]}"
    return None


# ------------------------------------------------------------------------------- PAC

_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>&&|\|\||==|!=|===|!==|[(){};,!])|(?P<name>[A-Za-z_$][\w$]*))"""
)
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_FUNCS = {"isPlainHostName", "dnsDomainIs", "localHostOrDomainIs", "shExpMatch", "isInNet", "dnsResolve", "isResolvable"}


def _tokens(text: str) -> list[tuple[str, str]]:
    text = _COMMENT.sub(" ", text)
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise PacError(f"cannot read the PAC script near {text[pos : pos + 30]!r}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "str":
            value = value[1:-1]
        out.append((kind, value))
        pos = m.end()
    return out


class PacScript:
    """A compiled ``FindProxyForURL``: a list of (condition, result) in order, last one unconditional."""

    def __init__(self, text: str) -> None:
        self._t = _tokens(text)
        self._i = 0
        self.rules: list[tuple[Optional[Any], str]] = []
        self._parse()

    # ---- parsing (recursive descent over the tokens)
    def _peek(self, k: int = 0) -> tuple[str, str]:
        return self._t[self._i + k] if self._i + k < len(self._t) else ("eof", "")

    def _take(self, value: Optional[str] = None, kind: Optional[str] = None) -> str:
        k, v = self._peek()
        if (value is not None and v != value) or (kind is not None and k != kind):
            raise PacError(f"unexpected {v or 'end of script'!r} in the PAC script (wanted {value or kind})")
        self._i += 1
        return v

    def _parse(self) -> None:
        self._take("function")
        if self._take(kind="name") != "FindProxyForURL":
            raise PacError("the PAC script does not start with FindProxyForURL")
        self._take("(")
        self._url, _, self._host = self._take(kind="name"), self._take(","), self._take(kind="name")
        self._take(")")
        self._take("{")
        self._block(self.rules, None)
        self._take("}")
        if not self.rules or self.rules[-1][0] is not None:
            raise PacError("the PAC script has no final return")

    def _block(self, rules: list, guard: Optional[Any]) -> None:
        while self._peek()[1] not in ("}", ""):
            self._statement(rules, guard)

    def _statement(self, rules: list, guard: Optional[Any]) -> None:
        v = self._peek()[1]
        if v == ";":
            self._take(";")
        elif v == "if":
            self._take("if")
            self._take("(")
            cond = self._or()
            self._take(")")
            both = cond if guard is None else ("and", guard, cond)
            if self._peek()[1] == "{":
                self._take("{")
                self._block(rules, both)
                self._take("}")
            else:
                self._statement(rules, both)
            if self._peek()[1] == "else":
                self._take("else")
                neg = ("not", cond) if guard is None else ("and", guard, ("not", cond))
                if self._peek()[1] == "{":
                    self._take("{")
                    self._block(rules, neg)
                    self._take("}")
                else:
                    self._statement(rules, neg)
        elif v == "return":
            self._take("return")
            result = self._take(kind="str")
            if self._peek()[1] == ";":
                self._take(";")
            rules.append((guard, result))
        else:
            raise PacError(f"{v!r} is beyond what giga-netcheck's PAC reader evaluates")

    def _or(self) -> Any:
        left = self._and()
        while self._peek()[1] == "||":
            self._take("||")
            left = ("or", left, self._and())
        return left

    def _and(self) -> Any:
        left = self._unary()
        while self._peek()[1] == "&&":
            self._take("&&")
            left = ("and", left, self._unary())
        return left

    def _unary(self) -> Any:
        k, v = self._peek()
        if v == "!":
            self._take("!")
            return ("not", self._unary())
        if v == "(":
            self._take("(")
            inner = self._or()
            self._take(")")
            return inner
        left = self._value()
        if self._peek()[1] in ("==", "===", "!=", "!=="):
            op = self._take()
            right = self._value()
            return ("eq", left, right) if op in ("==", "===") else ("not", ("eq", left, right))
        return left

    def _value(self) -> Any:
        k, v = self._peek()
        if k == "str":
            self._take()
            return ("lit", v)
        if k == "name" and v in (self._url, self._host):
            self._take()
            return ("var", v == self._host)
        if k == "name" and v in _FUNCS:
            self._take()
            self._take("(")
            args = []
            while self._peek()[1] != ")":
                args.append(self._value())
                if self._peek()[1] == ",":
                    self._take(",")
            self._take(")")
            return ("call", v, tuple(args))
        raise PacError(f"{v or 'end of script'!r} is beyond what giga-netcheck's PAC reader evaluates")

    # ---- evaluation
    def find(self, url: str, host: str, resolve: Optional[Callable[[str], Optional[str]]] = None) -> str:
        """The script's answer for ``url`` (``"PROXY h:p; DIRECT"``, ``"DIRECT"`` ...)."""
        env = {"url": url, "host": host, "resolve": resolve or (lambda h: None)}
        for cond, result in self.rules:
            if cond is None or self._eval(cond, env):
                return result
        return "DIRECT"

    def _eval(self, node: Any, env: dict) -> Any:
        op = node[0]
        if op == "lit":
            return node[1]
        if op == "var":
            return env["host"] if node[1] else env["url"]
        if op == "not":
            return not self._eval(node[1], env)
        if op == "and":
            return self._eval(node[1], env) and self._eval(node[2], env)
        if op == "or":
            return self._eval(node[1], env) or self._eval(node[2], env)
        if op == "eq":
            return self._eval(node[1], env) == self._eval(node[2], env)
        name, args = node[1], [self._eval(a, env) for a in node[2]]
        return _call(name, args, env["resolve"])


def _call(name: str, args: list, resolve: Callable[[str], Optional[str]]) -> Any:
    def s(i: int) -> str:
        return "" if i >= len(args) or args[i] is None else str(args[i])

    if name == "isPlainHostName":
        return "." not in s(0)
    if name == "dnsDomainIs":
        return s(0).lower().endswith(s(1).lower())
    if name == "localHostOrDomainIs":
        h, full = s(0).lower(), s(1).lower()
        return h == full or ("." not in h and full.split(".")[0] == h)
    if name == "shExpMatch":
        return fnmatch.fnmatchcase(s(0), s(1))
    if name == "dnsResolve":
        try:
            ipaddress.ip_address(s(0))
            return s(0)
        except ValueError:
            return resolve(s(0))
    if name == "isResolvable":
        return _call("dnsResolve", args, resolve) is not None
    if name == "isInNet":
        addr = _call("dnsResolve", [s(0)], resolve)
        if addr is None:
            return False
        try:
            net = ipaddress.ip_network(f"{s(1)}/{s(2)}", strict=False)
            return ipaddress.ip_address(addr) in net
        except ValueError:
            return False
    raise PacError(f"{name} is beyond what giga-netcheck's PAC reader evaluates")
