"""Verify service_control on Kubernetes: what each converge step returned
(steps.json) and what the API server holds afterwards."""

import json
import os
from pathlib import Path

import pytest
from kubernetes import client, config

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
SCENARIO = json.loads((EPHEMERAL / "target.json").read_text())
STEPS = json.loads((EPHEMERAL / "steps.json").read_text())
NAMESPACE = SCENARIO["target"]["namespace"]
NAME = SCENARIO["target"]["service"]
V1, BROKEN = "incident-remediation/redis:latest", "incident-remediation/redis:absent"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"
STATUS_KEYS = {
    "platform",
    "service",
    "state",
    "replicas_desired",
    "replicas_ready",
    "restart_count",
    "oom_killed",
    "image",
    "resources",
    "revision",
    "last_rollout_time",
    "instances",
}


@pytest.fixture(scope="module")
def apps():
    with config.new_client_from_config(SCENARIO["kubeconfig"]) as api_client:
        yield client.AppsV1Api(api_client)


@pytest.fixture(scope="module")
def deployment(apps):
    return apps.read_namespaced_deployment(NAME, NAMESPACE)


@pytest.fixture(scope="module")
def replicasets(apps):
    """The Deployment's ReplicaSets by revision."""
    items = apps.list_namespaced_replica_set(NAMESPACE, label_selector="app=app").items
    return {int(rs.metadata.annotations[REVISION]): rs for rs in items}


def step(name):
    record = STEPS[name]
    assert record["error"] is None, f"{name} failed: {record['error']}"
    return record


def container(obj):
    return obj.spec.template.spec.containers[0]


def test_every_step_ran():
    expected_errors = {"scale_refused", "set_resources_refused", "restart_missing"}
    assert {name for name, record in STEPS.items() if isinstance(record, dict) and record.get("error")} == (
        expected_errors
    )


def test_status_of_a_healthy_deployment(replicasets):
    status = step("status_initial")["status"]
    assert STATUS_KEYS <= set(status)
    assert status["platform"] == "kubernetes"
    assert status["service"] == NAME
    assert status["state"] == "running"
    assert (status["replicas_desired"], status["replicas_ready"]) == (2, 2)
    assert status["restart_count"] == 0
    assert status["oom_killed"] is False
    assert status["image"] == V1
    assert status["resources"] == {
        "memory_limit": 256 * 2**20,
        "cpu_limit": 0.5,
        "memory_request": 64 * 2**20,
        "cpu_request": 0.1,
    }
    assert status["revision"] == 1
    first = replicasets[1].metadata.creation_timestamp
    assert status["last_rollout_time"] == first.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(status["instances"]) == 2
    for pod in status["instances"]:
        assert pod["state"] == "running"
        assert pod["health"] == "healthy"
        assert pod["revision"] == 1
        assert pod["name"].startswith(replicasets[1].metadata.name + "-")


def test_logs_are_text_and_never_fail():
    logs = step("logs")["logs"]
    assert logs.count("==> pod ") == 2
    # Each pod's Redis, read through the API server from the kubelet.
    assert logs.count("Ready to accept connections") == 2


