"""Unit tests for plugins/modules/rpc_health.py (URL redaction itself: module_utils/test_redact.py).

Pure logic on constructed replies; main() runs in process against a closed loopback port.
The JSON-RPC servers of the integration tests are not needed here.
"""

import json

import pytest
import yaml
from ansible_collections.incident.remediation.plugins.module_utils._http import HttpResult
from ansible_collections.incident.remediation.plugins.module_utils._redact import REDACTED
from ansible_collections.incident.remediation.plugins.modules import rpc_health
from ansible_collections.incident.remediation.plugins.modules.rpc_health import (
    ENDPOINT_OPTIONS,
    THRESHOLD_SPEC,
    ResultError,
    choose_best,
    decode_height,
    endpoint_list,
    extract,
    fill_lags,
    interpret,
    judge_endpoint,
    metrics_of,
    overall,
    request_params,
    rpc_call,
    split_path,
)

DOC = yaml.safe_load(rpc_health.DOCUMENTATION)
RETURN = yaml.safe_load(rpc_health.RETURN)
THRESHOLDS = {name: spec["default"] for name, spec in THRESHOLD_SPEC.items()}


def reply(document=None, *, status=200, text=None, elapsed_ms=12.5, error=None, timed_out=False):
    body = (text if text is not None else json.dumps(document)).encode() if status is not None else b""
    return HttpResult(status, body, {}, elapsed_ms, error, timed_out=timed_out)


def entry(name="primary", role="primary", *, height=100, latency_ms=10.0, error=None, rpc_error=None,
          timed_out=False, timeout=5.0):
    return dict(name=name, role=role, url="http://x/", timeout=timeout, status=None, healthy=False, lag=None,
                reasons=[], latency_ms=latency_ms, http_status=200, result=None, height=height,
                rpc_error=rpc_error, error=error, timed_out=timed_out)


def judged(entries, thresholds=None):
    fill_lags(entries)
    findings = [judge_endpoint(one, thresholds or THRESHOLDS) for one in entries]
    best = choose_best(entries)
    return findings, best, overall(entries, findings, best)


# ---------------------------------------------------------------- heights and paths


@pytest.mark.parametrize(
    ("value", "height"),
    [("0x0", 0), ("0x1a", 26), ("0X1A", 26), ("0x121eac0", 19000000), (26, 26), (0, 0), ("123", 123),
     (" 0x10 ", 16), (12.0, 12)],
)
def test_decode_height(value, height):
    assert decode_height(value) == height


@pytest.mark.parametrize("value", ["0x", "abc", "0xzz", "", "-5", None, True, False, -1, 1.5, [], {}, "1e3"])
def test_decode_height_refuses_what_is_not_a_height(value):
    with pytest.raises(ResultError, match="is not a block height"):
        decode_height(value)


@pytest.mark.parametrize(
    ("path", "segments"),
    [("result", ["result"]), ("result.number", ["result", "number"]), ("number", ["result", "number"]),
     ("", ["result"]), ("blocks.0.height", ["result", "blocks", "0", "height"]),
     ("result..number", ["result", "number"])],
)
def test_split_path_is_inside_result(path, segments):
    assert split_path(path) == segments


DOCUMENT = {"jsonrpc": "2.0", "id": 1, "result": {"number": "0x10", "list": [{"height": 7}, {"height": 8}]}}


@pytest.mark.parametrize(
    ("path", "value"),
    [("result", DOCUMENT["result"]), ("result.number", "0x10"), ("number", "0x10"), ("result.list.1.height", 8),
     ("list.-1.height", 8)],
)
def test_extract(path, value):
    assert extract(DOCUMENT, path) == value


@pytest.mark.parametrize(
    ("path", "message"),
    [("result.hash", "the reply has no result.hash"), ("result.list.5", "the reply has no result.list.5"),
     ("result.list.x", "the reply has no result.list.x"),
     ("result.number.deeper", "the reply has no result.number.deeper (result.number is not an object or a list)")],
)
def test_extract_says_what_is_missing(path, message):
    with pytest.raises(ResultError) as raised:
        extract(DOCUMENT, path)
    assert str(raised.value) == message


