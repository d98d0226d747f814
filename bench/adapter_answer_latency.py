"""Benchmark: the adapter's answer latency for single-alert webhooks at a steady rate.

Starts a real `remediate serve` (SQLite store, bearer token) with `workers: 0`, so no
playbook competes for the CPU: what is measured is the answer path alone (auth, parse,
store, decide, commit with fsync). Every alert names a new target, so every one is
accepted and queues a run (caps set high); the runs table grows by --rate rows a second,
and the table has a row per --window to show whether latency grows with it.

The load is open-loop: request i is due at start + i/rate whatever happened before. One
asyncio httpx client with --connections senders: a free sender takes the next request and
sends it at its due time; latency runs from that due time to the answer, so a stall delays
every request due meanwhile (no coordinated omission). The first --warmup seconds are sent
but not counted. The load generator shares the machine: its CPU time and event-loop lag
are printed, with the server's CPU time and its own answer histogram (time inside the
handler). CPU times cover the warm-up too.

The default targets (p50 10 ms, p99 50 ms) are this script's, not a documented requirement.

    python bench/adapter_answer_latency.py [--rate 200] [--duration 30] [--max-p99-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import httpx
from adapter_lib import (
    WEBHOOK,
    adapter,
    async_client,
    cpu_seconds,
    ms,
    percentile,
    report,
    server_answer_seconds,
    table,
)

from tests.harness.adapter import Adapter, alert, webhook


async def drive(server: Adapter, args) -> dict:
    """Send every request at its due time from --connections senders; collect (due, sent, answered, problem)."""
    warmup = int(args.warmup * args.rate)
    total = warmup + int(args.duration * args.rate)
    bodies = [json.dumps(webhook([alert(service=f"lat-{index}")])).encode() for index in range(total)]
    results: list = [None] * total
    upcoming = iter(range(total))
    start = time.perf_counter() + 0.2
    loop_lag: list[float] = []

    async def watch_loop() -> None:
        # The load generator's own health: how late a 10 ms sleep wakes up.
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(0.01)
            loop_lag.append(time.perf_counter() - asked - 0.01)

    async def sender(http: httpx.AsyncClient) -> None:
        # A free sender takes the next request and waits for its due time; when all are busy,
        # the requests falling due wait, and that wait counts in their latency.
        for index in upcoming:
            due = start + index / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.perf_counter()
            try:
                response = await http.post(WEBHOOK, content=bodies[index])
            except httpx.HTTPError as error:
                results[index] = due, sent, time.perf_counter(), type(error).__name__
                continue
            answered = time.perf_counter()
            problem = f"HTTP {response.status_code}" if response.status_code != 200 else ""
            if not problem and response.json()["decisions"][0]["decision"] != "accepted":
                problem = response.json()["decisions"][0]["decision"]
            results[index] = due, sent, answered, problem

    # CPU times and the server's histogram cover every request sent, warm-up included.
    answered_before = server_answer_seconds(server)
    server_cpu, client_cpu = cpu_seconds(server.process.pid), time.process_time()
    async with async_client(server, args.connections) as http:
        watcher = asyncio.create_task(watch_loop())
        await asyncio.gather(*(sender(http) for _ in range(args.connections)))
        watcher.cancel()
    server_cpu, client_cpu = cpu_seconds(server.process.pid) - server_cpu, time.process_time() - client_cpu
    answer_sum, answer_count = server_answer_seconds(server)
    measured = results[warmup:]
    return {
        "measured": measured,
        "sent": total,
        "wall": max(answered for _, _, answered, _ in measured) - measured[0][0],
        "server_cpu": server_cpu,
        "client_cpu": client_cpu,
        "loop_lag": loop_lag,
        "server_mean": (answer_sum - answered_before[0]) / max(1, answer_count - answered_before[1]),
    }


def windows(measured: list, seconds: float) -> list[list]:
    """p50/p99 per window of due times, to show whether latency creeps up as the store grows."""
    start = measured[0][0]
    buckets: dict[int, list[float]] = {}
    for due, _, answered, _ in measured:
        buckets.setdefault(int((due - start) // seconds), []).append(answered - due)
    return [
        [
            f"{index * seconds:.0f}-{(index + 1) * seconds:.0f} s",
            len(values),
            ms(percentile(values, 0.5)),
            ms(percentile(values, 0.99)),
            ms(max(values)),
        ]
        for index, values in sorted(buckets.items())
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200, help="requests per second (default 200)")
    parser.add_argument("--duration", type=float, default=30, help="measured seconds (default 30)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds sent before measuring (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="client connection pool size (default 32)")
    parser.add_argument("--window", type=float, default=10, help="seconds per row of the table (default 10)")
    parser.add_argument("--log-level", default="INFO", help="the server's REMEDIATE_LOG_LEVEL (default INFO)")
    parser.add_argument("--max-p50-ms", type=float, default=10, help="target for p50 (default 10 ms)")
    parser.add_argument("--max-p99-ms", type=float, default=50, help="target for p99 (default 50 ms)")
    args = parser.parse_args()

    with adapter(workers=0, log_level=args.log_level) as server:
        run = asyncio.run(drive(server, args))
    measured = run["measured"]
    latencies = [answered - due for due, _, answered, _ in measured]
    lateness = [sent - due for due, sent, _, _ in measured]
    problems = [problem for *_, problem in measured if problem]
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    summary = {
        "rate": args.rate,
        "requests": len(measured),
        "achieved_rate": round(len(measured) / run["wall"], 1),
        "p50_ms": ms(p50),
        "p99_ms": ms(p99),
        "max_ms": ms(max(latencies)),
        "server_handler_mean_ms": ms(run["server_mean"]),
        "send_lateness_p99_ms": ms(percentile(lateness, 0.99)),
        "loadgen_loop_lag_p99_ms": ms(percentile(run["loop_lag"], 0.99)),
        "server_cpu_ms_per_request": ms(run["server_cpu"] / run["sent"]),
        "loadgen_cpu_ms_per_request": ms(run["client_cpu"] / run["sent"]),
        "wall_s": round(run["wall"], 2),
        "not_accepted": len(problems),
        "workers": 0,
        "log_level": args.log_level,
    }
    text = "\n".join(
        [
            f"adapter answer latency: single-alert webhooks, open loop at {args.rate:g}/s for {args.duration:g} s"
            f" (after {args.warmup:g} s warm-up); workers: 0 (runs queue, no playbook runs); every alert a new"
            " target (accepted, one queued run each); latency from each request's due time (ms)",
            table(["window", "requests", "p50", "p99", "max"], windows(measured, args.window)),
            table(
                ["all", "value"],
                [
                    ["requests measured / achieved rate", f"{len(measured)} / {summary['achieved_rate']}/s"],
                    ["p50 / p99 / max ms", f"{summary['p50_ms']} / {summary['p99_ms']} / {summary['max_ms']}"],
                    ["server handler mean ms (its own histogram)", summary["server_handler_mean_ms"]],
                    ["sent late (no free connection, or a busy loop), p99 ms", summary["send_lateness_p99_ms"]],
                    ["load generator's event-loop lag, p99 ms", summary["loadgen_loop_lag_p99_ms"]],
                    [
                        "CPU ms per request: server / load generator",
                        f"{summary['server_cpu_ms_per_request']} / {summary['loadgen_cpu_ms_per_request']}",
                    ],
                    ["wall s (first due to last answer)", summary["wall_s"]],
                    ["not accepted (errors or other decisions)", len(problems)],
                ],
            ),
        ]
    )
    missed = []
    if problems:
        missed.append(f"{len(problems)} requests not accepted, e.g. {problems[0]}")
    if p50 * 1000 > args.max_p50_ms:
        missed.append(f"p50 {ms(p50)} ms > {args.max_p50_ms:g} ms")
    if p99 * 1000 > args.max_p99_ms:
        missed.append(f"p99 {ms(p99)} ms > {args.max_p99_ms:g} ms")
    return report("adapter_answer_latency", text, summary, missed)


if __name__ == "__main__":
    sys.exit(main())
