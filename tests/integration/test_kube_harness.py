"""The test cluster's kubelet really runs pods (tests/harness/kube.py).

A Redis Deployment with an exec readiness probe becomes Ready, its pod is a Docker
container answering PING, and killing that container with docker makes the pod not
Ready until the kubelet has restarted it: what a redis_down scenario on Kubernetes
breaks and expects to heal. A Redis frozen with SIGSTOP fails its readiness probe
(out of Ready) and then its liveness probe, and the kubelet restarts it.
"""

import docker
import pytest
import redis
from kubernetes import client, watch

from tests.harness import ansible
from tests.harness.docker import REDIS_IMAGE
from tests.harness.kube import deployment_manifest, pod_ready, rolled_out

pytestmark = pytest.mark.integration

NAME = "redis"


PING = {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 1, "timeoutSeconds": 1}


def create_and_roll_out(kube_client, namespace, container, **options):
    """A Deployment of one pod (deployment_manifest's options), rolled out; returns the pod."""
    apps = client.AppsV1Api(kube_client)
    apps.create_namespaced_deployment(namespace, deployment_manifest(NAME, container, **options))
    ansible.wait_for(lambda: apps.read_namespaced_deployment(NAME, namespace), rolled_out, timeout=60)
    (pod,) = client.CoreV1Api(kube_client).list_namespaced_pod(namespace, label_selector=f"app={NAME}").items
    return pod


@pytest.fixture
def redis_pod(kube_client, kube_namespace):
    """A rolled-out Deployment of one Redis pod, ready once ``redis-cli ping`` answers; returns the pod."""
    return create_and_roll_out(kube_client, kube_namespace, {"image": REDIS_IMAGE, "readinessProbe": PING})


def test_the_pod_is_a_redis_container(kube_client, redis_pod):
    assert pod_ready(redis_pod)
    (status,) = redis_pod.status.container_statuses
    engine = docker.from_env()
    container = engine.containers.get(status.container_id.removeprefix("docker://"))
    assert container.status == "running"
    assert container.name.startswith(f"k8s_{NAME}_{redis_pod.metadata.name}_")
    assert redis.Redis(host=redis_pod.status.pod_ip, socket_timeout=5).ping() is True
    # Logs come from the kubelet through the API server.
    log = client.CoreV1Api(kube_client).read_namespaced_pod_log(redis_pod.metadata.name, redis_pod.metadata.namespace)
    assert "Ready to accept connections" in log


def watch_until_restarted_and_ready(core, pod):
    """(Ready, restart count) of every status the pod goes through from its version on, for up
    to 60 s, until it is Ready again after a restart; and the pod as last seen."""
    seen = []
    events = watch.Watch().stream(
        core.list_namespaced_pod,
        pod.metadata.namespace,
        field_selector=f"metadata.name={pod.metadata.name}",
        resource_version=pod.metadata.resource_version,
        timeout_seconds=60,
    )
    for event in events:
        pod = event["object"]
        (status,) = pod.status.container_statuses
        seen.append((pod_ready(pod), status.restart_count))
        if pod_ready(pod) and status.restart_count > 0:
            break
    return seen, pod


def test_docker_kill_makes_the_pod_unready_until_the_kubelet_restarts_it(kube_client, redis_pod):
    core = client.CoreV1Api(kube_client)
    (before,) = redis_pod.status.container_statuses
    assert before.restart_count == 0
    docker.from_env().containers.get(before.container_id.removeprefix("docker://")).kill()

    # Every status the pod went through after the kill, in order (the watch replays from the pod's version).
    seen, pod = watch_until_restarted_and_ready(core, redis_pod)
    assert any(not is_ready for is_ready, _ in seen), f"the pod never showed not Ready: {seen}"
    assert seen[-1:] == [(True, 1)], f"the pod did not come back Ready after one restart within 60 s: {seen}"
    (after,) = pod.status.container_statuses
    assert after.last_state.terminated.exit_code == 137  # SIGKILL
    assert after.container_id != before.container_id
    assert redis.Redis(host=pod.status.pod_ip, socket_timeout=5).ping() is True


def test_a_frozen_redis_fails_readiness_then_liveness_and_the_kubelet_restarts_it(kube_client, kube_namespace):
    core = client.CoreV1Api(kube_client)
    container = {
        "image": REDIS_IMAGE,
        "readinessProbe": {**PING, "failureThreshold": 1},
        # Later than readiness, so that the pod is seen out of Ready before the restart.
        "livenessProbe": {**PING, "failureThreshold": 4},
    }
    pod = create_and_roll_out(kube_client, kube_namespace, container, pod_spec={"terminationGracePeriodSeconds": 1})
    (before,) = pod.status.container_statuses
    docker.from_env().containers.get(before.container_id.removeprefix("docker://")).kill(signal="SIGSTOP")

    seen, pod = watch_until_restarted_and_ready(core, pod)
    assert (False, 0) in seen, f"the frozen Redis never showed not Ready before its restart: {seen}"
    assert seen[-1] == (True, 1), f"the kubelet did not restart the frozen Redis within 60 s: {seen}"
    (after,) = pod.status.container_statuses
    assert after.container_id != before.container_id
    assert after.last_state.terminated.exit_code == 137  # SIGKILL: a stopped process ignores SIGTERM
    probes = [
        (event.reason, event.message)
        for event in core.list_namespaced_event(kube_namespace).items
        if event.involved_object.name == pod.metadata.name and event.type == "Warning"
    ]
    assert any(reason == "Unhealthy" and message.startswith("Readiness probe failed") for reason, message in probes)
    assert any(reason == "Unhealthy" and message.startswith("Liveness probe failed") for reason, message in probes)
    assert redis.Redis(host=pod.status.pod_ip, socket_timeout=5).ping() is True
