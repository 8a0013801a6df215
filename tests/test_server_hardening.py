"""``serve`` against clients that hold it by doing nothing (issue 17), on 127.0.0.1 only.

- the UDP echo: its reply is never a request, so two servers cannot bounce one datagram;
- the write deadline: clients that ask for a download and never read (or trickle) are dropped,
  so ``max_connections`` slow readers cannot lock everyone out for longer than the deadline;
- the body deadline: a body trickled a byte at a time (a slow POST) is dropped after one window;
- ``serve --tls-cert/--tls-key``: HTTPS with the standard library, the same deadlines behind it.

Every wait is bounded by the deadline under test plus a margin of seconds (a loaded machine), and
every assertion is about an event (an answer, a close), never about a measured speed.
"""

from __future__ import annotations

import datetime as dt
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import httpx
import pytest

from giga_netcheck.core.errors import ConfigError
from giga_netcheck.core.protocol import UDP_MAGIC, UDP_REPLY_MAGIC
from giga_netcheck.measure.probes.rtt import UdpEcho
from giga_netcheck.server.app import MAX_UDP_BYTES, ServerConfig, ServerThread, tls_context
from giga_netcheck.server.http import MIN_PROGRESS_BYTES
from tests.conftest import clean_env

ROOT = Path(__file__).resolve().parent.parent
MARGIN_S = 2.5
"""Slack on every deadline for a loaded 2-core machine (the deadlines themselves are 0.5-1 s)."""


pytestmark = pytest.mark.usefixtures("no_tracebacks")  # tests/conftest.py


