"""DNS probe: cold (cache-miss) and warm query times per resolver and name, and agreement.

Cold queries ask for a random label under each name (``gnc-3f9a1c.www.mext.go.jp``): no
resolver has it cached, so the time includes the resolver's own lookups. Warm queries ask
for the name itself after one priming query. Each query is timed with ``perf_counter``
around one UDP exchange; a timeout is recorded as None, never retried silently.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Optional

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from giga_netcheck.core.i18n import Text
from giga_netcheck.core.models import DnsAgreement, DnsSeries
from giga_netcheck.core.stats import percentile, rounded
from giga_netcheck.measure.failures import map_exception
from giga_netcheck.measure.probes.base import Probe, ProbeContext, ProbeOutput, in_parallel


def split_server(spec: str) -> tuple[str, int]:
    """``1.2.3.4``, ``1.2.3.4:5353``, ``[::1]:53`` or ``::1`` -> (address, port)."""
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if spec.count(":") == 1:
        host, port = spec.split(":")
        return host, int(port)
    return spec, 53


def query_once(server: str, name: str, timeout_s: float) -> tuple[Optional[float], str, tuple[str, ...]]:
    """One A query: (ms or None on timeout, rcode text, addresses)."""
    addr, port = split_server(server)
    q = dns.message.make_query(name, dns.rdatatype.A)
    t0 = time.perf_counter()
    try:
        r = dns.query.udp(q, addr, timeout=timeout_s, port=port, ignore_unexpected=True)
    except dns.exception.Timeout:
        return None, "TIMEOUT", ()
    ms = (time.perf_counter() - t0) * 1000.0
    addrs = tuple(sorted({rd.to_text() for rrset in r.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset}))
    return ms, dns.rcode.to_text(r.rcode()), addrs


def measure(resolver: str, server: str, name: str, kind: str, n: int, timeout_s: float, stop: threading.Event) -> DnsSeries:
    times: list[Optional[float]] = []
    rcodes: list[str] = []
    answers: set[str] = set()
    error = kind_err = None
    try:
        if kind == "warm":
            query_once(server, name, timeout_s)  # prime the cache; not counted
        for _ in range(n):
            if stop.is_set():
                break
            qname = f"gnc-{secrets.token_hex(5)}.{name}" if kind == "cold" else name
            ms, rcode, addrs = query_once(server, qname, timeout_s)
            times.append(None if ms is None else round(ms, 3))
            rcodes.append(rcode)
            answers.update(addrs)
    except Exception as exc:  # a resolver we cannot even ask is a result too
        mapped = map_exception(exc)
        error, kind_err = str(mapped), mapped.kind
    got = [t for t in times if t is not None]
    return DnsSeries(
        resolver=resolver,
        server=server,
        name=name,
        kind=kind,
        times_ms=tuple(times),
        rcodes=tuple(rcodes),
        answers=tuple(sorted(answers)),
        timeouts=sum(1 for t in times if t is None),
        p50_ms=rounded(percentile(got, 50)),
        p95_ms=rounded(percentile(got, 95)),
        error=error,
        error_kind=kind_err,
    )


def agreement(series: list[DnsSeries]) -> list[DnsAgreement]:
    """Per name: do all resolvers that answered give the same addresses?"""
    by_name: dict[str, dict[str, tuple[str, ...]]] = {}
    for s in series:
        if s.kind == "warm" and s.answers:
            by_name.setdefault(s.name, {})[f"{s.resolver}@{s.server}"] = s.answers
    return [DnsAgreement(name=name, agree=len(set(ans.values())) <= 1, answers=ans) for name, ans in by_name.items() if len(ans) > 1]


class DnsProbe(Probe):
    name = "dns"

    def check(self, ctx: ProbeContext) -> Optional[str]:
        if not ctx.site.names:
            return Text("reason.no_names")
        if not any(ctx.resolvers.values()):
            return Text("reason.no_resolver")
        return None

    def run(self, ctx: ProbeContext) -> ProbeOutput:
        s = ctx.settings
        jobs = [(label, server) for label, servers in ctx.resolvers.items() for server in servers]
        ctx.progress.step("DNS", total=len(jobs))
        results: dict[tuple[str, str], list[DnsSeries]] = {}

        def one(label: str, server: str) -> None:
            out = []
            for name in ctx.site.names:
                for kind in ("cold", "warm"):
                    out.append(measure(label, server, name, kind, s.dns_queries, s.dns_timeout_s, ctx.stop))
            results[(label, server)] = out
            ctx.progress.advance()

        in_parallel(one, jobs)
        series = [x for job in jobs for x in results.get(job, [])]
        out = ProbeOutput(dns=series, dns_agreement=agreement(series))
        broken = [x for x in series if x.error]
        if ctx.stop.is_set():
            out.status, out.reason, out.reason_kind = "partial", Text("reason.interrupted"), "interrupted"
        elif broken and len(broken) == len(series):
            out.status, out.reason, out.reason_kind = "failed", broken[0].error, broken[0].error_kind
        elif broken:
            out.status, out.reason = (
                "partial",
                Text("reason.some_resolvers_failed", failures="; ".join(sorted({f"{b.server}: {b.error}" for b in broken}))),
            )
        return out
