"""Benchmark: the adapter's ingest throughput with 100-alert webhooks (target: 5,000 alerts/s).

For each variant a fresh `remediate serve` (SQLite store, bearer token, `workers: 0` so
no playbook runs, caps set high) receives --alerts alerts in Alertmanager webhooks of
--group alerts from --senders concurrent senders (closed loop: each sends its next
webhook when the last is answered):

- distinct: every alert names a new target (accepted: one queued run each);
- capped: the same with the adapter's default caps (20 runs per route per hour): the
  first 20 are accepted, the rest capped and joined to one route-wide message;
- repeats: --repeats alerts per target (distinct fingerprints, shuffled), so most of
  them join the run already queued for their target (deduplicated).

Prints alerts/s, requests/s, p50/p99 per request, and the CPU time of the server and
of the load generator (same machine).

    python bench/adapter_ingest.py [--alerts 20000] [--group 100] [--senders 4] [--repeats 10]
"""

from __future__ import annotations

import argparse
import sys

from adapter_lib import NO_CAPS, adapter, alert, blast, ms, percentile, report, storm_alerts, table, webhook_bodies

VARIANTS = ("distinct", "capped", "repeats")
DEFAULT_PER_ROUTE_CAP = 20


def measure(variant: str, args) -> dict:
    repeats = args.repeats if variant == "repeats" else 1
    targets = args.alerts // repeats
    bodies = webhook_bodies(storm_alerts(variant, targets, repeats), args.group)
    if variant == "capped":
        caps, expected = {}, {"accepted": DEFAULT_PER_ROUTE_CAP, "capped": targets - DEFAULT_PER_ROUTE_CAP}
    else:
        caps, expected = NO_CAPS, {"accepted": targets, "deduplicated": targets * (repeats - 1)}
    # Warm-up with alerts no route takes: nothing queued, no cap used.
    warmup = webhook_bodies([alert("Warmup", service=f"warmup-{index}") for index in range(args.group)], args.group)
    with adapter(workers=0, log_level=args.log_level, caps=caps) as server:
        blast(server, warmup, 1)
        result = blast(server, bodies, args.senders, args.max_seconds)
    alerts = sum(result.decisions.values())
    expected = {kind: count for kind, count in expected.items() if count}
    return {
        "variant": variant,
        "alerts": alerts,
        "requests": result.sent,
        "complete": result.sent == len(bodies),
        "alerts_per_s": round(alerts / result.wall, 1),
        "requests_per_s": round(len(result.latencies) / result.wall, 1),
        "p50_ms": ms(percentile(result.latencies, 0.5)),
        "p99_ms": ms(percentile(result.latencies, 0.99)),
        "server_cpu_s": round(result.server_cpu, 2),
        "server_cpu_ms_per_alert": round(result.server_cpu / max(1, alerts) * 1000, 3),
        "loadgen_cpu_s": round(result.client_cpu, 2),
        "wall_s": round(result.wall, 2),
        "decisions": dict(result.decisions),
        "decisions_ok": dict(result.decisions) == expected,
        "errors": result.errors[:5],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=20000, help="alerts per variant (default 20000)")
    parser.add_argument("--group", type=int, default=100, help="alerts per webhook (default 100)")
    parser.add_argument("--senders", type=int, default=4, help="concurrent senders (default 4)")
    parser.add_argument("--repeats", type=int, default=10, help="alerts per target, repeats variant (default 10)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: " + ",".join(VARIANTS))
    parser.add_argument("--max-seconds", type=float, default=120, help="stop sending after (default 120)")
    parser.add_argument("--log-level", default="INFO", help="the server's REMEDIATE_LOG_LEVEL (default INFO)")
    parser.add_argument("--min-alerts-per-s", type=float, default=5000, help="target (default 5000)")
    args = parser.parse_args()

    rows = [measure(variant, args) for variant in args.variants.split(",")]
    text = "\n".join(
        [
            f"adapter ingest: webhooks of {args.group} alerts, {args.senders} concurrent senders, {args.alerts} alerts"
            f" per variant; workers: 0 (runs queue, no playbook runs); server log level {args.log_level}",
            table(
                [
                    "variant",
                    "alerts",
                    "alerts/s",
                    "requests/s",
                    "p50 ms",
                    "p99 ms",
                    "server CPU s",
                    "server CPU ms/alert",
                    "loadgen CPU s",
                    "wall s",
                    "decisions",
                ],
                [
                    [
                        row["variant"],
                        row["alerts"],
                        row["alerts_per_s"],
                        row["requests_per_s"],
                        row["p50_ms"],
                        row["p99_ms"],
                        row["server_cpu_s"],
                        row["server_cpu_ms_per_alert"],
                        row["loadgen_cpu_s"],
                        row["wall_s"],
                        " ".join(f"{kind}={count}" for kind, count in sorted(row["decisions"].items())),
                    ]
                    for row in rows
                ],
            ),
        ]
    )
    missed = []
    for row in rows:
        if not row["complete"]:
            missed.append(f"{row['variant']}: stopped after {args.max_seconds:g} s, {row['alerts']} alerts sent")
        elif row["errors"] or not row["decisions_ok"]:
            missed.append(f"{row['variant']}: unexpected answers {row['decisions']} {row['errors']}")
        if row["alerts_per_s"] < args.min_alerts_per_s:
            missed.append(f"{row['variant']}: {row['alerts_per_s']} alerts/s < {args.min_alerts_per_s:g}")
    summary = {"group": args.group, "senders": args.senders, "log_level": args.log_level, "workers": 0, "rows": rows}
    return report("adapter_ingest", text, summary, missed)


if __name__ == "__main__":
    sys.exit(main())
