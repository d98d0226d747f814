"""Unit tests for plugins/filter/kubernetes_service_status.py."""

import copy

import pytest
from ansible_collections.incident.remediation.plugins.filter.kubernetes_service_status import (
    FilterModule,
    cpu_cores,
    kubernetes_service_status,
    memory_bytes,
    pod_state,
)

IMAGE = "registry.example.com/shop/api:1.4.2"
DEPLOYMENT_UID = "d0000000-0000-4000-8000-000000000001"


def deployment(replicas=2, ready=2, *, image=IMAGE, revision="3", limits=None, requests=None, conditions=None):
    """A Deployment as k8s_info returns it."""
    resources = {}
    if limits is not None:
        resources["limits"] = limits
    if requests is not None:
        resources["requests"] = requests
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "api",
            "namespace": "shop",
            "uid": DEPLOYMENT_UID,
            "generation": 4,
            "annotations": {"deployment.kubernetes.io/revision": revision},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "api", "image": image, "resources": resources}]},
            },
        },
        "status": {
            "observedGeneration": 4,
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": replicas,
            "availableReplicas": ready,
            "conditions": conditions
            if conditions is not None
            else [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        },
    }


def replicaset(name_hash, revision, created, *, image=IMAGE, replicas=2, ready=2, owner=DEPLOYMENT_UID):
    return {
        "metadata": {
            "name": "api-" + name_hash,
            "uid": "rs-" + name_hash,
            "labels": {"app": "api", "pod-template-hash": name_hash},
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "creationTimestamp": created,
            "ownerReferences": [{"kind": "Deployment", "name": "api", "uid": owner}],
        },
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "api", "image": image}]}}},
        "status": {"replicas": replicas, "readyReplicas": ready},
    }


def pod(
    name="api-7d9f-abcde",
    *,
    name_hash="7d9f",
    ready=True,
    waiting=None,
    restart_count=0,
    last_terminated=None,
    phase=None,
    image=IMAGE,
    deleting=False,
):
    """A pod as k8s_info returns it, with one container."""
    state = (
        {"waiting": {"reason": waiting, "message": "details of " + waiting}}
        if waiting
        else {"running": {"startedAt": "2024-05-01T10:00:05Z"}}
    )
    container_status = {
        "name": "api",
        "image": image,
        "ready": ready,
        "restartCount": restart_count,
        "state": state,
    }
    if last_terminated:
        container_status["lastState"] = {"terminated": last_terminated}
    metadata = {
        "name": name,
        "labels": {"app": "api", "pod-template-hash": name_hash},
        "ownerReferences": [{"kind": "ReplicaSet", "name": "api-" + name_hash, "uid": "rs-" + name_hash}],
    }
    if deleting:
        metadata["deletionTimestamp"] = "2024-05-01T10:05:00Z"
    return {
        "metadata": metadata,
        "spec": {"containers": [{"name": "api", "image": image}]},
        "status": {
            "phase": phase or ("Running" if ready else "Pending"),
            "startTime": "2024-05-01T10:00:00Z",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [container_status],
        },
    }


OOM = {"reason": "OOMKilled", "exitCode": 137, "finishedAt": "2024-05-01T09:59:00Z"}
SETS = [replicaset("5c8b", 2, "2024-04-01T08:00:00Z"), replicaset("7d9f", 3, "2024-05-01T09:00:00Z")]


def status_of(dep, pods=(), sets=None, **kwargs):
    sets = SETS if sets is None else sets
    return kubernetes_service_status(dep, replicasets=list(sets), pods=list(pods), **kwargs)


@pytest.mark.parametrize("dep", [None, [], [None], {}])
def test_no_deployment_is_missing(dep):
    status = status_of(dep)
    assert status["state"] == "missing"
    assert status["replicas_desired"] is None
    assert status["replicas_ready"] is None
    assert status["restart_count"] == 0
    assert status["oom_killed"] is False
    assert status["image"] is None
    assert status["resources"] == {
        "memory_limit": None,
        "cpu_limit": None,
        "memory_request": None,
        "cpu_request": None,
    }
    assert status["revision"] is None
    assert status["last_rollout_time"] is None
    assert status["instances"] == []


def test_k8s_info_resources_list_is_accepted():
    assert status_of([deployment()], [pod("a"), pod("b")])["state"] == "running"


