"""Benchmark: from an Alertmanager POST to a healed Redis, through the adapter
(targets: p50 POST -> Redis answering <= 3 s, at most 25 tasks for that run, the
healthy-path run under 2 s).

The lab's cache-app compose project (Redis and its app) on free loopback ports; a
`remediate serve` (SQLite store, one worker) with one RedisDown route to redis_down
(cooldown and caps out of the way). Each round breaks Redis for real, `stopped`
(docker stop) or `hung` (SIGSTOP), POSTs one webhook v4 alert (a new fingerprint each
time) and PINGs Redis every 10 ms from this process until it answers: that moment minus
the POST's send time is "POST -> healed". The run's task count and outcome come from the
incident timeline the adapter keeps (one `task` event per task that ran; skipped tasks
are not events). A third kind of round POSTs with Redis fine: "healthy path" is POST ->
the run finished.

    python bench/heal_latency.py [--rounds 10] [--faults stopped,hung,healthy]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from adapter_lib import NO_CAPS, WEBHOOK, ms, percentile, report, table

from tests.harness.adapter import alert, webhook, write_settings
from tests.harness.ansible import wait_for
from tests.harness.docker import CacheApp, pings

FAULTS = ("stopped", "hung", "healthy")


class BenchApp(CacheApp):
    """The cache-app project, broken on demand, and its RedisDown route."""

    def break_redis(self, fault: str) -> None:
        if fault == "stopped":
            subprocess.run(["docker", "stop", self.redis_container()], check=True, capture_output=True, timeout=60)
        elif fault == "hung":
            subprocess.run(["docker", "kill", "-s", "STOP", self.redis_container()], check=True, capture_output=True)
        wait_for(lambda: pings(self.redis_port, 0.2), lambda ok: ok == (fault == "healthy"), timeout=30, interval=0.05)

    def route(self) -> dict:
        return {
            "alertname": "RedisDown",
            "playbook": "incident.remediation.redis_down",
            "severity": "warning",
            "mode": "auto",
            "target": {
                "platform": {"value": "compose"},
                "host": {"value": "localhost"},
                "service": {"value": "redis"},
                "project_src": {"value": str(self.folder)},
                "project_name": {"value": self.name},
                "endpoint": {"host": {"value": "127.0.0.1"}, "port": {"value": self.redis_port}},
            },
        }


def one_round(server, http: httpx.Client, app: BenchApp, fault: str, index: int) -> dict:
    app.break_redis(fault)
    starts_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = json.dumps(webhook([alert("RedisDown", "redis", starts_at=starts_at, fingerprint=f"{index:016x}")]))
    posted = time.time()
    response = http.post(server.url + WEBHOOK, content=body.encode())
    response.raise_for_status()
    decision = response.json()["decisions"][0]
    if decision["decision"] != "accepted":
        raise RuntimeError(f"round {index}: {decision}")
    healed = None
    if fault != "healthy":
        deadline = posted + 120
        while time.time() < deadline and not pings(app.redis_port, 0.2):
            time.sleep(0.01)
        healed = time.time() - posted

    def timeline() -> list[dict]:
        answer = http.get(server.url + f"/api/v1/incidents/{decision['incident_id']}")
        answer.raise_for_status()
        return [event for event in answer.json()["timeline"] if event["run_id"] == decision["run_id"]]

    events = wait_for(timeline, lambda found: any(e["kind"] == "finished" for e in found), timeout=300, interval=0.1)
    finished = next(event for event in events if event["kind"] == "finished")
    return {
        "fault": fault,
        "healed_s": healed,
        "run_s": finished["at"] - posted,
        "tasks": sum(1 for event in events if event["kind"] == "task"),
        "outcome": finished["data"].get("result") or finished["data"].get("status"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds per fault (default 10)")
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated: stopped, hung, healthy")
    parser.add_argument("--max-p50", type=float, default=3.0, help="target, seconds POST -> Redis answering (stopped)")
    parser.add_argument("--max-tasks", type=int, default=25, help="target, tasks of a stopped-Redis run")
    parser.add_argument("--max-healthy", type=float, default=2.0, help="target, seconds of a healthy-path run (p50)")
    args = parser.parse_args()
    faults = [fault for fault in args.faults.split(",") if fault]

    samples: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="heal-bench-") as folder, BenchApp(Path(folder), "ir-bench-heal") as app:
        safety = {"caps": NO_CAPS, "cooldown_minutes": 0, "breaker_failures": 10**6}
        server = write_settings(Path(folder) / "adapter", [app.route()], workers=1, safety=safety)
        server.start()
        try:
            with httpx.Client(headers={**server.headers(), "Content-Type": "application/json"}, timeout=60) as http:
                for index in range(args.rounds * len(faults)):
                    samples.append(one_round(server, http, app, faults[index % len(faults)], index))
        finally:
            server.stop()

    by_fault = {fault: [s for s in samples if s["fault"] == fault] for fault in faults}
    rows, summary, missed = [], {"rounds": args.rounds}, []
    for fault, found in by_fault.items():
        key = "run_s" if fault == "healthy" else "healed_s"
        values = [s[key] for s in found]
        tasks = [s["tasks"] for s in found]
        outcomes = sorted({s["outcome"] for s in found})
        rows.append(
            [
                fault,
                "POST -> run finished" if fault == "healthy" else "POST -> PONG",
                ms(percentile(values, 0.5)),
                ms(max(values)),
                ms(percentile([s["run_s"] for s in found], 0.5)),
                int(percentile(tasks, 0.5)),
                max(tasks),
                "/".join(outcomes),
            ]
        )
        summary[fault] = {
            "p50_s": round(percentile(values, 0.5), 3),
            "max_s": round(max(values), 3),
            "run_p50_s": round(percentile([s["run_s"] for s in found], 0.5), 3),
            "tasks_p50": int(percentile(tasks, 0.5)),
            "tasks_max": max(tasks),
            "outcomes": outcomes,
        }
        wanted = "already_healthy" if fault == "healthy" else "healed"
        if outcomes != [wanted]:
            missed.append(f"{fault}: outcomes {outcomes}, wanted {wanted}")
    if "stopped" in summary:
        if summary["stopped"]["p50_s"] > args.max_p50:
            missed.append(f"stopped: p50 POST -> PONG {summary['stopped']['p50_s']} s > {args.max_p50:g} s")
        if summary["stopped"]["tasks_max"] > args.max_tasks:
            missed.append(f"stopped: {summary['stopped']['tasks_max']} tasks > {args.max_tasks}")
    if "healthy" in summary and summary["healthy"]["p50_s"] > args.max_healthy:
        missed.append(f"healthy: p50 run {summary['healthy']['p50_s']} s > {args.max_healthy:g} s")
    text = "\n".join(
        [
            f"redis_down through the adapter, compose, {args.rounds} rounds per fault (ms; tasks = task events)",
            table(["fault", "measured", "p50", "max", "run p50", "tasks p50", "tasks max", "outcome"], rows),
        ]
    )
    return report("heal_latency", text, summary, missed)


if __name__ == "__main__":
    sys.exit(main())
