"""kubernetes_snapshot on real pods: a Deployment whose container crash-loops (the kubelet's own
CrashLoopBackOff), a Deployment that does not exist, and the test cluster's missing metrics API.
The module runs through ansible-playbook, as the roles run it."""

import json
import re

import pytest
from kubernetes import client

from tests.harness import ansible
from tests.harness.ansible import wait_for
from tests.harness.docker import REDIS_IMAGE
from tests.harness.kube import deployment_manifest

pytestmark = pytest.mark.integration

NAME = "app"
# Each instance logs a line of its own and exits 3: the kubelet restarts it with a growing back-off.
CRASHING = {
    "image": REDIS_IMAGE,
    "command": ["sh", "-c", "echo boot $(cat /proc/sys/kernel/random/uuid); exit 3"],
    "resources": {"limits": {"memory": "64Mi"}},
}
BOOT_LINE = re.compile(r"^boot [0-9a-f-]{36}$", re.MULTILINE)
NO_METRICS_NOTE = (
    "No usage figures: the cluster has no metrics API (metrics-server), "
    "so only the requests and limits of the pods are recorded."
)


def snapshot(tmp_path, *, check=False, **args):
    """The module's result, from one task of a playbook."""
    playbook = tmp_path / "snapshot.yml"
    out = tmp_path / "snapshot.json"
    playbook.write_text(
        f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - incident.remediation.kubernetes_snapshot: {json.dumps(args)}
      register: found
    - ansible.builtin.copy:
        content: "{{{{ found | to_json }}}}"
        dest: {out}
        mode: "0600"
      check_mode: false
"""
    )
    run = ansible.run_playbook(playbook, {}, check=check, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    return json.loads(out.read_text())


def test_a_crash_looping_deployment_its_previous_log_and_no_metrics_api(
    tmp_path, kube_cluster, kube_client, kube_namespace
):
    client.AppsV1Api(kube_client).create_namespaced_deployment(kube_namespace, deployment_manifest(NAME, CRASHING))
    core = client.CoreV1Api(kube_client)

    def backing_off(pods):
        statuses = [status for pod in pods for status in pod.status.container_statuses or []]
        return (
            len(statuses) == 1
            and statuses[0].restart_count >= 1
            and statuses[0].state.waiting is not None
            and statuses[0].state.waiting.reason == "CrashLoopBackOff"
        )

    (pod,) = wait_for(lambda: core.list_namespaced_pod(kube_namespace).items, backing_off, 90)

    found = snapshot(tmp_path, kubeconfig=str(kube_cluster.kubeconfig), name=NAME, namespace=kube_namespace, check=True)

    assert found["changed"] is False
    status = found["status"]
    assert (status["platform"], status["service"], status["namespace"]) == ("kubernetes", NAME, kube_namespace)
    assert (status["state"], status["replicas_desired"], status["replicas_ready"]) == ("crash-looping", 1, 0)
    (instance,) = status["instances"]
    assert instance["name"] == pod.metadata.name == found["pods"][0]
    assert instance["reason"] == "CrashLoopBackOff"
    (container,) = instance["containers"]
    assert (container["state"], container["last_state"]["exit_code"]) == ("waiting", 3)
    assert {event["object"] for event in status["events"]} >= {f"Deployment/{NAME}", f"Pod/{pod.metadata.name}"}

    # Waiting to restart: its current log is the previous instance's, read once under that header.
    ended = container["last_state"]
    header = (
        f"==> pod {pod.metadata.name}, container {NAME}, previous instance "
        f"(exit 3, {ended['reason']}, ended {ended['finished_at']}) <=="
    )
    lines = found["logs"].splitlines()
    assert lines[0] == header, found["logs"]
    assert BOOT_LINE.fullmatch(lines[1]), found["logs"]
    assert len(lines) == 2, found["logs"]

    # No metrics-server on the test cluster: usage unknown, said so, with the limits.
    resources = found["resources"]
    assert (resources["usage"], resources["note"]) == (None, NO_METRICS_NOTE)
    assert resources["pods"] == [pod.metadata.name]
    assert resources["requests_and_limits"]["memory_limit"] == 64 * 2**20


def test_a_missing_deployment_is_a_result_and_the_connection_comes_from_the_environment(
    tmp_path, kube_cluster, kube_namespace, monkeypatch
):
    # kubernetes.core's connection options, K8S_AUTH_KUBECONFIG included.
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", str(kube_cluster.kubeconfig))

    found = snapshot(tmp_path, name="absent", namespace=kube_namespace)

    status = found["status"]
    assert (status["state"], status["replicas_desired"], status["instances"], status["events"]) == (
        "missing",
        None,
        [],
        [],
    )
    assert found["logs"] == f"(no Deployment 'absent' in the namespace '{kube_namespace}')"
    assert found["pods"] == []
    assert (found["resources"]["usage"], found["resources"]["note"]) == (None, NO_METRICS_NOTE)

    quiet = snapshot(tmp_path, name="absent", namespace=kube_namespace, log_lines=0, resources=False)
    assert (quiet["logs"], quiet["resources"]) == ("", None)


def test_waits_in_one_run_until_the_rollout_is_complete_or_the_time_is_up(
    tmp_path, kube_cluster, kube_client, kube_namespace
):
    apps = client.AppsV1Api(kube_client)
    redis = {"image": REDIS_IMAGE, "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 1}}
    apps.create_namespaced_deployment(kube_namespace, deployment_manifest(NAME, redis))
    args = dict(kubeconfig=str(kube_cluster.kubeconfig), name=NAME, namespace=kube_namespace, log_lines=0)

    found = snapshot(tmp_path, wait_rollout=60, wait_interval=0.25, resources=False, **args)

    # Created just before: the pod had to be scheduled, started and probed Ready first.
    assert 0 < found["waited"] < 60
    status = found["status"]
    assert (status["rollout_state"], status["state"], status["replicas_ready"]) == ("complete", "running", 1)

    # A readiness probe that never passes: the wait ends at its time, the rollout still progressing.
    never_ready = {"exec": {"command": ["false"]}, "periodSeconds": 1}
    apps.patch_namespaced_deployment(
        NAME,
        kube_namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": NAME, "readinessProbe": never_ready}]}}}},
    )
    stuck = snapshot(tmp_path, wait_rollout=3, resources=False, **args)

    assert 3 <= stuck["waited"] < 5
    assert stuck["status"]["rollout_state"] == "progressing"
    # The old pod serves until the new one is Ready (maxUnavailable rounds down to 0).
    assert "1 old replicas pending termination" in stuck["status"]["rollout_reason"]
    assert "not ready: " in stuck["status"]["rollout_reason"]