def test_healthy_deployment():
    status = status_of(
        deployment(limits={"memory": "256Mi", "cpu": "500m"}, requests={"memory": "128M", "cpu": "0.1"}),
        [pod("api-7d9f-aaaaa"), pod("api-7d9f-bbbbb")],
    )
    assert status["state"] == "running"
    assert (status["replicas_desired"], status["replicas_ready"]) == (2, 2)
    assert status["image"] == IMAGE
    assert status["resources"] == {
        "memory_limit": 268_435_456,
        "cpu_limit": 0.5,
        "memory_request": 128_000_000,
        "cpu_request": 0.1,
    }
    assert status["revision"] == 3
    assert status["last_rollout_time"] == "2024-05-01T09:00:00Z"
    assert status["rollout_observed"] is True
    assert status["progress_deadline_exceeded"] is False
    assert [row["name"] for row in status["replicasets"]] == ["api-7d9f", "api-5c8b"]
    assert status["instances"][0] == {
        "name": "api-7d9f-aaaaa",
        "state": "running",
        "health": "healthy",
        "ready": True,
        "phase": "Running",
        "restart_count": 0,
        "started_at": "2024-05-01T10:00:00Z",
        "oom_killed": False,
        "exit_code": None,
        "reason": None,
        "message": None,
        "image": IMAGE,
        "revision": 3,
    }


def test_scaled_to_zero_is_stopped():
    status = status_of(deployment(replicas=0, ready=0))
    assert status["state"] == "stopped"
    assert (status["replicas_desired"], status["replicas_ready"]) == (0, 0)


def test_unset_replicas_means_one():
    dep = deployment(ready=1)
    del dep["spec"]["replicas"]
    assert status_of(dep, [pod()])["replicas_desired"] == 1
    assert status_of(dep, [pod()])["state"] == "running"


def test_image_pull_backoff_is_unhealthy_with_the_reason():
    status = status_of(deployment(ready=1), [pod("ok"), pod("bad", ready=False, waiting="ImagePullBackOff")])
    assert status["state"] == "unhealthy"
    bad = status["instances"][1]
    assert bad["state"] == "unhealthy"
    assert bad["health"] == "unhealthy"
    assert bad["reason"] == "ImagePullBackOff"
    assert bad["message"] == "details of ImagePullBackOff"


def test_a_stuck_rollout_is_unhealthy_although_enough_replicas_are_ready():
    # maxUnavailable 0: the old pods still serve, the new one never gets ready.
    pods = [pod("old-1"), pod("old-2"), pod("new-1", name_hash="9e1a", ready=False, waiting="ErrImagePull")]
    sets = [*SETS, replicaset("9e1a", 4, "2024-05-02T09:00:00Z", image="shop/api:broken", replicas=1, ready=0)]
    status = status_of(deployment(ready=2), pods, sets)
    assert status["state"] == "unhealthy"


def test_progress_deadline_exceeded_is_unhealthy():
    conditions = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
    status = status_of(deployment(conditions=conditions), [pod("a"), pod("b")])
    assert status["state"] == "unhealthy"
    assert status["progress_deadline_exceeded"] is True


def test_fewer_ready_than_desired_is_unhealthy_even_without_pods():
    assert status_of(deployment(replicas=2, ready=0), [])["state"] == "unhealthy"


@pytest.mark.parametrize(
    ("flags", "state"),
    [
        pytest.param(dict(ready=True), "running", id="ready"),
        pytest.param(dict(ready=False), "unhealthy", id="not-ready"),
        pytest.param(dict(ready=False, waiting="ContainerCreating"), "unhealthy", id="creating"),
        pytest.param(dict(ready=False, waiting="CrashLoopBackOff", restart_count=4), "crash-looping", id="backoff"),
        pytest.param(
            dict(ready=False, restart_count=4, last_terminated={"reason": "Error", "exitCode": 1}),
            "crash-looping",
            id="running-again-after-crash",
        ),
        pytest.param(dict(ready=True, restart_count=1, last_terminated=OOM), "running", id="recovered-after-oom"),
        pytest.param(dict(ready=False, phase="Failed"), "stopped", id="failed-pod"),
    ],
)
def test_pod_state(flags, state):
    assert pod_state(pod(**flags)) == state


def test_crash_loop_is_worse_than_unhealthy():
    pods = [pod("a", ready=False, waiting="ImagePullBackOff"), pod("b", ready=False, waiting="CrashLoopBackOff")]
    assert status_of(deployment(ready=0), pods)["state"] == "crash-looping"


def test_a_failed_pod_makes_the_deployment_unhealthy_not_stopped():
    status = status_of(deployment(ready=1), [pod("a"), pod("b", ready=False, phase="Failed")])
    assert status["state"] == "unhealthy"
    assert status["instances"][1]["state"] == "stopped"


