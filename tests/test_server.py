"""The measurement server on loopback: endpoints, caps, bad clients."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from giga_netcheck.core.protocol import UDP_MAGIC, UDP_REPLY_MAGIC
from giga_netcheck.server.app import ServerConfig, ServerThread


def test_id_identifies_as_measurement_server(server):
    doc = httpx.get(f"{server.url}/id").json()
    assert doc["service"] == "giga-netcheck"
    assert doc["role"] == "measurement-server"
    assert doc["udp_echo_port"] == server.server.udp_port


def test_download_streams_exactly_the_bytes_asked(server):
    r = httpx.get(f"{server.url}/download?bytes=1000003")
    assert r.status_code == 200
    assert len(r.content) == 1000003
    assert r.headers["content-length"] == "1000003"


def test_download_is_capped():
    with ServerThread(ServerConfig(host="127.0.0.1", port=0, max_download_bytes=5000)) as s:
        r = httpx.get(f"{s.url}/download?bytes=999999")
        assert len(r.content) == 5000


@pytest.mark.parametrize("chunked", [False, True])
def test_upload_counts_and_discards(server, chunked):
    body = b"x" * 700_001
    content = (body[i : i + 65536] for i in range(0, len(body), 65536)) if chunked else body
    r = httpx.post(f"{server.url}/upload", content=content)
    assert r.status_code == 200
    assert r.json()["bytes"] == 700_001


def test_upload_over_cap_is_refused():
    with ServerThread(ServerConfig(host="127.0.0.1", port=0, max_upload_bytes=1000)) as s:
        r = httpx.post(f"{s.url}/upload", content=b"y" * 5000)
        assert r.status_code == 413


def test_garbage_request_gets_400_and_server_survives(server):
    with socket.create_connection(("127.0.0.1", server.server.port), timeout=2) as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")
    assert httpx.get(f"{server.url}/rtt").status_code == 200


def test_bad_chunk_framing_is_refused(server):
    with socket.create_connection(("127.0.0.1", server.server.port), timeout=2) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        assert b"400" in sock.recv(100).split(b"\r\n")[0]


def test_client_vanishing_mid_download_is_survived(server):
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.server.port), timeout=2) as sock:
            sock.sendall(b"GET /download?bytes=500000000 HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.recv(65536)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    deadline = time.time() + 5
    while server.server.transfers < 5 and time.time() < deadline:
        time.sleep(0.05)
    assert server.server.transfers >= 5  # each cut transfer was logged and ended
    assert len(httpx.get(f"{server.url}/download?bytes=10").content) == 10


def test_keep_alive_serves_several_requests_on_one_connection(server):
    with httpx.Client() as c:
        for _ in range(3):
            assert c.get(f"{server.url}/rtt").text == "ok\n"
        assert json.loads(c.get(f"{server.url}/id").text)["service"] == "giga-netcheck"


def test_udp_echo_only_echoes_own_probes(server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        s.sendto(UDP_MAGIC + b"hello", ("127.0.0.1", server.server.udp_port))
        assert s.recvfrom(100)[0] == UDP_REPLY_MAGIC + b"hello"  # same size, not a probe
        s.sendto(b"random datagram", ("127.0.0.1", server.server.udp_port))
        with pytest.raises(socket.timeout):
            s.recvfrom(100)
