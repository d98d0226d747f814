"""Deployment rollouts on a real single-node cluster, driven by kubernetes.core modules.

Actions go through ansible-playbook (playbooks/); assertions read the API with the Python client.
Pods are Redis containers; v1 and v2 are two local tags of the Redis image, and the
broken revision names an image that does not exist here (never pulled).
"""

from pathlib import Path

import docker
import pytest
from kubernetes import client

from tests.harness import ansible
from tests.harness.docker import REDIS_IMAGE

PLAYBOOKS = Path(__file__).parent / "playbooks"
REVISION = "deployment.kubernetes.io/revision"
NAME = "web"
APP_REPOSITORY = "incident-remediation/kube-rollout-app"
V1, V2, BROKEN = (f"{APP_REPOSITORY}:{tag}" for tag in ("v1", "v2", "absent"))


def run_playbook(playbook, kube_cluster, namespace, **extra_vars):
    """Run playbooks/``playbook`` on localhost against the test cluster."""
    extra_vars = {
        "kubeconfig": str(kube_cluster.kubeconfig),
        "app_namespace": namespace,
        "app_name": NAME,
        **extra_vars,
    }
    result = ansible.run_playbook(PLAYBOOKS / playbook, extra_vars, timeout=180)
    assert result.returncode == 0, f"{playbook} failed:\n{result.stdout}\n{result.stderr}"


def wait_for(read, done, timeout=60):
    """Poll ``read()`` until ``done`` accepts its result; fail the test with the last value on timeout."""
    try:
        return ansible.wait_for(read, done, timeout)
    except TimeoutError as exc:
        pytest.fail(str(exc))


def condition(deployment, kind):
    return next((cond for cond in deployment.status.conditions or [] if cond.type == kind), None)


def rolled_out(replicas):
    """Whether the controller saw the latest spec and all ``replicas`` pods are updated and available."""

    def done(deployment):
        status = deployment.status
        available = condition(deployment, "Available")
        return (
            (status.observed_generation or 0) >= deployment.metadata.generation
            and status.replicas == status.updated_replicas == status.ready_replicas == replicas
            and status.available_replicas == replicas
            and available is not None
            and available.status == "True"
        )

    return done


def image(obj):
    return obj.spec.template.spec.containers[0].image


@pytest.fixture(scope="module", autouse=True)
def app_images():
    """V1 and V2 as local tags of the Redis image, untagged afterwards."""
    engine = docker.from_env()
    redis_image = engine.images.get(REDIS_IMAGE)
    for tag in ("v1", "v2"):
        redis_image.tag(APP_REPOSITORY, tag)
    yield
    for tag in (V1, V2):
        engine.images.remove(tag)
    engine.close()


@pytest.fixture
def apps(kube_client):
    return client.AppsV1Api(kube_client)


@pytest.mark.integration
def test_scale_rollout_and_rollback(kube_cluster, kube_namespace, apps):
    def read():
        return apps.read_namespaced_deployment(NAME, kube_namespace)

    def replica_sets():
        found = apps.list_namespaced_replica_set(kube_namespace, label_selector=f"app={NAME}").items
        return {rs.metadata.annotations[REVISION]: rs for rs in found}

    run_playbook("deployment.yml", kube_cluster, kube_namespace, app_image=V1)
    wait_for(read, rolled_out(1))

    run_playbook("scale.yml", kube_cluster, kube_namespace, app_replicas=3)
    assert wait_for(read, rolled_out(3)).status.ready_replicas == 3
    [original] = replica_sets().values()
    assert (original.spec.replicas, original.status.ready_replicas) == (3, 3)

    run_playbook("set_image.yml", kube_cluster, kube_namespace, app_image=V2)
    assert wait_for(read, rolled_out(3)).metadata.annotations[REVISION] == "2"
    by_revision = replica_sets()
    assert sorted(by_revision) == ["1", "2"]
    assert (image(by_revision["2"]), by_revision["2"].spec.replicas) == (V2, 3)
    assert (by_revision["1"].metadata.uid, by_revision["1"].spec.replicas) == (original.metadata.uid, 0)

    run_playbook("rollback.yml", kube_cluster, kube_namespace)
    deployment = wait_for(read, rolled_out(3))
    assert image(deployment) == V1
    assert deployment.metadata.annotations[REVISION] == "3"
    by_revision = replica_sets()
    assert sorted(by_revision) == ["2", "3"], "the rollback must re-use the v1 ReplicaSet, not create a third"
    assert (by_revision["3"].metadata.uid, image(by_revision["3"])) == (original.metadata.uid, V1)
    assert (by_revision["3"].spec.replicas, by_revision["2"].spec.replicas) == (3, 0)


@pytest.mark.integration
def test_broken_image_exceeds_progress_deadline(kube_cluster, kube_namespace, apps, kube_client):
    def read():
        return apps.read_namespaced_deployment(NAME, kube_namespace)

    def deadline_exceeded(deployment):
        progressing = condition(deployment, "Progressing")
        return progressing is not None and progressing.reason == "ProgressDeadlineExceeded"

    run_playbook("deployment.yml", kube_cluster, kube_namespace, app_image=V1, app_progress_deadline_seconds=5)
    wait_for(read, rolled_out(1))

    run_playbook("set_image.yml", kube_cluster, kube_namespace, app_image=BROKEN)
    deployment = wait_for(read, deadline_exceeded)
    assert condition(deployment, "Progressing").status == "False"
    assert deployment.status.available_replicas == 1, "the v1 pod keeps serving"
    pods = client.CoreV1Api(kube_client).list_namespaced_pod(kube_namespace, label_selector=f"app={NAME}").items
    waiting = [pod.status.container_statuses[0].state.waiting for pod in pods if pod.spec.containers[0].image == BROKEN]
    assert [state.reason for state in waiting] == ["ErrImageNeverPull"]
