"""Unit tests for plugins/filter/compose_service_status.py."""

import pytest
from ansible_collections.incident.remediation.plugins.filter.compose_service_status import FilterModule
from ansible_collections.incident.remediation.plugins.module_utils._compose_status import (
    compose_service_status,
    container_state,
)

IMAGE = "registry.example.com/shop/api:1.4.2"


def container(
    name="shop-api-1",
    *,
    running=True,
    paused=False,
    restarting=False,
    oom_killed=False,
    exit_code=0,
    health=None,
    restart_count=0,
    image=IMAGE,
    memory=536_870_912,
    container_id="4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b",
):
    """A container as `docker inspect` (and docker_container_info) reports it."""
    state = {
        "Status": "running" if running else "exited",
        "Running": running,
        "Paused": paused,
        "Restarting": restarting,
        "OOMKilled": oom_killed,
        "Dead": False,
        "Pid": 4242 if running else 0,
        "ExitCode": exit_code,
        "Error": "",
        "StartedAt": "2024-05-01T10:00:00.123456789Z",
        "FinishedAt": "0001-01-01T00:00:00Z",
    }
    if health is not None:
        state["Health"] = {"Status": health, "FailingStreak": 0, "Log": []}
    return {
        "Id": container_id,
        "Name": "/" + name,
        "RestartCount": restart_count,
        "State": state,
        "Config": {"Image": image, "Labels": {"com.docker.compose.service": "api"}},
        "HostConfig": {"Memory": memory, "RestartPolicy": {"Name": "unless-stopped"}},
    }


# Docker's own flag combinations for each state.
STOPPED = dict(running=False, exit_code=137)
PAUSED = dict(running=True, paused=True)
RESTARTING = dict(running=True, restarting=True, exit_code=1, restart_count=5)
UNHEALTHY = dict(running=True, health="unhealthy")
HEALTHY = dict(running=True, health="healthy")


@pytest.mark.parametrize("containers", [[], None, [None], [{}, None]])
def test_no_container_is_missing(containers):
    status = compose_service_status(containers)
    assert status == {
        "state": "missing",
        "replicas_desired": 0,
        "replicas_ready": 0,
        "restart_count": 0,
        "oom_killed": False,
        "image": None,
        "resources": {"memory_limit": None, "cpu_limit": None, "memory_request": None, "cpu_request": None},
        "revision": None,
        "last_rollout_time": None,
        "instances": [],
    }


@pytest.mark.parametrize(
    ("flags", "state", "ready"),
    [
        pytest.param(STOPPED, "stopped", 0, id="stopped"),
        pytest.param(PAUSED, "paused", 0, id="paused"),
        pytest.param(RESTARTING, "crash-looping", 0, id="restarting"),
        pytest.param(dict(RESTARTING, running=False), "crash-looping", 0, id="restarting-between-runs"),
        pytest.param(UNHEALTHY, "unhealthy", 0, id="unhealthy"),
        pytest.param(HEALTHY, "running", 1, id="healthy"),
        pytest.param(dict(running=True), "running", 1, id="running-without-healthcheck"),
        pytest.param(dict(running=True, health="starting"), "running", 1, id="running-health-starting"),
    ],
)
def test_single_container_state(flags, state, ready):
    status = compose_service_status([container(**flags)])
    assert status["state"] == state
    assert status["replicas_desired"] == 1
    assert status["replicas_ready"] == ready
    assert status["instances"][0]["state"] == state
    assert container_state(container(**flags)) == state


def test_container_without_state_is_stopped():
    assert container_state({"Id": "abc", "Name": "/x"}) == "stopped"


def test_per_container_rows():
    status = compose_service_status(
        [
            container("shop-api-1", **HEALTHY),
            container("shop-api-2", container_id="0123456789abcdef0123", **dict(STOPPED, restart_count=2)),
        ]
    )
    assert status["instances"] == [
        {
            "name": "shop-api-1",
            "id": "4f3c2b1a0e9d",
            "state": "running",
            "health": "healthy",
            "exit_code": 0,
            "restart_count": 0,
            "started_at": "2024-05-01T10:00:00.123456789Z",
            "oom_killed": False,
        },
        {
            "name": "shop-api-2",
            "id": "0123456789ab",
            "state": "stopped",
            "health": None,
            "exit_code": 137,
            "restart_count": 2,
            "started_at": "2024-05-01T10:00:00.123456789Z",
            "oom_killed": False,
        },
    ]


# Worst first, as the filter documents it.
WORST_FIRST = [
    ("stopped", STOPPED),
    ("paused", PAUSED),
    ("crash-looping", RESTARTING),
    ("unhealthy", UNHEALTHY),
    ("running", HEALTHY),
]


@pytest.mark.parametrize(
    ("worse", "better"),
    [
        pytest.param(WORST_FIRST[i], WORST_FIRST[j], id="%s-over-%s" % (WORST_FIRST[i][0], WORST_FIRST[j][0]))
        for i in range(len(WORST_FIRST))
        for j in range(i + 1, len(WORST_FIRST))
    ],
)
def test_worst_state_wins_over_replicas(worse, better):
    worse_state, worse_flags = worse
    better_flags = better[1]
    for order in ((better_flags, worse_flags), (worse_flags, better_flags)):
        replicas = [container("shop-api-%d" % n, **flags) for n, flags in enumerate(order, 1)]
        status = compose_service_status(replicas)
        assert status["state"] == worse_state
        assert status["replicas_desired"] == 2


