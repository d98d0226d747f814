"""service_control on Kubernetes: what the Molecule scenario does not cover, on real pods.

Crash loops, OOM kills and restarts between two status calls happen for real
(the kubelet runs the pods as Docker containers), and wait_healthy's health URL
is a real HTTP server. The role runs through ansible-playbook; each play writes
the facts it set to a JSON file.
"""

import json
import sys

import pytest
import yaml
from kubernetes import client

from tests.harness import ansible
from tests.harness.docker import REDIS_IMAGE
from tests.harness.http_server import HealthServer

pytestmark = pytest.mark.integration

NAME = "app"

# Kills the Deployment's (single) container with docker and waits until the kubelet has restarted it.
KILL_CONTAINER = """
import sys, time
import docker
from kubernetes import client, config
kubeconfig, namespace = sys.argv[1], sys.argv[2]
core = client.CoreV1Api(config.new_client_from_config(kubeconfig))
(pod,) = core.list_namespaced_pod(namespace, label_selector="app=app").items
(status,) = pod.status.container_statuses
docker.from_env().containers.get(status.container_id.removeprefix("docker://")).kill()
deadline = time.monotonic() + 60
while core.read_namespaced_pod(pod.metadata.name, namespace).status.container_statuses[0].restart_count == 0:
    if time.monotonic() > deadline:
        sys.exit("the kubelet did not restart the killed container within 60 s")
    time.sleep(0.2)
"""


def make_deployment(kube_client, namespace, container):
    """A Deployment of 1 replica whose container is ``container`` (name and pull policy added)."""
    client.AppsV1Api(kube_client).create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": NAME, "labels": {"incident-remediation.test": "1"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": NAME}},
                "template": {
                    "metadata": {"labels": {"app": NAME}},
                    "spec": {"containers": [{"name": NAME, "imagePullPolicy": "Never", **container}]},
                },
            },
        },
    )


def wait_for_container(kube_client, namespace, done, timeout=60):
    """Wait until ``done`` accepts the status of the Deployment's container; return that status."""
    core = client.CoreV1Api(kube_client)

    def read():
        pods = core.list_namespaced_pod(namespace, label_selector=f"app={NAME}").items
        return pods[0].status.container_statuses[0] if pods and pods[0].status.container_statuses else None

    return ansible.wait_for(read, lambda status: status is not None and done(status), timeout=timeout)


@pytest.fixture
def deployment(kube_client, kube_namespace):
    """A Deployment of 1 Redis replica, ready once Redis answers PING, rolled out."""
    make_deployment(
        kube_client,
        kube_namespace,
        {"image": REDIS_IMAGE, "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 1}},
    )
    apps = client.AppsV1Api(kube_client)
    ansible.wait_for(
        lambda: apps.read_namespaced_deployment(NAME, kube_namespace).status,
        lambda status: status.ready_replicas == 1 and status.updated_replicas == 1 and status.replicas == 1,
        timeout=60,
    )
    return kube_namespace


def play(tmp_path, kube_cluster, namespace, steps):
    """Run service_control once per step ({action, vars}, or "kill": kill the container); return what each set."""
    out = tmp_path / "facts.json"
    tasks = [
        {
            "name": "Set the incident as incident_context would",
            "ansible.builtin.set_fact": {
                "incident": {"target": {"platform": "kubernetes", "service": NAME, "namespace": namespace}},
                "_facts": [],
            },
        }
    ]
    for number, step in enumerate(steps):
        if step == "kill":
            tasks.append(
                {
                    "name": f"Kill the container {number}",
                    "ansible.builtin.command": {
                        "argv": [sys.executable, "-c", KILL_CONTAINER, str(kube_cluster.kubeconfig), namespace]
                    },
                    "changed_when": True,
                }
            )
            continue
        tasks += [
            {
                "name": f"Run service_control {number}",
                "ansible.builtin.include_role": {"name": "incident.remediation.service_control"},
                "vars": {"service_control_action": step["action"], **step.get("vars", {})},
            },
            {
                "name": f"Record the facts {number}",
                "ansible.builtin.set_fact": {
                    "_facts": "{{ _facts + [{'status': service_control_status | default(none),"
                    " 'healthy': service_control_healthy | default(none),"
                    " 'result': service_control_result | default(none)}] }}"
                },
            },
        ]
    tasks.append(
        {
            "name": "Write the facts",
            "ansible.builtin.copy": {"dest": str(out), "content": "{{ _facts | to_json }}", "mode": "0600"},
        }
    )
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Run service_control",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "vars": {
                        "service_control_kubeconfig": str(kube_cluster.kubeconfig),
                        "service_control_dry_run": False,
                    },
                    "tasks": tasks,
                }
            ],
            sort_keys=False,
        )
    )
    result = ansible.run_playbook(playbook, {}, timeout=180)
    assert result.returncode == 0, f"play failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(out.read_text())


