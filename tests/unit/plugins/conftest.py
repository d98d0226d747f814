"""Loopback network fixtures shared by the plugin unit tests: no real service is needed."""

import http.server
import socket
import threading

import pytest

PROMETHEUS_TEXT = "text/plain; version=0.0.4"


@pytest.fixture
def closed_port():
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port():
    """A loopback port that accepts TCP connections but never sends a byte."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture
def http_server():
    """http_server(answer, content_type=PROMETHEUS_TEXT) starts a loopback HTTP server and
    returns its base URL, http://127.0.0.1:PORT. Every GET is answered with the
    (status, body text) that answer(request_headers) returns. Servers stop when the test ends."""
    servers = []

    def start(answer, content_type=PROMETHEUS_TEXT):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                status, body = answer(dict(self.headers))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return "http://127.0.0.1:%d" % server.server_port

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
