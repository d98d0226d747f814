"""Unit tests for plugins/modules/cache_health.py.

No Redis server is needed: the unreachable and hung cases use real loopback
sockets, a closed port and a listening socket that never answers.
"""

import ssl
import time

import pytest
import yaml
from ansible_collections.incident.remediation.plugins.module_utils import _redis
from ansible_collections.incident.remediation.plugins.module_utils._redis import redis_common_argument_spec
from ansible_collections.incident.remediation.plugins.modules import cache_health
from ansible_collections.incident.remediation.plugins.modules.cache_health import (
    INFO_SECTIONS,
    THRESHOLD_SPEC,
    check,
    empty_metrics,
    judge,
    metrics_from_info,
    read_info,
)

RETURN = yaml.safe_load(cache_health.RETURN)
METRIC_KEYS = set(RETURN["metrics"]["contains"])

DEFAULT_THRESHOLDS = {name: spec.get("default") for name, spec in THRESHOLD_SPEC.items()}

# A parsed INFO reply as redis-py returns it (numbers already converted).
HEALTHY_INFO = {
    "redis_version": "7.0.15",
    "role": "master",
    "uptime_in_seconds": 86400,
    "used_memory": 1_000_000,
    "maxmemory": 4_000_000,
    "maxmemory_policy": "allkeys-lru",
    "connected_clients": 12,
    "maxclients": 10000,
    "blocked_clients": 0,
    "rejected_connections": 0,
    "evicted_keys": 3,
    "keyspace_hits": 900,
    "keyspace_misses": 100,
    "rdb_last_bgsave_status": "ok",
    "rdb_changes_since_last_save": 42,
    "aof_enabled": 0,
    "aof_last_write_status": "ok",
    "connected_slaves": 1,
    "used_cpu_sys": 1.5,  # not reported
}

# The replication section of a replica, as parsed by redis-py.
REPLICA_INFO = dict(
    HEALTHY_INFO,
    role="slave",
    connected_slaves=0,
    master_host="redis-primary",
    master_port=6379,
    master_link_status="up",
    master_last_io_seconds_ago=1,
    master_sync_in_progress=0,
)


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


# ---------------------------------------------------------------- metrics_from_info


def test_empty_metrics_has_every_documented_key_set_to_none():
    assert empty_metrics() == dict.fromkeys(METRIC_KEYS)


def test_metrics_from_info_picks_renames_and_derives():
    result = metrics_from_info(HEALTHY_INFO, 0.31)
    assert result == {
        "ping_ms": 0.31,
        "connect_ms": None,  # measured by check()
        "redis_version": "7.0.15",
        "role": "master",
        "uptime_seconds": 86400,
        "used_memory": 1_000_000,
        "maxmemory": 4_000_000,
        "memory_ratio": 0.25,
        "maxmemory_policy": "allkeys-lru",
        "connected_clients": 12,
        "maxclients": 10000,
        "clients_ratio": 0.0012,
        "blocked_clients": 0,
        "rejected_connections": 0,
        "evicted_keys": 3,
        "keyspace_hits": 900,
        "keyspace_misses": 100,
        "hit_rate": 0.9,
        "rdb_last_bgsave_status": "ok",
        "rdb_changes_since_last_save": 42,
        "aof_enabled": False,
        "aof_last_write_status": None,  # AOF is off
        "connected_replicas": 1,
        "master_host": None,
        "master_port": None,
        "master_link_status": None,
        "master_last_io_seconds_ago": None,
        "master_link_down_since_seconds": None,
        "master_sync_in_progress": None,
    }


def test_metrics_from_info_reads_the_replication_link_of_a_replica():
    result = metrics_from_info(REPLICA_INFO, 0.3)
    assert {name: value for name, value in result.items() if name.startswith("master_")} == {
        "master_host": "redis-primary",
        "master_port": 6379,
        "master_link_status": "up",
        "master_last_io_seconds_ago": 1,
        "master_link_down_since_seconds": None,
        "master_sync_in_progress": False,
    }
    assert result["role"] == "slave"


def test_link_down_makes_last_io_unknown_and_keeps_down_since():
    info = dict(
        REPLICA_INFO, master_link_status="down", master_last_io_seconds_ago=-1, master_link_down_since_seconds=17
    )
    result = metrics_from_info(info, 0.3)
    assert result["master_last_io_seconds_ago"] is None
    assert result["master_link_down_since_seconds"] == 17


