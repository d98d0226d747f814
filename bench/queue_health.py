"""Latency of queue_health per backend: python bench/queue_health.py

Starts its own Redis and RabbitMQ containers (the project's images) and an
in-process prometheus_client /metrics endpoint, fills them, times check() (one
reading, no sampling) over repeated runs, prints a table, and removes everything.
"""

from __future__ import annotations

import base64
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / ".collections"), str(ROOT)]

import redis  # noqa: E402
from ansible_collections.incident.remediation.plugins.modules.queue_health import (  # noqa: E402
    QUEUE_SPEC,
    THRESHOLD_SPEC,
    argument_spec,
    check,
)
from prometheus_client import CollectorRegistry, Gauge, start_http_server  # noqa: E402

from tests.harness.docker import redis_server  # noqa: E402
from tests.harness.rabbitmq import rabbitmq_server  # noqa: E402

RUNS = 30


def params(backend, names, **overrides):
    values = {name: spec.get("default") for name, spec in argument_spec().items()}
    values.update(backend=backend, connect_timeout=5.0, **overrides)
    values["queues"] = [dict(dict.fromkeys(QUEUE_SPEC), name=name) for name in names]
    return values


def timed(values):
    thresholds = {name: values[name] for name in THRESHOLD_SPEC}
    result = check(values, thresholds)  # warm-up, and a sanity check
    assert result["is_available"], result["reasons"]
    assert all(queue["error"] is None for queue in result["queues"]), result["reasons"]
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        check(values, thresholds)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def fill_redis(port, queues):
    client = redis.Redis(port=port)
    client.flushall()
    now_ms = int(time.time() * 1000)
    workers = []
    for name in queues:
        client.rpush(f"list:{name}", *range(1000))
        client.xgroup_create(f"stream:{name}", "workers", id="0", mkstream=True)
        pipe = client.pipeline(transaction=False)
        for index in range(1000):
            pipe.xadd(f"stream:{name}", {"n": index})
        pipe.execute()
        client.xreadgroup("workers", "w1", {f"stream:{name}": ">"}, count=100)
        pipe = client.pipeline(transaction=False)
        for index in range(1, 1001):
            pipe.hset(f"bull:{name}:{index}", mapping={"timestamp": now_ms - index, "delay": 0, "data": "{}"})
            pipe.lpush(f"bull:{name}:wait", index)
        pipe.zadd(f"bull:{name}:failed", {"f1": now_ms})
        pipe.hset(f"bull:{name}:meta", "version", "bullmq:5.0.0")
        pipe.execute()
        worker = redis.Redis(port=port, client_name="bull:" + base64.b64encode(name.encode()).decode())
        worker.ping()
        workers.append(worker)
    return client, workers


def main():
    rows = []
    names20 = [f"q{index}" for index in range(20)]
    with redis_server() as (port, _):
        client, workers = fill_redis(port, names20)
        for backend, prefix in (("redis_list", "list:"), ("redis_stream", "stream:"), ("bullmq", "")):
            for count in (1, 20):
                names = [prefix + name for name in names20[:count]]
                rows.append((backend, count, *timed(params(backend, names, login_port=port))))
        for worker in workers:
            worker.close()
        client.close()
    with rabbitmq_server() as broker:
        for name in names20[:10]:
            broker.declare_queue(name)
            broker.publish(name, 20)
        auth = dict(api_url=broker.api_url, api_user=broker.user, api_password=broker.password)
        for count in (1, 10):
            rows.append(("rabbitmq", count, *timed(params("rabbitmq", names20[:count], **auth))))
    registry = CollectorRegistry()
    gauge = Gauge("queue_depth", "Jobs waiting", ["queue"], registry=registry)
    for name in names20:
        gauge.labels(queue=name).set(42)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        for count in (1, 20):
            rows.append(("metrics", count, *timed(params("metrics", names20[:count], api_url=url))))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    print(f"queue_health check(), one reading, {RUNS} runs each (ms)")
    print(f"{'backend':<13} {'queues':>6} {'median':>8} {'p95':>8}")
    for backend, count, median, p95 in rows:
        print(f"{backend:<13} {count:>6} {median:>8.2f} {p95:>8.2f}")


if __name__ == "__main__":
    main()
