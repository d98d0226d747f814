"""service_control on Kubernetes, on real pods: what the Molecule scenario does not cover.

Crash loops, OOM kills, failing probes and restarts between two status calls happen
for real (the kubelet runs the pods as Docker containers of the project's images),
and so does a rollout that waits for readiness: the tests read the pods and their
Docker containers as soon as the role returns. The role runs through
ansible-playbook; each play writes what every step set (or the error it failed
with) to a JSON file.
"""

import json
import sys
import urllib.request

import docker
import pytest
import yaml
from kubernetes import client

from tests.harness import ansible
from tests.harness.docker import REDIS_IMAGE
from tests.harness.http_server import HealthServer
from tests.harness.kube import deployment_manifest, pod_ready, rolled_out

pytestmark = pytest.mark.integration

NAME = "app"
CLIENT_APP_IMAGE = "incident-remediation/client-app:latest"
REDIS_PING = {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 1}
# Redis answers PING only after this long: a rollout that does not wait sees pods that are not Ready.
READY_AFTER_S = 2
SLOW_REDIS = {
    "image": REDIS_IMAGE,
    "command": ["sh", "-c", f"sleep {READY_AFTER_S}; exec redis-server --protected-mode no --save ''"],
    "readinessProbe": REDIS_PING,
}
# All new pods at once, no old one stopped before a new one is Ready.
SURGE_ALL = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}}

# Runs inside a play (argv: kubeconfig, namespace, what): "kill" kills the Deployment's (single)
# container with docker and waits until the kubelet has restarted it; "restarts>N" waits until
# the container has restarted more than N times; "pods>FILE" writes the Deployment's pods that are
# not being deleted (name, Ready, pod-template-hash, container env and memory limit as Docker
# runs them) and the newest ReplicaSet's pod-template-hash to FILE, as JSON.
IN_PLAY = """
import json, sys, time
import docker
from kubernetes import client, config
kubeconfig, namespace, what = sys.argv[1:]
api = config.new_client_from_config(kubeconfig)
core = client.CoreV1Api(api)
pods = core.list_namespaced_pod(namespace, label_selector="app=app").items
if what.startswith("pods>"):
    sets = client.AppsV1Api(api).list_namespaced_replica_set(namespace, label_selector="app=app").items
    newest = max(sets, key=lambda rs: int(rs.metadata.annotations["deployment.kubernetes.io/revision"]))
    engine = docker.from_env()
    rows = {}
    for pod in pods:
        if pod.metadata.deletion_timestamp is None:
            (status,) = pod.status.container_statuses
            container = engine.containers.get(status.container_id.removeprefix("docker://")).attrs
            ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
            rows[pod.metadata.name] = {
                "ready": ready,
                "hash": pod.metadata.labels["pod-template-hash"],
                "env": container["Config"]["Env"],
                "memory": container["HostConfig"]["Memory"],
            }
    with open(what.removeprefix("pods>"), "w") as out:
        json.dump({"newest": newest.metadata.labels["pod-template-hash"], "pods": rows}, out)
    sys.exit()
(pod,) = pods
(status,) = pod.status.container_statuses
if what == "kill":
    docker.from_env().containers.get(status.container_id.removeprefix("docker://")).kill()
    more_than = status.restart_count
else:
    more_than = int(what.removeprefix("restarts>"))
deadline = time.monotonic() + 60
while core.read_namespaced_pod(pod.metadata.name, namespace).status.container_statuses[0].restart_count <= more_than:
    if time.monotonic() > deadline:
        sys.exit(f"the container did not restart more than {more_than} times within 60 s")
    time.sleep(0.2)
"""


def make_deployment(kube_client, namespace, container, **options):
    """Create the Deployment ``app`` (deployment_manifest's options) and return its manifest."""
    manifest = deployment_manifest(NAME, container, **options)
    client.AppsV1Api(kube_client).create_namespaced_deployment(namespace, manifest)
    return manifest


def wait_rolled_out(kube_client, namespace, name=NAME):
    apps = client.AppsV1Api(kube_client)
    return ansible.wait_for(lambda: apps.read_namespaced_deployment(name, namespace), rolled_out, timeout=60)


