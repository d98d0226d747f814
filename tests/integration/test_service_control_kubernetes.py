"""service_control on Kubernetes: what the Molecule scenario cannot stage.

Pod states a kubelet would report (crash loops, OOM kills, restarts between two
status calls) are written into the pod status with the Python client, and
wait_healthy's health URL is a real HTTP server. The role runs through
ansible-playbook; each play writes the facts it set to a JSON file.
"""

import json
import sys

import pytest
import yaml
from kubernetes import client

from tests.harness import ansible
from tests.harness.http_server import HealthServer

pytestmark = pytest.mark.integration

NAME = "app"
IMAGE = "registry.invalid/app:v1"

# Writes a container status into every pod of the Deployment, as a kubelet would.
PATCH_PODS = """
import json, sys
from kubernetes import client, config
kubeconfig, namespace, status = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
core = client.CoreV1Api(config.new_client_from_config(kubeconfig))
for pod in core.list_namespaced_pod(namespace, label_selector="app=app").items:
    core.patch_namespaced_pod_status(pod.metadata.name, namespace, {"status": status})
"""


def pod_status(*, ready, restart_count=0, waiting=None, last_terminated=None):
    flag = "True" if ready else "False"
    container = {
        "name": NAME,
        "image": IMAGE,
        "imageID": "",
        "ready": ready,
        "restartCount": restart_count,
        "state": {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "2024-05-01T10:00:00Z"}},
    }
    if last_terminated:
        container["lastState"] = {"terminated": {"startedAt": None, "finishedAt": None, **last_terminated}}
    return {
        "phase": "Running",
        "conditions": [{"type": kind, "status": flag} for kind in ("Ready", "ContainersReady")],
        "containerStatuses": [container],
    }


@pytest.fixture
def deployment(kube_client, kube_namespace):
    """A Deployment of 1 replica, rolled out."""
    apps = client.AppsV1Api(kube_client)
    apps.create_namespaced_deployment(
        kube_namespace,
        {
            "metadata": {"name": NAME, "labels": {"incident-remediation.test": "1"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": NAME}},
                "template": {
                    "metadata": {"labels": {"app": NAME}},
                    "spec": {"containers": [{"name": NAME, "image": IMAGE}]},
                },
            },
        },
    )
    ansible.wait_for(
        lambda: apps.read_namespaced_deployment(NAME, kube_namespace).status,
        lambda status: status.ready_replicas == 1 and status.updated_replicas == 1 and status.replicas == 1,
        timeout=60,
    )
    return kube_namespace


def play(tmp_path, kube_cluster, namespace, steps):
    """Run service_control once per step ({action, vars} or {patch: pod status}); return what each set."""
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
        if "patch" in step:
            tasks.append(
                {
                    "name": f"Patch the pod status {number}",
                    "ansible.builtin.command": {
                        "argv": [
                            sys.executable,
                            "-c",
                            PATCH_PODS,
                            str(kube_cluster.kubeconfig),
                            namespace,
                            json.dumps(step["patch"]),
                        ]
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


def test_status_reports_a_crash_loop_and_the_oom_kill(tmp_path, kube_cluster, deployment):
    crashing = pod_status(
        ready=False,
        restart_count=3,
        waiting="CrashLoopBackOff",
        last_terminated={"reason": "OOMKilled", "exitCode": 137},
    )
    (facts,) = play(tmp_path, kube_cluster, deployment, [{"patch": crashing}, {"action": "status"}])
    status = facts["status"]
    assert status["state"] == "crash-looping"
    assert status["oom_killed"] is True
    assert status["restart_count"] == 3
    (pod,) = status["instances"]
    assert (pod["state"], pod["reason"], pod["exit_code"], pod["oom_killed"]) == (
        "crash-looping",
        "CrashLoopBackOff",
        137,
        True,
    )


def test_status_sees_the_restart_count_rise_between_two_calls(tmp_path, kube_cluster, deployment):
    once = pod_status(ready=True, restart_count=1, last_terminated={"reason": "Error", "exitCode": 1})
    twice = pod_status(ready=True, restart_count=2, last_terminated={"reason": "Error", "exitCode": 1})
    before, after = play(
        tmp_path,
        kube_cluster,
        deployment,
        [{"patch": once}, {"action": "status"}, {"patch": twice}, {"action": "status"}],
    )
    assert before["status"]["state"] == "running"
    assert before["status"]["restart_count"] == 1
    assert after["status"]["state"] == "crash-looping"
    assert after["status"]["restart_count"] == 2
