"""Misbehaving servers on loopback, for the bad-input tests."""

from __future__ import annotations

import json
import socket
import struct
import threading


class FakeServer:
    """A one-thread TCP server on 127.0.0.1 that misbehaves in a chosen way.

    modes:
      ``garbage``   answers every request with bytes that are not HTTP
      ``not-ours``  a normal web server: 200 with an HTML page, also on /id
      ``reset``     identifies as a measurement server, then resets downloads mid-transfer
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(2)

    def _loop(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                head = b""
                while b"\r\n\r\n" not in head:
                    data = conn.recv(4096)
                    if not data:
                        return
                    head += data
                path = head.split(b" ")[1].decode()
                if self.mode == "garbage":
                    conn.sendall(b"\x00\xffSSH-2.0-nope\r\n" * 10)
                elif self.mode == "not-ours":
                    body = b"<html>router login</html>"
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                elif self.mode == "reset":
                    if path.startswith("/id"):
                        body = json.dumps({"service": "giga-netcheck", "role": "measurement-server", "udp_echo_port": None}).encode()
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
                    else:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n" + b"z" * 200_000)
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
