"""Unit tests for plugins/modules/cache_health.py.

No Redis server is needed: the unreachable and hung cases use real loopback
sockets, a closed port and a listening socket that never answers.
"""

import contextlib
import json
import socket
import time
from unittest import mock

import pytest
import yaml
from ansible.module_utils import basic
from ansible_collections.incident.remediation.plugins.module_utils import _redis
from ansible_collections.incident.remediation.plugins.module_utils._redis import redis_common_argument_spec
from ansible_collections.incident.remediation.plugins.modules import cache_health
from ansible_collections.incident.remediation.plugins.modules.cache_health import (
    THRESHOLD_SPEC,
    check,
    empty_metrics,
    judge,
    metrics_from_info,
)

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19

    @contextlib.contextmanager
    def patch_module_args(args=None):
        serialized = json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode()
        with mock.patch.object(basic, "_ANSIBLE_ARGS", serialized):
            yield


RETURN = yaml.safe_load(cache_health.RETURN)
METRIC_KEYS = set(RETURN["metrics"]["contains"])

DEFAULT_THRESHOLDS = {name: spec["default"] for name, spec in THRESHOLD_SPEC.items()}

# A parsed INFO reply as redis-py returns it (numbers already converted).
HEALTHY_INFO = {
    "redis_version": "7.0.15",
    "role": "master",
    "uptime_in_seconds": 86400,
    "used_memory": 1_000_000,
    "maxmemory": 4_000_000,
    "maxmemory_policy": "allkeys-lru",
    "connected_clients": 12,
    "blocked_clients": 0,
    "rejected_connections": 0,
    "evicted_keys": 3,
    "keyspace_hits": 900,
    "keyspace_misses": 100,
    "used_cpu_sys": 1.5,  # not reported
}


def default_params(**overrides):
    """Module params as AnsibleModule would fill them from the common connection options."""
    params = {name: spec.get("default") for name, spec in redis_common_argument_spec().items()}
    params.update(overrides)
    return params


def metrics(**overrides):
    """Metrics of a healthy server, with overrides; derived values recomputed."""
    info = dict(HEALTHY_INFO)
    ping_ms = overrides.pop("ping_ms", 0.4)
    info.update(overrides)
    return metrics_from_info(info, ping_ms)


@pytest.fixture
def closed_port():
    """A loopback port nothing listens on: connecting to it is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def silent_port():
    """A loopback port that accepts TCP connections but never sends a byte."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


# ---------------------------------------------------------------- metrics_from_info


def test_empty_metrics_has_every_documented_key_set_to_none():
    assert empty_metrics() == dict.fromkeys(METRIC_KEYS)


def test_metrics_from_info_picks_renames_and_derives():
    result = metrics_from_info(HEALTHY_INFO, 0.31)
    assert result == {
        "ping_ms": 0.31,
        "redis_version": "7.0.15",
        "role": "master",
        "uptime_seconds": 86400,
        "used_memory": 1_000_000,
        "maxmemory": 4_000_000,
        "memory_ratio": 0.25,
        "maxmemory_policy": "allkeys-lru",
        "connected_clients": 12,
        "blocked_clients": 0,
        "rejected_connections": 0,
        "evicted_keys": 3,
        "keyspace_hits": 900,
        "keyspace_misses": 100,
        "hit_rate": 0.9,
    }


def test_metrics_from_info_keeps_every_key_when_info_lacks_them():
    result = metrics_from_info({}, None)
    assert result == dict.fromkeys(METRIC_KEYS)


def test_memory_ratio_is_null_without_maxmemory():
    result = metrics_from_info(dict(HEALTHY_INFO, maxmemory=0, used_memory=10**12), 0.3)
    assert result["maxmemory"] == 0
    assert result["memory_ratio"] is None


@pytest.mark.parametrize(
    ("used", "maximum", "expected"),
    [
        (1, 3, 0.3333),
        (2, 3, 0.6667),
        (962_345, 1_000_000, 0.9623),
        (5, 4, 1.25),  # over the limit is reported as is
    ],
)
def test_memory_ratio_is_rounded_to_four_places(used, maximum, expected):
    result = metrics_from_info(dict(HEALTHY_INFO, used_memory=used, maxmemory=maximum), 0.3)
    assert result["memory_ratio"] == expected
    assert isinstance(result["memory_ratio"], float)


