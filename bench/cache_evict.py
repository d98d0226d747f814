"""Benchmark: cache_evict deletes 100,000 of 1,000,000 keys without blocking Redis (target: no pause over 10 ms).

Starts a Redis container (the project's image, DEBUG enabled) on a 127.0.0.1 port, loads
900,000 `cache:N` keys and 100,000 `sess:expired:N` keys with DEBUG POPULATE, then runs the
module's eviction in process (pattern `*:expired:*`, runbook 002) while PINGs are sent in a
loop (one every millisecond) and each latency recorded:

- from a thread of this process (as an application thread would see it; includes waiting for
  Python's GIL, up to the 5 ms switch interval, while the eviction thread parses replies);
- from a separate process (Redis's own responsiveness, no GIL in the way).

Redis's SLOWLOG (threshold 1 ms) then lists every command of the run that took 1 ms or more
inside Redis. A baseline row shows PING with no eviction running (machine noise); then a
check-mode run, and one deleting run per batch size, the 100,000 keys reloaded before each.

    python bench/cache_evict.py [--batch-sizes 500,2000,5000] [--scan-count 1000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / ".collections"), str(REPO)]

import redis  # noqa: E402
from ansible_collections.incident.remediation.plugins.module_utils._redis import (  # noqa: E402
    redis_common_argument_spec,
)
from ansible_collections.incident.remediation.plugins.modules.cache_evict import EVICT_SPEC, evict  # noqa: E402

from tests.harness.docker import redis_server  # noqa: E402

TOTAL_KEYS = 1_000_000
MATCHING = 100_000
PATTERN = "*:expired:*"
TARGET_MS = 10.0
SLOWLOG_US = 1000
PING_INTERVAL_S = 0.001


def params(port, **overrides):
    spec = dict(redis_common_argument_spec(), **EVICT_SPEC)
    values = {name: option.get("default") for name, option in spec.items()}
    values.update(login_port=port, connect_timeout=5.0, patterns=[PATTERN], max_keys=TOTAL_KEYS, **overrides)
    return values


def ping_loop(port, stop, latencies, ready=None):
    """PING every PING_INTERVAL_S (like an application's steady traffic, not a CPU-bound loop)."""
    client = redis.Redis(port=port, single_connection_client=True)
    client.ping()
    if ready is not None:
        ready.set()
    while not stop.is_set():
        started = time.perf_counter()
        client.ping()
        latencies.append((time.perf_counter() - started) * 1000.0)
        time.sleep(PING_INTERVAL_S)
    client.close()


def ping_process(port, ready, stop, results):
    latencies = []
    ping_loop(port, stop, latencies, ready)
    results.put(summarize(latencies))


def summarize(latencies):
    ordered = sorted(latencies)
    if not ordered:
        return dict(count=0, p50=None, p99=None, max=None)
    return dict(
        count=len(ordered),
        p50=statistics.median(ordered),
        p99=ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        max=ordered[-1],
    )


def load(client):
    started = time.perf_counter()
    if client.dbsize() == 0:
        client.execute_command("DEBUG", "POPULATE", TOTAL_KEYS - MATCHING, "cache", 64)
    client.execute_command("DEBUG", "POPULATE", MATCHING, "sess:expired", 64)
    assert client.dbsize() == TOTAL_KEYS, client.dbsize()
    return time.perf_counter() - started


def one_run(port, admin, batch_size, scan_count, mode):
    admin.slowlog_reset()
    stop = threading.Event()
    thread_latencies = []
    pinger = threading.Thread(target=ping_loop, args=(port, stop, thread_latencies), daemon=True)
    context = multiprocessing.get_context("spawn")
    process_ready, process_stop, process_results = context.Event(), context.Event(), context.Queue()
    other = context.Process(target=ping_process, args=(port, process_ready, process_stop, process_results), daemon=True)
    other.start()
    pinger.start()
    assert process_ready.wait(timeout=60), "the pinger process did not start"
    started = time.perf_counter()
    if mode == "baseline":  # no eviction: what PING looks like on this machine anyway
        time.sleep(2.0)
        result, refusal = dict(selected=0, deleted=0, batches=0, slowest_batch_ms=None, error=None), None
    else:
        result, refusal = evict(params(port, batch_size=batch_size, scan_count=scan_count), mode == "check")
    took = time.perf_counter() - started
    stop.set()
    process_stop.set()
    pinger.join()
    from_process = process_results.get(timeout=30)
    other.join(timeout=30)
    assert refusal is None and result["error"] is None, (refusal, result["error"])
    slow = [(entry["duration"] / 1000.0, entry["command"]) for entry in admin.slowlog_get(100000)]
    return result, took, summarize(thread_latencies), from_process, slow


def command_name(command):
    if isinstance(command, bytes):
        command = command.decode("utf-8", "replace")
    if isinstance(command, (list, tuple)):
        command = " ".join(str(part) for part in command)
    return str(command).split(" ")[0]


def fmt(value):
    return "-" if value is None else "%.2f" % value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="500,2000,5000")
    parser.add_argument("--scan-count", type=int, default=EVICT_SPEC["scan_count"]["default"])
    args = parser.parse_args()
    batch_sizes = [int(size) for size in args.batch_sizes.split(",")]

    header = (
        "mode", "batch", "scan COUNT", "deleted", "total s", "keys/s", "UNLINKs", "slowest UNLINK ms",
        "PING max ms (thread)", "PING p99 ms (thread)", "PING max ms (process)", "PING p99 ms (process)",
        "PINGs (process)", "Redis cmds >= 1 ms",
    )  # fmt: skip
    rows, worst_process, worst_server, baseline = [], 0.0, 0.0, None
    slowlog = ("--slowlog-log-slower-than", str(SLOWLOG_US), "--slowlog-max-len", "100000")
    with redis_server("--enable-debug-command", "yes", *slowlog) as (port, _):
        admin = redis.Redis(port=port, socket_timeout=60)
        print("cache_evict: %d keys, %d matching %r, Redis 7 container on 127.0.0.1" % (TOTAL_KEYS, MATCHING, PATTERN))
        runs = [("baseline", 0), ("check", batch_sizes[0])] + [("delete", size) for size in batch_sizes]
        for mode, batch_size in runs:
            loaded_s = load(admin) if admin.dbsize() < TOTAL_KEYS else 0.0
            result, took, thread, process, slow = one_run(port, admin, batch_size, args.scan_count, mode)
            count = result["selected"] if mode != "delete" else result["deleted"]
            if mode == "baseline":
                baseline = process
            else:
                assert count == MATCHING, result
                worst_process = max(worst_process, process["max"] or 0.0)
                worst_server = max([worst_server] + [duration for duration, _ in slow])
            slow.sort(key=lambda entry: entry[0], reverse=True)
            slow_text = "%d%s" % (
                len(slow),
                " (slowest: %s)" % ", ".join("%s %.1f ms" % (command_name(c), d) for d, c in slow[:2]) if slow else "",
            )
            rows.append(
                (
                    mode, str(batch_size), str(args.scan_count), str(result["deleted"]), "%.2f" % took,
                    "%.0f" % (count / took) if count else "-", str(result["batches"]), fmt(result["slowest_batch_ms"]),
                    fmt(thread["max"]), fmt(thread["p99"]), fmt(process["max"]), fmt(process["p99"]),
                    str(process["count"]), slow_text,
                )
            )  # fmt: skip
            if loaded_s:
                print(
                    "  (loaded %d keys in %.1f s with DEBUG POPULATE before the %s run)" % (TOTAL_KEYS, loaded_s, mode)
                )
        admin.close()

    print()
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(row))
    print()
    print(
        "worst PING seen from a separate process during an eviction: %.2f ms (baseline without eviction: %s ms);"
        " slowest Redis command of any eviction run: %s; target: under %.0f ms"
        % (
            worst_process,
            fmt(baseline["max"]),
            "%.2f ms" % worst_server if worst_server else "none reached 1 ms",
            TARGET_MS,
        )
    )


if __name__ == "__main__":
    main()