def test_restart_count_rising_since_previous_status_is_crash_looping():
    first = status_of(deployment(), [pod("a", restart_count=2), pod("b")])
    assert first["state"] == "running"
    assert first["restart_count"] == 2
    again = status_of(deployment(), [pod("a", restart_count=3), pod("b")], previous=first)
    assert again["state"] == "crash-looping"
    assert [row["state"] for row in again["instances"]] == ["crash-looping", "running"]
    same = status_of(deployment(), [pod("a", restart_count=2), pod("b")], previous=first)
    assert same["state"] == "running"


def test_oom_killed_and_exit_code_from_the_last_termination():
    status = status_of(deployment(), [pod("a"), pod("b", restart_count=1, last_terminated=OOM)])
    assert status["oom_killed"] is True
    assert status["restart_count"] == 1
    assert [row["oom_killed"] for row in status["instances"]] == [False, True]
    assert status["instances"][1]["exit_code"] == 137
    assert status["instances"][1]["reason"] == "OOMKilled"


def test_pods_being_deleted_are_left_out():
    status = status_of(deployment(), [pod("a"), pod("b"), pod("c", ready=False, deleting=True)])
    assert [row["name"] for row in status["instances"]] == ["a", "b"]
    assert status["state"] == "running"


def test_replicasets_and_pods_of_other_owners_are_left_out():
    foreign = replicaset("0ff0", 9, "2030-01-01T00:00:00Z", owner="someone-else")
    status = status_of(deployment(), [pod("a"), pod("b"), pod("x", name_hash="0ff0", ready=False)], [*SETS, foreign])
    assert [row["name"] for row in status["replicasets"]] == ["api-7d9f", "api-5c8b"]
    assert [row["name"] for row in status["instances"]] == ["a", "b"]
    assert status["last_rollout_time"] == "2024-05-01T09:00:00Z"


def test_replicasets_summary():
    status = status_of(deployment(), [pod("a")])
    assert status["replicasets"][0] == {
        "name": "api-7d9f",
        "revision": 3,
        "image": IMAGE,
        "replicas": 2,
        "ready": 2,
        "created": "2024-05-01T09:00:00Z",
    }


def test_pod_revision_comes_from_its_replicaset():
    status = status_of(deployment(), [pod("a"), pod("b", name_hash="5c8b")])
    assert [row["revision"] for row in status["instances"]] == [3, 2]


def test_missing_revision_and_unparsable_values_become_null():
    dep = deployment(limits={"memory": "lots"})
    del dep["metadata"]["annotations"]
    status = status_of(dep, [], sets=[])
    assert status["revision"] is None
    assert status["resources"]["memory_limit"] is None
    assert status["last_rollout_time"] is None


def test_rollout_not_observed_yet():
    dep = deployment()
    dep["metadata"]["generation"] = 5
    assert status_of(dep, [pod("a"), pod("b")])["rollout_observed"] is False


def test_input_is_not_modified():
    dep, pods = deployment(), [pod("a"), pod("b")]
    before = copy.deepcopy((dep, pods, SETS))
    status_of(dep, pods)
    assert (dep, pods, SETS) == before


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("256Mi", 268_435_456),
        ("1Gi", 1_073_741_824),
        ("1.5Gi", 1_610_612_736),
        ("128M", 128_000_000),
        ("1k", 1000),
        ("1Ki", 1024),
        ("123456789", 123_456_789),
        ("1e3", 1000),
        ("1E3", 1000),
        ("12e-1", 2),  # rounded up, as Kubernetes does for byte counts
        ("500m", 1),
        (536870912, 536_870_912),
        (None, None),
        ("", None),
        ("12 Mi", None),
        ("Mi", None),
        ("1.2.3", None),
        (True, None),
    ],
)
def test_memory_bytes(quantity, expected):
    assert memory_bytes(quantity) == expected


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("500m", 0.5),
        ("100m", 0.1),
        ("1", 1.0),
        ("2.5", 2.5),
        ("250000u", 0.25),
        ("1500000000n", 1.5),
        (".5", 0.5),
        (2, 2.0),
        (0.25, 0.25),
        (None, None),
        ("half", None),
    ],
)
def test_cpu_cores(quantity, expected):
    assert cpu_cores(quantity) == expected


def test_filter_plugin_exposes_kubernetes_service_status():
    assert FilterModule().filters() == {"kubernetes_service_status": kubernetes_service_status}