def test_hit_rate_is_null_without_lookups():
    result = metrics_from_info(dict(HEALTHY_INFO, keyspace_hits=0, keyspace_misses=0), 0.3)
    assert result["hit_rate"] is None


@pytest.mark.parametrize(
    ("hits", "misses", "expected"),
    [
        (2, 1, 0.6667),
        (1, 2, 0.3333),
        (0, 7, 0.0),
        (7, 0, 1.0),
        (123_456, 654_321, 0.1587),
    ],
)
def test_hit_rate_is_rounded_to_four_places(hits, misses, expected):
    result = metrics_from_info(dict(HEALTHY_INFO, keyspace_hits=hits, keyspace_misses=misses), 0.3)
    assert result["hit_rate"] == expected
    assert isinstance(result["hit_rate"], float)


# ---------------------------------------------------------------- judge


def test_healthy_server_is_ok_without_reasons():
    verdict = judge(metrics(), DEFAULT_THRESHOLDS)
    assert verdict.status == "ok"
    assert verdict.reasons == []


@pytest.mark.parametrize(
    ("overrides", "status", "reason_start"),
    [
        pytest.param({"ping_ms": 100.0}, "ok", None, id="ping-at-warning"),
        pytest.param({"ping_ms": 150.0}, "warning", "PING latency is 150 ms", id="ping-warning"),
        pytest.param({"ping_ms": 1500.0}, "critical", "PING latency is", id="ping-critical"),
        pytest.param({"used_memory": 3_600_000}, "ok", None, id="memory-at-warning"),
        pytest.param({"used_memory": 3_680_000}, "warning", "memory use is 0.92,", id="memory-warning"),
        pytest.param({"used_memory": 3_880_000}, "critical", "memory use is 0.97,", id="memory-critical"),
        pytest.param({"used_memory": 10**12, "maxmemory": 0}, "ok", None, id="memory-no-limit"),
        pytest.param({"keyspace_hits": 500, "keyspace_misses": 500}, "ok", None, id="hit-rate-at-warning"),
        pytest.param(
            {"keyspace_hits": 300, "keyspace_misses": 700}, "warning", "keyspace hit rate is 0.3,", id="hit-rate-low"
        ),
        pytest.param(
            {"keyspace_hits": 0, "keyspace_misses": 10_000}, "warning", "keyspace hit rate is 0", id="hit-rate-zero"
        ),
        pytest.param({"keyspace_hits": 10, "keyspace_misses": 89}, "ok", None, id="hit-rate-below-min-sample"),
        pytest.param(
            {"keyspace_hits": 10, "keyspace_misses": 90}, "warning", "keyspace hit rate is 0.1,", id="hit-rate-at-min"
        ),
    ],
)
def test_judge_thresholds(overrides, status, reason_start):
    verdict = judge(metrics(**overrides), DEFAULT_THRESHOLDS)
    assert verdict.status == status
    if reason_start is None:
        assert verdict.reasons == []
    else:
        (reason,) = verdict.reasons
        assert reason.startswith(reason_start)


@pytest.mark.parametrize(
    ("min_sample", "status"),
    [(1001, "ok"), (1000, "warning"), (0, "warning")],
)
def test_hit_rate_min_sample_is_taken_from_the_thresholds(min_sample, status):
    thresholds = dict(DEFAULT_THRESHOLDS, hit_rate_min_sample=min_sample)
    verdict = judge(metrics(keyspace_hits=100, keyspace_misses=900), thresholds)
    assert verdict.status == status


def test_hit_rate_min_sample_zero_without_lookups_is_ok():
    thresholds = dict(DEFAULT_THRESHOLDS, hit_rate_min_sample=0)
    verdict = judge(metrics(keyspace_hits=0, keyspace_misses=0), thresholds)
    assert verdict.status == "ok"


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("ping_warning_ms", {"ping_ms": 500.0}),
        ("memory_warning_ratio", {"used_memory": 3_680_000}),
        ("hit_rate_warning", {"keyspace_hits": 1, "keyspace_misses": 999}),
    ],
)
def test_null_threshold_is_not_applied(name, overrides):
    verdict = judge(metrics(**overrides), dict(DEFAULT_THRESHOLDS, **{name: None}))
    assert verdict.status == "ok"
    assert verdict.reasons == []


