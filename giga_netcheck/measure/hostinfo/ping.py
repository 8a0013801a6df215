"""The system ``ping``'s output on Linux (iputils, busybox), macOS and Windows (en, ja),
reduced to one :class:`PingSummary`, so benchmarks can set our ICMP probe beside it."""

from __future__ import annotations

import re
from typing import Optional

from giga_netcheck.measure.hostinfo.models import PingSummary

# One reply line: "time=0.020 ms" (Unix), "time=87ms" / "time<1ms" (Windows),
# "時間 =11ms" / "時間 <1ms" (Windows ja).
_REPLY_TIME = re.compile(r"(?:time|時間)\s*([=<])\s*(\d+(?:\.\d+)?)\s*ms")

# iputils: "20 packets transmitted, 19 received, +3 errors, 5% packet loss, time 19125ms"
# macOS / BSD / busybox: "3 packets transmitted, 3 packets received, 0.0% packet loss"
_UNIX_COUNTS = re.compile(
    r"(\d+) packets transmitted, (\d+) (?:packets )?received,(?P<extra>.*?)"
    r"(\d+(?:\.\d+)?)% packet loss"
)
_UNIX_ERRORS = re.compile(r"\+(\d+) errors")
# "rtt min/avg/max/mdev = 0.020/0.047/0.057/0.010 ms", "round-trip min/avg/max/stddev = ..."
_UNIX_RTT = re.compile(r"min/avg/max(?:/\w+)? = (\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)")

# "Packets: Sent = 10, Received = 10, Lost = 0 (0% loss),"
# "パケット数: 送信 = 4、受信 = 4、損失 = 0 (0% の損失)、"
_WIN_COUNTS = re.compile(r"(?:Sent|送信) = (\d+)[,、]\s*(?:Received|受信) = (\d+)[,、]\s*(?:Lost|損失) = (\d+)")
# "Minimum = 56ms, Maximum = 194ms, Average = 107ms" / "最小 = 0ms、最大 = 11ms、平均 = 4ms"
_WIN_RTT = re.compile(r"(?:Minimum|最小) = (\d+)ms[,、]\s*(?:Maximum|最大) = (\d+)ms[,、]\s*(?:Average|平均) = (\d+)ms")

# ICMP errors sent back by a router or the host's own stack, per reply line.
_ERROR_LINE = re.compile(
    r"Destination (?:Host|Net|Network|Port|Protocol) Unreachable|Time to live exceeded"
    r"|TTL expired in transit|宛先ホストに到達できません|宛先ネットワークに到達できません"
    r"|宛先ポートに到達できません|転送中に TTL が期限切れになりました",
    re.IGNORECASE,
)
# Probes that got nothing back, for output without a summary (ping killed early).
_TIMEOUT_LINE = re.compile(
    r"Request timed out|Request timeout for icmp_seq|no answer yet for icmp_seq|要求がタイムアウトしました",
    re.IGNORECASE,
)


def parse_ping(text: str) -> Optional[PingSummary]:
    """Summarise one ``ping`` run from any of the three OSes; None if ``text`` is not ping.

    Counts come from ping's own statistics when it printed them, else from the reply
    lines. On Windows, ICMP error replies are taken out of "Received" (see PingSummary).
    """
    rtts: list[float] = []
    errors = timeouts = 0
    for line in text.splitlines():
        if "DUP!" in line:  # iputils duplicate replies: not a second answered probe
            continue
        match = _REPLY_TIME.search(line)
        if match:
            rtts.append(0.0 if match.group(1) == "<" else float(match.group(2)))
        elif _ERROR_LINE.search(line):
            errors += 1
        elif _TIMEOUT_LINE.search(line):
            timeouts += 1

    stats: Optional[tuple[float, float, float]] = None
    unix = _UNIX_COUNTS.search(text)
    win = _WIN_COUNTS.search(text)
    if unix:
        sent, received = int(unix.group(1)), int(unix.group(2))
        summary_errors = _UNIX_ERRORS.search(unix.group("extra"))
        errors = max(errors, int(summary_errors.group(1)) if summary_errors else 0)
        loss_pct = float(unix.group(4))
        rtt = _UNIX_RTT.search(text)
        if rtt:
            stats = (float(rtt.group(1)), float(rtt.group(2)), float(rtt.group(3)))
    elif win:
        sent = int(win.group(1))
        # Windows counts "Destination host unreachable" replies as received.
        received = max(0, int(win.group(2)) - errors)
        loss_pct = round(100.0 * (sent - received) / sent, 1) if sent else 0.0
        rtt = _WIN_RTT.search(text)
        if rtt:
            stats = (float(rtt.group(1)), float(rtt.group(3)), float(rtt.group(2)))
    elif rtts or errors or timeouts:
        sent = len(rtts) + errors + timeouts
        received = len(rtts)
        loss_pct = round(100.0 * (sent - received) / sent, 1)
    else:
        return None

    if stats is None and rtts:
        stats = (min(rtts), sum(rtts) / len(rtts), max(rtts))
    return PingSummary(
        sent=sent,
        received=received,
        loss_pct=loss_pct,
        rtts_ms=tuple(rtts),
        min_ms=stats[0] if stats else None,
        avg_ms=stats[1] if stats else None,
        max_ms=stats[2] if stats else None,
        errors=errors,
    )
