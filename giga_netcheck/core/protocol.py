"""The measurement server's wire vocabulary, shared by the clients (measure/) and the server (server/)."""

from __future__ import annotations

SERVICE_NAME = "giga-netcheck"
"""``GET /id`` answers ``{"service": SERVICE_NAME, ...}``: bandwidth and load go only to such servers."""

UDP_MAGIC = b"GNC1"
"""The UDP echo answers only datagrams that start with these bytes."""
