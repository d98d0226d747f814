"""Unit tests for plugins/modules/pool_health.py.

No PostgreSQL server is needed: the verdict and the metrics are pure functions of the
row the single statement returns, and the unreachable cases use real loopback sockets.
The metrics backend reads a real loopback HTTP server (stdlib http.server).
"""

import json
import re
import time

import pytest
import yaml
from ansible_collections.incident.remediation.plugins.module_utils import _postgres
from ansible_collections.incident.remediation.plugins.module_utils._metrics import Sample
from ansible_collections.incident.remediation.plugins.module_utils._postgres import (
    classify_error,
    connection_kwargs,
    postgres_common_argument_spec,
    version_string,
)
from ansible_collections.incident.remediation.plugins.modules import pool_health
from ansible_collections.incident.remediation.plugins.modules.pool_health import (
    ACTIVITY_SQL,
    OPTION_SPEC,
    THRESHOLD_SPEC,
    check_metrics,
    check_postgresql,
    empty_metrics,
    judge,
    long_queries_from_row,
    metrics_from_row,
    pool_from_samples,
    saturation,
    scrub_query,
    top_groups,
    usable_slots,
)

RETURN = yaml.safe_load(pool_health.RETURN)
METRIC_KEYS = set(RETURN["metrics"]["contains"])
THRESHOLDS = {name: spec["default"] for name, spec in THRESHOLD_SPEC.items()}


def default_params(**overrides):
    """Module params as AnsibleModule would fill them."""
    spec = {**postgres_common_argument_spec(), **THRESHOLD_SPEC, **OPTION_SPEC}
    params = {name: option.get("default") for name, option in spec.items()}
    params.update(overrides)
    return params


def activity_row(**overrides):
    """An ACTIVITY_SQL row of a server with max_connections=100, 3 reserved slots, 14 sessions."""
    row = {
        "max_connections": 100,
        "superuser_reserved_connections": 3,
        "reserved_connections": 0,
        "in_use": 14,
        "hidden": 0,
        "by_state": {"idle": 10, "active": 2, "idle in transaction": 1, "idle in transaction (aborted)": 1},
        "by_client_addr": {"10.0.0.5": 12, "local": 2},
        "by_application": {"web": 9, "worker": 5},
        "by_user": {"app": 14},
        "by_database": {"app": 14},
        "idle_over_threshold": 4,
        "oldest_idle_seconds": 1200.04,
        "idle_in_transaction_over_threshold": 0,
        "oldest_idle_in_transaction_seconds": 12.34,
        "long_query_count": 0,
        "longest_query_seconds": 3.21,
        "long_queries": [],
    }
    row.update(overrides)
    return row


def pg_metrics(**overrides):
    return metrics_from_row(activity_row(**overrides), 20, query_ms=1.5, server_version=150004)


@pytest.fixture
def metrics_endpoint(http_server):
    """A loopback HTTP server answering GET /metrics with whatever body and status are set;
    the headers of each request are recorded."""
    state = {"body": "", "status": 200, "headers": []}

    def answer(headers):
        state["headers"].append(headers)
        return state["status"], state["body"]

    state["url"] = http_server(answer) + "/metrics"
    return state


# ---------------------------------------------------------------- saturation math


@pytest.mark.parametrize(
    ("max_connections", "superuser_reserved", "reserved", "usable"),
    [(100, 3, 0, 97), (20, 3, 0, 17), (100, 3, 5, 92), (100, 3, None, 97), (5, 5, 0, 0)],
)
def test_usable_slots(max_connections, superuser_reserved, reserved, usable):
    assert usable_slots(max_connections, superuser_reserved, reserved) == usable


@pytest.mark.parametrize(
    ("in_use", "capacity", "expected"),
    [
        (0, 17, 0.0),
        (14, 17, 0.8235),
        (16, 17, 0.9412),
        (17, 17, 1.0),
        (19, 17, 1.1176),  # superusers in the reserved slots
        (2, 3, 0.6667),
        (5, None, None),
        (None, 10, None),
        (5, 0, None),
        (5, -3, None),
    ],
)
def test_saturation_is_rounded_to_four_places(in_use, capacity, expected):
    assert saturation(in_use, capacity) == expected