def _wait_until(cond: Callable[[], bool], within: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


# ------------------------------------------------------------------------------ UDP echo


def _udp_ask(port: int, data: bytes, timeout: float = 0.5) -> Optional[bytes]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(data, ("127.0.0.1", port))
        try:
            return s.recvfrom(4096)[0]
        except TimeoutError:
            return None


def test_a_reply_shaped_datagram_gets_no_answer(server):
    assert _udp_ask(server.server.udp_port, UDP_REPLY_MAGIC + b"\0" * 60) is None
    assert server.server.udp_answered == 0


@pytest.mark.parametrize("size", [len(UDP_MAGIC), 5, 64, MAX_UDP_BYTES])
def test_the_reply_differs_from_the_request_and_is_no_larger(server, size):
    request = UDP_MAGIC + os.urandom(size - len(UDP_MAGIC))
    reply = _udp_ask(server.server.udp_port, request)
    assert reply is not None and len(reply) == len(request)
    assert not reply.startswith(UDP_MAGIC) and reply[len(UDP_MAGIC) :] == request[len(UDP_MAGIC) :]


def test_an_oversized_probe_gets_no_answer(server):
    assert _udp_ask(server.server.udp_port, UDP_MAGIC + b"\0" * MAX_UDP_BYTES) is None


def test_two_servers_cannot_bounce_one_spoofed_datagram():
    """A probe that seems to come from server A, sent to server B: B answers A once, A never
    answers that (before: each echoed the other's echo for ever, one loop per datagram)."""
    with ServerThread(ServerConfig(host="127.0.0.1", port=0)) as a, ServerThread(ServerConfig(host="127.0.0.1", port=0)) as b:
        # sent from A's own UDP socket: exactly what B sees when an attacker spoofs A's address
        udp_a = a.server._udp
        assert udp_a is not None
        a._loop.call_soon_threadsafe(udp_a.sendto, UDP_MAGIC + b"spoofed" + b"\0" * 50, ("127.0.0.1", b.server.udp_port))
        assert _wait_until(lambda: b.server.udp_answered >= 1, 2.0)
        time.sleep(0.5)  # a loop would have run thousands of rounds by now
        assert (a.server.udp_answered, b.server.udp_answered) == (0, 1)


class _FakeEcho:
    """A UDP server that answers every datagram through ``reply`` (an old or a hostile server)."""

    def __init__(self, reply: Callable[[bytes], bytes]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            self.sock.sendto(self.reply(data), addr)

    def __enter__(self) -> _FakeEcho:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.mark.parametrize(
    ("name", "reply", "answered"),
    [
        ("this-server", lambda d: UDP_REPLY_MAGIC + d[4:], True),
        ("older-server-exact-echo", lambda d: d, True),
        ("wrong-token", lambda d: UDP_REPLY_MAGIC + bytes(8) + d[12:], False),
        ("unknown-magic", lambda d: b"XXXX" + d[4:], False),
    ],
)
def test_the_udp_echo_client_takes_only_answers_to_its_probe(name, reply, answered):
    with _FakeEcho(reply) as fake, UdpEcho("127.0.0.1", fake.port) as m:
        rtt = m.once(0.3)
    assert (rtt is not None) is answered


def test_the_udp_echo_client_measures_against_serve(server):
    with UdpEcho("127.0.0.1", server.server.udp_port) as m:
        assert all(m.once(1.0) is not None for _ in range(3))


# ------------------------------------------------------------------------------ connection deadlines


def _answered(port: int, timeout: float = 1.0, tls: Optional[ssl.SSLContext] = None) -> bool:
    """True if ``GET /rtt`` is answered 200 on a new connection (False: refused, closed or silent)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
            sock = tls.wrap_socket(raw, server_hostname="localhost") if tls is not None else raw
            sock.sendall(b"GET /rtt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(100).startswith(b"HTTP/1.1 200")
    except (OSError, ssl.SSLError):
        return False


def _slow_reader(port: int, path: str, tls: Optional[ssl.SSLContext] = None) -> socket.socket:
    """Ask for a large answer and never read it (a small receive buffer: the server's send side fills)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(5)
    raw.connect(("127.0.0.1", port))
    sock = tls.wrap_socket(raw, server_hostname="localhost") if tls is not None else raw
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def _partial_head(port: int, path: str, tls: Optional[ssl.SSLContext] = None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /rtt HTTP/1.1\r\nHost: x\r\nX-Slow: aaaa")
    return sock


def _stalled_body(port: int, path: str, tls: Optional[ssl.SSLContext] = None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 100)
    return sock


def _ended(sock: socket.socket, within: float) -> bool:
    """True if the server closed or reset ``sock`` within ``within`` s (whatever it sent first is drained)."""
    deadline = time.monotonic() + within
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            if not sock.recv(1 << 16):
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True
        except OSError:
            return True
    return False


LOCKOUTS = [
    ("slow-reader", _slow_reader, "/download?bytes=1073741824"),
    ("slow-reader-librespeed", _slow_reader, "/backend/garbage.php?ckSize=1024"),
    ("slow-reader-speedtest", _slow_reader, "/speedtest/random4000x4000.jpg"),
    ("partial-head", _partial_head, ""),
    ("stalled-body", _stalled_body, ""),
]


@pytest.mark.parametrize(("open_one", "path"), [c[1:] for c in LOCKOUTS], ids=[c[0] for c in LOCKOUTS])
def test_max_connections_hostile_clients_lock_out_no_longer_than_the_deadline(open_one, path):
    """``--max-connections 3`` and three clients that hold their connection by doing nothing:
    everyone else is refused meanwhile, and served again once the deadline dropped them (before
    the write deadline, three never-reading downloads held the server for good)."""
    n = 3
    config = ServerConfig(host="127.0.0.1", port=0, max_connections=n, idle_timeout_s=1.0, header_timeout_s=1.0, write_timeout_s=1.0)
    deadline = max(config.idle_timeout_s, config.header_timeout_s, config.write_timeout_s) + min(1.0, config.write_timeout_s / 4)
    with ServerThread(config) as s:
        port = s.server.port
        hostile = [open_one(port, path) for _ in range(n)]
        try:
            assert _wait_until(lambda: s.server._connections == n, 3.0)
            t0 = time.monotonic()
            assert not _answered(port, timeout=0.3)  # locked out
            # every hostile connection dropped (and its buffers released) while its client did nothing
            assert _wait_until(lambda: s.server.open_connections == 0, deadline + MARGIN_S)
            assert time.monotonic() - t0 < deadline + MARGIN_S
            assert _answered(port)
            assert all(_ended(sock, MARGIN_S) for sock in hostile)
        finally:
            for sock in hostile:
                sock.close()


def test_a_reader_that_trickles_is_dropped_after_the_write_deadline(caplog):
    """Reading 256 bytes every 0.1 s (far below MIN_PROGRESS_BYTES per window) is not reading."""
    config = ServerConfig(host="127.0.0.1", port=0, write_timeout_s=0.5)
    with ServerThread(config) as s:
        sock = _slow_reader(s.server.port, "/download?bytes=1073741824")
        t0 = time.monotonic()
        sock.settimeout(0.2)
        ended = False
        try:
            while time.monotonic() - t0 < config.write_timeout_s + 0.125 + MARGIN_S:
                try:
                    if not sock.recv(256):
                        ended = True
                        break
                except TimeoutError:
                    pass
                time.sleep(0.1)
        except ConnectionResetError:
            ended = True
        finally:
            sock.close()
        assert ended
        assert any("write deadline" in r.getMessage() for r in caplog.records)
        assert 256 * 10 * 0.5 < MIN_PROGRESS_BYTES  # what the client read per window: below the floor


def test_a_slow_but_steady_reader_is_not_dropped(caplog):
    """A client that reads, however slowly its path lets it (here ~3 MB/s in 64 KiB pieces), is
    served for many times the write deadline."""
    config = ServerConfig(host="127.0.0.1", port=0, write_timeout_s=0.5)
    with ServerThread(config) as s:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.settimeout(2)
            sock.connect(("127.0.0.1", s.server.port))
            sock.sendall(b"GET /download?bytes=1073741824 HTTP/1.1\r\nHost: x\r\n\r\n")
            got = 0
            t0 = time.monotonic()
            while time.monotonic() - t0 < 6 * config.write_timeout_s:
                data = sock.recv(65536)
                assert data, "the server closed a client that was reading"
                got += len(data)
                time.sleep(0.02)
        assert got > 4 * MIN_PROGRESS_BYTES
        assert not any("write deadline" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("path", ["/upload", "/speedtest/upload.php", "/backend/empty.php", "/nothing/here"])
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_a_body_trickled_a_byte_at_a_time_is_dropped_after_one_window(path, chunked):
    """A slow POST: each byte well within the old per-read deadline, the body as a whole not
    (before: held for as long as the client kept dribbling)."""
    config = ServerConfig(host="127.0.0.1", port=0, idle_timeout_s=1.0)
    with ServerThread(config) as s:
        with socket.create_connection(("127.0.0.1", s.server.port), timeout=5) as sock:
            framing = "Transfer-Encoding: chunked" if chunked else "Content-Length: 100000"
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n".encode())
            piece = b"1\r\nx\r\n" if chunked else b"x"
            t0 = time.monotonic()
            closed = False
            try:
                while time.monotonic() - t0 < config.idle_timeout_s + MARGIN_S:
                    if select.select([sock], [], [], 0.05)[0]:
                        closed = True  # an answer or the close: either way the server let go
                        break
                    sock.sendall(piece)
            except OSError:
                closed = True
        assert closed, "the trickled body still held its connection"
        assert s.server.open_connections == 0 or _wait_until(lambda: s.server.open_connections == 0, MARGIN_S)


def test_a_slow_but_real_upload_passes():
    config = ServerConfig(host="127.0.0.1", port=0, idle_timeout_s=0.5)
    with ServerThread(config) as s:
        total = 16 * 8192
        with socket.create_connection(("127.0.0.1", s.server.port), timeout=5) as sock:
            sock.sendall(f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n\r\n".encode())
            for _ in range(16):  # 8 KiB every 0.1 s: 160 KiB/s, over 1.6 s, three windows
                sock.sendall(b"x" * 8192)
                time.sleep(0.1)
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200") and f'"bytes": {total}'.encode() in answer


# ------------------------------------------------------------------------------ TLS


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 and its key, made here (cryptography, else openssl)."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    try:
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("needs the cryptography package or the openssl command to make a test certificate")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"]
            + ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
            + ["-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return cert, key
    pkey = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    crt = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pkey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(pkey, hashes.SHA256())
    )
    cert.write_bytes(crt.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(pkey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert, key


@pytest.fixture(scope="module")
def cert_pair(tmp_path_factory) -> tuple[Path, Path]:
    return _self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(cert_pair):
    cert, key = cert_pair
    config = ServerConfig(host="127.0.0.1", port=0, tls=tls_context(cert, key), header_timeout_s=0.5, write_timeout_s=1.0)
    with ServerThread(config) as s:
        yield s


@pytest.fixture(scope="module")
def client_tls(cert_pair) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert_pair[0]))


def test_https_serves_id_download_and_upload(tls_server, client_tls):
    assert tls_server.url.startswith("https://127.0.0.1:")
    with httpx.Client(verify=client_tls, trust_env=False, timeout=10) as c:
        assert c.get(f"{tls_server.url}/id").json()["service"] == "giga-netcheck"
        r = c.get(f"{tls_server.url}/download?bytes=3000001")
        assert r.status_code == 200 and len(r.content) == 3000001
        assert c.post(f"{tls_server.url}/upload", content=b"u" * 700_001).json()["bytes"] == 700_001


def test_https_refuses_hostile_framing_too(tls_server, client_tls):
    with socket.create_connection(("127.0.0.1", tls_server.server.port), timeout=5) as raw:
        with client_tls.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 400")


def test_plain_http_to_the_https_port_is_dropped_and_the_server_survives(tls_server, client_tls):
    with socket.create_connection(("127.0.0.1", tls_server.server.port), timeout=5) as sock:
        sock.sendall(b"GET /rtt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _ended(sock, 5.0)
    assert _answered(tls_server.server.port, tls=client_tls)


def test_a_handshake_that_never_comes_meets_the_header_deadline(tls_server, client_tls):
    with socket.create_connection(("127.0.0.1", tls_server.server.port), timeout=5) as sock:
        t0 = time.monotonic()
        assert _ended(sock, tls_server.server.config.header_timeout_s + MARGIN_S)
        assert time.monotonic() - t0 < tls_server.server.config.header_timeout_s + MARGIN_S
    assert _answered(tls_server.server.port, tls=client_tls)


def test_a_slow_reader_over_https_meets_the_write_deadline(tls_server, client_tls):
    sock = _slow_reader(tls_server.server.port, "/download?bytes=1073741824", tls=client_tls)
    try:
        limit = tls_server.server.config.write_timeout_s + 0.25 + MARGIN_S
        assert _wait_until(lambda: tls_server.server.open_connections == 0, limit)
    finally:
        sock.close()


def test_tls_context_errors_name_the_file(tmp_path, cert_pair):
    cert, key = cert_pair
    with pytest.raises(ConfigError, match="missing.pem"):
        tls_context(tmp_path / "missing.pem")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="bad.pem"):
        tls_context(bad, key)
    with pytest.raises(ConfigError, match="not a usable PEM"):
        tls_context(cert, cert)  # a certificate where the key should be
    both = tmp_path / "both.pem"
    both.write_bytes(cert.read_bytes() + key.read_bytes())
    assert isinstance(tls_context(both), ssl.SSLContext)  # the key may sit in the certificate file


def _serve(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = clean_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "giga_netcheck", "serve", "--host", "127.0.0.1", "--port", "0", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--tls-key", "key.pem"], "--tls-key needs --tls-cert"),
        (["--tls-cert", "missing.pem"], "missing.pem"),
        (["--tls-cert", "CERT", "--tls-key", "CERT"], "not a usable PEM"),
    ],
    ids=["key-without-cert", "missing-cert", "cert-as-key"],
)
def test_serve_tls_option_errors_are_one_line_usage_errors(tmp_path, cert_pair, args, says):
    args = [str(cert_pair[0]) if a == "CERT" else str(tmp_path / a) if a.endswith(".pem") else a for a in args]
    proc = _serve(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], proc.stderr


def test_serve_runs_https_from_the_command_line(cert_pair, client_tls):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = clean_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "giga_netcheck", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--tls-cert", str(cert_pair[0]), "--tls-key", str(cert_pair[1])]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_until(lambda: _answered(port, tls=client_tls), 15.0, step=0.2)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err and "(https)" in err