def wait_for_container(kube_client, namespace, done, timeout=60):
    """Wait until ``done`` accepts the status of the Deployment's container; return that status."""
    core = client.CoreV1Api(kube_client)

    def read():
        pods = core.list_namespaced_pod(namespace, label_selector=f"app={NAME}").items
        return pods[0].status.container_statuses[0] if pods and pods[0].status.container_statuses else None

    return ansible.wait_for(read, lambda status: status is not None and done(status), timeout=timeout)


def live_pods(kube_client, namespace, name=NAME):
    """The Deployment's pods that are not being deleted, by name."""
    pods = client.CoreV1Api(kube_client).list_namespaced_pod(namespace, label_selector=f"app={name}").items
    return {pod.metadata.name: pod for pod in pods if pod.metadata.deletion_timestamp is None}


def docker_container(pod):
    """The Docker container of the pod's (single) container."""
    (status,) = pod.status.container_statuses
    return docker.from_env().containers.get(status.container_id.removeprefix("docker://"))


def assert_all_new_and_ready(snapshot, replicas, before=()):
    """A "pods>FILE" snapshot has ``replicas`` pods, all of the newest revision, all Ready, none of ``before``."""
    pods = snapshot["pods"]
    assert len(pods) == replicas, sorted(pods)
    for name, pod in pods.items():
        assert pod["hash"] == snapshot["newest"], f"{name} is of an older revision"
        assert pod["ready"], f"{name} is not Ready"
        assert name not in before, f"{name} was not replaced"
    return pods


