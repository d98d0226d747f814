"""Unit tests for plugins/filter/kubernetes_service_status.py and the status logic it shares with the
kubernetes_snapshot module (plugins/module_utils/_kubernetes_status.py)."""

import copy

import pytest
from ansible_collections.incident.remediation.plugins.filter.kubernetes_service_status import FilterModule
from ansible_collections.incident.remediation.plugins.module_utils._kubernetes_status import (
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
        "last_warning": None,
        "image": IMAGE,
        "revision": 3,
        "containers": [
            {
                "name": "api",
                "ready": True,
                "restart_count": 0,
                "state": "running",
                "reason": None,
                "message": None,
                "exit_code": None,
                "started_at": "2024-05-01T10:00:05Z",
                "finished_at": None,
                "last_state": None,
            }
        ],
    }
    assert (status["rollout_state"], status["rollout_reason"]) == ("complete", None)
    assert status["events"] == []


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


def test_containers_keep_the_last_termination():
    status = status_of(
        deployment(ready=1),
        [pod("a"), pod("b", ready=False, waiting="CrashLoopBackOff", restart_count=3, last_terminated=OOM)],
    )
    (container,) = status["instances"][1]["containers"]
    assert container == {
        "name": "api",
        "ready": False,
        "restart_count": 3,
        "state": "waiting",
        "reason": "CrashLoopBackOff",
        "message": "details of CrashLoopBackOff",
        "exit_code": None,
        "started_at": None,
        "finished_at": None,
        "last_state": {
            "reason": "OOMKilled",
            "exit_code": 137,
            "started_at": None,
            "finished_at": "2024-05-01T09:59:00Z",
        },
    }


def event(kind, name, reason, message, time, *, type_="Normal", count=1):
    return {
        "involvedObject": {"kind": kind, "name": name, "namespace": "shop"},
        "reason": reason,
        "message": message,
        "type": type_,
        "count": count,
        "lastTimestamp": time,
        "metadata": {"creationTimestamp": time},
    }


EVENTS = [
    event(
        "Pod",
        "api-7d9f-bbbbb",
        "Unhealthy",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
        "2024-05-01T10:03:00Z",
        type_="Warning",
        count=7,
    ),
    event("Deployment", "api", "ScalingReplicaSet", "Scaled up replica set api-7d9f to 2", "2024-05-01T09:00:00Z"),
    event("ReplicaSet", "api-7d9f", "SuccessfulCreate", "Created pod: api-7d9f-bbbbb", "2024-05-01T09:00:01Z"),
    # A pod of the Deployment that is gone now.
    event("Pod", "api-5c8b-zzzzz", "Killing", "Stopping container api", "2024-05-01T09:00:30Z"),
    event("Pod", "api-7d9f-bbbbb", "Unhealthy", "Readiness probe failed: old", "2024-05-01T10:01:00Z", type_="Warning"),
    # Newer, but says nothing about the pod's health; eventTime has microseconds.
    event("Pod", "api-7d9f-bbbbb", "MissingClusterDNS", "no cluster DNS", "2024-05-01T10:04:00.5Z", type_="Warning"),
    # Another workload's: same namespace, left out.
    event("Deployment", "apiserver", "ScalingReplicaSet", "Scaled up", "2024-05-01T09:30:00Z"),
    event("Pod", "apiserver-1234-aaaaa", "BackOff", "Back-off", "2024-05-01T09:30:00Z", type_="Warning"),
    event("ReplicaSet", "api-0ff0", "SuccessfulCreate", "Created pod: api-0ff0-x", "2024-05-01T09:30:00Z"),
]


def test_the_workloads_events_oldest_first():
    status = status_of(deployment(), [pod("api-7d9f-aaaaa"), pod("api-7d9f-bbbbb")], events=EVENTS)
    assert [(row["object"], row["reason"]) for row in status["events"]] == [
        ("Deployment/api", "ScalingReplicaSet"),
        ("ReplicaSet/api-7d9f", "SuccessfulCreate"),
        ("Pod/api-5c8b-zzzzz", "Killing"),
        ("Pod/api-7d9f-bbbbb", "Unhealthy"),
        ("Pod/api-7d9f-bbbbb", "Unhealthy"),
        ("Pod/api-7d9f-bbbbb", "MissingClusterDNS"),
    ]
    assert status["events"][-2] == {
        "time": "2024-05-01T10:03:00Z",
        "type": "Warning",
        "reason": "Unhealthy",
        "object": "Pod/api-7d9f-bbbbb",
        "message": "Readiness probe failed: HTTP probe failed with statuscode: 503",
        "count": 7,
    }
    assert [row["time"] for row in status_of(deployment(), events=EVENTS, events_limit=2)["events"]] == [
        "2024-05-01T10:03:00Z",
        "2024-05-01T10:04:00.5Z",
    ]


