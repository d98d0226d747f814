"""The adapter's intake against the real `remediate serve`: authentication, startup
guards, TLS, payload checks, size limits, durability, health and metrics, the
incident API and the CLI."""

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import sqlite3
import ssl
import time
import uuid

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.adapter import (
    RECORD_PLAYBOOK,
    adapter_process,
    alert,
    record_route,
    webhook,
    write_settings,
)
from tests.harness.ansible import REPO_ROOT, wait_for
from tests.harness.tls import write_tls_files

pytestmark = pytest.mark.integration

WEBHOOK = "/api/v1/alertmanager"
GENERIC = "/api/v1/alerts"
SIGNATURE = "X-Remediate-Signature"
HMAC_SECRET = "hmac-" + uuid.uuid4().hex
ALICE_PASSWORD = "open:" + uuid.uuid4().hex  # a colon inside: only the first one splits
# bob has no colon and carol an empty password: neither line may grant access.
USERS = f"alice:{ALICE_PASSWORD}\nbob\ncarol:\n"
REFUSAL = "unauthenticated request refused"


def stored_alerts(server) -> list[tuple]:
    """(fingerprint, alertname, decision, route, run_id, body) of every stored alert, read from the file."""
    with contextlib.closing(sqlite3.connect(server.folder / "remediate.db")) as db:
        return db.execute(
            "SELECT fingerprint, alertname, decision, route, run_id, body FROM alerts ORDER BY id"
        ).fetchall()


def stored_runs(server) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(server.folder / "remediate.db")) as db:
        return db.execute("SELECT id, route, state FROM runs ORDER BY id").fetchall()


