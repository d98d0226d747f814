"""Shared part of the adapter benchmarks (bench/adapter_*.py); not a benchmark itself.

A real `remediate serve` process through the test harness (tests/harness/adapter.py)
with one auto route to the record playbook, webhook bodies built before any clock
starts, the server process's CPU time and memory from /proc, a closed-loop asyncio
load generator on httpx, percentiles, and the report every script ends with: a
table, one JSON line, and exit status 1 when a target is missed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / ".collections"), str(REPO)]

from tests.harness.adapter import Adapter, alert, record_route, webhook, write_settings  # noqa: E402

WEBHOOK = "/api/v1/alertmanager"
# Caps out of the way: these benchmarks measure intake, not the blast-radius rules.
NO_CAPS = {"per_target_per_hour": 10**9, "per_route_per_hour": 10**9, "total_per_hour": 10**9}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def adapter(*, workers: int, log_level: str, caps: dict = NO_CAPS, **overrides) -> Iterator[Adapter]:
    """`remediate serve` in a temporary folder (SQLite store there), stopped afterwards;
    ``caps={}`` keeps the adapter's default caps."""
    with tempfile.TemporaryDirectory(prefix="adapter-bench-") as folder:
        server = write_settings(Path(folder), [record_route()], workers=workers, safety={"caps": caps}, **overrides)
        os.environ["REMEDIATE_LOG_LEVEL"] = log_level  # Adapter.start passes the environment on
        server.start()
        try:
            yield server
        finally:
            server.stop()


def storm_alerts(prefix: str, targets: int, repeats: int, seed: int = 1) -> list[dict]:
    """`repeats` alerts (distinct fingerprints) for each of `targets` services, shuffled."""
    alerts = [
        alert(service=f"{prefix}-{target}", labels={"replica": str(repeat)})
        for target in range(targets)
        for repeat in range(repeats)
    ]
    random.Random(seed).shuffle(alerts)
    return alerts


def webhook_bodies(alerts: list[dict], size: int) -> list[bytes]:
    """Alertmanager webhook bodies of `size` alerts each."""
    return [json.dumps(webhook(alerts[index : index + size])).encode() for index in range(0, len(alerts), size)]


def async_client(server: Adapter, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url,
        headers={**server.headers(), "Content-Type": "application/json"},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=120,
    )


@dataclass
class Blast:
    """What a closed-loop run of webhook requests saw."""

    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    decisions: collections.Counter = field(default_factory=collections.Counter)
    errors: list[str] = field(default_factory=list)
    sent: int = 0
    server_cpu: float = 0.0
    client_cpu: float = 0.0


async def _blast(server: Adapter, bodies: list[bytes], senders: int, seconds: float) -> Blast:
    result = Blast()
    pending = iter(bodies)
    deadline = time.perf_counter() + seconds

    async def sender(http: httpx.AsyncClient) -> None:
        for body in pending:
            started = time.perf_counter()
            if started > deadline:
                return
            result.sent += 1
            try:
                response = await http.post(WEBHOOK, content=body)
            except httpx.HTTPError as error:
                result.errors.append(type(error).__name__)
                continue
            result.latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                result.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                continue
            result.decisions.update(decision["decision"] for decision in response.json()["decisions"])

    async with async_client(server, senders) as http:
        cpu, own, started = cpu_seconds(server.process.pid), time.process_time(), time.perf_counter()
        await asyncio.gather(*(sender(http) for _ in range(senders)))
        result.wall = time.perf_counter() - started
        result.server_cpu = cpu_seconds(server.process.pid) - cpu
        result.client_cpu = time.process_time() - own
    return result


def blast(server: Adapter, bodies: list[bytes], senders: int, seconds: float = math.inf) -> Blast:
    """POST the bodies, `senders` requests in flight (each sends its next when answered);
    none is sent after `seconds`."""
    return asyncio.run(_blast(server, bodies, senders, seconds))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def status_kib(pid: int, name: str) -> int:
    """A /proc/<pid>/status value in KiB, e.g. VmHWM (peak resident set) or VmRSS."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise KeyError(name)


def server_answer_seconds(server: Adapter) -> tuple[float, int]:
    """(sum, count) of the server's own answer-latency histogram (remediate_answer_latency_seconds)."""
    values = {}
    for line in httpx.get(server.url + "/metrics", timeout=30).text.splitlines():
        name, _, value = line.partition(" ")
        values[name] = value
    return float(values["remediate_answer_latency_seconds_sum"]), int(
        float(values["remediate_answer_latency_seconds_count"])
    )


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def table(header: list[str], rows: list[list]) -> str:
    """A plain text table, first column left-aligned, the others right-aligned."""
    cells = [header, *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def report(name: str, text: str, summary: dict, missed: list[str]) -> int:
    """Print the table, then one JSON line; 1 when a target was missed."""
    print(text)
    for reason in missed:
        print(f"MISSED: {reason}")
    print(json.dumps({"bench": name, **summary, "ok": not missed, "missed": missed}))
    return 1 if missed else 0
