"""Unit tests for plugins/modules/http_health.py.

Pure logic on constructed replies and documents; the retry loop and main() run in process
against a closed loopback port (connection refused at once), with a recording sleep.
"""

import re

import pytest
import yaml
from ansible_collections.incident.remediation.plugins.module_utils._http import HttpResult, http_common_argument_spec
from ansible_collections.incident.remediation.plugins.modules import http_health
from ansible_collections.incident.remediation.plugins.modules.http_health import (
    DETAILED_SPEC,
    PROBE_SPEC,
    THRESHOLD_SPEC,
    attempt_outcome,
    check,
    classify,
    components_of,
    empty_metrics,
    failure_runs,
    judge_attempts,
    judge_detailed,
    lookup,
    run_attempts,
)

RETURN = yaml.safe_load(http_health.RETURN)
THRESHOLDS = {name: spec.get("default") for name, spec in THRESHOLD_SPEC.items()}
OPTIONS = {name: spec["default"] for name, spec in DETAILED_SPEC.items()}
COMMON = {name: spec.get("default") for name, spec in http_common_argument_spec().items()}


def probe(**overrides):
    settings = {name: spec.get("default") for name, spec in PROBE_SPEC.items() if name != "url"}
    settings.update(body_pattern=None, detailed=False)
    settings.update(overrides)
    return settings


def reply(status=200, body=b'{"status": "ok"}', *, error=None, elapsed_ms=4.0, timed_out=False):
    return HttpResult(status, body, {}, elapsed_ms, error, timed_out=timed_out)


def attempts_of(*oks):
    return [dict(attempt=index, http_status=200 if ok else 503, latency_ms=1.0, ok=ok,
                 error=None if ok else "HTTP 503 Service Unavailable")
            for index, ok in enumerate(oks, start=1)]


# ---------------------------------------------------------------- attempts


@pytest.mark.parametrize(
    ("given", "codes", "pattern", "detailed", "failure"),
    [
        (reply(), [200], None, False, None),
        (reply(status=None, error="ConnectionRefusedError: refused"), [200], None, False,
         "ConnectionRefusedError: refused"),
        (reply(status=None), [200], None, False, "no answer"),
        (reply(503, error="HTTP 503 Service Unavailable"), [200], None, False, "HTTP 503 Service Unavailable"),
        (reply(503, error="HTTP 503 Service Unavailable"), [200, 503], None, False, None),
        (reply(204), [200], None, False, "HTTP 204, expected 200"),
        (reply(body=b"all good"), [200], re.compile("good"), False, None),
        (reply(body=b"all bad"), [200], re.compile("good"), False, "HTTP 200 but the body does not match 'good'"),
        (reply(body=b"<html>"), [200], None, True, "HTTP 200 but the body is not JSON"),
        (reply(body=b"[1, 2]"), [200], None, True, "HTTP 200 but the body is not a JSON object"),
        (reply(body=b'{"overallStatus": "healthy"}'), [200], None, True, None),
    ],
)
def test_attempt_outcome(given, codes, pattern, detailed, failure):
    assert attempt_outcome(given, codes, pattern, detailed) == failure


@pytest.mark.parametrize(
    ("oks", "runs"),
    [([], (0, 0)), ([True], (0, 0)), ([False], (1, 1)), ([False, True], (1, 1)), ([False, False], (2, 2)),
     ([False, True, False], (1, 2)), ([False, False, True], (2, 2)), ([True, False, False, False], (3, 3))],
)
def test_failure_runs(oks, runs):
    assert failure_runs(oks) == runs


@pytest.mark.parametrize(
    ("oks", "threshold", "status", "reason"),
    [
        ([True], 2, "ok", None),
        ([False, True], 2, "warning",
         "attempt 1 of 2 failed (HTTP 503 Service Unavailable), then the endpoint answered: a blip"),
        ([False, False], 2, "critical",
         "2 of 2 attempts failed, 2 in a row (HTTP 503 Service Unavailable)"),
        ([False, False, False], 2, "critical",
         "3 of 3 attempts failed, 3 in a row (HTTP 503 Service Unavailable)"),
        ([False, False, True], 2, "critical",
         "2 of 3 attempts failed, 2 in a row (HTTP 503 Service Unavailable), "
         "then the endpoint answered again at attempt 3"),
        ([False, False, True], 3, "warning",
         "attempts 1, 2 of 3 failed (HTTP 503 Service Unavailable), then the endpoint answered: a blip"),
        ([False], 1, "critical",
         "1 of 1 attempt failed, 1 in a row (HTTP 503 Service Unavailable)"),
        ([False], 2, "warning",
         "1 of 1 attempt failed (HTTP 503 Service Unavailable), fewer than the 2 in a row that make it critical"),
    ],
)
def test_judge_attempts_tells_a_blip_from_an_outage(oks, threshold, status, reason):
    verdict = judge_attempts(attempts_of(*oks), threshold)
    assert verdict.status == status
    assert verdict.reasons == ([reason] if reason else [])


