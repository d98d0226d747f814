"""Fixtures for integration tests against real services on loopback."""

import os
import uuid

import pytest
from kubernetes import client, config

from tests.harness.kube import KubeCluster, KubeError


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory):
    """A real single-node cluster (kubelet on this machine's Docker) for the session; errors (never skips)
    without binaries. With $IR_KUBE_STATE_DIR, the cluster already running from that folder
    (python -m tests.harness.kube start --state-dir DIR) is used and left running."""
    if state_dir := os.environ.get("IR_KUBE_STATE_DIR"):
        cluster = KubeCluster(state_dir)
        if not cluster.running():
            raise KubeError(f"no cluster runs from IR_KUBE_STATE_DIR={state_dir}")
        yield cluster
        return
    cluster = KubeCluster(tmp_path_factory.mktemp("kube"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def kube_client(kube_cluster):
    """A Kubernetes API client logged in as cluster admin."""
    with config.new_client_from_config(str(kube_cluster.kubeconfig)) as api_client:
        yield api_client


@pytest.fixture
def kube_namespace(kube_client):
    """The name of a fresh namespace, deleted after the test."""
    core = client.CoreV1Api(kube_client)
    name = f"test-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)
