"""Unit tests for plugins/filter/systemd_service_status.py.

The unit properties below are what ``systemctl show`` printed (systemd 252,
Debian bookworm, images/systemd) for demo-web.service in each situation,
trimmed to the properties the filter reads plus a few neighbours.
"""

import pytest
from ansible_collections.incident.remediation.plugins.filter.systemd_service_status import (
    FilterModule,
    cpu_quota_cores,
    exit_code,
    iso_timestamp,
    memory_bytes,
    systemd_service_status,
    timespan_usec,
    unit_state,
)

BASE = {
    "Id": "demo-web.service",
    "Names": "demo-web.service",
    "LoadState": "loaded",
    "UnitFileState": "enabled",
    "FreezerState": "running",
    "Restart": "on-failure",
    "MemoryMax": "infinity",
    "MemoryLimit": "infinity",
    "MemoryHigh": "infinity",
    "MemoryLow": "0",
    "CPUQuotaPerSecUSec": "infinity",
    "CPUWeight": "[not set]",
}


def unit(**props):
    status = dict(BASE)
    status.update(props)
    return status


RUNNING = unit(
    ActiveState="active", SubState="running", Result="success", NRestarts="0", MainPID="28",
    ExecMainStartTimestamp="Sun 2026-11-22 14:46:03 UTC", ExecMainExitTimestamp="",
    ExecMainCode="0", ExecMainStatus="0",
)
# SIGKILLed under Restart=on-failure, RestartSec=30: waiting to be restarted.
AUTO_RESTART = unit(
    ActiveState="activating", SubState="auto-restart", Result="signal", NRestarts="0", MainPID="0",
    ExecMainStartTimestamp="Sun 2026-11-22 14:46:16 UTC", ExecMainExitTimestamp="Sun 2026-11-22 14:46:17 UTC",
    ExecMainCode="2", ExecMainStatus="9",
)
# Restarted by systemd after the SIGKILL: running again, Result reset, the restart counted.
RESTARTED = unit(
    ActiveState="active", SubState="running", Result="success", NRestarts="1", MainPID="56",
    ExecMainStartTimestamp="Sun 2026-11-22 14:44:06 UTC", ExecMainExitTimestamp="",
    ExecMainCode="0", ExecMainStatus="0",
)
# `systemctl stop` after that kill: Result keeps the last failure.
STOPPED = unit(
    ActiveState="inactive", SubState="dead", Result="signal", NRestarts="0", MainPID="0",
    ExecMainStartTimestamp="Sun 2026-11-22 14:46:16 UTC", ExecMainExitTimestamp="Sun 2026-11-22 14:46:17 UTC",
    ExecMainCode="2", ExecMainStatus="9",
)
# Exits 3 at every start; StartLimitBurst=3 reached, systemd gave up.
START_LIMIT = unit(
    ActiveState="failed", SubState="failed", Result="exit-code", NRestarts="3", MainPID="0",
    ExecMainStartTimestamp="Sun 2026-11-22 14:46:19 UTC", ExecMainExitTimestamp="Sun 2026-11-22 14:46:19 UTC",
    ExecMainCode="1", ExecMainStatus="3",
)
# Failed once without Restart=: systemd did not retry.
FAILED = unit(
    ActiveState="failed", SubState="failed", Result="exit-code", NRestarts="0", MainPID="0",
    ExecMainStartTimestamp="Sun 2026-11-22 14:46:19 UTC", ExecMainExitTimestamp="Sun 2026-11-22 14:46:19 UTC",
    ExecMainCode="1", ExecMainStatus="1", Restart="no",
)
NOT_FOUND = {
    "Id": "nosuch.service",
    "LoadState": "not-found",
    "ActiveState": "inactive",
    "FreezerState": "running",
    "SubState": "dead",
    "Result": "success",
    "NRestarts": "0",
    "MemoryMax": "infinity",
    "CPUQuotaPerSecUSec": "infinity",
    "LoadError": 'org.freedesktop.systemd1.NoSuchUnit "Unit nosuch.service not found."',
}


@pytest.mark.parametrize(
    "status, expected",
    [
        (RUNNING, "running"),
        (RESTARTED, "running"),
        (AUTO_RESTART, "crash-looping"),
        (START_LIMIT, "crash-looping"),
        (FAILED, "unhealthy"),
        (STOPPED, "stopped"),
        (unit(ActiveState="deactivating", SubState="stop-sigterm", Result="success", NRestarts="0"), "stopped"),
        (unit(ActiveState="activating", SubState="start", Result="success", NRestarts="0"), "unhealthy"),
        (unit(ActiveState="activating", SubState="start", Result="exit-code", NRestarts="4"), "crash-looping"),
        (unit(ActiveState="reloading", SubState="reload", Result="success", NRestarts="0"), "running"),
        (unit(ActiveState="active", SubState="exited", Result="success", NRestarts="0"), "running"),
        (unit(ActiveState="active", SubState="running", FreezerState="frozen"), "paused"),
        (unit(LoadState="masked", ActiveState="inactive", SubState="dead", Result="success"), "stopped"),
        (NOT_FOUND, "missing"),
        ({}, "missing"),
    ],
)
def test_unit_state(status, expected):
    assert unit_state(status) == expected


