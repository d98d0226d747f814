"""A small instrumented application for metrics tests: real prometheus_client
metrics served by prometheus_client's own HTTP server on 127.0.0.1.

It exposes what the runbooks' alerts read:

- ``http_requests_total{handler, status}`` (Counter) and
  ``http_request_duration_seconds{handler}`` (Histogram, prometheus_client's
  default buckets), fed by ``handle()`` as a web framework's middleware would;
- ``queue_depth{queue}`` (Gauge) for job queues;
- SQLAlchemy-style connection pool gauges ``sqlalchemy_pool_size``,
  ``sqlalchemy_pool_checked_out``, ``sqlalchemy_pool_checked_in`` and
  ``sqlalchemy_pool_overflow`` (label ``pool``), the numbers of ``Pool.status()``.

Traffic is deterministic so tests can assert exact values: ``serve()`` handles a
burst of requests at once, ``run()`` keeps a steady rate per handler from a
background thread. Statuses and latencies are given as shares
(``{"200": 0.92, "500": 0.08}``, ``{0.05: 0.9, 3.0: 0.1}``) and spread by smooth
weighted round robin, so any run of requests carries them in proportion (to
within one request per status or latency).

Each app has its own registry, so several can run in one test process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Statuses whose series exist from the start at 0, as an app that knows its
# statuses would declare them: Prometheus' rate() skips the first sample of a
# series, so a 500 series born at the first error would under-count errors.
DECLARED_STATUSES = ("200", "404", "500", "503")

POOL_GAUGES = {
    "size": "sqlalchemy_pool_size",
    "checked_out": "sqlalchemy_pool_checked_out",
    "checked_in": "sqlalchemy_pool_checked_in",
    "overflow": "sqlalchemy_pool_overflow",
}


class _RoundRobin:
    """Smooth weighted round robin over {choice: share}: every prefix of the
    picks carries each choice in proportion to its share, to within one pick."""

    def __init__(self, shares: Mapping):
        total = float(sum(shares.values()))
        if total <= 0:
            raise ValueError("shares must add up to more than 0")
        self._shares = {choice: share / total for choice, share in shares.items()}
        self._credit = dict.fromkeys(self._shares, 0.0)

    def pick(self):
        for choice, share in self._shares.items():
            self._credit[choice] += share
        choice = max(self._credit, key=self._credit.__getitem__)
        self._credit[choice] -= 1.0
        return choice


class _Profile:
    def __init__(self, rate: float, statuses: Mapping[str, float], latencies: Mapping[float, float]):
        self.rate = rate
        self.statuses = _RoundRobin(statuses)
        self.latencies = _RoundRobin(latencies)
        self.credit = 0.0


class MetricsApp:
    """The application; use as a context manager, or start() and stop()."""

    def __init__(self, handlers: tuple[str, ...] = ("/",)):
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests", "HTTP requests handled", ["handler", "status"], registry=self.registry)
        self.duration = Histogram(
            "http_request_duration_seconds", "Time to handle a request", ["handler"], registry=self.registry
        )
        self.queue_depth = Gauge("queue_depth", "Jobs waiting in a queue", ["queue"], registry=self.registry)
        self.pool = {
            key: Gauge(name, "Connection pool: %s" % key.replace("_", " "), ["pool"], registry=self.registry)
            for key, name in POOL_GAUGES.items()
        }
        for handler in handlers:
            self.declare(handler)
        self._profiles: dict[str, _Profile] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._traffic: threading.Thread | None = None
        self._server = None
        self.port: int | None = None

    # ------------------------------------------------------------ serving /metrics

    @property
    def url(self) -> str:
        """The /metrics URL on loopback."""
        return "http://127.0.0.1:%d/metrics" % self.port

    def start(self) -> MetricsApp:
        self._server, _thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.port = self._server.server_port
        self._traffic = threading.Thread(target=self._generate, name="metrics-app-traffic", daemon=True)
        self._traffic.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._traffic is not None:
            self._traffic.join(timeout=5)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> MetricsApp:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ------------------------------------------------------------ traffic

    def declare(self, handler: str) -> None:
        """Create the handler's series at 0 (statuses of DECLARED_STATUSES, histogram)."""
        for status in DECLARED_STATUSES:
            self.requests.labels(handler=handler, status=status)
        self.duration.labels(handler=handler)

    def handle(self, handler: str, status: str, seconds: float) -> None:
        """Record one handled request, as the app's middleware does."""
        self.requests.labels(handler=handler, status=str(status)).inc()
        self.duration.labels(handler=handler).observe(seconds)

    def serve(
        self,
        handler: str,
        count: int,
        statuses: Mapping[str, float] | None = None,
        latencies: Mapping[float, float] | None = None,
    ) -> None:
        """Handle count requests at once with the given shares of statuses and latencies."""
        profile = _Profile(0.0, statuses or {"200": 1.0}, latencies or {0.01: 1.0})
        with self._lock:
            for _ in range(count):
                self.handle(handler, profile.statuses.pick(), profile.latencies.pick())

    def run(
        self,
        handler: str,
        rate: float,
        statuses: Mapping[str, float] | None = None,
        latencies: Mapping[float, float] | None = None,
    ) -> None:
        """Keep handling `rate` requests a second on handler from the background
        thread, until run() changes the profile or rate is 0."""
        with self._lock:
            if rate <= 0:
                self._profiles.pop(handler, None)
            else:
                self._profiles[handler] = _Profile(rate, statuses or {"200": 1.0}, latencies or {0.01: 1.0})

    def _generate(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.05):
            now = time.monotonic()
            elapsed, last = now - last, now
            with self._lock:
                for handler, profile in self._profiles.items():
                    profile.credit += profile.rate * elapsed
                    due = int(profile.credit)
                    profile.credit -= due
                    for _ in range(due):
                        self.handle(handler, profile.statuses.pick(), profile.latencies.pick())

    # ------------------------------------------------------------ gauges

    def set_queue_depth(self, queue: str, depth: float) -> None:
        self.queue_depth.labels(queue=queue).set(depth)

    def set_pool(self, pool: str, size: int, checked_out: int, overflow: int | None = None) -> None:
        """Pool gauges as SQLAlchemy's QueuePool reports them: checked_in is what
        is idle in the pool; overflow (connections opened beyond size) defaults to
        checked_out - size, negative while the pool has room."""
        self.pool["size"].labels(pool=pool).set(size)
        self.pool["checked_out"].labels(pool=pool).set(checked_out)
        self.pool["checked_in"].labels(pool=pool).set(max(0, size - checked_out))
        self.pool["overflow"].labels(pool=pool).set(checked_out - size if overflow is None else overflow)