def test_never_connected_replica_reports_unknown_down_since():
    info = dict(
        REPLICA_INFO, master_link_status="down", master_last_io_seconds_ago=-1, master_link_down_since_seconds=-1
    )
    assert metrics_from_info(info, 0.3)["master_link_down_since_seconds"] is None


def test_replication_keys_are_ignored_on_a_master():
    info = dict(HEALTHY_INFO, master_host="stale", master_link_status="down")
    result = metrics_from_info(info, 0.3)
    assert result["master_host"] is None
    assert result["master_link_status"] is None


def test_aof_write_status_is_reported_when_aof_is_on():
    result = metrics_from_info(dict(HEALTHY_INFO, aof_enabled=1, aof_last_write_status="err"), 0.3)
    assert result["aof_enabled"] is True
    assert result["aof_last_write_status"] == "err"


@pytest.mark.parametrize(
    ("info_value", "config_value", "expected"),
    [
        (10000, None, 10000),
        (None, "128", 128),  # Redis before 7: from CONFIG GET
        (None, None, None),  # CONFIG refused
        (64, "128", 64),  # INFO wins
    ],
)
def test_maxclients_from_info_or_config(info_value, config_value, expected):
    info = dict(HEALTHY_INFO)
    info.pop("maxclients")
    if info_value is not None:
        info["maxclients"] = info_value
    result = metrics_from_info(info, 0.3, config_value)
    assert result["maxclients"] == expected
    if expected is None:
        assert result["clients_ratio"] is None
    else:
        assert result["clients_ratio"] == round(12 / expected, 4)


def test_version_that_looks_like_a_number_stays_a_string():
    assert metrics_from_info(dict(HEALTHY_INFO, redis_version=7.2), 0.3)["redis_version"] == "7.2"


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


@pytest.mark.parametrize(
    ("connected", "status"),
    [(8000, "ok"), (8001, "warning"), (9500, "warning"), (9501, "critical"), (10000, "critical")],
)
def test_clients_against_maxclients(connected, status):
    verdict = judge(metrics(connected_clients=connected), DEFAULT_THRESHOLDS)
    assert verdict.status == status
    if status != "ok":
        (reason,) = verdict.reasons
        assert reason.startswith("client use (%d of maxclients 10000) is " % connected)


def test_clients_ratio_is_not_judged_without_maxclients():
    info = dict(HEALTHY_INFO, connected_clients=10**6)
    info.pop("maxclients")
    verdict = judge(metrics_from_info(info, 0.3), DEFAULT_THRESHOLDS, "CONFIG GET maxclients: NOPERM")
    assert verdict.status == "ok"
    assert verdict.reasons == []


def test_rejected_connections_warn_and_name_maxclients():
    verdict = judge(metrics(rejected_connections=3), DEFAULT_THRESHOLDS)
    assert verdict.status == "warning"
    assert verdict.reasons == [
        "3 connections were refused because maxclients (10000) was reached in the 86400 s since the server"
        " started (or the last CONFIG RESETSTAT), above the warning threshold of 0"
    ]


def test_rejected_connections_say_why_maxclients_is_unknown():
    info = dict(HEALTHY_INFO, rejected_connections=2)
    info.pop("maxclients")
    verdict = judge(metrics_from_info(info, 0.3), DEFAULT_THRESHOLDS, "CONFIG GET maxclients: unknown command")
    (reason,) = verdict.reasons
    assert "its value is not known: CONFIG GET maxclients: unknown command" in reason


@pytest.mark.parametrize(("limit", "status"), [(None, "ok"), (5, "ok"), (2, "warning")])
def test_rejected_connections_threshold(limit, status):
    thresholds = dict(DEFAULT_THRESHOLDS, rejected_connections_warning=limit)
    assert judge(metrics(rejected_connections=5), thresholds).status == status


@pytest.mark.parametrize(("limit", "status"), [(None, "ok"), (1000, "ok"), (999, "warning")])
def test_evicted_keys_are_judged_only_with_a_threshold(limit, status):
    thresholds = dict(DEFAULT_THRESHOLDS, evicted_keys_warning=limit)
    verdict = judge(metrics(evicted_keys=1000), thresholds)
    assert verdict.status == status
    if status == "warning":
        assert verdict.reasons[0].startswith("1000 keys were evicted at maxmemory (policy allkeys-lru)")


