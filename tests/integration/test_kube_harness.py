"""The test cluster's kubelet really runs pods (tests/harness/kube.py).

A Redis Deployment with an exec readiness probe becomes Ready, its pod is a Docker
container answering PING, and killing that container with docker makes the pod not
Ready until the kubelet has restarted it: what a redis_down scenario on Kubernetes
breaks and expects to heal.
"""

import docker
import pytest
import redis
from kubernetes import client, watch

from tests.harness import ansible
from tests.harness.docker import REDIS_IMAGE

pytestmark = pytest.mark.integration

NAME = "redis"


def ready(pod):
    return any(cond.type == "Ready" and cond.status == "True" for cond in pod.status.conditions or [])


@pytest.fixture
def redis_pod(kube_client, kube_namespace):
    """A rolled-out Deployment of one Redis pod, ready once ``redis-cli ping`` answers; yields the pod."""
    apps = client.AppsV1Api(kube_client)
    container = {
        "name": NAME,
        "image": REDIS_IMAGE,
        "imagePullPolicy": "Never",
        "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 1},
    }
    apps.create_namespaced_deployment(
        kube_namespace,
        {
            "metadata": {"name": NAME},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": NAME}},
                "template": {"metadata": {"labels": {"app": NAME}}, "spec": {"containers": [container]}},
            },
        },
    )
    ansible.wait_for(
        lambda: apps.read_namespaced_deployment(NAME, kube_namespace).status,
        lambda status: (status.ready_replicas, status.available_replicas, status.replicas) == (1, 1, 1),
        timeout=60,
    )
    (pod,) = client.CoreV1Api(kube_client).list_namespaced_pod(kube_namespace, label_selector=f"app={NAME}").items
    return pod


def test_the_pod_is_a_redis_container(kube_client, redis_pod):
    assert ready(redis_pod)
    (status,) = redis_pod.status.container_statuses
    engine = docker.from_env()
    container = engine.containers.get(status.container_id.removeprefix("docker://"))
    assert container.status == "running"
    assert container.name.startswith(f"k8s_{NAME}_{redis_pod.metadata.name}_")
    assert redis.Redis(host=redis_pod.status.pod_ip, socket_timeout=5).ping() is True
    # Logs come from the kubelet through the API server.
    log = client.CoreV1Api(kube_client).read_namespaced_pod_log(redis_pod.metadata.name, redis_pod.metadata.namespace)
    assert "Ready to accept connections" in log


def test_docker_kill_makes_the_pod_unready_until_the_kubelet_restarts_it(kube_client, redis_pod):
    core = client.CoreV1Api(kube_client)
    (before,) = redis_pod.status.container_statuses
    assert before.restart_count == 0
    docker.from_env().containers.get(before.container_id.removeprefix("docker://")).kill()

    # Every status the pod went through after the kill, in order (the watch replays from the pod's version).
    seen = []
    events = watch.Watch().stream(
        core.list_namespaced_pod,
        redis_pod.metadata.namespace,
        field_selector=f"metadata.name={redis_pod.metadata.name}",
        resource_version=redis_pod.metadata.resource_version,
        timeout_seconds=60,
    )
    for event in events:
        pod = event["object"]
        (status,) = pod.status.container_statuses
        seen.append((ready(pod), status.restart_count))
        if ready(pod) and status.restart_count > 0:
            break
    assert any(not is_ready for is_ready, _ in seen), f"the pod never showed not Ready: {seen}"
    assert seen[-1:] == [(True, 1)], f"the pod did not come back Ready after one restart within 60 s: {seen}"
    (after,) = pod.status.container_statuses
    assert after.last_state.terminated.exit_code == 137  # SIGKILL
    assert after.container_id != before.container_id
    assert redis.Redis(host=pod.status.pod_ip, socket_timeout=5).ping() is True