def test_metrics_from_row_derives_capacity_and_saturation():
    metrics = pg_metrics()
    assert set(metrics) == METRIC_KEYS
    assert metrics["capacity"] == 97
    assert metrics["saturation"] == 0.1443
    assert metrics["free"] == 83
    assert (metrics["idle"], metrics["active"], metrics["idle_in_transaction"]) == (10, 2, 2)
    assert metrics["oldest_idle_seconds"] == 1200.0
    assert metrics["oldest_idle_in_transaction_seconds"] == 12.3
    assert metrics["server_version"] == "15.4"
    assert metrics["query_ms"] == 1.5


def test_metrics_from_row_counts_reserved_connections_of_postgresql_16():
    metrics = pg_metrics(max_connections=20, reserved_connections=2, in_use=14)
    assert metrics["capacity"] == 15
    assert metrics["saturation"] == 0.9333


def test_metrics_from_row_with_no_sessions():
    metrics = pg_metrics(in_use=0, by_state={}, by_client_addr={}, by_application={}, by_user={}, by_database={},
                         oldest_idle_seconds=None, oldest_idle_in_transaction_seconds=None,
                         longest_query_seconds=None)
    assert metrics["saturation"] == 0.0
    assert (metrics["idle"], metrics["active"], metrics["idle_in_transaction"]) == (0, 0, 0)
    assert metrics["oldest_idle_seconds"] is None
    assert metrics["by_client_addr"] == {}


def test_empty_metrics_has_every_documented_key_set_to_none():
    assert empty_metrics() == dict.fromkeys(METRIC_KEYS)


@pytest.mark.parametrize(
    ("server_version", "text"),
    [(150004, "15.4"), (160001, "16.1"), (100023, "10.23"), (90624, "9.6.24")],
)
def test_version_string(server_version, text):
    assert version_string(server_version) == text


# ---------------------------------------------------------------- groups and query text


def test_top_groups_keeps_the_largest_and_sums_the_rest():
    counts = {"a": 5, "b": 1, "c": 3, "d": 1, "e": 2}
    assert top_groups(counts, 2) == {"a": 5, "c": 3, "(other)": 4}
    assert top_groups(counts, 10) == counts
    assert top_groups(counts, 0) == {"(other)": 12}
    assert sum(top_groups(counts, 3).values()) == sum(counts.values())


def test_top_groups_breaks_ties_by_name():
    assert list(top_groups({"z": 2, "a": 2, "m": 2}, 2)) == ["a", "m", "(other)"]


def test_scrub_query_masks_secrets():
    assert scrub_query("ALTER ROLE app PASSWORD 's3cret'", 200) == "ALTER ROLE app PASSWORD '[REDACTED]'"
    assert scrub_query(None, 200) is None


def test_scrub_query_truncates_after_masking():
    text = "ALTER ROLE app PASSWORD '" + "x" * 500 + "'"
    assert scrub_query(text, 30) == "ALTER ROLE app PASSWORD '[REDA"
    assert scrub_query("y" * 500, 200) == "y" * 200


def test_long_queries_keep_only_the_allowed_columns():
    row = activity_row(long_queries=[{
        "pid": 42, "user": "app", "database": "app", "application": "api",
        "duration_seconds": 612.44, "query": "SELECT pg_sleep(600) -- password=x",
        "client_addr": "10.0.0.1", "backend_xid": "999",  # never passed on
    }])
    (entry,) = long_queries_from_row(row, 200)
    assert entry == {
        "pid": 42, "user": "app", "database": "app", "application": "api",
        "duration_seconds": 612.4, "query": "SELECT pg_sleep(600) -- password=[REDACTED]",
    }


def test_the_statement_reads_only_safe_columns_and_leaves_out_its_own_backend():
    assert "pid <> pg_backend_pid()" in ACTIVITY_SQL
    assert "backend_type = 'client backend'" in ACTIVITY_SQL
    assert ACTIVITY_SQL.count("FROM pg_stat_activity") == 1, "one read of pg_stat_activity"
    for column in ("backend_xid", "backend_xmin", "wait_event", "query_id", "client_hostname"):
        assert column not in ACTIVITY_SQL
    placeholders = set(re.findall(r"%\((\w+)\)s", ACTIVITY_SQL))
    assert placeholders == {"idle_s", "iit_s", "long_s", "text_len", "max_long"}
    assert not re.search(r"%(?!\(\w+\)s)", ACTIVITY_SQL.replace("%%", "")), "a lone % breaks psycopg2's parameters"