def test_rollout_restart(deployment, replicasets):
    result = step("restart")["result"]
    assert result["changed"] is True
    restarted_at = result["result"]["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
    # A new ReplicaSet, revision 2, for the restarted template.
    assert replicasets[2].spec.template.metadata.annotations[RESTARTED_AT] == restarted_at
    assert RESTARTED_AT not in (replicasets[1].spec.template.metadata.annotations or {})
    # Later rollouts keep the annotation.
    assert deployment.spec.template.metadata.annotations[RESTARTED_AT] == restarted_at


def test_wait_healthy_on_healthy_deployments():
    for name in ("wait_restart", "wait_set_env", "wait_rollback", "wait_scale", "wait_start"):
        assert step(name)["healthy"] is True, name


def test_wait_healthy_is_false_within_the_timeout_when_broken():
    broken = step("wait_broken")
    assert broken["healthy"] is False
    assert float(broken["seconds"]) < 5 + 15  # the timeout plus Ansible's own overhead on a busy machine
    assert step("wait_stopped")["healthy"] is False
    assert step("wait_missing")["healthy"] is False


def test_a_bad_rollout_is_unhealthy():
    status = step("status_broken")["status"]
    assert status["state"] == "unhealthy"
    assert status["image"] == BROKEN
    assert status["revision"] == 4
    assert status["progress_deadline_exceeded"] is True
    stuck = [pod for pod in status["instances"] if pod["image"] == BROKEN]
    assert stuck
    assert {pod["reason"] for pod in stuck} == {"ErrImageNeverPull"}
    assert {pod["state"] for pod in stuck} == {"unhealthy"}
    # maxUnavailable: the old pods still serve.
    assert status["replicas_ready"] == 2


def test_rollback(deployment, replicasets):
    result = step("rollback")["result"]
    assert result["changed"] is True
    assert result["msg"] == "Rolled back from revision 4 to the pod template of revision 3"
    assert step("wait_rollback")["healthy"] is True
    # Undo reuses revision 3's ReplicaSet (set_env), which becomes revision 5; set_resources made 6.
    assert 3 not in replicasets
    assert container(replicasets[4]).image == BROKEN
    assert replicasets[4].spec.replicas == 0
    assert container(replicasets[5]).image == V1
    assert {env.name: env.value for env in container(replicasets[5]).env}["FOO"] == "baz"
    assert container(deployment).image == V1
    status = step("status_final")["status"]
    assert status["image"] == V1
    assert status["revision"] == 6
    assert {rs["revision"]: rs["image"] for rs in status["replicasets"]} == {
        rev: container(rs).image for rev, rs in replicasets.items()
    }


def test_scale(deployment):
    assert step("scale")["result"]["changed"] is True
    # scale_zero and start come between, and start brings back the 3 replicas.
    status = step("status_final")["status"]
    assert status["state"] == "running"
    assert (status["replicas_desired"], status["replicas_ready"]) == (3, 3)
    assert len(status["instances"]) == 3
    refused = STEPS["scale_refused"]["error"]
    assert "Refused to scale" in refused
    assert "service_control_max_replicas=5" in refused
    assert deployment.spec.replicas == 3
    assert deployment.status.ready_replicas == 3


def test_set_env(deployment):
    assert step("set_env")["result"]["changed"] is True
    env = [(var.name, var.value, var.value_from) for var in container(deployment).env]
    assert env == [("FOO", "baz", None), ("FEATURE_X", "on", None), ("RETRIES", "3", None)]


def test_set_resources(deployment):
    refused = STEPS["set_resources_refused"]["error"]
    assert "Refused to change the resources" in refused
    assert "service_control_allow_set_resources" in refused
    assert step("set_resources")["result"]["changed"] is True
    assert step("status_final")["status"]["resources"] == {
        "memory_limit": 512 * 2**20,
        "cpu_limit": 1.0,
        "memory_request": 64 * 2**20,
        "cpu_request": 0.1,
    }
    resources = container(deployment).resources
    assert resources.limits == {"memory": "512Mi", "cpu": "1"}
    assert resources.requests == {"memory": "64Mi", "cpu": "100m"}


def test_stop_and_start(deployment):
    assert step("scale_zero")["result"]["changed"] is True
    stopped = step("status_stopped")["status"]
    assert stopped["state"] == "stopped"
    assert stopped["replicas_desired"] == 0
    assert deployment.metadata.annotations["incident-remediation/replicas-before-stop"] == "3"
    assert step("start")["result"]["changed"] is True
    assert step("start")["result"]["result"]["spec"]["replicas"] == 3
    assert step("start_again")["result"]["changed"] is False


@pytest.mark.parametrize(
    "name", ["dry_restart", "dry_recreate", "dry_scale", "dry_set_env", "dry_set_resources", "dry_rollback"]
)
def test_dry_run_reports_a_change(name):
    record = step(name)
    assert record["dry_run"] is True
    assert record["result"]["changed"] is True


def test_dry_run_changed_nothing(deployment, replicasets):
    before = STEPS["before_dry_run"]
    assert deployment.metadata.generation == before["metadata"]["generation"]
    assert deployment.metadata.annotations[REVISION] == before["metadata"]["annotations"][REVISION] == "6"
    assert deployment.spec.replicas == before["spec"]["replicas"] == 3
    assert deployment.spec.template.metadata.annotations == before["spec"]["template"]["metadata"]["annotations"]
    app = container(deployment)
    assert app.image == V1
    assert {env.name: env.value for env in app.env}["FOO"] == "baz"
    assert app.resources.limits["memory"] == "512Mi"
    assert max(replicasets) == 6


def test_a_missing_deployment():
    status = step("status_missing")["status"]
    assert status["state"] == "missing"
    assert status["service"] == "absent"
    assert status["replicas_desired"] is None
    assert status["instances"] == []
    assert "There is no Deployment 'absent'" in STEPS["restart_missing"]["error"]