def test_rpc_call_is_json_rpc_2():
    assert rpc_call("eth_blockNumber", []) == {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": [], "id": 1}


# ---------------------------------------------------------------- interpreting replies


def test_interpret_a_hex_height():
    seen = interpret(reply({"jsonrpc": "2.0", "id": 1, "result": "0x64"}), "result", True, 5.0)
    assert seen == dict(latency_ms=12.5, http_status=200, result="0x64", height=100, rpc_error=None, error=None,
                        timed_out=False)


def test_interpret_without_height_keeps_the_result():
    seen = interpret(reply({"jsonrpc": "2.0", "id": 1, "result": {"peers": 3}}), "result.peers", False, 5.0)
    assert (seen["result"], seen["height"], seen["error"]) == (3, None, None)


@pytest.mark.parametrize(
    ("given", "error", "rpc_error"),
    [
        (reply(status=None, error="timeout: timed out", timed_out=True), "no answer within 2.5 s", None),
        (reply(status=None, error="ConnectionRefusedError: [Errno 111] Connection refused"),
         "ConnectionRefusedError: [Errno 111] Connection refused", None),
        (reply(status=500, text="Internal Server Error", error="HTTP 500 Internal Server Error"),
         "HTTP 500 Internal Server Error", None),
        (reply({"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": "limit exceeded"}}, status=429,
               error="HTTP 429 Too Many Requests"),
         "HTTP 429, JSON-RPC error -32005: limit exceeded", {"code": -32005, "message": "limit exceeded"}),
        (reply({"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "header not found"}}),
         "JSON-RPC error -32000: header not found", {"code": -32000, "message": "header not found"}),
        (reply({"jsonrpc": "2.0", "id": 1, "error": "plain text error"}),
         "JSON-RPC error None: plain text error", {"code": None, "message": "plain text error"}),
        (reply({"error": "unauthorized"}, status=401, error="HTTP 401 Unauthorized"), "HTTP 401 Unauthorized", None),
        (reply(text="<html>502 Bad Gateway</html>"), "the reply is not JSON: '<html>502 Bad Gateway</html>'", None),
        (reply([{"jsonrpc": "2.0", "id": 1, "result": "0x1"}]), "the reply is not a JSON-RPC response: [{", None),
        (reply({"jsonrpc": "2.0", "id": 1}), "the reply is not a JSON-RPC response: {", None),
        (reply({"jsonrpc": "2.0", "id": 1, "result": None}), "the result None is not a block height", None),
        (reply({"jsonrpc": "2.0", "id": 1, "result": "0x64"}, status=302, error="HTTP 302 Found"),
         "HTTP 302 Found", None),
    ],
)
def test_interpret_errors(given, error, rpc_error):
    seen = interpret(given, "result", True, 2.5)
    assert seen["error"].startswith(error)
    assert seen["rpc_error"] == rpc_error
    assert seen["height"] is None


def test_interpret_a_missing_result_path():
    seen = interpret(reply({"jsonrpc": "2.0", "id": 1, "result": {"hash": "0xab"}}), "result.number", True, 5.0)
    assert seen["error"] == "the reply has no result.number"
    assert seen["result"] is None


# ---------------------------------------------------------------- lags, verdicts, best endpoint


def test_fill_lags_against_the_best_height():
    entries = [entry(height=95), entry("b1", "backup", height=100), entry("b2", "backup", height=None)]
    assert fill_lags(entries) == 100
    assert [one["lag"] for one in entries] == [5, 0, None]


def test_fill_lags_without_any_height():
    entries = [entry(height=None), entry("b1", "backup", height=None)]
    assert fill_lags(entries) is None
    assert [one["lag"] for one in entries] == [None, None]


@pytest.mark.parametrize(
    ("lag", "latency", "status", "reason"),
    [
        (0, 10.0, "ok", None),
        (5, 10.0, "ok", None),
        (6, 10.0, "warning", "lag of primary is 6 blocks, above the warning threshold of 5 blocks"),
        (20, 10.0, "warning", "lag of primary is 20 blocks, above the warning threshold of 5 blocks"),
        (21, 10.0, "critical", "lag of primary is 21 blocks, above the critical threshold of 20 blocks"),
        (0, 1000.5, "warning", "latency of primary is 1000.5 ms, above the warning threshold of 1000 ms"),
        (0, 3001.0, "critical", "latency of primary is 3001 ms, above the critical threshold of 3000 ms"),
    ],
)
def test_endpoint_verdict_on_lag_and_latency(lag, latency, status, reason):
    one = entry(height=100 - lag, latency_ms=latency)
    best = entry("b1", "backup", height=100)
    judged([one, best])
    assert one["status"] == status
    assert one["reasons"] == ([reason] if reason else [])
    assert one["healthy"] is (status != "critical")


@pytest.mark.parametrize(
    ("error", "rpc_error", "timed_out", "reason"),
    [
        ("no answer within 2 s", None, True, "backup 'alchemy' did not answer within 2 s"),
        ("JSON-RPC error -32000: header not found", {"code": -32000, "message": "header not found"}, False,
         "backup 'alchemy' answered with JSON-RPC error -32000: header not found"),
        ("HTTP 500 Internal Server Error", None, False,
         "backup 'alchemy' gave no usable answer: HTTP 500 Internal Server Error"),
    ],
)
def test_endpoint_without_usable_answer_is_critical(error, rpc_error, timed_out, reason):
    one = entry("alchemy", "backup", height=None, error=error, rpc_error=rpc_error, timed_out=timed_out, timeout=2.0)
    findings = judge_endpoint(one, THRESHOLDS)
    assert findings == [("critical", reason)]
    assert one["status"] == "critical"
    assert one["healthy"] is False


@pytest.mark.parametrize(
    ("name", "role", "label"),
    [("primary", "primary", "primary"), ("backup2", "backup", "backup2"), ("infura", "primary", "primary 'infura'"),
     ("own-node", "backup", "backup 'own-node'")],
)
def test_reasons_name_the_endpoint(name, role, label):
    assert rpc_health.label({"name": name, "role": role}) == label


def test_best_is_least_lag_then_lowest_latency_then_order():
    entries = [
        entry("primary", height=98, latency_ms=5.0),
        entry("slow", "backup", height=100, latency_ms=300.0),
        entry("fast", "backup", height=100, latency_ms=40.0),
        entry("fast-too", "backup", height=100, latency_ms=40.0),
    ]
    _findings, best, _verdict = judged(entries)
    assert best == "fast"


def test_primary_wins_a_tie():
    _findings, best, _verdict = judged([entry(latency_ms=10.0), entry("b1", "backup", latency_ms=10.0)])
    assert best == "primary"


def test_a_lagging_endpoint_in_warning_can_still_be_best():
    entries = [entry(height=None, error="no answer within 2 s", timed_out=True, timeout=2.0),
               entry("b1", "backup", height=94), entry("b2", "backup", height=100, latency_ms=3500.0)]
    _findings, best, _verdict = judged(entries)
    assert [one["status"] for one in entries] == ["critical", "warning", "critical"]
    assert best == "b1"


def test_no_best_when_nothing_is_healthy():
    entries = [entry(height=None, error="boom"), entry("b1", "backup", height=None, error="boom")]
    _findings, best, verdict = judged(entries)
    assert best is None
    assert verdict.status == "critical"
    assert verdict.reasons[-1] == "the primary is unhealthy and no backup is healthy"


def test_best_without_heights_is_the_fastest():
    entries = [entry(height=None, latency_ms=50.0), entry("b1", "backup", height=None, latency_ms=20.0)]
    _findings, best, verdict = judged(entries)
    assert best == "b1"
    assert verdict.status == "ok"


def test_primary_down_with_a_healthy_backup_is_critical_and_names_it():
    entries = [entry(height=None, error="no answer within 2 s", timed_out=True, timeout=2.0),
               entry("infura", "backup", height=100)]
    _findings, best, verdict = judged(entries)
    assert best == "infura"
    assert verdict.status == "critical"
    assert verdict.reasons == ["primary did not answer within 2 s",
                               "the primary is unhealthy; backup 'infura' is healthy and is the best endpoint"]


def test_primary_far_behind_a_backup_is_critical():
    entries = [entry(height=70), entry("b1", "backup", height=100)]
    _findings, best, verdict = judged(entries)
    assert (best, verdict.status) == ("b1", "critical")
    assert verdict.reasons[0] == "lag of primary is 30 blocks, above the critical threshold of 20 blocks"


def test_primary_down_without_backups():
    _findings, best, verdict = judged([entry(height=None, error="boom")])
    assert best is None
    assert verdict.reasons[-1] == "the primary is unhealthy and there is no backup"


def test_backup_problems_are_a_warning_only():
    entries = [entry(height=100), entry("b1", "backup", height=None, error="boom"), entry("b2", "backup", height=60)]
    _findings, best, verdict = judged(entries)
    assert best == "primary"
    assert verdict.status == "warning"
    assert verdict.reasons == ["backup 'b1' gave no usable answer: boom",
                               "lag of backup 'b2' is 40 blocks, above the critical threshold of 20 blocks"]


def test_primary_lag_warning_is_a_warning():
    _findings, _best, verdict = judged([entry(height=90), entry("b1", "backup", height=100)])
    assert verdict.status == "warning"


def test_all_well_is_ok_without_reasons():
    _findings, best, verdict = judged([entry(), entry("b1", "backup")])
    assert (verdict.status, verdict.reasons, best) == ("ok", [], "primary")


def test_custom_thresholds():
    thresholds = dict(THRESHOLDS, lag_warning=0, lag_critical=2)
    _findings, _best, verdict = judged([entry(height=99), entry("b1", "backup", height=100)], thresholds)
    assert verdict.status == "warning"
    _findings, _best, verdict = judged([entry(height=97), entry("b1", "backup", height=100)], thresholds)
    assert verdict.status == "critical"


def test_metrics():
    entries = [entry(height=95, latency_ms=30.0), entry("b1", "backup", height=100),
               entry("b2", "backup", height=None, error="boom")]
    _findings, _best, _verdict = judged(entries)
    assert metrics_of(entries, 100) == dict(
        best_height=100, primary_height=95, primary_lag=5, primary_latency_ms=30.0, endpoints_total=3,
        endpoints_healthy=2, endpoints_failing=1, failing_ratio=0.3333,
    )
    assert set(metrics_of(entries, 100)) == set(RETURN["metrics"]["contains"])


# ---------------------------------------------------------------- endpoints and options


def test_endpoint_list_names_and_roles():
    backups = [{"url": "http://b", "name": None}, {"url": "http://c", "name": "own"}]
    endpoints = endpoint_list({"url": "http://a", "name": None}, backups)
    names_and_roles = [(one["name"], one["role"]) for one in endpoints]
    assert names_and_roles == [("primary", "primary"), ("backup1", "backup"), ("own", "backup")]


def test_endpoint_names_must_be_unique():
    with pytest.raises(ValueError, match="repeated: infura"):
        endpoint_list({"url": "http://a", "name": "infura"}, [{"url": "http://b", "name": "infura"}])


def test_request_params_merge_endpoint_headers_and_timeout():
    common = dict(timeout=5.0, validate_certs=True, ca_cert=None, client_cert=None, client_key=None,
                  headers={"Accept": "application/json", "X-A": "1"}, auth_headers={"Authorization": "global"})
    endpoint = dict(url="http://a", timeout=1.5, headers={"X-A": "2"}, auth_headers={"Authorization": "mine"})
    params = request_params(endpoint, common)
    assert params["timeout"] == 1.5
    assert params["headers"] == {"Accept": "application/json", "X-A": "2"}
    assert params["auth_headers"] == {"Authorization": "mine"}
    assert request_params(dict(endpoint, timeout=None), common)["timeout"] == 5.0
    assert common["headers"]["X-A"] == "1"


def test_endpoint_suboptions_are_documented_as_coded():
    for option in ("primary", "backups"):
        documented = DOC["options"][option]["suboptions"]
        assert sorted(documented) == sorted(ENDPOINT_OPTIONS)
        for name, spec in ENDPOINT_OPTIONS.items():
            assert documented[name].get("type", "str") == spec.get("type", "str")
            assert documented[name].get("default") == spec.get("default")
            assert bool(documented[name].get("required")) == bool(spec.get("required"))


def test_urls_and_auth_headers_are_no_log():
    assert ENDPOINT_OPTIONS["url"]["no_log"] is True
    assert ENDPOINT_OPTIONS["auth_headers"]["no_log"] is True
    assert not ENDPOINT_OPTIONS["headers"].get("no_log")


def test_returned_endpoint_keys_are_documented():
    assert set(rpc_health.RETURNED_ENDPOINT_KEYS) == set(RETURN["endpoints"]["contains"])


# ---------------------------------------------------------------- main() in process


def test_main_returns_the_stable_shape_and_hides_secrets(run_module, closed_port):
    key = "0123456789abcdef0123456789abcdef"
    code, result, out = run_module(rpc_health, {
        "primary": {"name": "main", "url": "http://rpcuser:pw-in-url@127.0.0.1:%d/v3/%s" % (closed_port, key)},
        "backups": [{"url": "http://127.0.0.1:%d/?apikey=query-key-value" % closed_port,
                     "auth_headers": {"Authorization": "Bearer header-secret"}}],
        "auth_headers": {"X-Api-Key": "global-secret"},
        "timeout": 1,
    })
    assert code == 0
    assert result["changed"] is False
    assert set(RETURN) | {"changed"} <= set(result)
    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert result["best_endpoint"] is None
    assert [one["name"] for one in result["endpoints"]] == ["main", "backup1"]
    assert result["endpoints"][0]["url"] == "http://127.0.0.1:%d/v3/%s" % (closed_port, REDACTED)
    assert result["endpoints"][1]["url"] == "http://127.0.0.1:%d/" % closed_port
    assert result["checked"] == result["endpoints"][0]["url"]
    assert all(set(one) == set(RETURN["endpoints"]["contains"]) for one in result["endpoints"])
    assert set(result["metrics"]) == set(RETURN["metrics"]["contains"])
    assert result["thresholds"] == THRESHOLDS
    for secret in (key, "pw-in-url", "query-key-value", "header-secret", "global-secret"):
        assert secret not in out


def test_main_shows_a_url_without_secrets(run_module, closed_port):
    url = "http://127.0.0.1:%d/" % closed_port
    _code, result, _out = run_module(rpc_health, {"primary": {"url": url}, "timeout": 1})
    assert result["endpoints"][0]["url"] == url
    assert result["checked"] == url
    assert result["invocation"]["module_args"]["primary"]["url"] == url


def test_main_runs_the_same_in_check_mode(run_module, closed_port):
    code, result, _out = run_module(rpc_health, {"primary": {"url": "http://127.0.0.1:%d/" % closed_port}},
                                    check_mode=True)
    assert code == 0
    assert (result["changed"], result["status"], result["is_available"]) == (False, "critical", False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"primary": {"url": "http://a", "name": "x"}, "backups": [{"url": "http://b", "name": "x"}]},
         "endpoint names must be unique; repeated: x"),
        ({"primary": {"url": "http://a"}, "params": "latest"}, "params must be a list or a dict"),
        ({"backups": []}, "primary"),
        ({"primary": {"name": "x"}}, "url"),
    ],
)
def test_main_refuses_bad_arguments(run_module, args, message):
    code, result, _out = run_module(rpc_health, args)
    assert code == 1
    assert result["failed"] is True
    assert message in result["msg"]