def test_health_url_and_a_rollback_without_history(tmp_path, kube_cluster, deployment):
    with HealthServer() as server:
        up, missing, rollback = play(
            tmp_path,
            kube_cluster,
            deployment,
            [
                {"action": "wait_healthy", "vars": {"service_control_health_url": server.url("/health")}},
                {
                    "action": "wait_healthy",
                    "vars": {"service_control_health_url": server.url("/absent"), "service_control_wait_timeout": 3},
                },
                # Revision 1 has nothing before it.
                {"action": "rollback"},
            ],
        )
        assert up["healthy"] is True
        assert missing["healthy"] is False
        paths = [request["path"] for request in server.requests]
    assert paths[0] == "/health"
    assert paths.count("/absent") >= 2  # retried until the timeout
    assert rollback["result"]["changed"] is False
    assert rollback["result"]["msg"] == "No rollout history found for resource Deployment/app; nothing was changed."


def test_status_reports_a_crash_loop(tmp_path, kube_cluster, kube_client, kube_namespace):
    make_deployment(kube_client, kube_namespace, {"image": REDIS_IMAGE, "command": ["false"]})
    wait_for_container(
        kube_client,
        kube_namespace,
        lambda status: status.state.waiting is not None and status.state.waiting.reason == "CrashLoopBackOff",
    )
    (facts,) = play(tmp_path, kube_cluster, kube_namespace, [{"action": "status"}])
    status = facts["status"]
    assert status["state"] == "crash-looping"
    assert status["oom_killed"] is False
    assert status["restart_count"] >= 1
    (pod,) = status["instances"]
    assert (pod["state"], pod["ready"], pod["exit_code"]) == ("crash-looping", False, 1)
    # Between two back-offs the container may be starting again (reason: how it ended last).
    assert pod["reason"] in ("CrashLoopBackOff", "Error")


def test_status_reports_the_oom_kill(tmp_path, kube_cluster, kube_client, kube_namespace):
    make_deployment(
        kube_client,
        kube_namespace,
        {
            "image": REDIS_IMAGE,
            "command": ["tail", "/dev/zero"],  # reads one endless line into memory
            "resources": {"limits": {"memory": "20Mi"}},
        },
    )
    wait_for_container(
        kube_client,
        kube_namespace,
        lambda status: status.last_state.terminated is not None and status.last_state.terminated.reason == "OOMKilled",
    )
    (facts,) = play(tmp_path, kube_cluster, kube_namespace, [{"action": "status"}])
    status = facts["status"]
    assert status["state"] == "crash-looping"
    assert status["oom_killed"] is True
    assert status["restart_count"] >= 1
    (pod,) = status["instances"]
    assert (pod["state"], pod["oom_killed"], pod["exit_code"]) == ("crash-looping", True, 137)
    assert pod["reason"] in ("CrashLoopBackOff", "OOMKilled")


def test_status_sees_the_restart_count_rise_between_two_calls(tmp_path, kube_cluster, deployment):
    before, after = play(tmp_path, kube_cluster, deployment, [{"action": "status"}, "kill", {"action": "status"}])
    assert before["status"]["state"] == "running"
    assert before["status"]["restart_count"] == 0
    assert after["status"]["state"] == "crash-looping"
    assert after["status"]["restart_count"] == 1
    (pod,) = after["status"]["instances"]
    assert pod["exit_code"] == 137  # SIGKILL