def play(tmp_path, kube_cluster, namespace, steps):
    """Run service_control once per step ({action, vars}), or a step of IN_PLAY ("kill", "restarts>N");
    return what each action set, the error it failed with and how long it took."""
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
        if isinstance(step, str):
            tasks.append(
                {
                    "name": f"Step {number}: {step}",
                    "ansible.builtin.command": {
                        "argv": [sys.executable, "-c", IN_PLAY, str(kube_cluster.kubeconfig), namespace, step]
                    },
                    "changed_when": True,
                }
            )
            continue
        # What the step sets, and nothing older; a status keeps the one before (restarts since then count).
        forget = {"service_control_healthy": None, "service_control_result": None, "_error": None}
        if step["action"] != "status":
            forget["service_control_status"] = None
        tasks += [
            {
                "name": f"Start the clock {number}",
                "ansible.builtin.set_fact": {"_started": "{{ now().timestamp() }}", **forget},
            },
            {
                "name": f"Step {number}: {step['action']}",
                "block": [
                    {
                        "name": f"Run service_control {number}",
                        "ansible.builtin.include_role": {"name": "incident.remediation.service_control"},
                        "vars": {"service_control_action": step["action"], **step.get("vars", {})},
                    }
                ],
                "rescue": [
                    {
                        "name": f"Keep the error {number}",
                        "ansible.builtin.set_fact": {"_error": "{{ ansible_failed_result.msg }}"},
                    }
                ],
            },
            {
                "name": f"Record the facts {number}",
                "ansible.builtin.set_fact": {
                    "_facts": "{{ _facts + [{'status': service_control_status | default(none),"
                    " 'healthy': service_control_healthy | default(none),"
                    " 'result': service_control_result | default(none),"
                    " 'error': _error | default(none),"
                    " 'seconds': now().timestamp() - _started | float}] }}",
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
    result = ansible.run_playbook(playbook, {}, timeout=300)
    assert result.returncode == 0, f"play failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(out.read_text())


def act(tmp_path, kube_cluster, namespace, action, **role_vars):
    """One action; fails the test if the action failed; returns what it set."""
    (facts,) = play(tmp_path, kube_cluster, namespace, [{"action": action, "vars": role_vars}])
    assert facts["error"] is None, f"{action} failed: {facts['error']}"
    return facts


@pytest.fixture
def deployment(kube_client, kube_namespace):
    """A Deployment of 1 Redis replica, ready once Redis answers PING, rolled out."""
    make_deployment(kube_client, kube_namespace, {"image": REDIS_IMAGE, "readinessProbe": REDIS_PING})
    wait_rolled_out(kube_client, kube_namespace)
    return kube_namespace


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
                    "vars": {"service_control_health_url": server.url("/absent"), "service_control_wait_timeout": 5},
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
    assert "rollout" not in rollback["result"], "nothing changed, nothing to wait for"


def test_status_reports_a_crash_loop_with_a_growing_restart_count(tmp_path, kube_cluster, kube_client, kube_namespace):
    make_deployment(kube_client, kube_namespace, {"image": REDIS_IMAGE, "command": ["false"]})
    first = wait_for_container(
        kube_client,
        kube_namespace,
        lambda status: status.state.waiting is not None and status.state.waiting.reason == "CrashLoopBackOff",
    )
    before, after = play(
        tmp_path,
        kube_cluster,
        kube_namespace,
        [{"action": "status"}, f"restarts>{first.restart_count}", {"action": "status"}],
    )
    for facts in (before, after):
        status = facts["status"]
        assert status["state"] == "crash-looping"
        assert status["oom_killed"] is False
        (pod,) = status["instances"]
        assert (pod["state"], pod["ready"], pod["exit_code"]) == ("crash-looping", False, 1)
        # Between two back-offs the container may be starting again (reason: how it ended last).
        assert pod["reason"] in ("CrashLoopBackOff", "Error")
        # How it ended last: its current state if it has just ended again, else its previous instance's.
        (container,) = pod["containers"]
        ended = container if container["state"] == "terminated" else container["last_state"]
        assert (ended["reason"], ended["exit_code"]) == ("Error", 1), container
        assert any(event["reason"] == "BackOff" for event in status["events"])
    assert before["status"]["restart_count"] >= first.restart_count >= 1
    assert after["status"]["restart_count"] > before["status"]["restart_count"]


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
    (container,) = pod["containers"]
    assert (container["last_state"]["reason"], container["last_state"]["exit_code"]) == ("OOMKilled", 137)


def test_status_sees_the_restart_count_rise_between_two_calls(tmp_path, kube_cluster, deployment):
    before, after = play(tmp_path, kube_cluster, deployment, [{"action": "status"}, "kill", {"action": "status"}])
    assert before["status"]["state"] == "running"
    assert before["status"]["restart_count"] == 0
    assert after["status"]["state"] == "crash-looping"
    assert after["status"]["restart_count"] == 1
    (pod,) = after["status"]["instances"]
    assert pod["exit_code"] == 137  # SIGKILL


def test_changes_roll_the_pods_and_wait_until_the_new_ones_are_ready(
    tmp_path, kube_cluster, kube_client, kube_namespace
):
    make_deployment(kube_client, kube_namespace, SLOW_REDIS, strategy=SURGE_ALL)
    wait_rolled_out(kube_client, kube_namespace)
    first = live_pods(kube_client, kube_namespace)
    snapshots = [tmp_path / f"pods-{number}.json" for number in range(4)]

    results = play(
        tmp_path,
        kube_cluster,
        kube_namespace,
        [
            {"action": "restart"},
            f"pods>{snapshots[0]}",
            {"action": "scale", "vars": {"service_control_replicas": 2}},
            f"pods>{snapshots[1]}",
            {"action": "set_env", "vars": {"service_control_env": {"CACHE_MODE": "lru"}}},
            f"pods>{snapshots[2]}",
            {
                "action": "set_resources",
                "vars": {
                    "service_control_allow_set_resources": True,
                    "service_control_resources": {"memory_limit": "96m"},
                },
            },
            f"pods>{snapshots[3]}",
        ],
    )
    for facts in results:
        assert facts["error"] is None, facts["error"]
        rollout = facts["result"]["rollout"]
        assert (rollout["state"], rollout["reason"]) == ("complete", None)
        # Each new pod answers PING only READY_AFTER_S after it started.
        assert rollout["seconds"] >= READY_AFTER_S - 0.5
    restarted, scaled, with_env, limited = (json.loads(path.read_text()) for path in snapshots)

    restarted = assert_all_new_and_ready(restarted, 1, before=first)
    scaled = assert_all_new_and_ready(scaled, 2)
    assert set(restarted) < set(scaled), "scaling up keeps the running pod"
    with_env = assert_all_new_and_ready(with_env, 2, before=scaled)
    for pod in with_env.values():
        assert "CACHE_MODE=lru" in pod["env"]
        assert pod["memory"] == 0
    for pod in assert_all_new_and_ready(limited, 2, before=with_env).values():
        assert "CACHE_MODE=lru" in pod["env"]
        assert pod["memory"] == 96 * 2**20


def test_a_rollout_that_never_gets_ready_is_stalled_and_rolled_back(
    tmp_path, kube_cluster, kube_client, kube_namespace
):
    """The client app, ready while its Redis answers, gets a Redis URL that does not answer."""
    client.AppsV1Api(kube_client).create_namespaced_deployment(
        kube_namespace, deployment_manifest("redis", {"image": REDIS_IMAGE, "readinessProbe": REDIS_PING})
    )
    wait_rolled_out(kube_client, kube_namespace, "redis")
    (redis_pod,) = live_pods(kube_client, kube_namespace, "redis").values()
    good_url, bad_url = (f"redis://{redis_pod.status.pod_ip}:{port}/0" for port in (6379, 6380))
    health = {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 1, "timeoutSeconds": 2}
    make_deployment(
        kube_client,
        kube_namespace,
        {
            "image": CLIENT_APP_IMAGE,
            "env": [{"name": "REDIS_URL", "value": good_url}, {"name": "APP_RELEASE", "value": "v1"}],
            "readinessProbe": {**health, "failureThreshold": 1},
        },
        progressDeadlineSeconds=6,
    )
    wait_rolled_out(kube_client, kube_namespace)
    (serving,) = live_pods(kube_client, kube_namespace).values()

    bad_env, status, waited, rollback = play(
        tmp_path,
        kube_cluster,
        kube_namespace,
        [
            {"action": "set_env", "vars": {"service_control_env": {"REDIS_URL": bad_url}}},
            {"action": "status"},
            {"action": "wait_healthy", "vars": {"service_control_wait_timeout": 30}},
            {"action": "rollback"},
        ],
    )

    # set_env waited, saw the rollout stall and failed with the reason.
    assert bad_env["result"]["changed"] is True
    assert bad_env["result"]["rollout"]["state"] == "stalled"
    assert "ProgressDeadlineExceeded" in bad_env["error"]
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in bad_env["error"]
    # The status says so too: the new pod runs, never restarted, but is not Ready.
    status = status["status"]
    assert (status["state"], status["rollout_state"], status["progress_deadline_exceeded"]) == (
        "unhealthy",
        "stalled",
        True,
    )
    assert "Readiness probe failed" in status["rollout_reason"]
    (new_pod,) = [pod for pod in status["instances"] if pod["revision"] == 2]
    assert (new_pod["ready"], new_pod["restart_count"], new_pod["containers"][0]["state"]) == (False, 0, "running")
    assert new_pod["reason"] == "Unhealthy"
    assert new_pod["last_warning"].startswith("Unhealthy: Readiness probe failed")
    (old_pod,) = [pod for pod in status["instances"] if pod["revision"] == 1]
    assert (old_pod["name"], old_pod["ready"]) == (serving.metadata.name, True), "the old pod keeps serving"
    # wait_healthy stops at the stall instead of waiting out its 30 s, and says why.
    assert waited["healthy"] is False
    assert waited["seconds"] < 20
    assert waited["status"]["rollout_state"] == "stalled"

    # The rollback brings revision 1's pod template back, Ready.
    assert rollback["error"] is None, rollback["error"]
    assert rollback["result"]["msg"] == "Rolled back from revision 2 to the pod template of revision 1"
    assert rollback["result"]["rollout"]["state"] == "complete"
    deployment = client.AppsV1Api(kube_client).read_namespaced_deployment(NAME, kube_namespace)
    assert deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    assert rolled_out(deployment)
    (pod,) = live_pods(kube_client, kube_namespace).values()
    assert pod_ready(pod)
    assert f"REDIS_URL={good_url}" in docker_container(pod).attrs["Config"]["Env"]
    with urllib.request.urlopen(f"http://{pod.status.pod_ip}:8080/health", timeout=5) as answer:
        assert json.load(answer)["release"] == "v1"
