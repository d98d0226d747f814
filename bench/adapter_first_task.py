"""Benchmark: from an alert's POST to its run's first playbook task (target: p50 <= 1.0 s).

A `remediate serve` (SQLite store, `workers: 1`, the test collection's record playbook,
local connection) receives --alerts single-alert webhooks one after another, each for a
new target; the next is sent when the previous run has finished (after --gap seconds).
Times come from the incident's timeline, stamped by the server's clock: `accepted` (the
alert stored and decided) -> `started` (a worker claimed the run) -> `play_started` (the
first play began: ansible-runner and ansible-playbook started, inventory and playbook
loaded) -> the first `task` event (the first task's result arrived). The POST's own
send time (this process's wall clock, same host) gives the end-to-end figure.

    python bench/adapter_first_task.py [--alerts 20] [--gap 0.5] [--max-p50 1.0]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import httpx
from adapter_lib import WEBHOOK, adapter, ms, percentile, report, table

from tests.harness.adapter import Adapter, alert, webhook
from tests.harness.ansible import wait_for

STAGES = (
    ("accepted -> started", "accepted", "started"),
    ("started -> play_started", "started", "play_started"),
    ("play_started -> first task", "play_started", "task"),
    ("accepted -> first task", "accepted", "task"),
    ("POST sent -> first task", "post", "task"),
    ("first task -> finished", "task", "finished"),
)


def one_alert(server: Adapter, http: httpx.Client, index: int) -> dict:
    """POST one alert, wait for its run to finish; the first moment of each event kind."""
    body = json.dumps(webhook([alert(service=f"first-{index}")])).encode()
    posted = time.time()
    response = http.post(server.url + WEBHOOK, content=body)
    response.raise_for_status()
    decision = response.json()["decisions"][0]
    if decision["decision"] != "accepted":
        raise RuntimeError(f"alert {index}: {decision}")
    run_id = decision["run_id"]

    def timeline() -> list[dict]:
        answer = http.get(server.url + f"/api/v1/incidents/{decision['incident_id']}")
        answer.raise_for_status()
        return [event for event in answer.json()["timeline"] if event["run_id"] == run_id]

    events = wait_for(timeline, lambda events: any(e["kind"] == "finished" for e in events), timeout=300)
    moments = {"post": posted}
    for event in events:
        moments.setdefault(event["kind"], event["at"])
    first_task = next(event for event in events if event["kind"] == "task")
    return {
        "moments": moments,
        "first_task": first_task["reason"],
        "first_task_duration": first_task["data"].get("duration"),
        "result": events[-1]["data"]["status"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=20, help="alerts, one after another (default 20)")
    parser.add_argument("--gap", type=float, default=0.5, help="idle seconds before each alert (default 0.5)")
    parser.add_argument("--log-level", default="INFO", help="the server's REMEDIATE_LOG_LEVEL (default INFO)")
    parser.add_argument("--max-p50", type=float, default=1.0, help="target, seconds accepted -> first task")
    args = parser.parse_args()

    samples = []
    with adapter(workers=1, log_level=args.log_level) as server, httpx.Client(headers=server.headers()) as http:
        http.headers["Content-Type"] = "application/json"
        for index in range(args.alerts):
            time.sleep(args.gap)
            samples.append(one_alert(server, http, index))

    stages = {
        name: [sample["moments"][end] - sample["moments"][start] for sample in samples] for name, start, end in STAGES
    }
    key = stages["accepted -> first task"]
    failed = [sample["result"] for sample in samples if sample["result"] != "successful"]
    summary = {
        "alerts": len(samples),
        "first_task": samples[0]["first_task"],
        "first_task_duration_p50_s": round(percentile([s["first_task_duration"] or 0 for s in samples], 0.5), 3),
        "p50_s": round(percentile(key, 0.5), 3),
        "p90_s": round(percentile(key, 0.9), 3),
        "stages_p50_ms": {name: ms(percentile(values, 0.5)) for name, values in stages.items()},
        "stages_p90_ms": {name: ms(percentile(values, 0.9)) for name, values in stages.items()},
        "failed_runs": len(failed),
    }
    text = "\n".join(
        [
            f"adapter alert -> first playbook task: {len(samples)} alerts one after another, workers: 1, record"
            f" playbook, local connection; first task: {summary['first_task']!r} (its own duration, p50:"
            f" {summary['first_task_duration_p50_s']} s); server clock unless noted (ms)",
            table(
                ["stage", "p50", "p90", "max"],
                [
                    [name, ms(percentile(values, 0.5)), ms(percentile(values, 0.9)), ms(max(values))]
                    for name, values in stages.items()
                ],
            ),
        ]
    )
    missed = []
    if failed:
        missed.append(f"{len(failed)} runs did not succeed: {failed[:3]}")
    if percentile(key, 0.5) > args.max_p50:
        missed.append(f"p50 accepted -> first task {summary['p50_s']} s > {args.max_p50:g} s")
    return report("adapter_first_task", text, summary, missed)


if __name__ == "__main__":
    sys.exit(main())
