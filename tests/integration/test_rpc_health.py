"""rpc_health against real JSON-RPC servers (tests/harness/jsonrpc_server.py) on 127.0.0.1:
in process for the logic, and through ansible-playbook for the module as Ansible runs it."""

import base64
import json
import time

import pytest
from ansible_collections.incident.remediation.plugins.module_utils._http import http_common_argument_spec
from ansible_collections.incident.remediation.plugins.modules.rpc_health import (
    CALL_SPEC,
    THRESHOLD_SPEC,
    check,
    endpoint_list,
)

from tests.harness import ansible
from tests.harness.jsonrpc_server import JsonRpcServer

pytestmark = pytest.mark.integration

THRESHOLDS = {name: spec["default"] for name, spec in THRESHOLD_SPEC.items()}
CALL = {name: spec["default"] for name, spec in CALL_SPEC.items()}
API_KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def nodes():
    """nodes(n, **settings) -> n started JsonRpcServers; all stopped after the test."""
    started = []

    def make(count=1, **settings):
        made = [JsonRpcServer(**settings).start() for _ in range(count)]
        started.extend(made)
        return made

    yield make
    for node in started:
        node.stop()


def common(**overrides):
    params = {name: spec.get("default") for name, spec in http_common_argument_spec().items()}
    params["timeout"] = 1.0
    params.update(overrides)
    return params


def endpoint(node, name=None, path="/", **options):
    return dict(dict(url=node.url(path), name=name, timeout=None, headers={}, auth_headers={}), **options)


def probe(primary, backups=(), call=None, thresholds=None, **common_overrides):
    endpoints = endpoint_list(primary, list(backups))
    call = dict(CALL, **(call or {}))
    return check(endpoints, common(**common_overrides), call, dict(THRESHOLDS, **(thresholds or {})))


def by_name(result):
    return {one["name"]: one for one in result["endpoints"]}


def test_heights_lags_and_verdicts(nodes):
    primary, close, behind, far = nodes(4, height=19_000_000)
    close.configure(lag=3)
    behind.configure(lag=8)
    far.configure(lag=25)
    result = probe(endpoint(primary, "main"), [endpoint(close, "close"), endpoint(behind, "behind"),
                                               endpoint(far, "far")])
    endpoints = by_name(result)
    assert [endpoints[name]["height"] for name in ("main", "close", "behind", "far")] == [
        19_000_000, 18_999_997, 18_999_992, 18_999_975]
    assert [endpoints[name]["lag"] for name in ("main", "close", "behind", "far")] == [0, 3, 8, 25]
    assert [endpoints[name]["status"] for name in ("main", "close", "behind", "far")] == [
        "ok", "ok", "warning", "critical"]
    assert endpoints["main"]["result"] == hex(19_000_000)
    assert 0 < endpoints["main"]["latency_ms"] < 500
    assert result["best_endpoint"] == "main"
    assert result["status"] == "warning", "backups with problems are a warning"
    assert result["reasons"] == [
        "lag of backup 'behind' is 8 blocks, above the warning threshold of 5 blocks",
        "lag of backup 'far' is 25 blocks, above the critical threshold of 20 blocks",
    ]
    assert result["metrics"]["best_height"] == 19_000_000
    assert result["metrics"]["endpoints_healthy"] == 3
    assert result["is_available"] is True


def test_hung_primary_is_critical_and_the_best_backup_is_named_within_one_timeout(nodes):
    primary, slow_backup, fast_backup, lagging = nodes(4, height=500)
    primary.configure(mode="hang")
    slow_backup.configure(delay_s=0.3)
    lagging.configure(lag=2)
    started = time.monotonic()
    result = probe(endpoint(primary, "alchemy"), [endpoint(slow_backup, "slow"), endpoint(fast_backup, "fast"),
                                                  endpoint(lagging, "lagging")])
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 0.6, "probes run concurrently: one timeout, not the sum"
    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert result["best_endpoint"] == "fast"
    assert result["reasons"] == [
        "primary 'alchemy' did not answer within 1 s",
        "the primary is unhealthy; backup 'fast' is healthy and is the best endpoint",
    ]
    endpoints = by_name(result)
    assert endpoints["alchemy"]["timed_out"] is True
    assert endpoints["alchemy"]["error"] == "no answer within 1 s"
    assert 950 <= endpoints["alchemy"]["latency_ms"] < 1600
    assert endpoints["slow"]["latency_ms"] >= 300
    assert endpoints["fast"]["latency_ms"] < 300, "the hung primary does not hold up the others"
    assert result["metrics"]["failing_ratio"] == 0.25