@contextlib.contextmanager
def running(server):
    """Start a server prepared by write_settings; stop it and its process group afterwards."""
    server.start()
    try:
        yield server
    finally:
        server.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def signed(body: bytes, secret: str = HMAC_SECRET) -> dict:
    return {SIGNATURE: "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def unrouted_body(name: str = "Unrouted") -> bytes:
    return json.dumps(webhook([alert(name)])).encode()


def metric_values(server) -> dict:
    text = httpx.get(server.url + "/metrics", timeout=30, verify=server.verify).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def guarded(tmp_path):
    """An adapter taking a bearer token, basic users and an HMAC signature."""
    (tmp_path / "users").write_text(USERS)
    (tmp_path / "hmac").write_text(HMAC_SECRET + "\n")
    auth = {"basic_users_file": str(tmp_path / "users"), "hmac_secret_file": str(tmp_path / "hmac")}
    with adapter_process(tmp_path / "adapter", [record_route()], auth=auth) as server:
        yield server


def answered_run(server) -> str:
    """Fire one routed alert, wait for its run to finish; its incident id."""
    answer = server.fire([alert(service="svc-1")])
    assert [d["decision"] for d in answer["decisions"]] == ["accepted"]
    runs = server.wait_runs_final()
    assert [run["state"] for run in runs] == ["successful"]
    return answer["decisions"][0]["incident_id"]


# Authentication.
def test_bearer_token_is_accepted_and_the_alert_stored(guarded):
    response = guarded.post(WEBHOOK, content=unrouted_body(), headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert [(row[1], row[2]) for row in stored_alerts(guarded)] == [("Unrouted", "no_route")]


def test_basic_user_and_hmac_signature_are_accepted(guarded):
    alice = guarded.post(WEBHOOK, content=unrouted_body("ByAlice"), headers=basic("alice", ALICE_PASSWORD), auth=False)
    assert alice.status_code == 200, alice.text
    body = unrouted_body("BySignature")
    by_signature = guarded.post(WEBHOOK, content=body, headers=signed(body), auth=False)
    assert by_signature.status_code == 200, by_signature.text
    # A signed empty body is authenticated, then refused as a payload (not a server error).
    empty = guarded.post(WEBHOOK, content=b"", headers=signed(b""), auth=False)
    assert empty.status_code == 400, empty.text
    assert [row[1] for row in stored_alerts(guarded)] == ["ByAlice", "BySignature"]


def test_refused_requests_store_nothing_and_are_logged(guarded):
    body = unrouted_body()
    refused = {
        "wrong bearer token": {"Authorization": f"Bearer {uuid.uuid4().hex}"},
        "no header": {},
        "bearer without a token": {"Authorization": "Bearer"},
        "malformed basic": {"Authorization": "Basic not*base64!"},
        "basic, not utf-8": {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:x").decode()},
        "basic, wrong password": basic("alice", "open"),
        "basic, unknown user": basic("mallory", ALICE_PASSWORD),
        "basic, line without a colon": basic("bob", ""),
        "basic, line with an empty password": basic("carol", ""),
        "bad signature": {SIGNATURE: "sha256=" + "0" * 64},
        "signature of another body": signed(unrouted_body("Other")),
        "signature with another secret": signed(body, secret="not-" + HMAC_SECRET),
    }
    for case, headers in refused.items():
        response = guarded.post(WEBHOOK, content=body, headers=headers, auth=False)
        assert response.status_code == 401, f"{case}: {response.status_code} {response.text}"
        assert response.json() == {"error": "authentication required"}, case
    for path in ("/api/v1/runs", "/api/v1/incidents"):
        assert httpx.get(guarded.url + path, timeout=30).status_code == 401, path

    assert stored_alerts(guarded) == []
    assert guarded.runs() == []
    assert guarded.get("/api/v1/incidents").json() == []
    listed = guarded.cli("incidents")
    assert (listed.returncode, listed.stdout) == (0, ""), listed.stderr
    refusals = [json.loads(line) for line in guarded.log_path.read_text().splitlines() if REFUSAL in line]
    assert len(refusals) == len(refused) + 2
    assert {entry["path"] for entry in refusals} == {WEBHOOK, "/api/v1/runs", "/api/v1/incidents"}
    assert all(entry["levelname"] == "WARNING" and entry["client"] == "127.0.0.1" for entry in refusals)


def test_credentials_never_reach_the_log(guarded):
    wrong_token = uuid.uuid4().hex
    body = unrouted_body()
    answers = [
        guarded.post(WEBHOOK, content=body).status_code,
        guarded.post(WEBHOOK, content=body, headers={"Authorization": f"Bearer {wrong_token}"}, auth=False).status_code,
        guarded.post(WEBHOOK, content=body, headers=basic("alice", ALICE_PASSWORD), auth=False).status_code,
        guarded.post(WEBHOOK, content=body, headers=signed(body), auth=False).status_code,
        guarded.post(WEBHOOK, content=body, headers=signed(body, "x" + HMAC_SECRET), auth=False).status_code,
    ]
    assert answers == [200, 401, 200, 200, 401]
    log = guarded.log_path.read_text()
    assert log.count(REFUSAL) == 2
    for secret in (guarded.token, wrong_token, ALICE_PASSWORD.split(":")[1], HMAC_SECRET):
        assert secret not in log


# Startup guards.
def test_serve_without_authentication_refuses_to_start(tmp_path):
    server = write_settings(tmp_path, [record_route()], auth={"bearer_token_file": None})
    result = server.cli("serve", "--port", str(server.port), timeout=120)
    assert result.returncode != 0
    for setting in ("auth.bearer_token_file", "auth.basic_users_file", "auth.hmac_secret_file"):
        assert setting in result.stderr


def test_insecure_no_auth_serves_loopback_without_credentials(tmp_path):
    server = write_settings(tmp_path, [record_route()], auth={"bearer_token_file": None})
    server.extra_args = ["--host", "127.0.0.1", "--insecure-no-auth"]
    with running(server):
        response = server.post(WEBHOOK, content=unrouted_body(), auth=False)
        assert response.status_code == 200, response.text
        assert [row[2] for row in stored_alerts(server)] == ["no_route"]
    assert "WITHOUT authentication" in server.log_path.read_text()


def test_insecure_no_auth_refuses_a_public_address(tmp_path):
    server = write_settings(tmp_path, [record_route()], auth={"bearer_token_file": None})
    result = server.cli("serve", "--port", str(server.port), "--host", "0.0.0.0", "--insecure-no-auth", timeout=120)
    assert result.returncode != 0
    assert "--insecure-no-auth is allowed only on a loopback address" in result.stderr


# TLS.
def test_tls_from_the_settings(tmp_path):
    tls = write_tls_files(tmp_path / "tls")
    server = write_settings(
        tmp_path / "adapter", [record_route()], tls_certfile=str(tls.server_cert), tls_keyfile=str(tls.server_key)
    )
    server.scheme = "https"
    server.verify = ssl.create_default_context(cafile=str(tls.ca_cert))
    with running(server):
        assert server.url.startswith("https://127.0.0.1:")
        response = server.post(WEBHOOK, content=unrouted_body())
        assert response.status_code == 200, response.text
        assert [row[1] for row in stored_alerts(server)] == ["Unrouted"]
        with pytest.raises(httpx.ConnectError):
            httpx.get(
                server.url + "/healthz", timeout=10, verify=ssl.create_default_context(cafile=str(tls.other_ca_cert))
            )
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=10)


# Payloads.
def test_malformed_payloads_are_refused_with_a_reason(adapter):
    good = alert()
    cases = [
        (WEBHOOK, b"{not json", "body: Invalid JSON"),
        (WEBHOOK, {**webhook([good]), "version": "3"}, "version: "),
        (WEBHOOK, {**webhook([good]), "alerts": {"0": good}}, "alerts: "),
        (WEBHOOK, webhook([{**good, "labels": {**good["labels"], "replicas": 3}}]), "alerts.0.labels.replicas: "),
        (WEBHOOK, webhook([{**good, "status": "burning"}]), "alerts.0.status: "),
        (WEBHOOK, webhook([{**good, "startsAt": "yesterday at noon"}]), "alerts.0.startsAt: "),
        (WEBHOOK, {**webhook([good]), "status": "unknown"}, "status: "),
        (GENERIC, b"[1, 2", "body: Invalid JSON"),
        (GENERIC, {"annotations": {}}, "labels: Field required"),
        (GENERIC, {**good, "labels": ["alertname", "TestDown"]}, "labels: "),
    ]
    for path, payload, reason in cases:
        content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        response = adapter.post(path, content=content, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, f"{reason}: {response.status_code} {response.text}"
        message = response.json()["error"]
        assert message.startswith("invalid payload: ") and reason in message, message
    assert stored_alerts(adapter) == []
    assert adapter.runs() == []


def padded(body: bytes, size: int) -> bytes:
    """The body with trailing JSON whitespace up to exactly size bytes."""
    assert len(body) <= size
    return body + b" " * (size - len(body))


def test_body_size_limit_defaults_to_one_mebibyte(adapter):
    limit = 1024 * 1024
    at_limit = adapter.post(WEBHOOK, content=padded(unrouted_body("AtLimit"), limit))
    assert at_limit.status_code == 200, at_limit.text
    over = adapter.post(WEBHOOK, content=padded(unrouted_body("OverLimit"), limit + 1))
    assert over.status_code == 413
    assert over.json() == {"error": f"body over the limit of {limit} bytes"}
    # Without a Content-Length the limit holds while reading.
    chunks = (b" " * 65536 for _ in range(17))
    streamed = httpx.post(adapter.url + WEBHOOK, content=chunks, headers=adapter.headers(), timeout=60)
    assert streamed.status_code == 413
    assert [row[1] for row in stored_alerts(adapter)] == ["AtLimit"]


def test_body_size_limit_from_the_settings(tmp_path):
    with adapter_process(tmp_path / "adapter", [record_route()], max_body_bytes=2048) as server:
        generic = json.dumps({"labels": {"alertname": "Generic"}}).encode()
        assert server.post(WEBHOOK, content=padded(unrouted_body("AtLimit"), 2048)).status_code == 200
        assert server.post(GENERIC, content=padded(generic, 2048)).status_code == 200
        for path, body in ((WEBHOOK, unrouted_body("OverLimit")), (GENERIC, generic)):
            over = server.post(path, content=padded(body, 2049))
            assert over.status_code == 413, path
            assert over.json() == {"error": "body over the limit of 2048 bytes"}
        streamed = httpx.post(
            server.url + WEBHOOK, content=(b" " * 1024 for _ in range(3)), headers=server.headers(), timeout=60
        )
        assert streamed.status_code == 413
        assert [row[1] for row in stored_alerts(server)] == ["AtLimit", "Generic"]


def test_an_alert_without_a_route_is_stored_and_runs_nothing(adapter):
    answer = adapter.fire([alert("NobodyRoutesThis")])
    [decision] = answer["decisions"]
    assert (decision["decision"], decision["route"], decision["run_id"]) == ("no_route", None, None)
    assert "no route for alertname 'NobodyRoutesThis'" in decision["reason"]
    [(fingerprint, _, stored_decision, route, run_id, _)] = stored_alerts(adapter)
    assert (fingerprint, stored_decision, route, run_id) == (decision["fingerprint"], "no_route", None, None)
    assert adapter.runs() == []
    assert [event["kind"] for event in adapter.timeline(decision["incident_id"])] == ["no_route"]


def test_the_generic_endpoint_derives_a_stable_fingerprint(adapter):
    labels = {"alertname": "Generic", "service": "svc-g", "team": "ops"}

    def post(alert_labels: dict) -> dict:
        response = adapter.post(GENERIC, {"labels": alert_labels, "annotations": {"summary": "generic"}})
        assert response.status_code == 200, response.text
        assert response.json()["received"] == 1
        return response.json()["decisions"][0]

    first = post(labels)
    again = post(dict(reversed(labels.items())))
    other = post({**labels, "service": "svc-h"})
    assert re.fullmatch(r"[0-9a-f]{16}", first["fingerprint"])
    assert again["fingerprint"] == first["fingerprint"] != other["fingerprint"]
    assert re.fullmatch(first["fingerprint"] + r"-\d{14}", first["incident_id"])
    # Without startsAt, repeats of a firing alert belong to the incident it opened.
    time.sleep(1.1)
    assert post(labels)["incident_id"] == first["incident_id"]
    stored = stored_alerts(adapter)
    assert [row[0] for row in stored] == [first["fingerprint"]] * 2 + [other["fingerprint"], first["fingerprint"]]
    assert json.loads(stored[0][5])["fingerprint"] == first["fingerprint"]

    routed = post({"alertname": "TestDown", "service": "svc-g"})
    assert routed["decision"] == "accepted"
    assert [run["state"] for run in adapter.wait_runs_final()] == ["successful"]
    assert adapter.records() == {"svc-g": 1}


def test_answered_alerts_are_durable(adapter):
    answer = adapter.fire([alert(service="svc-1"), alert("Unrouted"), alert(service="Not A Service!")])
    decisions = answer["decisions"]
    assert [d["decision"] for d in decisions] == ["accepted", "no_route", "rejected"]
    adapter.kill()
    stored = stored_alerts(adapter)
    assert [(row[0], row[2], row[4]) for row in stored] == [
        (d["fingerprint"], d["decision"], d["run_id"]) for d in decisions
    ]
    assert json.loads(stored[2][5])["labels"]["service"] == "Not A Service!"
    assert [run[:2] for run in stored_runs(adapter)] == [(decisions[0]["run_id"], "TestDown")]


# Health and metrics.
def test_healthz_and_metrics_follow_alerts_and_runs(tmp_path):
    routes = [record_route(), record_route("NeedsApproval", mode="approve")]
    with adapter_process(tmp_path / "adapter", routes) as server:
        health = httpx.get(server.url + "/healthz", timeout=30)
        assert (health.status_code, health.json()) == (200, {"status": "ok", "queue_depth": 0})
        before = metric_values(server)
        assert value(before, "remediate_answer_latency_seconds_count") == 0
        assert value(before, "remediate_queue_depth") == 0

        server.fire([alert(service="svc-1"), alert("NeedsApproval", service="svc-2"), alert("Unrouted")])
        wait_for(server.runs, lambda runs: any(run["state"] == "successful" for run in runs))
        after = wait_for(lambda: metric_values(server), lambda m: value(m, "remediate_queue_depth") == 1)

        received = "remediate_alerts_received_total"
        assert value(after, received, status="firing", route="TestDown") == 1
        assert value(after, received, status="firing", route="NeedsApproval") == 1
        assert value(after, received, status="firing", route="") == 1
        for kind in ("accepted", "awaiting_approval", "no_route"):
            assert value(after, "remediate_decisions_total", kind=kind) == 1, kind
        assert value(after, "remediate_runs_total", kind="remediate", result="healed") == 1
        assert value(after, "remediate_answer_latency_seconds_count") == 1
        assert value(after, "remediate_answer_latency_seconds_sum") > 0
        assert value(after, "remediate_answer_latency_seconds_bucket", le="+Inf") == 1
        assert value(after, "remediate_run_duration_seconds_count") == 1
        assert value(after, "remediate_run_duration_seconds_sum") > 0
        assert httpx.get(server.url + "/healthz", timeout=30).json() == {"status": "ok", "queue_depth": 1}


# Incidents: API and CLI.
def test_incidents_api_lists_the_incident_and_its_timeline(adapter):
    incident = answered_run(adapter)
    listed = adapter.get("/api/v1/incidents").json()
    assert [entry["id"] for entry in listed] == [incident]
    timeline = adapter.timeline(incident)
    assert listed[0]["last_event"] == "finished" and listed[0]["events"] == len(timeline)

    kinds = [event["kind"] for event in timeline]
    assert kinds[:2] == ["accepted", "started"] and kinds[-1] == "finished"
    tasks = [event for event in timeline if event["kind"] == "task"]
    assert "Leave a file for this run" in [event["reason"] for event in tasks]
    assert kinds.index("started") < kinds.index("task")
    assert timeline[-1]["data"]["status"] == "successful"
    assert all(event["run_id"] == timeline[0]["run_id"] for event in timeline)

    missing = adapter.get("/api/v1/incidents/0123456789abcdef-20260101000000")
    assert (missing.status_code, missing.json()) == (404, {"error": "no such incident"})


def test_cli_reads_the_same_store(adapter):
    incident = answered_run(adapter)
    listed = adapter.cli("incidents")
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    assert line.startswith(f"{incident}  last ") and " finished: healed (record stub) for svc-1" in line

    shown = adapter.cli("incidents", incident)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert re.fullmatch(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] accepted: run \d+ queued \(auto\)", lines[0])
    assert "] started: " in lines[1] and "] finished healed: healed (record stub) for svc-1" in lines[-1]
    assert len(lines) == len(adapter.timeline(incident))

    unknown = adapter.cli("incidents", "nope-20260101000000")
    assert unknown.returncode == 1 and "no incident nope-20260101000000" in unknown.stderr

    runs = adapter.cli("runs")
    assert runs.returncode == 0, runs.stderr
    [run] = [json.loads(line) for line in runs.stdout.splitlines()]
    assert (run["incident_id"], run["state"], run["playbook"]) == (incident, "successful", RECORD_PLAYBOOK)
    assert adapter.cli("runs", "--state", "queued,running").stdout == ""

    routes = adapter.cli("routes")
    assert (routes.returncode, routes.stdout) == (0, f"TestDown: {RECORD_PLAYBOOK} (auto, warning)\n")


# `remediate routes --check`.
def test_routes_check_passes_on_the_repository_routes(tmp_path):
    routes_file = REPO_ROOT / "routes" / "routes.yml"
    server = write_settings(
        tmp_path, [], routes_file=str(routes_file), executor={"collections_path": str(REPO_ROOT / ".collections")}
    )
    result = server.cli("routes", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout
    assert result.stdout.splitlines()[-1] == f"routes: ok ({routes_file})"

    catalog = yaml.safe_load((REPO_ROOT / "routes" / "catalog.yml").read_text())["playbooks"]
    routed = {route["alertname"] for route in yaml.safe_load(routes_file.read_text())["routes"]}
    expected = sorted({name for names in catalog.values() for name in names} - routed)
    unrouted = [line for line in result.stdout.splitlines() if line.startswith("catalog alerts without a route")]
    if expected:
        assert unrouted == [f"catalog alerts without a route yet ({len(expected)}): " + ", ".join(expected)]
    else:
        assert unrouted == []


def _target(**fields) -> dict:
    return {**record_route()["target"], **fields}


@pytest.mark.parametrize(
    ("route", "error"),
    [
        (
            record_route(playbook="adapter_test.playbooks.missing"),
            "ERROR: route 'TestDown': playbook adapter_test.playbooks.missing not found",
        ),
        (
            record_route(target=_target(service={"label": "service"})),
            "ERROR: route 1 (TestDown): target.service: a value taken from a label needs a pattern or an allow list",
        ),
        (
            record_route(target=_target(service={"label": "service", "pattern": "[a-z$()]+"})),
            "ERROR: route 1 (TestDown): target.service: pattern accepts unsafe values such as '$(id)'",
        ),
        (
            record_route(target=_target(project_src={"label": "project", "pattern": "[a-z]+"})),
            "ERROR: route 1 (TestDown): target.project_src must never come from a label",
        ),
    ],
    ids=["missing playbook", "label without pattern", "pattern accepts $(id)", "project_src from a label"],
)
def test_routes_check_fails_on_a_bad_route(tmp_path, route, error):
    server = write_settings(tmp_path, [route])
    result = server.cli("routes", "--check")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert error in lines, result.stdout
    assert lines[-1] == f"routes: FAILED ({server.folder / 'routes.yml'})"
    listing = server.cli("routes")
    assert "Traceback" not in listing.stderr
    if "not found" in error:  # the file itself is valid: it still lists
        assert listing.returncode == 0 and listing.stdout.startswith("TestDown: ")
    else:
        assert listing.returncode == 2 and error.removeprefix("ERROR: ") in listing.stderr
