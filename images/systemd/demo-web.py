#!/usr/bin/python3
"""A tiny HTTP service for the systemd test image.

GET /health answers 200 "ok"; GET /env answers the service's own DEMO_*
environment variables as JSON, so a test can see what a drop-in's
Environment= lines reached the running process. Port: $DEMO_PORT (8080).
"""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            body, ctype = b"ok\n", "text/plain"
        elif self.path == "/env":
            env = {k: v for k, v in os.environ.items() if k.startswith("DEMO_")}
            body, ctype = json.dumps(env, sort_keys=True).encode(), "application/json"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("%s %s" % (self.address_string(), fmt % args), flush=True)


if __name__ == "__main__":
    port = int(os.environ.get("DEMO_PORT", "8080"))
    print("demo-web listening on %d" % port, flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
