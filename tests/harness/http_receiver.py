"""A local HTTP receiver for notification tests: records every request (method, path,
headers, body, JSON) and answers with a status chosen per path prefix.

    with HttpReceiver() as receiver:
        receiver.answer(500, path="/services/")      # Slack fails, the rest gets 200
        ... run a playbook that posts to receiver.url("/services/T0/B0/token") ...
        (request,) = receiver.requests_to("/services/")
        request.json["channel"]

In-process ThreadingHTTPServer on 127.0.0.1, port 0 (a free port)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: object = field(default=None)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            document = json.loads(body) if body else None
        except ValueError:
            document = None
        receiver: HttpReceiver = self.server.receiver
        status, answer = receiver._take(Received(self.command, self.path, dict(self.headers), body, document))
        payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if not isinstance(answer, bytes) else "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """Clients that hang up are part of the tests: no traceback."""


class HttpReceiver:
    """Records every request; answers `default_status` with a small JSON body unless
    `answer()` set something else for the request's path prefix (longest prefix wins)."""

    def __init__(self, default_status: int = 200):
        self.default_status = default_status
        self._answers: dict[str, tuple[int, object]] = {}
        self._requests: list[Received] = []
        self._changed = threading.Condition()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------- control
    def answer(self, status: int, body: object = None, *, path: str = "/") -> None:
        """Answer requests whose path starts with `path` with `status` and `body`
        (JSON-serialisable, or bytes sent as text)."""
        self._answers[path] = (status, {"status": status} if body is None else body)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    # ------------------------------------------------------------- reading
    @property
    def requests(self) -> list[Received]:
        with self._changed:
            return list(self._requests)

    def requests_to(self, path_prefix: str) -> list[Received]:
        return [request for request in self.requests if request.path.startswith(path_prefix)]

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        """All requests once at least `count` arrived; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._requests)} of {count} requests within {timeout}s")
                self._changed.wait(remaining)
            return list(self._requests)

    # ------------------------------------------------------------- internals
    def _take(self, request: Received) -> tuple[int, object]:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()
        matches = [prefix for prefix in self._answers if request.path.startswith(prefix)]
        if matches:
            return self._answers[max(matches, key=len)]
        return self.default_status, {"status": "ok"}

    def start(self) -> HttpReceiver:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.receiver = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)
            self._httpd = None

    def __enter__(self) -> HttpReceiver:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