def test_run_attempts_retries_with_the_delay_and_scrubs_errors(closed_port):
    slept = []
    url = "http://127.0.0.1:%d/health?token=query-secret" % closed_port
    attempts, last, success = run_attempts(url, COMMON, probe(attempts=3, retry_delay_ms=250), sleep=slept.append)
    assert slept == [0.25, 0.25]
    assert [one["attempt"] for one in attempts] == [1, 2, 3]
    assert not any(one["ok"] for one in attempts)
    assert all(one["http_status"] is None and "Connection refused" in one["error"] for one in attempts)
    assert all(isinstance(one["latency_ms"], float) for one in attempts)
    assert success is None
    assert last.status is None
    assert set(attempts[0]) == set(RETURN["attempt_results"]["contains"])


def test_check_on_a_closed_port_is_critical_with_the_stable_shape(closed_port):
    result = check("http://127.0.0.1:%d/health" % closed_port, COMMON, probe(attempts=2), THRESHOLDS, OPTIONS,
                   sleep=lambda seconds: None)
    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert set(result) | {"thresholds", "elapsed_ms"} == set(RETURN)
    assert result["metrics"]["attempts_made"] == 2
    assert result["metrics"]["consecutive_failures"] == 2
    assert result["components"] == [] and result["overall_status"] is None
    assert "Connection refused" in result["error"]


# ---------------------------------------------------------------- detailed documents


RUNBOOK_002 = {
    "overallStatus": "degraded",
    "components": {
        "database": {"status": "healthy", "responseTime": 5200},
        "redis": {"status": "degraded", "responseTime": 40},
        "blockchain": {"status": "unhealthy", "responseTime": 12},
        "ipfs": {"status": "healthy"},
    },
}

CHECKS_SHAPE = {
    "overallStatus": "healthy",
    "checks": [{"name": "database", "status": "healthy", "responseTime": 12}, {"status": "UP", "responseTime": "7ms"}],
}


@pytest.mark.parametrize(
    ("path", "value"),
    [("overallStatus", "degraded"), ("components.redis.status", "degraded"), ("", RUNBOOK_002),
     ("components.none", http_health._MISSING), ("overallStatus.x", http_health._MISSING)],
)
def test_lookup(path, value):
    assert lookup(RUNBOOK_002, path) == value


def test_lookup_indexes_lists():
    assert lookup(CHECKS_SHAPE, "checks.0.name") == "database"
    assert lookup(CHECKS_SHAPE, "checks.-1.status") == "UP"
    assert lookup(CHECKS_SHAPE, "checks.2") is http_health._MISSING


def test_components_keyed_by_name():
    assert [name for name, _component in components_of(RUNBOOK_002, OPTIONS)] == [
        "database", "redis", "blockchain", "ipfs"]


def test_components_as_a_list_with_names():
    assert [name for name, _component in components_of(CHECKS_SHAPE, OPTIONS)] == ["database", "checks.1"]


def test_first_components_path_present_wins():
    document = {"components": {"a": {"status": "ok"}}, "checks": [{"name": "b", "status": "ok"}]}
    assert [name for name, _component in components_of(document, OPTIONS)] == ["a"]
    checks_only = dict(OPTIONS, components_path=["checks"])
    assert [name for name, _component in components_of(document, checks_only)] == ["b"]
    assert components_of({"overallStatus": "ok"}, OPTIONS) == []


@pytest.mark.parametrize(
    ("value", "status"),
    [("healthy", "ok"), ("Healthy", "ok"), ("UP", "ok"), ("pass", "ok"), ("degraded", "warning"),
     ("WARN", "warning"), ("unhealthy", "critical"), ("down", "critical"), ("", "critical"), (True, "critical")],
)
def test_classify(value, status):
    assert classify(value, OPTIONS) == status


def test_judge_detailed_in_runbook_002_shape():
    findings, overall, entries = judge_detailed(RUNBOOK_002, OPTIONS, THRESHOLDS)
    assert overall == "degraded"
    assert findings == [
        ("warning", "overall status is degraded"),
        ("warning", "response time of component 'database' is 5200 ms, above the warning threshold of 5000 ms"),
        ("warning", "component 'redis' is degraded"),
        ("critical", "component 'blockchain' is unhealthy"),
    ]
    assert [(entry["name"], entry["verdict"], entry["slow"]) for entry in entries] == [
        ("database", "warning", True), ("redis", "warning", False), ("blockchain", "critical", False),
        ("ipfs", "ok", False)]
    assert entries[3]["response_time_ms"] is None


