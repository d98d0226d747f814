"""Benchmark: how long cache_health's checks take against a local Redis (target: under 10 ms).

Starts a Redis container (the project's image) on a 127.0.0.1 port, fills it with some keys
and clients so INFO has something to say, then calls the module's check() in process many
times: each call connects, PINGs, reads INFO (one round trip) and judges. Prints p50/p95/max
of the whole check and of the PING alone, for a plain TCP connection and, with --tls, for a
TLS one (handshake included). Removes the container at the end.

    python bench/cache_health.py [--runs 500] [--keys 100000] [--no-tls]
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / ".collections"), str(REPO)]

import redis  # noqa: E402
from ansible_collections.incident.remediation.plugins.module_utils._redis import (  # noqa: E402
    redis_common_argument_spec,
)
from ansible_collections.incident.remediation.plugins.modules.cache_health import (  # noqa: E402
    THRESHOLD_SPEC,
    check,
)

from tests.harness.docker import redis_server  # noqa: E402
from tests.harness.tls import write_tls_files  # noqa: E402

THRESHOLDS = {name: spec.get("default") for name, spec in THRESHOLD_SPEC.items()}
TARGET_MS = 10.0


def params(port, **overrides):
    values = {name: spec.get("default") for name, spec in redis_common_argument_spec().items()}
    values.update(login_port=port, connect_timeout=2.0, **overrides)
    return values


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(check_params, runs):
    totals, pings, connects = [], [], []
    for _ in range(5):  # warm up imports and the container
        check(check_params, THRESHOLDS)
    for _ in range(runs):
        started = time.perf_counter()
        result = check(check_params, THRESHOLDS)
        totals.append((time.perf_counter() - started) * 1000.0)
        assert result["is_available"], result
        pings.append(result["metrics"]["ping_ms"])
        connects.append(result["metrics"]["connect_ms"])
    return totals, pings, connects


def tls_context_ms():
    samples = []
    for _ in range(20):
        started = time.perf_counter()
        ssl.create_default_context()
        samples.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(samples)


def row(label, values):
    return "%-24s | %8.2f | %8.2f | %8.2f | %8.2f" % (
        label,
        percentile(values, 0.50),
        percentile(values, 0.95),
        max(values),
        statistics.mean(values),
    )


def fill(port, keys, clients, tls_kwargs=None):
    client = redis.Redis(port=port, **(tls_kwargs or {}))
    client.execute_command("DEBUG", "POPULATE", keys, "bench", 32)
    held = []
    for _ in range(clients):
        connection = redis.Redis(port=port, single_connection_client=True, **(tls_kwargs or {}))
        connection.ping()
        held.append(connection)
    return client, held


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50, help="idle client connections held open")
    parser.add_argument("--no-tls", action="store_true", help="skip the TLS run")
    args = parser.parse_args()

    print(
        "cache_health check(): %d runs against a local Redis 7 container with %d keys and %d idle clients"
        % (args.runs, args.keys, args.clients)
    )
    print("%-24s | %8s | %8s | %8s | %8s" % ("ms", "p50", "p95", "max", "mean"))
    summaries, context_ms = [], None
    with redis_server("--enable-debug-command", "yes") as (port, _):
        client, held = fill(port, args.keys, args.clients)
        totals, pings, connects = measure(params(port), args.runs)
        after = [total - connect for total, connect in zip(totals, connects, strict=True)]
        print(row("check, TCP", totals))
        print(row("  connect + first PING", connects))
        print(row("  the rest (PING, INFO)", after))
        print(row("  PING (metrics.ping_ms)", pings))
        summaries.append(("of the whole check over TCP", percentile(totals, 0.95)))
        for connection in [client, *held]:
            connection.close()

    if not args.no_tls:
        with tempfile.TemporaryDirectory() as folder:
            files = write_tls_files(Path(folder))
            tls_kwargs = dict(ssl=True, ssl_ca_certs=str(files.ca_cert))
            tls_params = params(0, tls=True, ca_cert=str(files.ca_cert))

            def ready(port):
                return check(dict(tls_params, login_port=port), THRESHOLDS)["is_available"]

            with redis_server(
                "--enable-debug-command", "yes",
                "--tls-port", "6379", "--port", "0",
                "--tls-cert-file", "/tls/server.crt", "--tls-key-file", "/tls/server.key",
                "--tls-ca-cert-file", "/tls/ca.crt", "--tls-auth-clients", "no",
                volumes={folder: {"bind": "/tls", "mode": "ro"}},
                ready=ready,
            ) as (port, _):  # fmt: skip
                client, held = fill(port, args.keys, args.clients, tls_kwargs)
                totals, pings, connects = measure(dict(tls_params, login_port=port), args.runs)
                after = [total - connect for total, connect in zip(totals, connects, strict=True)]
                print(row("check, TLS", totals))
                print(row("  connect + first PING", connects))
                print(row("  the rest (PING, INFO)", after))
                print(row("  PING (metrics.ping_ms)", pings))
                context_ms = tls_context_ms()
                summaries.append(("of the whole check over TLS", percentile(totals, 0.95)))
                summaries.append(("of the checks on the open TLS connection", percentile(after, 0.95)))
                for connection in [client, *held]:
                    connection.close()

    print()
    if not args.no_tls:
        print(
            "TLS: redis-py builds an SSL context per connection (ssl.create_default_context(), which loads"
            " the system CA bundle): %.2f ms of client CPU here, median of 20" % context_ms
        )
    for label, value in summaries:
        print(
            "p95 %s: %.2f ms, %s the %.0f ms target"
            % (label, value, "within" if value < TARGET_MS else "ABOVE", TARGET_MS)
        )


if __name__ == "__main__":
    main()