def test_a_pod_failing_its_readiness_probe_says_so():
    pods = [pod("api-7d9f-aaaaa"), pod("api-7d9f-bbbbb", ready=False)]
    row = status_of(deployment(ready=1), pods, events=EVENTS)["instances"][1]
    assert (row["state"], row["ready"]) == ("unhealthy", False)
    assert (row["reason"], row["message"]) == (
        "Unhealthy",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
    )
    assert row["last_warning"] == "Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 503"
    # Without events, the Ready condition's reason.
    not_ready = pod("api-7d9f-bbbbb", ready=False)
    not_ready["status"]["conditions"][0].update(
        reason="ContainersNotReady", message="containers with unready status: [api]"
    )
    row = status_of(deployment(ready=1), [pod("api-7d9f-aaaaa"), not_ready])["instances"][1]
    assert (row["reason"], row["message"], row["last_warning"]) == (
        "ContainersNotReady",
        "containers with unready status: [api]",
        None,
    )
    # A ready pod keeps no reason from an old warning.
    assert status_of(deployment(), [pod("api-7d9f-bbbbb")], events=EVENTS)["instances"][0]["reason"] is None


@pytest.mark.parametrize(
    ("changes", "state", "reason"),
    [
        pytest.param({}, "complete", None, id="complete"),
        pytest.param(
            {"metadata": {"generation": 5}},
            "progressing",
            "the Deployment controller has not seen the latest spec yet",
            id="not-observed",
        ),
        pytest.param(
            {"status": {"updatedReplicas": 1, "replicas": 3, "readyReplicas": 2, "availableReplicas": 2}},
            "progressing",
            "1 of 2 replicas updated; 2 old replicas pending termination",
            id="half-way",
        ),
        pytest.param(
            {"status": {"availableReplicas": 1, "readyReplicas": 1}},
            "progressing",
            "1 of 2 updated replicas available",
            id="not-available",
        ),
        pytest.param(
            {
                "spec": {"replicas": 0},
                "status": {"replicas": 0, "updatedReplicas": 0, "readyReplicas": 0, "availableReplicas": 0},
            },
            "complete",
            None,
            id="scaled-to-zero",
        ),
        pytest.param(
            {"spec": {"replicas": 0}, "status": {"replicas": 1, "updatedReplicas": 0}},
            "progressing",
            "1 old replicas pending termination",
            id="scaling-to-zero",
        ),
    ],
)
def test_rollout_state(changes, state, reason):
    dep = deployment()
    for key, values in changes.items():
        dep[key].update(values)
    status = status_of(dep)
    assert (status["rollout_state"], status["rollout_reason"]) == (state, reason)


def test_a_stalled_rollout_names_the_deadline_and_the_pods_not_ready():
    conditions = [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
        {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": 'ReplicaSet "api-9e1a" has timed out progressing.',
        },
    ]
    dep = deployment(replicas=1, ready=1, conditions=conditions)
    dep["status"].update(replicas=2, updatedReplicas=1, availableReplicas=1)
    pods = [pod("api-7d9f-aaaaa"), pod("api-9e1a-ccccc", name_hash="9e1a", ready=False)]
    events = [
        event(
            "Pod",
            "api-9e1a-ccccc",
            "Unhealthy",
            "Readiness probe failed: connection refused",
            "2024-05-02T09:00:00Z",
            type_="Warning",
        )
    ]
    sets = [*SETS, replicaset("9e1a", 4, "2024-05-02T09:00:00Z", replicas=1, ready=0)]
    status = status_of(dep, pods, sets, events=events)
    assert status["state"] == "unhealthy"
    assert status["rollout_state"] == "stalled"
    # The old pod still serves: available counts it.
    assert status["rollout_reason"] == (
        'ProgressDeadlineExceeded: ReplicaSet "api-9e1a" has timed out progressing.; '
        "1 old replicas pending termination; "
        "not ready: api-9e1a-ccccc (Unhealthy: Readiness probe failed: connection refused)"
    )


def test_a_missing_deployment_has_no_rollout():
    status = status_of(None, events=EVENTS)
    assert (status["rollout_state"], status["rollout_reason"], status["events"]) == (None, None, [])


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