def test_component_time_critical_threshold():
    thresholds = dict(THRESHOLDS, component_time_critical_ms=5100.0)
    findings, _overall, entries = judge_detailed(RUNBOOK_002, OPTIONS, thresholds)
    assert ("critical", "response time of component 'database' is 5200 ms, above the critical threshold of 5100 ms") \
        in findings
    assert entries[0]["verdict"] == "critical"


def test_judge_detailed_in_checks_shape():
    findings, overall, entries = judge_detailed(CHECKS_SHAPE, OPTIONS, THRESHOLDS)
    assert (findings, overall) == ([], "healthy")
    assert entries[1]["response_time_ms"] == 7.0


def test_missing_overall_status_is_unknown():
    findings, overall, _entries = judge_detailed({"status": "ok"}, OPTIONS, THRESHOLDS)
    assert overall is None
    assert findings == [("unknown", "the detailed health document has no overallStatus")]


def test_overall_status_check_can_be_skipped():
    findings, overall, _entries = judge_detailed({"status": "ok"}, dict(OPTIONS, overall_status_path=""), THRESHOLDS)
    assert (findings, overall) == ([], None)


def test_custom_keys_and_status_values():
    document = {"health": {"state": "RED", "deps": [{"id": "db", "state": "GREEN", "ms": 9000}]}}
    options = dict(OPTIONS, overall_status_path="health.state", components_path=["health.deps"],
                   component_name_key="id", component_status_key="state", component_time_key="ms",
                   healthy_statuses=["green"], degraded_statuses=["yellow"])
    findings, overall, entries = judge_detailed(document, options, THRESHOLDS)
    assert overall == "RED"
    assert findings[0] == ("critical", "overall status is RED")
    assert entries[0]["name"] == "db" and entries[0]["slow"] is True


def test_empty_metrics_has_every_documented_key():
    assert set(empty_metrics()) == set(RETURN["metrics"]["contains"])


# ---------------------------------------------------------------- main() in process


def test_main_returns_the_stable_shape(run_module, closed_port):
    url = "http://u:pw-in-url@127.0.0.1:%d/health?token=query-secret" % closed_port
    code, result, out = run_module(http_health, {"url": url, "attempts": 2, "retry_delay_ms": 0,
                                                 "auth_headers": {"Authorization": "Bearer header-secret"}})
    assert code == 0
    assert result["changed"] is False
    assert set(RETURN) | {"changed"} <= set(result)
    assert result["status"] == "critical"
    assert result["checked"] == "http://127.0.0.1:%d/health" % closed_port
    assert len(result["attempt_results"]) == 2
    assert result["thresholds"] == THRESHOLDS
    for secret in ("pw-in-url", "query-secret", "header-secret"):
        assert secret not in out


def test_main_shows_a_url_without_secrets(run_module, closed_port):
    url = "http://127.0.0.1:%d/health" % closed_port
    _code, result, _out = run_module(http_health, {"url": url, "attempts": 2, "retry_delay_ms": 0})
    assert result["checked"] == url
    assert result["invocation"]["module_args"]["url"] == url


def test_main_runs_the_same_in_check_mode(run_module, closed_port):
    code, result, _out = run_module(http_health, {"url": "http://127.0.0.1:%d/" % closed_port, "attempts": 2,
                                                  "retry_delay_ms": 0}, check_mode=True)
    assert code == 0
    assert (result["changed"], result["status"], result["is_available"]) == (False, "critical", False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"attempts": 1}, "attempts (1) must be at least failures_for_critical (2)"),
        ({"attempts": 0, "failures_for_critical": 0}, "must be at least 1"),
        ({"retry_delay_ms": -1}, "retry_delay_ms must not be negative"),
        ({"method": "HEAD", "detailed": True}, "method HEAD gets no body"),
        ({"method": "HEAD", "body_regex": "ok"}, "method HEAD gets no body"),
        ({"body_regex": "("}, "body_regex is not a valid regular expression"),
        ({"method": "POST"}, "method"),
    ],
)
def test_main_refuses_bad_arguments(run_module, args, message):
    code, result, _out = run_module(http_health, dict({"url": "http://127.0.0.1:1/"}, **args))
    assert code == 1
    assert result["failed"] is True
    assert message in result["msg"]


def test_expected_status_is_an_alias_of_status_code():
    assert PROBE_SPEC["status_code"]["aliases"] == ["expected_status"]
    assert PROBE_SPEC["url"]["no_log"] is True
