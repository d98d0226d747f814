"""Benchmark: an alert storm queues one run per target, in bounded memory.

A `remediate serve` (SQLite store, `workers: 0` so nothing executes, caps set high)
receives --targets x --repeats alerts (default 1,000 targets x 10 = 10,000 alerts, each
with its own fingerprint), shuffled, in Alertmanager webhooks of --group alerts from
--senders concurrent senders. Targets: exactly one remediate run per target (counted in
the store itself, and from the answers: the other alerts deduplicated), and the server
process's peak resident set (VmHWM in /proc/<pid>/status) under --max-rss-mb.

    python bench/adapter_storm.py [--targets 1000] [--repeats 10] [--group 100] [--max-rss-mb 200]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys

from adapter_lib import adapter, blast, ms, percentile, report, status_kib, storm_alerts, table, webhook_bodies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1000, help="distinct targets (default 1000)")
    parser.add_argument("--repeats", type=int, default=10, help="alerts per target (default 10)")
    parser.add_argument("--group", type=int, default=100, help="alerts per webhook (default 100)")
    parser.add_argument("--senders", type=int, default=4, help="concurrent senders (default 4)")
    parser.add_argument("--log-level", default="INFO", help="the server's REMEDIATE_LOG_LEVEL (default INFO)")
    parser.add_argument("--max-rss-mb", type=float, default=200, help="target for the peak RSS (default 200)")
    args = parser.parse_args()

    bodies = webhook_bodies(storm_alerts("storm", args.targets, args.repeats), args.group)
    with adapter(workers=0, log_level=args.log_level) as server:
        pid = server.process.pid
        rss_before = status_kib(pid, "VmRSS")
        result = blast(server, bodies, args.senders)
        peak_kib, rss_after = status_kib(pid, "VmHWM"), status_kib(pid, "VmRSS")
        with sqlite3.connect(f"file:{server.folder}/remediate.db?mode=ro", uri=True) as store:
            runs = dict(store.execute("SELECT kind || ':' || state, count(*) FROM runs GROUP BY 1").fetchall())
            alerts_stored = store.execute("SELECT count(*) FROM alerts").fetchone()[0]

    alerts = args.targets * args.repeats
    remediate_runs = sum(count for key, count in runs.items() if key.startswith("remediate:"))
    summary = {
        "alerts": alerts,
        "targets": args.targets,
        "remediate_runs": remediate_runs,
        "runs_by_kind_state": runs,
        "alerts_stored": alerts_stored,
        "decisions": dict(result.decisions),
        "peak_rss_mb": round(peak_kib / 1024, 1),
        "rss_before_mb": round(rss_before / 1024, 1),
        "rss_after_mb": round(rss_after / 1024, 1),
        "alerts_per_s": round(alerts / result.wall, 1),
        "p50_ms": ms(percentile(result.latencies, 0.5)),
        "p99_ms": ms(percentile(result.latencies, 0.99)),
        "server_cpu_s": round(result.server_cpu, 2),
        "loadgen_cpu_s": round(result.client_cpu, 2),
        "wall_s": round(result.wall, 2),
        "errors": result.errors[:5],
    }
    text = "\n".join(
        [
            f"adapter storm: {alerts} alerts over {args.targets} targets ({args.repeats} each, shuffled), webhooks of"
            f" {args.group}, {args.senders} senders; workers: 0 (nothing executes), caps set high",
            table(
                ["measure", "value"],
                [
                    ["remediate runs created (store)", remediate_runs],
                    ["runs by kind:state", " ".join(f"{key}={count}" for key, count in sorted(runs.items()))],
                    ["decisions", " ".join(f"{kind}={count}" for kind, count in sorted(result.decisions.items()))],
                    ["alerts stored", alerts_stored],
                    ["peak RSS MB (VmHWM)", summary["peak_rss_mb"]],
                    ["RSS MB before / after", f"{summary['rss_before_mb']} / {summary['rss_after_mb']}"],
                    ["alerts/s, wall s", f"{summary['alerts_per_s']}, {summary['wall_s']}"],
                    ["request p50 / p99 ms", f"{summary['p50_ms']} / {summary['p99_ms']}"],
                    ["CPU s: server / load generator", f"{summary['server_cpu_s']} / {summary['loadgen_cpu_s']}"],
                ],
            ),
        ]
    )
    missed = []
    if result.errors:
        missed.append(f"{len(result.errors)} failed requests, e.g. {result.errors[0]}")
    if remediate_runs != args.targets or runs.get("notify:queued"):
        missed.append(f"{remediate_runs} remediate runs (and {runs}) for {args.targets} targets")
    if result.decisions["accepted"] != args.targets or result.decisions.total() != alerts:
        missed.append(f"decisions {dict(result.decisions)}")
    if alerts_stored != alerts:
        missed.append(f"{alerts_stored} alerts stored of {alerts}")
    if peak_kib / 1024 > args.max_rss_mb:
        missed.append(f"peak RSS {summary['peak_rss_mb']} MB > {args.max_rss_mb:g} MB")
    return report("adapter_storm", text, summary, missed)


if __name__ == "__main__":
    sys.exit(main())