@pytest.mark.parametrize(
    ("overrides", "status", "reason_start"),
    [
        pytest.param({}, "ok", None, id="saves-ok"),
        pytest.param({"rdb_last_bgsave_status": "err"}, "critical", "the last RDB background save failed", id="rdb"),
        pytest.param({"aof_enabled": 1, "aof_last_write_status": "ok"}, "ok", None, id="aof-ok"),
        pytest.param(
            {"aof_enabled": 1, "aof_last_write_status": "err"},
            "critical",
            "the last append-only file write failed",
            id="aof-err",
        ),
        pytest.param({"aof_enabled": 0, "aof_last_write_status": "err"}, "ok", None, id="aof-off-ignored"),
    ],
)
def test_persistence(overrides, status, reason_start):
    verdict = judge(metrics(**overrides), DEFAULT_THRESHOLDS)
    assert verdict.status == status
    if reason_start:
        (reason,) = verdict.reasons
        assert reason.startswith(reason_start)
    else:
        assert verdict.reasons == []


def replica_metrics(**overrides):
    return metrics_from_info(dict(REPLICA_INFO, **overrides), 0.3)


def test_replica_with_link_up_is_ok():
    verdict = judge(replica_metrics(), DEFAULT_THRESHOLDS)
    assert verdict.status == "ok"
    assert verdict.reasons == []


@pytest.mark.parametrize(
    ("overrides", "details"),
    [
        ({"master_link_down_since_seconds": 42}, " (down for 42 s)"),
        (
            {"master_link_down_since_seconds": -1, "master_sync_in_progress": 1},
            " (a full synchronisation is in progress)",
        ),
        ({}, ""),
    ],
)
def test_replica_with_link_down_is_critical(overrides, details):
    verdict = judge(
        replica_metrics(master_link_status="down", master_last_io_seconds_ago=-1, **overrides), DEFAULT_THRESHOLDS
    )
    assert verdict.status == "critical"
    assert verdict.reasons == [
        "the replica's link to its master redis-primary:6379 is down%s; it serves stale data or errors" % details
    ]


@pytest.mark.parametrize(("seconds", "limit", "status"), [(30, 30, "ok"), (31, 30, "warning"), (500, None, "ok")])
def test_replica_silent_master_is_a_warning(seconds, limit, status):
    thresholds = dict(DEFAULT_THRESHOLDS, replica_io_warning_seconds=limit)
    verdict = judge(replica_metrics(master_last_io_seconds_ago=seconds), thresholds)
    assert verdict.status == status
    if status == "warning":
        assert verdict.reasons == [
            "the replica last heard from its master redis-primary:6379 31 s ago, above the warning threshold of 30 s"
        ]


# ---------------------------------------------------------------- read_info() round trips


class RecordingClient:
    """Stands in for a Redis older than 7 (none runs here): INFO takes one section,
    and CONFIG may be refused. Records the commands sent."""

    def __init__(self, multi_section_info=True, config=None, config_error=None, info=None):
        self.multi_section_info = multi_section_info
        self.config, self.config_error = config, config_error
        self.info_reply = dict(info if info is not None else HEALTHY_INFO)
        self.sent = []

    def execute_command(self, *args):
        self.sent.append(args)
        if not self.multi_section_info:
            raise _redis.redis.ResponseError("syntax error")
        return dict(self.info_reply)

    def info(self):
        self.sent.append(("INFO",))
        return dict(self.info_reply)

    def config_get(self, name):
        self.sent.append(("CONFIG", "GET", name))
        if self.config_error:
            raise _redis.redis.ResponseError(self.config_error)
        return {name: self.config}


def test_read_info_is_one_round_trip_on_redis_7():
    client = RecordingClient()
    info, maxclients, note = read_info(client)
    assert client.sent == [("INFO", *INFO_SECTIONS)]
    assert info["maxclients"] == 10000
    assert (maxclients, note) == (None, None)