def test_every_endpoint_hung_costs_one_timeout(nodes):
    hung = nodes(3, mode="hang")
    started = time.monotonic()
    result = probe(endpoint(hung[0]), [endpoint(node) for node in hung[1:]], timeout=0.5)
    assert time.monotonic() - started < 0.5 + 0.6
    assert result["best_endpoint"] is None
    assert result["reasons"][-1] == "the primary is unhealthy and no backup is healthy"
    assert result["metrics"]["failing_ratio"] == 1.0


def test_per_endpoint_timeout(nodes):
    primary, backup = nodes(2)
    backup.configure(delay_s=0.6)
    result = probe(endpoint(primary), [endpoint(backup, timeout=0.2)])
    assert by_name(result)["backup1"]["error"] == "no answer within 0.2 s"
    assert by_name(result)["backup1"]["latency_ms"] < 600


@pytest.mark.parametrize(
    ("settings", "error", "rpc_error", "http_status"),
    [
        ({"mode": "rpc_error"}, "JSON-RPC error -32000: header not found",
         {"code": -32000, "message": "header not found"}, 200),
        ({"mode": "rpc_error", "rpc_error": (-32005, "daily request count exceeded")},
         "JSON-RPC error -32005: daily request count exceeded",
         {"code": -32005, "message": "daily request count exceeded"}, 200),
        ({"mode": "http_500"}, "HTTP 500 Internal Server Error", None, 500),
        ({"mode": "invalid_json"}, "the reply is not JSON: '<html>502 Bad Gateway</html>'", None, 200),
    ],
)
def test_erroring_primary_is_critical(nodes, settings, error, rpc_error, http_status):
    primary, backup = nodes(2)
    primary.configure(**settings)
    result = probe(endpoint(primary), [endpoint(backup)])
    primary_entry = result["endpoints"][0]
    assert primary_entry["error"] == error
    assert primary_entry["rpc_error"] == rpc_error
    assert primary_entry["http_status"] == http_status
    assert primary_entry["status"] == "critical"
    assert (result["status"], result["best_endpoint"]) == ("critical", "backup1")


def test_unknown_method_is_a_json_rpc_error(nodes):
    (primary,) = nodes()
    result = probe(endpoint(primary), call={"method": "eth_nope"})
    assert result["endpoints"][0]["rpc_error"]["code"] == -32601


def test_integer_heights_of_another_json_rpc_service(nodes):
    primary, backup = nodes(2, height=840_000)
    backup.configure(lag=4)
    result = probe(endpoint(primary), [endpoint(backup)], call={"method": "getblockcount"},
                   thresholds={"lag_warning": 1, "lag_critical": 3})
    assert [one["height"] for one in result["endpoints"]] == [840_000, 839_996]
    assert result["endpoints"][1]["status"] == "critical"
    assert result["status"] == "warning"


def test_result_path_into_a_block_object(nodes):
    primary, backup = nodes(2, height=77)
    backup.configure(lag=1)
    result = probe(endpoint(primary), [endpoint(backup)],
                   call={"method": "eth_getBlockByNumber", "params": ["latest", False], "result_path": "number"})
    assert [one["height"] for one in result["endpoints"]] == [77, 76]
    assert [one["lag"] for one in result["endpoints"]] == [0, 1]
    assert json.loads(primary.requests[-1]["body"])["params"] == ["latest", False]


def test_result_that_is_not_a_height(nodes):
    (primary,) = nodes()
    not_height = probe(endpoint(primary), call={"method": "eth_getBlockByNumber", "params": ["latest", False]})
    assert not_height["endpoints"][0]["error"].startswith("the result {'number'")
    plain = probe(endpoint(primary), call={"method": "eth_getBlockByNumber", "params": ["latest", False],
                                           "result_path": "result.transactions", "result_is_height": False})
    assert (plain["status"], plain["endpoints"][0]["result"], plain["endpoints"][0]["lag"]) == ("ok", [], None)
    missing = probe(endpoint(primary), call={"result_path": "result.number"})
    assert missing["endpoints"][0]["error"] == "the reply has no result.number (result is not an object or a list)"