# ---------------------------------------------------------------- verdict


@pytest.mark.parametrize(
    ("in_use", "status"),
    [
        (0, "ok"),
        (77, "ok"),  # 0.7938
        (78, "warning"),  # 0.8041
        (92, "warning"),  # 0.9485
        (93, "critical"),  # 0.9588
        (97, "critical"),
        (99, "critical"),
    ],
)
def test_saturation_verdict_with_runbook_defaults(in_use, status):
    verdict = judge(pg_metrics(in_use=in_use), THRESHOLDS)
    assert verdict.status == status
    if status == "ok":
        assert verdict.reasons == []
    else:
        (reason,) = verdict.reasons
        ratio = ("%.4f" % (in_use / 97)).rstrip("0").rstrip(".")
        assert reason.startswith("connection pool saturation is %s, above the %s threshold" % (ratio, status))


@pytest.mark.parametrize(
    ("in_use", "capacity", "status"),
    [(80, 100, "ok"), (81, 100, "warning"), (95, 100, "warning"), (96, 100, "critical")],
)
def test_thresholds_are_strictly_above(in_use, capacity, status):
    metrics = dict(empty_metrics(), in_use=in_use, capacity=capacity, saturation=saturation(in_use, capacity))
    assert judge(metrics, THRESHOLDS).status == status


def test_custom_thresholds_are_used():
    assert judge(pg_metrics(in_use=50), dict(THRESHOLDS, saturation_warning=0.5)).status == "warning"
    assert judge(pg_metrics(in_use=50), dict(THRESHOLDS, saturation_critical=0.3)).status == "critical"


def test_long_queries_make_a_warning():
    verdict = judge(pg_metrics(long_query_count=2, longest_query_seconds=612.0), THRESHOLDS)
    assert verdict.status == "warning"
    assert verdict.reasons == ["2 active queries have been running longer than 5 min (the longest for 612 s)"]


def test_idle_in_transaction_over_threshold_makes_a_warning():
    verdict = judge(pg_metrics(idle_in_transaction_over_threshold=1, oldest_idle_in_transaction_seconds=400.0),
                    dict(THRESHOLDS, idle_in_transaction_minutes=2.5))
    assert verdict.status == "warning"
    assert verdict.reasons == [
        "1 session has been idle in a transaction for longer than 2.5 min (the oldest for 400 s)"
    ]


def test_old_idle_sessions_alone_do_not_change_the_verdict():
    assert judge(pg_metrics(idle_over_threshold=50), THRESHOLDS).status == "ok"


def test_hidden_sessions_add_a_reason_but_keep_the_status():
    verdict = judge(pg_metrics(hidden=5), THRESHOLDS)
    assert verdict.status == "ok"
    assert verdict.reasons == ["5 sessions of other roles could not be inspected (state, query and client "
                               "address hidden); grant pg_monitor to the login user"]


def test_findings_combine_to_the_worst():
    verdict = judge(pg_metrics(in_use=96, long_query_count=1, longest_query_seconds=301.0), THRESHOLDS)
    assert verdict.status == "critical"
    assert len(verdict.reasons) == 2


# ---------------------------------------------------------------- connection errors


def test_connection_kwargs_bound_each_statement_and_name_the_application():
    kwargs = connection_kwargs(default_params(login_password="pw", ca_cert="/ca.pem", connect_timeout=3), "me")
    assert kwargs["options"] == "-c statement_timeout=3000"
    assert kwargs["application_name"] == "me"
    assert kwargs["sslrootcert"] == "/ca.pem"
    assert kwargs["password"] == "pw"
    assert "password" not in connection_kwargs(default_params(), "me")


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("FATAL:  sorry, too many clients already", "slots_exhausted"),
        ("FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute", "slots_exhausted"),
        ('FATAL:  password authentication failed for user "app"', "auth"),
        ('FATAL:  no pg_hba.conf entry for host "10.0.0.1"', "auth"),
        ('FATAL:  database "nope" does not exist', "auth"),
        ("timeout expired", "timeout"),
        ("Connection refused\n\tIs the server running", "unreachable"),
    ],
)
def test_connection_errors_are_classified(message, kind):
    error = classify_error(Exception(message), default_params())
    assert error.kind == kind
    assert "127.0.0.1:5432/postgres" in str(error)


