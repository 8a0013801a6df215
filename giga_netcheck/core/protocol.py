"""The measurement server's wire vocabulary, shared by the clients (measure/) and the server (server/)."""

from __future__ import annotations

SERVICE_NAME = "giga-netcheck"
"""``GET /id`` answers ``{"service": SERVICE_NAME, ...}``: bandwidth and load go only to such servers."""

UDP_MAGIC = b"GNC1"
"""The UDP echo answers only datagrams that start with these bytes."""

UDP_REPLY_MAGIC = b"GNR1"
"""The UDP echo's answer: the request with its first four bytes replaced by these, same size.

A reply never starts with :data:`UDP_MAGIC`, so no echo server answers it: a datagram spoofed
to come from one server and sent to another is answered once and dies there, instead of
bouncing between the two for ever (a reflection loop)."""