def test_read_info_falls_back_to_plain_info_and_config_get():
    old = dict(HEALTHY_INFO)
    old.pop("maxclients")
    client = RecordingClient(multi_section_info=False, config="4064", info=old)
    _info, maxclients, note = read_info(client)
    assert client.sent == [("INFO", *INFO_SECTIONS), ("INFO",), ("CONFIG", "GET", "maxclients")]
    assert (maxclients, note) == ("4064", None)


@pytest.mark.parametrize(
    "error",
    ["NOPERM this user has no permissions to run the 'config|get' command", "unknown command 'CONFIG'"],
)
def test_read_info_survives_a_refused_or_renamed_config(error):
    old = dict(HEALTHY_INFO)
    old.pop("maxclients")
    _info, maxclients, note = read_info(RecordingClient(config_error=error, info=old))
    assert maxclients is None
    assert note == "CONFIG GET maxclients: " + error


# ---------------------------------------------------------------- connection options


def test_tls_options_reach_the_connection():
    client = _redis.redis_client(
        default_params(tls=True, ca_cert="/etc/ca.crt", client_cert="/etc/me.crt", client_key="/etc/me.key")
    )
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["ssl_ca_certs"] == "/etc/ca.crt"
    assert kwargs["ssl_certfile"] == "/etc/me.crt"
    assert kwargs["ssl_keyfile"] == "/etc/me.key"
    assert kwargs["ssl_cert_reqs"] == "required"
    assert kwargs["ssl_check_hostname"] is True


def test_validate_certs_false_skips_the_certificate_and_host_name_checks():
    client = _redis.redis_client(default_params(tls=True, validate_certs=False))
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["ssl_cert_reqs"] == "none"
    assert kwargs["ssl_check_hostname"] is False


def test_params_without_the_client_certificate_options_still_build_a_client():
    params = default_params(tls=True)
    del params["client_cert"], params["client_key"]
    kwargs = _redis.redis_client(params).connection_pool.connection_kwargs
    assert kwargs.get("ssl_certfile") is None


def test_client_does_not_announce_itself_with_client_setinfo():
    kwargs = _redis.redis_client(default_params()).connection_pool.connection_kwargs
    assert kwargs.get("driver_info") is None
    assert kwargs.get("lib_name") is None


def test_tls_error_is_found_in_the_exception_chain():
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    try:
        try:
            raise cause
        except OSError as exc:
            raise _redis.redis.ConnectionError("Error 1 connecting") from exc
    except _redis.redis.ConnectionError as wrapped:
        assert _redis.tls_error(wrapped) is cause
    assert _redis.tls_error(_redis.redis.ConnectionError("Connection refused")) is None


# ---------------------------------------------------------------- check() against real sockets


def test_unreachable_server_is_critical_at_once(closed_port):
    started = time.monotonic()
    result = check(default_params(login_port=closed_port), DEFAULT_THRESHOLDS)
    elapsed = time.monotonic() - started

    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert isinstance(result["error"], str)
    assert result["error"].startswith("ConnectionError")
    assert result["checked"] == "redis://127.0.0.1:%d/0" % closed_port
    (reason,) = result["reasons"]
    assert "Redis at 127.0.0.1:%d " % closed_port in reason
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


def test_main_returns_the_stable_shape(run_module, closed_port):
    code, result, out = run_module(
        cache_health, {"login_port": closed_port, "login_password": "s3cret-pw", "ping_warning_ms": 50}
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
    assert result["checked"] == "redis://127.0.0.1:%d/0" % closed_port
    assert isinstance(result["error"], str)
    assert "s3cret-pw" not in out


def test_main_runs_the_same_checks_in_check_mode(run_module, closed_port):
    code, result, _out = run_module(cache_health, {"login_port": closed_port}, check_mode=True)
    assert code == 0
    assert result["changed"] is False
    assert result["status"] == "critical"
    assert result["is_available"] is False


def test_main_fails_cleanly_without_redis_py(run_module, monkeypatch, closed_port):
    monkeypatch.setattr(_redis, "redis", None)
    code, result, _out = run_module(cache_health, {"login_port": closed_port})
    assert code == 1
    assert result["failed"] is True
    assert "redis" in result["msg"]


def test_main_rejects_an_unknown_option(run_module):
    code, result, _out = run_module(cache_health, {"login_prot": 6380})
    assert code == 1
    assert result["failed"] is True
    assert "login_prot" in result["msg"]
