"""A JSON-RPC 2.0 test double of a blockchain node on 127.0.0.1, served from a thread.

It answers eth_blockNumber (hex height), eth_getBlockByNumber (a block object with a hex
number) and getblockcount (integer height, Bitcoin style), and can be told to lag, answer
with a JSON-RPC error, HTTP 500, a body that is not JSON, or hang past any client timeout
(in its own handler thread: other requests are still served).

    with JsonRpcServer(height=1000) as node:
        node.configure(mode="hang")
        node.url()  # http://127.0.0.1:<port>/
"""

from __future__ import annotations

import json
import ssl

from tests.harness.http_server import BackgroundServer, QuietHandler

MODES = ("ok", "rpc_error", "http_500", "invalid_json", "hang")


class JsonRpcHandler(QuietHandler):
    def do_POST(self):
        app: JsonRpcServer = self.app
        body = self.read_body()
        app.record(self, body)
        if app.delay_s:
            app.pause(app.delay_s)
        missing = {name: value for name, value in app.required_headers.items() if self.headers.get(name) != value}
        if missing:
            self.send_json(401, {"error": "unauthorized"})
            return
        if app.mode == "hang":
            app.pause(app.hang_s)
            if not app.released.is_set():
                self.send_json(504, {"error": "hung"})
            return
        if app.mode == "http_500":
            self.send_body(500, b"Internal Server Error", "text/plain")
            return
        if app.mode == "invalid_json":
            self.send_body(200, b"<html>502 Bad Gateway</html>", "text/html")
            return
        try:
            call = json.loads(body)
        except ValueError:
            self.send_json(200, {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}})
            return
        self.send_json(200, app.answer(call))


class JsonRpcServer(BackgroundServer):
    """Settings (constructor keywords or configure()): height, lag (answers height - lag),
    mode (one of MODES), rpc_error ((code, message) for mode rpc_error), hang_s (how long
    mode hang holds the request), delay_s (added before every answer), required_headers
    (header: value pairs without which it answers 401)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None, **settings):
        super().__init__(JsonRpcHandler, ssl_context)
        self.height = 1000
        self.lag = 0
        self.mode = "ok"
        self.rpc_error = (-32000, "header not found")
        self.hang_s = 30.0
        self.delay_s = 0.0
        self.required_headers: dict[str, str] = {}
        self.configure(**settings)

    def configure(self, **settings) -> None:
        for name, value in settings.items():
            if not hasattr(self, name):
                raise AttributeError(f"JsonRpcServer has no setting {name!r}")
            if name == "mode" and value not in MODES:
                raise ValueError(f"mode must be one of {MODES}")
            setattr(self, name, value)

    @property
    def current_height(self) -> int:
        return self.height - self.lag

    def answer(self, call: dict) -> dict:
        reply = {"jsonrpc": "2.0", "id": call.get("id")}
        if self.mode == "rpc_error":
            code, message = self.rpc_error
            return {**reply, "error": {"code": code, "message": message}}
        method = call.get("method")
        if method == "eth_blockNumber":
            return {**reply, "result": hex(self.current_height)}
        if method == "eth_getBlockByNumber":
            number = hex(self.current_height)
            return {**reply, "result": {"number": number, "hash": "0x" + "ab" * 32, "transactions": []}}
        if method == "getblockcount":
            return {**reply, "result": self.current_height}
        return {**reply, "error": {"code": -32601, "message": "the method %s does not exist/is not available" % method}}
