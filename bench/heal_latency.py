"""Benchmark: from an Alertmanager POST to a healed Redis, through the adapter
(targets: p50 POST -> Redis answering <= 3 s, at most 25 tasks for that run, the
healthy-path run under 2 s).

`--platform compose` (the default): the lab's cache-app compose project (Redis and its
app) on free loopback ports. `--platform kubernetes`: Molecule's Kubernetes platform
(molecule/resources/platform.yml: the test cluster with real pods, a Redis Deployment
on a loopback port). A `remediate serve` (SQLite store, one worker) with one RedisDown
route to redis_down (cooldown and caps out of the way). Each round breaks Redis for
real, `stopped` (docker stop; on Kubernetes the Deployment scaled to 0) or `hung`
(SIGSTOP to its container), POSTs one webhook v4 alert (a new fingerprint each
time) and PINGs Redis every 10 ms from this process until it answers: that moment minus
the POST's send time is "POST -> healed". The run's task count and outcome come from the
incident timeline the adapter keeps (one `task` event per task that ran; skipped tasks
are not events). A third kind of round POSTs with Redis fine: "healthy path" is POST ->
the run finished.

    python bench/heal_latency.py [--platform compose|kubernetes] [--rounds 10] [--faults stopped,hung,healthy]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import ClassVar

import httpx
from adapter_lib import NO_CAPS, WEBHOOK, ms, percentile, report, table
from kubernetes import client, config

from tests.harness.adapter import REPO_ROOT, alert, webhook, write_settings
from tests.harness.ansible import wait_for
from tests.harness.docker import CacheApp, pings

FAULTS = ("stopped", "hung", "healthy")


def redis_down_route(target: dict) -> dict:
    """The RedisDown route to redis_down for a target (docs/input-contract.md)."""

    def values(fields: dict) -> dict:
        return {key: values(value) if isinstance(value, dict) else {"value": value} for key, value in fields.items()}

    return {
        "alertname": "RedisDown",
        "playbook": "incident.remediation.redis_down",
        "severity": "warning",
        "mode": "auto",
        "target": values(target),
    }


def wait_for_ping(port: int, fault: str) -> None:
    """Until Redis answers PING as the fault wants: not at all, unless the round is a healthy one."""
    wait_for(lambda: pings(port, 0.2), lambda ok: ok == (fault == "healthy"), timeout=60, interval=0.05)


class ComposeRedis(CacheApp):
    """The cache-app project, broken on demand."""

    # The runs need no environment of their own.
    envvars: ClassVar[dict] = {}

    def break_redis(self, fault: str) -> None:
        if fault == "stopped":
            subprocess.run(["docker", "stop", self.redis_container()], check=True, capture_output=True, timeout=60)
        elif fault == "hung":
            subprocess.run(["docker", "kill", "-s", "STOP", self.redis_container()], check=True, capture_output=True)
        wait_for_ping(self.redis_port, fault)

    def target(self) -> dict:
        return {
            "platform": "compose",
            "host": "localhost",
            "service": "redis",
            "project_src": str(self.folder),
            "project_name": self.name,
            "endpoint": {"host": "127.0.0.1", "port": self.redis_port},
        }


class KubernetesRedis:
    """Molecule's Kubernetes platform (the cluster and its Redis Deployment), broken on demand."""

    RUN = "ir-bench-heal"

    def __init__(self, folder: Path):
        self.folder = folder
        self.env = {**os.environ, "IR_MOLECULE_RUN": self.RUN, "IR_MOLECULE_PLATFORMS": str(folder)}
        self.kubeconfig = folder / "kubernetes" / "kube" / "kubeconfig"
        self.envvars = {"K8S_AUTH_KUBECONFIG": str(self.kubeconfig)}

    def platform(self, action: str) -> None:
        subprocess.run(
            [
                Path(sys.executable).parent / "ansible-playbook",
                "molecule/resources/platform.yml",
                *("-e", "platform=kubernetes", "-e", f"platform_action={action}"),
            ],
            check=True,
            capture_output=True,
            cwd=REPO_ROOT,
            env=self.env,
            timeout=1200,
        )

    def __enter__(self) -> KubernetesRedis:
        self.platform("up")
        self._target = json.loads((self.folder / "kubernetes" / "target.json").read_text())["target"]
        self.redis_port = self._target["endpoint"]["port"]
        self.api = config.new_client_from_config(str(self.kubeconfig))
        return self

    def __exit__(self, *exc) -> None:
        self.api.close()
        self.platform("down")

    def break_redis(self, fault: str) -> None:
        namespace = self._target["namespace"]
        if fault == "stopped":
            client.AppsV1Api(self.api).patch_namespaced_deployment_scale("redis", namespace, {"spec": {"replicas": 0}})
        elif fault == "hung":
            labels = [f"label=io.kubernetes.pod.namespace={namespace}", "label=io.kubernetes.container.name=redis"]
            found = subprocess.run(
                ["docker", "ps", "-q", *[arg for label in labels for arg in ("--filter", label)]],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            subprocess.run(["docker", "kill", "-s", "STOP", *found], check=True, capture_output=True)
        wait_for_ping(self.redis_port, fault)

    def target(self) -> dict:
        return self._target


def one_round(server, http: httpx.Client, app: ComposeRedis | KubernetesRedis, fault: str, index: int) -> dict:
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


def run_rounds(folder: Path, app: ComposeRedis | KubernetesRedis, rounds: int, faults: list[str]) -> list[dict]:
    """The adapter started for the app's Redis, and every round through it."""
    safety = {"caps": NO_CAPS, "cooldown_minutes": 0, "breaker_failures": 10**6}
    route = redis_down_route(app.target())
    server = write_settings(folder, [route], workers=1, safety=safety, executor={"envvars": app.envvars})
    server.start()
    try:
        with httpx.Client(headers={**server.headers(), "Content-Type": "application/json"}, timeout=60) as http:
            return [
                one_round(server, http, app, faults[index % len(faults)], index)
                for index in range(rounds * len(faults))
            ]
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", choices=("compose", "kubernetes"), default="compose")
    parser.add_argument("--rounds", type=int, default=10, help="rounds per fault (default 10)")
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated: stopped, hung, healthy")
    parser.add_argument("--max-p50", type=float, default=3.0, help="target, seconds POST -> Redis answering (stopped)")
    parser.add_argument("--max-tasks", type=int, default=25, help="target, tasks of a stopped-Redis run")
    parser.add_argument("--max-healthy", type=float, default=2.0, help="target, seconds of a healthy-path run (p50)")
    args = parser.parse_args()
    faults = [fault for fault in args.faults.split(",") if fault]

    with tempfile.TemporaryDirectory(prefix="heal-bench-") as folder:
        where = Path(folder)
        app = (
            ComposeRedis(where, "ir-bench-heal") if args.platform == "compose" else KubernetesRedis(where / "platforms")
        )
        with app:
            samples = run_rounds(where / "adapter", app, args.rounds, faults)

    by_fault = {fault: [s for s in samples if s["fault"] == fault] for fault in faults}
    rows, summary, missed = [], {"platform": args.platform, "rounds": args.rounds}, []
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
            "each_s": [round(value, 2) for value in values],
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
            f"redis_down through the adapter, {args.platform}, {args.rounds} rounds per fault"
            " (ms; tasks = task events)",
            table(["fault", "measured", "p50", "max", "run p50", "tasks p50", "tasks max", "outcome"], rows),
        ]
    )
    return report("heal_latency", text, summary, missed)


if __name__ == "__main__":
    sys.exit(main())