def test_unreachable_server_is_critical_at_once(closed_port):
    started = time.monotonic()
    result = check_postgresql(default_params(login_port=closed_port))
    assert time.monotonic() - started < 1.5
    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert result["metrics"] == dict.fromkeys(METRIC_KEYS)
    assert result["long_queries"] == []
    assert result["checked"] == "postgresql://postgres@127.0.0.1:%d/postgres" % closed_port
    assert "is unreachable" in result["reasons"][0]
    assert result["error"] == result["reasons"][0]


def test_silent_server_is_critical_within_connect_timeout(silent_port):
    started = time.monotonic()
    result = check_postgresql(default_params(login_port=silent_port, connect_timeout=2))
    elapsed = time.monotonic() - started
    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert "did not answer within 2 s" in result["reasons"][0]
    assert 1.5 <= elapsed < 4.0


# ---------------------------------------------------------------- metrics backend

SQLALCHEMY_EXPOSITION = """\
# HELP sqlalchemy_pool_checked_out Connections checked out of the pool
# TYPE sqlalchemy_pool_checked_out gauge
sqlalchemy_pool_checked_out{engine="primary",worker="1"} 9
sqlalchemy_pool_checked_out{engine="primary",worker="2"} 8
sqlalchemy_pool_checked_out{engine="replica",worker="1"} 1
# HELP sqlalchemy_pool_size Pool size
# TYPE sqlalchemy_pool_size gauge
sqlalchemy_pool_size{engine="primary",worker="1"} 10
sqlalchemy_pool_size{engine="primary",worker="2"} 10
sqlalchemy_pool_size{engine="replica",worker="1"} 10
"""


def samples(in_use=None, size=None, name_in_use="sqlalchemy_pool_checked_out", name_size="sqlalchemy_pool_size"):
    found = []
    if in_use is not None:
        found.append(Sample(name_in_use, {"engine": "primary"}, float(in_use)))
    if size is not None:
        found.append(Sample(name_size, {"engine": "primary"}, float(size)))
    return found


@pytest.mark.parametrize(
    ("found", "overrides", "expected"),
    [
        (samples(8, 10), {}, (8, 10, [])),
        (samples(8, None), {"pool_size": 20}, (8, 20, [])),
        (samples(8, 10), {"pool_size": 20}, (8, 20, [])),
        (samples(None, 10), {}, (None, 10, ["metric sqlalchemy_pool_checked_out is not exposed"])),
        (samples(8, None), {}, (8, None, ["metric sqlalchemy_pool_size is not exposed (set pool_size for "
                                          "exporters without it)"])),
        (samples(3, None, name_in_use="prisma_pool_connections_busy"),
         {"pool_in_use_metric": "prisma_pool_connections_busy", "pool_size": 17}, (3, 17, [])),
        (samples(8, 10), {"metrics_labels": {"engine": "replica"}},
         (None, None, ["metric sqlalchemy_pool_checked_out is not exposed",
                       "metric sqlalchemy_pool_size is not exposed (set pool_size for exporters without it)"])),
    ],
)
def test_pool_from_samples(found, overrides, expected):
    assert pool_from_samples(found, default_params(**overrides)) == expected


def test_metrics_backend_sums_the_matching_series(metrics_endpoint):
    metrics_endpoint["body"] = SQLALCHEMY_EXPOSITION
    result = check_metrics(default_params(backend="metrics", metrics_url=metrics_endpoint["url"],
                                          metrics_labels={"engine": "primary"}))
    assert result["is_available"] is True
    assert result["status"] == "warning"  # 17 of 20
    assert result["metrics"]["in_use"] == 17
    assert result["metrics"]["capacity"] == 20
    assert result["metrics"]["saturation"] == 0.85
    assert result["metrics"]["free"] == 3
    assert result["metrics"]["max_connections"] is None
    assert result["reasons"] == ["application pool saturation is 0.85, above the warning threshold of 0.8"]
    assert result["checked"] == metrics_endpoint["url"]
    assert result["long_queries"] == []


def test_metrics_backend_without_the_gauge_is_unknown(metrics_endpoint):
    metrics_endpoint["body"] = "# TYPE other gauge\nother 1\n"
    result = check_metrics(default_params(backend="metrics", metrics_url=metrics_endpoint["url"]))
    assert result["is_available"] is True
    assert result["status"] == "unknown"
    assert len(result["reasons"]) == 2