def test_custom_thresholds_are_used():
    thresholds = dict(DEFAULT_THRESHOLDS, ping_warning_ms=0.1, memory_critical_ratio=0.2, hit_rate_warning=0.95)
    verdict = judge(metrics(ping_ms=0.4), thresholds)
    assert verdict.status == "critical"
    assert [reason.split(" is ")[0] for reason in verdict.reasons] == [
        "PING latency",
        "memory use",
        "keyspace hit rate",
    ]


def test_findings_combine_to_the_worst():
    verdict = judge(
        metrics(ping_ms=150.0, used_memory=3_880_000, keyspace_hits=1, keyspace_misses=999), DEFAULT_THRESHOLDS
    )
    assert verdict.status == "critical"
    assert len(verdict.reasons) == 3


# ---------------------------------------------------------------- check() against real sockets


def test_unreachable_server_is_critical_at_once(closed_port):
    started = time.monotonic()
    result = check(default_params(login_port=closed_port), DEFAULT_THRESHOLDS)
    elapsed = time.monotonic() - started

    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert isinstance(result["error"], str)
    assert result["error"].startswith("ConnectionError")
    assert result["server"] == "127.0.0.1:%d" % closed_port
    (reason,) = result["reasons"]
    assert result["server"] in reason
    assert result["metrics"] == dict.fromkeys(METRIC_KEYS)
    # Refused connections are reported, not retried (connect_timeout is 2 s here).
    assert elapsed < 1.0


def test_silent_server_is_critical_within_connect_timeout(silent_port):
    started = time.monotonic()
    result = check(default_params(login_port=silent_port, connect_timeout=0.5), DEFAULT_THRESHOLDS)
    elapsed = time.monotonic() - started

    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert "Timeout" in result["error"]
    (reason,) = result["reasons"]
    assert "did not answer" in reason
    assert "127.0.0.1:%d" % silent_port in reason
    assert "0.5 s" in reason
    assert result["metrics"] == dict.fromkeys(METRIC_KEYS)
    # It waited for the reply timeout once, and did not try again.
    assert 0.4 <= elapsed < 1.0


# ---------------------------------------------------------------- main() in process


def run_main(capsys, args):
    """Run the module with args; return (exit code, parsed JSON result)."""
    with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
        cache_health.main()
    out = capsys.readouterr().out
    return exit_info.value.code, json.loads(out), out


def test_main_returns_the_stable_shape(capsys, closed_port):
    code, result, out = run_main(
        capsys, {"login_port": closed_port, "login_password": "s3cret-pw", "ping_warning_ms": 50}
    )
    assert code == 0
    assert "failed" not in result
    assert result["changed"] is False
    assert set(RETURN) | {"changed"} <= set(result)
    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert result["reasons"] and all(isinstance(reason, str) for reason in result["reasons"])
    assert result["metrics"] == dict.fromkeys(METRIC_KEYS)
    assert result["thresholds"] == dict(DEFAULT_THRESHOLDS, ping_warning_ms=50.0)
    assert set(result["thresholds"]) == set(THRESHOLD_SPEC)
    assert isinstance(result["elapsed_ms"], float)
    assert 0.0 <= result["elapsed_ms"] < 1000.0
    assert result["server"] == "127.0.0.1:%d" % closed_port
    assert isinstance(result["error"], str)
    assert "s3cret-pw" not in out


def test_main_runs_the_same_checks_in_check_mode(capsys, closed_port):
    code, result, _out = run_main(capsys, {"login_port": closed_port, "_ansible_check_mode": True})
    assert code == 0
    assert result["changed"] is False
    assert result["status"] == "critical"
    assert result["is_available"] is False


def test_main_fails_cleanly_without_redis_py(capsys, monkeypatch, closed_port):
    monkeypatch.setattr(_redis, "redis", None)
    code, result, _out = run_main(capsys, {"login_port": closed_port})
    assert code == 1
    assert result["failed"] is True
    assert "redis" in result["msg"]


def test_main_rejects_an_unknown_option(capsys):
    code, result, _out = run_main(capsys, {"login_prot": 6380})
    assert code == 1
    assert result["failed"] is True
    assert "login_prot" in result["msg"]
