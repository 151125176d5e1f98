"""Fixtures for the egress tests: a fake resolver, loopback servers, and misbehaving sockets."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable, Iterator, Sequence

import pytest
from pytest_httpserver import HTTPServer

from traysvc.egress import close_clients, set_resolver


class FakeDNS:
    """Maps names to answers. A list of strings is one fixed answer; a list of lists is a
    sequence of answers, one per lookup (for DNS rebinding). Unknown names do not resolve."""

    def __init__(self) -> None:
        self.records: dict[str, Sequence[str] | list[list[str]]] = {}
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.records:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = self.records[host]
        if answer and isinstance(answer[0], list):
            sequence = answer  # type: ignore[assignment]
            return list(sequence.pop(0) if len(sequence) > 1 else sequence[0])
        return list(answer)  # type: ignore[arg-type]


@pytest.fixture
def fake_dns() -> Iterator[FakeDNS]:
    dns = FakeDNS()
    previous = set_resolver(dns)
    yield dns
    set_resolver(previous)


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    """Each test starts with no pooled connection made under another test's settings."""
    close_clients()
    yield
    close_clients()


@pytest.fixture
def no_allowlist(settings) -> None:
    settings.HTTPCLIENT_ALLOW_NETWORKS = []


@pytest.fixture
def allow_loopback(settings) -> None:
    settings.HTTPCLIENT_ALLOW_NETWORKS = ["127.0.0.0/8"]


def _started(host: str = "127.0.0.1", **kwargs) -> HTTPServer:
    server = HTTPServer(host=host, port=0, **kwargs)
    server.start()
    return server


@pytest.fixture(scope="session")
def _server_a() -> Iterator[HTTPServer]:
    server = _started()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _server_b() -> Iterator[HTTPServer]:
    server = _started()
    yield server
    server.stop()


@pytest.fixture
def server(_server_a: HTTPServer) -> Iterator[HTTPServer]:
    """pytest-httpserver on 127.0.0.1 (not "localhost", whose answer varies by machine)."""
    _server_a.clear()
    yield _server_a
    _server_a.clear()


@pytest.fixture
def other_server(_server_b: HTTPServer) -> Iterator[HTTPServer]:
    """A second origin on the same host (another port)."""
    _server_b.clear()
    yield _server_b
    _server_b.clear()


@pytest.fixture
def hanging_port() -> Iterator[int]:
    """A port whose kernel completes the TCP handshake but nobody ever answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


class RawServers:
    """Bare TCP servers on 127.0.0.1: each accepted connection is passed to a handler."""

    def __init__(self) -> None:
        self._stops: list[Callable[[], None]] = []

    def start(self, handle: Callable[[socket.socket], None]) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.1)
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                conn.settimeout(None)
                handle(conn)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join(2)
            listener.close()

        self._stops.append(halt)
        return listener.getsockname()[1]

    def stop_all(self) -> None:
        for halt in self._stops:
            halt()


@pytest.fixture
def raw_servers() -> Iterator[RawServers]:
    servers = RawServers()
    yield servers
    servers.stop_all()


@pytest.fixture
def closing_port(raw_servers: RawServers) -> int:
    """Accepts, then closes at once without a word."""
    return raw_servers.start(lambda conn: conn.close())


@pytest.fixture
def resetting_port(raw_servers: RawServers) -> int:
    """Accepts, reads the request, then aborts the connection (RST)."""

    def handle(conn: socket.socket) -> None:
        conn.settimeout(1)
        try:
            conn.recv(65536)
        except OSError:
            pass
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()

    return raw_servers.start(handle)


@pytest.fixture
def refused_port() -> int:
    """A port with nothing listening."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


class KeepAliveServer(socketserver.ThreadingTCPServer):
    """A minimal HTTP/1.1 server that keeps connections open and records each one's peer,
    so a test can see whether two requests shared a pooled connection."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.peers: list[tuple[str, int]] = []
        self.requests = 0
        super().__init__(("127.0.0.1", 0), _KeepAliveHandler)


class _KeepAliveHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: KeepAliveServer = self.server  # type: ignore[assignment]
        server.peers.append(self.client_address)
        self.request.settimeout(5)
        buffer = b""
        while True:
            try:
                data = self.request.recv(65536)
            except OSError:
                return
            if not data:
                return
            buffer += data
            while b"\r\n\r\n" in buffer:
                _, buffer = buffer.split(b"\r\n\r\n", 1)
                server.requests += 1
                self.request.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
                )


@pytest.fixture
def keepalive_server() -> Iterator[KeepAliveServer]:
    server = KeepAliveServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _self_signed(tmp_dir, name: str) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_dir / "cert.pem", tmp_dir / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture(scope="session")
def _tls_server(tmp_path_factory) -> Iterator[tuple[HTTPServer, list[str | None]]]:
    import ssl

    cert, key = _self_signed(tmp_path_factory.mktemp("tls"), "tls.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)
    server = _started(ssl_context=context)
    yield server, names
    server.stop()


@pytest.fixture
def tls_server(_tls_server) -> tuple[HTTPServer, list[str | None]]:
    """pytest-httpserver over TLS with a self-signed certificate for tls.test; the list
    collects the SNI names clients sent."""
    server, names = _tls_server
    server.clear()
    names.clear()
    return server, names
