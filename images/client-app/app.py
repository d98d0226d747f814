"""Test-bed client app: GET /health reports whether its Redis (and PostgreSQL,
when DATABASE_URL is set) answer; 200 when all do, 503 otherwise. It also
reports APP_RELEASE as "release", so a change of its environment or image
(set_env, rollback) is visible from outside."""
import json
import os
import signal
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import redis

REDIS_URL = os.environ.get("REDIS_URL", "redis://redis:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "")
PORT = int(os.environ.get("PORT", "8080"))
RELEASE = os.environ.get("APP_RELEASE", "")


def check_redis():
    started = time.monotonic()
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()
        return {"status": "healthy", "responseTime": round((time.monotonic() - started) * 1000, 1)}
    except redis.RedisError as exc:
        return {"status": "unhealthy", "error": type(exc).__name__}


def check_database():
    started = time.monotonic()
    try:
        with psycopg2.connect(DATABASE_URL, connect_timeout=1) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
        return {"status": "healthy", "responseTime": round((time.monotonic() - started) * 1000, 1)}
    except psycopg2.Error as exc:
        return {"status": "unhealthy", "error": type(exc).__name__}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path not in ("/health", "/health/detailed"):
            self.send_error(404)
            return
        components = {"redis": check_redis()}
        if DATABASE_URL:
            components["database"] = check_database()
        healthy = all(c["status"] == "healthy" for c in components.values())
        body = json.dumps({"overallStatus": "healthy" if healthy else "unhealthy",
                           "release": RELEASE, "components": components}).encode()
        self.send_response(200 if healthy else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    if "--probe" in sys.argv:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=2)
        except Exception:
            sys.exit(1)
        sys.exit(0)
    # As PID 1 the process gets no default SIGTERM handling: exit at once, so
    # `docker stop` and compose restarts need not wait for their timeout.
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(0))
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