def test_metrics_backend_sends_the_headers(metrics_endpoint):
    metrics_endpoint["body"] = SQLALCHEMY_EXPOSITION
    result = check_metrics(default_params(backend="metrics", metrics_url=metrics_endpoint["url"],
                                          metrics_headers={"Authorization": "Bearer tkn"}))
    assert metrics_endpoint["headers"][-1]["Authorization"] == "Bearer tkn"
    assert result["status"] == "ok"


def test_metrics_backend_hides_credentials_in_the_url(metrics_endpoint):
    metrics_endpoint["body"] = SQLALCHEMY_EXPOSITION
    url = metrics_endpoint["url"].replace("http://", "http://scraper:pw-in-url@") + "?key=query-secret"
    result = check_metrics(default_params(backend="metrics", metrics_url=url))
    assert metrics_endpoint["headers"][-1]["Authorization"].startswith("Basic ")
    assert result["status"] == "ok"  # 18 of 30, every series summed
    assert result["checked"] == metrics_endpoint["url"]
    assert "pw-in-url" not in json.dumps(result)
    assert "query-secret" not in json.dumps(result)


def test_metrics_endpoint_errors_are_unknown(metrics_endpoint, closed_port):
    metrics_endpoint["status"] = 503
    result = check_metrics(default_params(backend="metrics", metrics_url=metrics_endpoint["url"]))
    assert result["status"] == "unknown"
    assert result["is_available"] is False
    assert "503" in result["error"]
    refused = check_metrics(default_params(backend="metrics", metrics_url="http://127.0.0.1:%d/m" % closed_port))
    assert refused["status"] == "unknown"
    assert refused["is_available"] is False
    assert refused["reasons"][0].startswith("the application pool could not be read")


# ---------------------------------------------------------------- main() in process


def test_main_returns_the_stable_shape(run_module, closed_port):
    code, result, out = run_module(pool_health, {"login_port": closed_port, "login_password": "s3cret-pw",
                                                 "saturation_warning": 0.7})
    assert code == 0
    assert "failed" not in result
    assert result["changed"] is False
    assert set(RETURN) | {"changed"} <= set(result)
    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert result["metrics"] == dict.fromkeys(METRIC_KEYS)
    assert result["thresholds"] == dict(THRESHOLDS, saturation_warning=0.7)
    assert result["backend"] == "postgresql"
    assert result["checked"] == "postgresql://postgres@127.0.0.1:%d/postgres" % closed_port
    assert isinstance(result["elapsed_ms"], float)
    assert "s3cret-pw" not in out


def test_main_takes_the_password_from_pgpassword(run_module, closed_port, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "from-env-pw")
    code, result, out = run_module(pool_health, {"login_port": closed_port})
    assert code == 0
    assert "from-env-pw" not in out
    assert result["status"] == "critical"


def test_main_runs_the_same_checks_in_check_mode(run_module, closed_port):
    code, result, _out = run_module(pool_health, {"login_port": closed_port}, check_mode=True)
    assert code == 0
    assert result["changed"] is False
    assert result["status"] == "critical"


def test_main_metrics_backend(run_module, metrics_endpoint):
    metrics_endpoint["body"] = SQLALCHEMY_EXPOSITION
    code, result, out = run_module(pool_health, {"backend": "metrics", "metrics_url": metrics_endpoint["url"],
                                                 "pool_size": 100, "metrics_headers": {"X-Token": "hdr-secret"}})
    assert code == 0
    assert result["backend"] == "metrics"
    assert result["metrics"]["in_use"] == 18
    assert result["status"] == "ok"
    assert "hdr-secret" not in out


def test_main_metrics_backend_needs_a_url(run_module):
    code, result, _out = run_module(pool_health, {"backend": "metrics"})
    assert code == 1
    assert "metrics_url" in result["msg"]


def test_main_fails_cleanly_without_psycopg2(run_module, monkeypatch, closed_port):
    monkeypatch.setattr(_postgres, "psycopg2", None)
    code, result, _out = run_module(pool_health, {"login_port": closed_port})
    assert code == 1
    assert result["failed"] is True
    assert "psycopg2" in result["msg"]


def test_main_rejects_an_unknown_option(run_module):
    code, result, _out = run_module(pool_health, {"login_prot": 5433})
    assert code == 1
    assert "login_prot" in result["msg"]