def test_ready_counts_only_running_replicas():
    replicas = [
        container("shop-api-1", **HEALTHY),
        container("shop-api-2", **HEALTHY),
        container("shop-api-3", **UNHEALTHY),
        container("shop-api-4", **STOPPED),
        container("shop-api-5", running=True),
    ]
    status = compose_service_status(replicas)
    assert status["state"] == "stopped"
    assert status["replicas_desired"] == 5
    assert status["replicas_ready"] == 3


def test_restart_counts_are_summed():
    replicas = [
        container("shop-api-1", restart_count=3),
        container("shop-api-2", restart_count=0),
        container("shop-api-3", restart_count=4),
    ]
    replicas[1].pop("RestartCount")  # absent counts as 0
    assert compose_service_status(replicas)["restart_count"] == 7


def test_oom_killed_is_surfaced_from_any_replica():
    replicas = [
        container("shop-api-1", **HEALTHY),
        container("shop-api-2", **dict(STOPPED, oom_killed=True)),
    ]
    status = compose_service_status(replicas)
    assert status["oom_killed"] is True
    assert [row["oom_killed"] for row in status["instances"]] == [False, True]


def test_oom_killed_false_when_no_replica_was():
    status = compose_service_status([container("shop-api-1"), container("shop-api-2", **STOPPED)])
    assert status["oom_killed"] is False


def test_image_and_resources_come_from_the_first_container():
    replicas = [
        container("shop-api-1", image="shop/api:2.0.0", memory=268_435_456),
        container("shop-api-2", image="shop/api:1.9.9", memory=1_073_741_824),
    ]
    status = compose_service_status(replicas)
    assert status["image"] == "shop/api:2.0.0"
    assert status["resources"]["memory_limit"] == 268_435_456


def test_first_container_is_the_first_non_empty_one():
    status = compose_service_status([None, container("shop-api-2", image="shop/api:3.0.0")])
    assert status["replicas_desired"] == 1
    assert status["image"] == "shop/api:3.0.0"


@pytest.mark.parametrize("host_config", [{"Memory": 0}, {}, None])
def test_resources_are_null_without_limits(host_config):
    first = container()
    first["HostConfig"] = host_config
    assert compose_service_status([first])["resources"] == {
        "memory_limit": None,
        "cpu_limit": None,
        "memory_request": None,
        "cpu_request": None,
    }


@pytest.mark.parametrize(
    ("host_config", "cpu_limit"),
    [
        pytest.param({"NanoCpus": 500_000_000}, 0.5, id="cpus"),
        pytest.param({"NanoCpus": 2_000_000_000, "CpuQuota": 0}, 2.0, id="cpus-whole"),
        pytest.param({"CpuQuota": 150_000, "CpuPeriod": 100_000}, 1.5, id="cpu-quota"),
        pytest.param({"CpuQuota": 50_000}, 0.5, id="cpu-quota-default-period"),
        pytest.param({"CpuQuota": -1}, None, id="cpu-quota-unlimited"),
    ],
)
def test_cpu_limit_in_cores(host_config, cpu_limit):
    first = container()
    first["HostConfig"] = host_config
    assert compose_service_status([first])["resources"]["cpu_limit"] == cpu_limit


def test_memory_reservation_is_the_memory_request():
    first = container()
    first["HostConfig"] = {"Memory": 536_870_912, "MemoryReservation": 134_217_728, "NanoCpus": 250_000_000}
    assert compose_service_status([first])["resources"] == {
        "memory_limit": 536_870_912,
        "cpu_limit": 0.25,
        "memory_request": 134_217_728,
        "cpu_request": None,
    }


HISTORY = [
    {"image": "shop/api:1.4.1", "image_id": "sha256:aaa", "recorded_at": "2024-04-01T09:00:00Z",
     "deployed_at": "2024-04-01T08:59:00Z", "previous": None, "source": "observed"},
    {"image": "shop/api:1.4.2", "image_id": "sha256:bbb", "recorded_at": "2024-05-01T10:05:00Z",
     "deployed_at": "2024-05-01T10:00:00Z", "previous": 0, "source": "observed"},
]


@pytest.mark.parametrize("history", [None, [], [None]])
def test_no_history_means_no_revision(history):
    status = compose_service_status([container()], history=history)
    assert status["revision"] is None
    assert status["last_rollout_time"] is None


def test_revision_and_rollout_time_come_from_the_history():
    status = compose_service_status([container()], history=HISTORY)
    assert status["revision"] == 2
    assert status["last_rollout_time"] == "2024-05-01T10:00:00Z"


def test_rollout_time_falls_back_to_when_the_entry_was_recorded():
    entry = {"image": "shop/api:1.4.1", "image_id": "sha256:aaa", "recorded_at": "2024-04-01T09:00:00Z"}
    status = compose_service_status([container()], history=[entry])
    assert status["revision"] == 1
    assert status["last_rollout_time"] == "2024-04-01T09:00:00Z"


def test_history_is_positional_too():
    assert compose_service_status([container()], HISTORY)["revision"] == 2


def test_filter_plugin_exposes_compose_service_status():
    filters = FilterModule().filters()
    assert filters == {"compose_service_status": compose_service_status}