def test_auth_headers_and_url_credentials_reach_the_node(nodes):
    token_node, basic_node, keyed_node = nodes(3)
    token_node.configure(required_headers={"Authorization": "Bearer node-token"})
    basic = "Basic " + base64.b64encode(b"rpcuser:rpc pass").decode()
    basic_node.configure(required_headers={"Authorization": basic})
    keyed_node.configure(required_headers={"X-Api-Key": "global-key"})
    refused = probe(endpoint(token_node))
    assert refused["endpoints"][0]["error"] == "HTTP 401 Unauthorized"
    result = probe(
        endpoint(token_node, auth_headers={"Authorization": "Bearer node-token"}),
        [dict(endpoint(basic_node), url=f"http://rpcuser:rpc%20pass@127.0.0.1:{basic_node.port}/"),
         endpoint(keyed_node, headers={"X-Trace": "1"})],
        auth_headers={"X-Api-Key": "global-key"},
    )
    assert [one["status"] for one in result["endpoints"]] == ["ok", "ok", "ok"], result["reasons"]
    assert result["endpoints"][1]["url"] == "http://127.0.0.1:%d/" % basic_node.port
    assert keyed_node.requests[-1]["headers"]["X-Trace"] == "1"
    assert keyed_node.requests[-1]["headers"]["Content-Type"] == "application/json"


def test_key_in_path_is_redacted_and_still_used(nodes):
    (primary,) = nodes()
    result = probe(endpoint(primary, path="/v3/%s?apikey=query-key" % API_KEY))
    assert result["status"] == "ok"
    assert result["endpoints"][0]["url"] == "http://127.0.0.1:%d/v3/[REDACTED]" % primary.port
    assert primary.requests[-1]["path"] == "/v3/%s?apikey=query-key" % API_KEY


# ---------------------------------------------------------------- through Ansible

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Probe the RPC endpoints
      incident.remediation.rpc_health:
        primary:
          name: provider
          url: "{{{{ primary_url }}}}"
        backups:
          - name: own-node
            url: "{{{{ backup_url }}}}"
            auth_headers:
              Authorization: "Bearer {{{{ node_token }}}}"
          - name: lagging
            url: "{{{{ lagging_url }}}}"
        timeout: 1
      register: rpc
    - ansible.builtin.copy:
        content: "{{{{ rpc | to_json }}}}"
        dest: {out}
        mode: "0600"
"""


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check_mode"])
def test_through_ansible_primary_down_names_the_backup_and_hides_secrets(nodes, tmp_path, monkeypatch, check_mode):
    primary, backup, lagging = nodes(3, height=1000)
    primary.configure(mode="hang")
    backup.configure(required_headers={"Authorization": "Bearer node-token-secret"})
    lagging.configure(lag=30)
    out = tmp_path / "result.json"
    playbook = tmp_path / "rpc.yml"
    playbook.write_text(PLAYBOOK.format(out=out))
    monkeypatch.setenv("ANSIBLE_VERBOSITY", "3")  # print module arguments and results
    primary_url = "http://rpcuser:url-password@127.0.0.1:%d/v3/%s?apikey=query-api-key" % (primary.port, API_KEY)
    run = ansible.run_playbook(
        playbook,
        {"primary_url": primary_url, "backup_url": backup.url(), "lagging_url": lagging.url(),
         "node_token": "node-token-secret"},
        check=check_mode,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text()) if not check_mode else None
    if check_mode:  # copy does not write in check mode; read the result from the verbose output
        assert "best_endpoint: own-node" in run.stdout, run.stdout
        assert "status: critical" in run.stdout
    else:
        assert result["status"] == "critical"
        assert result["changed"] is False
        assert result["best_endpoint"] == "own-node"
        assert [one["status"] for one in result["endpoints"]] == ["critical", "ok", "critical"]
        assert result["endpoints"][0]["url"] == "http://127.0.0.1:%d/v3/[REDACTED]" % primary.port
        assert result["checked"] == result["endpoints"][0]["url"]
        assert result["endpoints"][1]["url"] == backup.url()
    texts = [run.stdout, run.stderr] + ([out.read_text()] if out.exists() else [])
    for secret in ("url-password", API_KEY, "query-api-key", "node-token-secret"):
        assert all(secret not in text for text in texts), secret
