"""Small threaded HTTP(S) servers on 127.0.0.1 for tests: a base that runs any handler in a
background thread, a health endpoint double (/health, /health/detailed), and TLS material."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that keeps the test output clean and answers with JSON or raw bytes."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    @property
    def app(self):
        return self.server.app

    def send_body(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, document) -> None:
        self.send_body(status, json.dumps(document).encode())

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))


class _QuietThreadingServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """Clients that hang up or fail the TLS handshake are part of the tests: no traceback."""


class BackgroundServer:
    """Serves handler_class on 127.0.0.1:<free port> from a daemon thread, optionally over TLS.
    Handlers reach this object as self.server.app. Use as a context manager."""

    def __init__(self, handler_class: type[BaseHTTPRequestHandler], ssl_context: ssl.SSLContext | None = None):
        self._handler_class = handler_class
        self._ssl_context = ssl_context
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Set on stop, so handlers that hang or delay end at once.
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.requests: list[dict] = []

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def scheme(self) -> str:
        return "https" if self._ssl_context else "http"

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def record(self, handler: BaseHTTPRequestHandler, body: bytes = b"") -> int:
        """Remember a request; returns how many came before it."""
        with self.lock:
            self.requests.append({"path": handler.path, "headers": dict(handler.headers), "body": body})
            return len(self.requests) - 1

    def pause(self, seconds: float) -> None:
        """Sleep in a handler thread, cut short when the server stops."""
        self.released.wait(seconds)

    def start(self):
        httpd = _QuietThreadingServer(("127.0.0.1", 0), self._handler_class)
        httpd.app = self
        if self._ssl_context is not None:
            # Handshake in the handler thread, so one bad client cannot stall the accept loop.
            httpd.socket = self._ssl_context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


# ---------------------------------------------------------------- health endpoint


class HealthHandler(QuietHandler):
    def do_GET(self):
        app: HealthServer = self.app
        index = app.record(self)
        path = self.path.split("?", 1)[0]
        if app.delay_s:
            app.pause(app.delay_s)
        if index < app.fail_first:
            self.send_json(app.fail_status, {"status": "unhealthy", "error": "failing on purpose"})
        elif path == "/health":
            self.send_body(app.status, app.body.encode(), app.content_type)
        elif path == "/health/detailed":
            self.send_json(app.status, app.detailed_document())
        else:
            self.send_json(404, {"error": "not found"})

    do_HEAD = do_GET


class HealthServer(BackgroundServer):
    """A service's health endpoints.

    /health answers `status` with `body`; /health/detailed answers runbook 002's shape,
    {"overallStatus": ..., "components": {name: {"status", "responseTime"}}}, or with
    shape="checks" {"overallStatus": ..., "checks": [{"name", "status", "responseTime"}]}.
    `delay_s` delays every answer; the first `fail_first` requests get `fail_status`."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None, **settings):
        super().__init__(HealthHandler, ssl_context)
        self.status = 200
        self.body = '{"status": "ok"}'
        self.content_type = "application/json"
        self.delay_s = 0.0
        self.fail_first = 0
        self.fail_status = 503
        self.overall_status = "healthy"
        self.components: dict[str, dict] = {
            "database": {"status": "healthy", "responseTime": 12},
            "redis": {"status": "healthy", "responseTime": 3},
        }
        self.shape = "components"
        self.configure(**settings)

    def configure(self, **settings) -> None:
        for name, value in settings.items():
            if not hasattr(self, name):
                raise AttributeError(f"HealthServer has no setting {name!r}")
            setattr(self, name, value)

    def detailed_document(self) -> dict:
        if self.shape == "checks":
            checks = [{"name": name, **component} for name, component in self.components.items()]
            return {"overallStatus": self.overall_status, "checks": checks}
        return {"overallStatus": self.overall_status, "components": self.components}


# ---------------------------------------------------------------- TLS material


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def make_tls_files(directory: Path) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate,
    all signed by it, as PEM files in directory. Keys: ca_cert, server_cert, server_key,
    client_cert, client_key, other_ca_cert (a CA that signed nothing here)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    validity = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))

    def ca(common_name: str):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(validity[0])
            .not_valid_after(validity[1])
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def leaf(ca_key, ca_cert, common_name: str, usage, names=None):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(validity[0])
            .not_valid_after(validity[1])
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = ca("incident-remediation test CA")
    _other_key, other_cert = ca("incident-remediation other CA")
    server_key, server_cert = leaf(
        ca_key,
        ca_cert,
        "127.0.0.1",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
    )
    client_key, client_cert = leaf(ca_key, ca_cert, "health-probe", ExtendedKeyUsageOID.CLIENT_AUTH)
    files = {
        name: directory / f"{name}.pem"
        for name in ("ca_cert", "other_ca_cert", "server_cert", "server_key", "client_cert", "client_key")
    }
    for name, cert in (
        ("ca_cert", ca_cert),
        ("other_ca_cert", other_cert),
        ("server_cert", server_cert),
        ("client_cert", client_cert),
    ):
        files[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(files["server_key"], server_key)
    _write_key(files["client_key"], client_key)
    return files


def server_ssl_context(files: dict[str, Path], require_client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files["server_cert"], files["server_key"])
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(files["ca_cert"])
    return context
