"""Benchmark: pool_health's single pg_stat_activity statement with 500 open sessions (target: under 50 ms).

Starts a PostgreSQL container (the project's image) with max_connections=600 on a 127.0.0.1
port and opens real client sessions: mostly idle, some idle in a transaction, a few running
pg_sleep. Then times, in process:
  - the module's statement alone (read_activity on an open connection: one round trip and
    the rows decoded), which is what the 50 ms target is about;
  - the whole check (connect with SCRAM, the statement, the verdict, close);
and, for reference, one full `ansible localhost -m incident.remediation.pool_health` run.
Removes the container at the end.

    python bench/pool_health.py [--runs 50] [--sessions 500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / ".collections"), str(REPO)]

from ansible_collections.incident.remediation.plugins.module_utils._postgres import connect  # noqa: E402
from ansible_collections.incident.remediation.plugins.modules.pool_health import (  # noqa: E402
    APPLICATION_NAME,
    OPTION_SPEC,
    THRESHOLD_SPEC,
    check_postgresql,
    read_activity,
)

from tests.harness.postgres import postgres_server, sessions  # noqa: E402

TARGET_MS = 50.0
DEFAULTS = {name: spec.get("default") for name, spec in {**THRESHOLD_SPEC, **OPTION_SPEC}.items()}


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def row(label, values):
    return "%-34s | %8.2f | %8.2f | %8.2f | %8.2f" % (
        label,
        percentile(values, 0.50),
        percentile(values, 0.95),
        max(values),
        statistics.mean(values),
    )


def timed(function, runs, warmup=5):
    for _ in range(warmup):
        function()
    values = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        values.append((time.perf_counter() - started) * 1000.0)
    return values


def ansible_run_ms(server):
    """Wall time of one ad-hoc ansible run of the module (interpreter start-up included)."""
    command = [
        str(Path(sys.executable).with_name("ansible")),
        "localhost",
        "-i", "localhost,",
        "-c", "local",
        "-e", "ansible_python_interpreter=%s" % sys.executable,
        "-m", "incident.remediation.pool_health",
        "-a", "login_port=%d ssl_mode=disable" % server.port,
    ]  # fmt: skip
    env = dict(os.environ, PGPASSWORD=server.password)
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = (time.perf_counter() - started) * 1000.0
    if completed.returncode != 0 or "is_available: true" not in completed.stdout:
        raise RuntimeError(completed.stdout + completed.stderr)
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--idle-in-transaction", type=int, default=60)
    parser.add_argument("--active", type=int, default=10)
    args = parser.parse_args()
    idle = args.sessions - args.idle_in_transaction - args.active

    with postgres_server("-c", "max_connections=600") as server:
        server.create_role("bench_app", "bench-pw")
        app = {"user": "bench_app", "password": "bench-pw"}
        with sessions(server) as opened:
            started = time.perf_counter()
            for index in range(idle):
                opened.open(application_name="web-%d" % (index % 8), **app)
            opened.many(args.idle_in_transaction, "idle in transaction", application_name="worker", **app)
            opened.many(args.active, "active", application_name="report")
            opening_s = time.perf_counter() - started

            params = {**server.params(), **DEFAULTS}
            result = check_postgresql(params)
            metrics = result["metrics"]
            assert result["is_available"], result
            print(
                "pool_health: %d runs against PostgreSQL %s (max_connections=%d) with %d client sessions "
                "(%d idle, %d idle in transaction, %d active; opened in %.1f s)"
                % (
                    args.runs,
                    metrics["server_version"],
                    metrics["max_connections"],
                    metrics["in_use"],
                    metrics["idle"],
                    metrics["idle_in_transaction"],
                    metrics["active"],
                    opening_s,
                )
            )
            print("verdict: %s, saturation %s" % (result["status"], metrics["saturation"]))
            print()
            print("%-34s | %8s | %8s | %8s | %8s" % ("ms", "p50", "p95", "max", "mean"))

            conn = connect(params, APPLICATION_NAME)
            try:
                statement = timed(lambda: read_activity(conn, params), args.runs)
                server_side = [read_activity(conn, params)[1] for _ in range(args.runs)]
            finally:
                conn.close()
            whole = timed(lambda: check_postgresql(params), args.runs)
            print(row("statement (read_activity)", statement))
            print(row("  as the module reports (query_ms)", server_side))
            print(row("whole check (connect+query+close)", whole))
            ansible_ms = ansible_run_ms(server)
            print("%-34s | %8.0f" % ("one ansible ad-hoc run", ansible_ms))

    p95 = percentile(statement, 0.95)
    print()
    print(
        "p95 of the statement %.2f ms: %s the %.0f ms target"
        % (p95, "within" if p95 < TARGET_MS else "ABOVE", TARGET_MS)
    )


if __name__ == "__main__":
    main()