def test_running_unit_is_normalised():
    assert systemd_service_status(RUNNING) == {
        "state": "running",
        "replicas_desired": 1,
        "replicas_ready": 1,
        "restart_count": 0,
        "oom_killed": False,
        "image": None,
        "resources": {"memory_limit": None, "cpu_limit": None, "memory_request": None, "cpu_request": None},
        "revision": None,
        "last_rollout_time": "2026-11-22T14:46:03Z",
        "instances": [
            {
                "name": "demo-web.service",
                "state": "running",
                "health": None,
                "restart_count": 0,
                "started_at": "2026-11-22T14:46:03Z",
                "oom_killed": False,
                "exit_code": None,
                "main_pid": 28,
                "load_state": "loaded",
                "active_state": "active",
                "sub_state": "running",
                "result": "success",
            }
        ],
    }


def test_crash_loop_counts_restarts_and_signal():
    status = systemd_service_status(START_LIMIT)
    assert (status["state"], status["replicas_ready"], status["restart_count"]) == ("crash-looping", 0, 3)
    assert status["instances"][0]["exit_code"] == 3
    killed = systemd_service_status(AUTO_RESTART)["instances"][0]
    assert (killed["exit_code"], killed["main_pid"]) == (137, None)


def test_restart_since_previous_look_is_a_crash_loop():
    before = systemd_service_status(RUNNING)
    assert systemd_service_status(RESTARTED)["state"] == "running"
    assert systemd_service_status(RESTARTED, previous=before)["state"] == "crash-looping"
    assert systemd_service_status(RESTARTED, previous=systemd_service_status(RESTARTED))["state"] == "running"
    # An earlier look at a missing unit has no count to compare with.
    assert systemd_service_status(RESTARTED, previous=systemd_service_status({}))["state"] == "running"


def test_missing_unit():
    status = systemd_service_status(NOT_FOUND)
    assert status["state"] == "missing"
    assert (status["replicas_desired"], status["replicas_ready"], status["instances"]) == (None, None, [])
    assert systemd_service_status(None)["state"] == "missing"


def test_oom_kill():
    status = systemd_service_status(unit(ActiveState="failed", SubState="failed", Result="oom-kill", NRestarts="0"))
    assert status["oom_killed"] is True
    assert status["instances"][0]["oom_killed"] is True


def test_limits_in_bytes_and_cores():
    status = systemd_service_status(unit(
        ActiveState="active", SubState="running", MemoryMax="52428800", CPUQuotaPerSecUSec="500ms",
    ))
    assert status["resources"]["memory_limit"] == 52428800
    assert status["resources"]["cpu_limit"] == 0.5
    # cgroup v1 only: the older MemoryLimit= when MemoryMax= is not set.
    legacy = systemd_service_status(unit(ActiveState="active", SubState="running", MemoryLimit="1073741824"))
    assert legacy["resources"]["memory_limit"] == 1073741824


@pytest.mark.parametrize(
    "value, cores",
    [
        # CPUQuota= as set in a drop-in -> CPUQuotaPerSecUSec as systemctl show printed it.
        ("1.500000s", 1.5),  # 150%
        ("125ms", 0.125),  # 12.5%
        ("2s", 2.0),  # 200%
        ("10ms", 0.01),  # 1%
        ("5ms", 0.005),  # 0.5%
        ("12.340000s", 12.34),  # 1234%
        ("1min 30s", 90.0),
        ("infinity", None),
        ("", None),
        (None, None),
        ("soon", None),
        ("5 parsecs", None),
        (250000, 0.25),
    ],
)
def test_cpu_quota_cores(value, cores):
    assert cpu_quota_cores(value) == cores


def test_timespan_usec():
    assert timespan_usec("1h 2min 3s 4ms 5us") == (3600 + 120 + 3) * 10 ** 6 + 4000 + 5
    assert timespan_usec("3") == 3 * 10 ** 6
    assert timespan_usec(True) is None


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1610612736", 1610612736),
        ("infinity", None),
        ("[not set]", None),
        ("", None),
        (None, None),
        ("18446744073709551615", None),
        ("9223372036854771712", None),
        ("1.5G", None),
        (4096, 4096),
    ],
)
def test_memory_bytes(value, expected):
    assert memory_bytes(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Sun 2026-11-22 14:46:03 UTC", "2026-11-22T14:46:03Z"),
        ("Sun 2026-11-22 14:46:03.123456 UTC", "2026-11-22T14:46:03.123456Z"),
        ("2026-11-22 14:46:03 +0100", "2026-11-22T14:46:03+01:00"),
        ("Sun 2026-11-22 15:46:03 CET", "Sun 2026-11-22 15:46:03 CET"),
        ("", None),
        ("n/a", None),
        (None, None),
    ],
)
def test_iso_timestamp(value, expected):
    assert iso_timestamp(value) == expected


@pytest.mark.parametrize(
    "code, status, expected",
    [("0", "0", None), ("1", "3", 3), ("2", "9", 137), ("3", "6", 134), ("1", "", None)],
)
def test_exit_code(code, status, expected):
    assert exit_code({"ExecMainCode": code, "ExecMainStatus": status}) == expected


def test_filter_is_registered():
    assert FilterModule().filters()["systemd_service_status"] is systemd_service_status
