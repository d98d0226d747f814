"""Benchmark: rpc_health probes endpoints concurrently, so a hung one costs one timeout.

Three JSON-RPC endpoints on 127.0.0.1 (the test double in tests/harness/jsonrpc_server.py,
run in this process, no containers): a healthy primary, a backup 3 blocks behind, and a
backup that hangs; then all three hanging. Each run calls rpc_health's check() with timeout
T and prints every endpoint's latency and the total; the summary compares the total with T
and with the sum of the latencies (what probing one after the other would have cost).

    python bench/rpc_health.py [--runs 5] [--timeout 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / ".collections"), str(REPO)]

from ansible_collections.incident.remediation.plugins.module_utils._http import (  # noqa: E402
    http_common_argument_spec,
)
from ansible_collections.incident.remediation.plugins.modules.rpc_health import (  # noqa: E402
    CALL_SPEC,
    THRESHOLD_SPEC,
    check,
    endpoint_list,
)

from tests.harness.jsonrpc_server import JsonRpcServer  # noqa: E402


def one_run(endpoints, timeout):
    common = {name: spec.get("default") for name, spec in http_common_argument_spec().items()}
    common["timeout"] = timeout
    call = {name: spec["default"] for name, spec in CALL_SPEC.items()}
    thresholds = {name: spec["default"] for name, spec in THRESHOLD_SPEC.items()}
    started = time.monotonic()
    result = check(endpoints, common, call, thresholds)
    total_ms = (time.monotonic() - started) * 1000.0
    return result, total_ms


def scenario(title, modes, runs, timeout):
    """Run check() `runs` times against one server per mode; print a row per run and a summary."""
    servers = [
        JsonRpcServer(height=19_000_000, mode=mode, lag=3 if index == 1 else 0, hang_s=timeout * 10)
        for index, mode in enumerate(modes)
    ]
    for server in servers:
        server.start()
    try:
        names = ["primary"] + ["backup%d" % index for index in range(1, len(modes))]
        endpoints = endpoint_list(
            {"url": servers[0].url(), "name": names[0], "timeout": None},
            [
                {"url": server.url(), "name": name, "timeout": None}
                for server, name in zip(servers[1:], names[1:], strict=True)
            ],
        )
        described = ", ".join(
            "%s %s" % (name, "hanging" if mode == "hang" else "answering")
            for name, mode in zip(names, modes, strict=True)
        )
        print("%s: %s; timeout T = %s s, %d runs" % (title, described, timeout, runs))
        header = ["run"] + ["%s ms" % name for name in names] + ["sum ms", "total ms", "total / T"]
        print(" | ".join("%12s" % column for column in header))
        totals, sums = [], []
        for run in range(1, runs + 1):
            result, total_ms = one_run(endpoints, timeout)
            latencies = [endpoint["latency_ms"] for endpoint in result["endpoints"]]
            for endpoint, mode in zip(result["endpoints"], modes, strict=True):
                assert endpoint["timed_out"] is (mode == "hang"), endpoint
            totals.append(total_ms)
            sums.append(sum(latencies))
            row = [str(run)] + ["%.1f" % latency for latency in latencies]
            row += ["%.1f" % sums[-1], "%.1f" % total_ms, "%.3f" % (total_ms / (timeout * 1000.0))]
            print(" | ".join("%12s" % column for column in row))
        print(
            "total ms: min %.1f, median %.1f, max %.1f (T = %.0f ms, median overhead %.1f ms); "
            "sum of latencies (sequential cost) median %.1f ms"
            % (
                min(totals),
                statistics.median(totals),
                max(totals),
                timeout * 1000.0,
                statistics.median(totals) - timeout * 1000.0,
                statistics.median(sums),
            )
        )
        print()
    finally:
        for server in servers:
            server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=2.0, help="per-endpoint timeout T in seconds")
    args = parser.parse_args()
    scenario("one hanging", ["ok", "ok", "hang"], args.runs, args.timeout)
    scenario("all hanging", ["hang", "hang", "hang"], max(1, args.runs // 2 + 1), args.timeout)


if __name__ == "__main__":
    main()
