"""The evidence role on Kubernetes, on real pods: a Deployment whose containers run
past their memory limit and are OOM-killed. One pass of the role records the pods'
phases and container states (the last instance OOMKilled, exit 137, the restart
count), the workload's events, and each container's current log and its previous,
killed, instance's, and the resource usage (unknown without a metrics-server,
said so, with the limits); the test counts the Kubernetes module runs the pass made: one."""

import json
import os
import re
import subprocess
import sys
from datetime import datetime

import pytest
import yaml
from kubernetes import client

from tests.harness.ansible import ANSIBLE_PLAYBOOK, REPO_ROOT, wait_for
from tests.harness.docker import REDIS_IMAGE
from tests.harness.kube import deployment_manifest

pytestmark = pytest.mark.integration

NAME = "app"
REPLICAS = 2
# Each instance logs a line of its own, runs RUN_S seconds, then reads one endless line into memory
# past its 20Mi limit. The first restart is at once: for RUN_S seconds the second instance runs and
# the first one's log is still there (the kubelet keeps the newest ended container only).
RUN_S = 25
OOM_CONTAINER = {
    "image": REDIS_IMAGE,
    "command": ["sh", "-c", f"echo boot $(cat /proc/sys/kernel/random/uuid); sleep {RUN_S}; exec tail /dev/zero"],
    "resources": {"limits": {"memory": "20Mi"}},
}
BOOT_LINE = re.compile(r"^boot [0-9a-f-]{36}$", re.MULTILINE)
# incident.remediation.kubernetes_snapshot reads the Deployment, ReplicaSets, pods, events, pod metrics
# and per container its log and its previous instance's in one run (step by step it was 5 + 2 * REPLICAS).
KUBERNETES_MODULE_RUNS = 1

PLAYBOOK = [
    {
        "name": "Gather evidence",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Open the incident",
                "ansible.builtin.include_role": {"name": "incident.remediation.incident_context"},
                "vars": {"incident_context_playbook": "evidence_test"},
            },
            {"name": "Capture evidence", "ansible.builtin.include_role": {"name": "incident.remediation.evidence"}},
        ],
    }
]


def evidence_file(folder, name):
    (path,) = [p for p in folder.iterdir() if p.stem.split("-", 1)[1] == name]
    return path


def gather(tmp_path, kube_cluster, namespace):
    """Run the evidence role with Ansible's JSON output; return that output and the evidence folder."""
    playbook = tmp_path / "evidence.yml"
    playbook.write_text(yaml.safe_dump(PLAYBOOK, sort_keys=False))
    extra_vars = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "alert": {"status": "firing", "labels": {"alertname": "PodOOMKilled", "service": NAME}},
        "target": {"platform": "kubernetes", "service": NAME, "namespace": namespace},
        "incident_id": "oom",
        "incident_records_dir": str(tmp_path / "incidents"),
        "service_control_kubeconfig": str(kube_cluster.kubeconfig),
    }
    run = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-e", json.dumps(extra_vars), playbook],
        cwd=REPO_ROOT,
        env={**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    return json.loads(run.stdout), tmp_path / "incidents" / "oom" / "evidence"


def kubernetes_module_runs(output):
    """Module runs that read Kubernetes (loop items count one each) and the seconds of the tasks that made them."""
    calls, seconds = 0, 0.0
    for task in output["plays"][0]["tasks"]:
        (result,) = task["hosts"].values()
        action = result.get("action", "")
        reads_kubernetes = action.startswith("kubernetes.core.") or action == "incident.remediation.kubernetes_snapshot"
        if not reads_kubernetes or result.get("skipped"):
            continue
        items = result.get("results")
        calls += len([item for item in items if not item.get("skipped")]) if items is not None else 1
        duration = task["task"]["duration"]
        seconds += _seconds(duration["end"]) - _seconds(duration["start"])
    return calls, seconds


def _seconds(timestamp):
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def test_one_pass_records_the_oom_kill_the_events_and_the_killed_containers_log(
    tmp_path, kube_cluster, kube_client, kube_namespace
):
    client.AppsV1Api(kube_client).create_namespaced_deployment(
        kube_namespace, deployment_manifest(NAME, OOM_CONTAINER, replicas=REPLICAS)
    )
    core = client.CoreV1Api(kube_client)

    def running_again_after_an_oom_kill(pods):
        statuses = [(pod.status.container_statuses or [None])[0] for pod in pods]
        return len(pods) == REPLICAS and all(
            status is not None
            and status.restart_count == 1
            and status.state.running is not None
            and status.last_state.terminated.reason == "OOMKilled"
            for status in statuses
        )

    wait_for(
        lambda: core.list_namespaced_pod(kube_namespace, label_selector=f"app={NAME}").items,
        running_again_after_an_oom_kill,
        RUN_S + 30,
    )

    output, folder = gather(tmp_path, kube_cluster, kube_namespace)

    status = json.loads(evidence_file(folder, "service-status").read_text())
    # Running again: not crash-looping (yet), but the OOM kill is on record.
    assert (status["state"], status["oom_killed"], status["restart_count"]) == ("running", True, REPLICAS)
    assert len(status["instances"]) == REPLICAS
    for pod in status["instances"]:
        assert (pod["phase"], pod["oom_killed"], pod["exit_code"]) == ("Running", True, 137)
        (container,) = pod["containers"]
        assert (container["state"], container["restart_count"]) == ("running", 1)
        assert (container["last_state"]["reason"], container["last_state"]["exit_code"]) == ("OOMKilled", 137)

    # The workload's events: the Deployment's, its ReplicaSet's and each pod's.
    events = {(event["object"], event["reason"]) for event in status["events"]}
    (replicaset,) = {event["object"] for event in status["events"] if event["object"].startswith("ReplicaSet/")}
    assert (f"Deployment/{NAME}", "ScalingReplicaSet") in events
    assert (replicaset, "SuccessfulCreate") in events
    for pod in status["instances"]:
        started = [e for e in status["events"] if (e["object"], e["reason"]) == (f"Pod/{pod['name']}", "Started")]
        assert [event["count"] for event in started] == [2], "the kubelet started each container twice"

    # Each container's log and its previous, OOM-killed, instance's: two instances, two boot lines.
    logs = evidence_file(folder, "service-logs").read_text()
    sections = dict(re.findall(r"^==> (.*) <==\n((?:(?!==> ).*\n?)*)", logs, re.MULTILINE))
    assert len(sections) == 2 * REPLICAS, logs
    for pod in status["instances"]:
        (current,) = BOOT_LINE.findall(sections[f"pod {pod['name']}, container {NAME} (running)"])
        ended = pod["containers"][0]["last_state"]["finished_at"]
        previous_header = f"pod {pod['name']}, container {NAME}, previous instance (exit 137, OOMKilled, ended {ended})"
        (previous,) = BOOT_LINE.findall(sections[previous_header])
        assert current != previous

    # No metrics-server on the test cluster: usage unknown, said so, with the limits from the pods' spec.
    usage = json.loads(evidence_file(folder, "resource-usage").read_text())
    assert (usage["platform"], usage["usage"]) == ("kubernetes", None)
    assert "no metrics API (metrics-server)" in usage["note"]
    assert usage["requests_and_limits"]["memory_limit"] == 20 * 2**20
    assert sorted(usage["pods"]) == sorted(pod["name"] for pod in status["instances"])

    calls, seconds = kubernetes_module_runs(output)
    print(f"evidence on kubernetes: {calls} module runs, {seconds:.1f} s in their tasks")
    assert calls == KUBERNETES_MODULE_RUNS
