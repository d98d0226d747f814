"""http_health against a real threaded HTTP(S) server (tests/harness/http_server.py) on
127.0.0.1: in process for the logic, and through ansible-playbook for the module as Ansible
runs it. TLS uses a CA generated into tmp_path."""

import json
import re
import time

import pytest
from ansible_collections.incident.remediation.plugins.module_utils._http import http_common_argument_spec
from ansible_collections.incident.remediation.plugins.modules.http_health import (
    DETAILED_SPEC,
    PROBE_SPEC,
    THRESHOLD_SPEC,
    check,
)

from tests.harness import ansible
from tests.harness.http_server import HealthServer, make_tls_files, server_ssl_context

pytestmark = pytest.mark.integration

THRESHOLDS = {name: spec.get("default") for name, spec in THRESHOLD_SPEC.items()}


@pytest.fixture
def server():
    with HealthServer() as health:
        yield health


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def probe(url, *, thresholds=None, options=None, **settings):
    """check() with the module's defaults, short retry delays, and settings split by kind."""
    common = {name: spec.get("default") for name, spec in http_common_argument_spec().items()}
    probe_settings = {name: spec.get("default") for name, spec in PROBE_SPEC.items()}
    probe_settings.update(retry_delay_ms=50, body_pattern=None, detailed=False)
    detailed = {name: spec["default"] for name, spec in DETAILED_SPEC.items()}
    for name, value in settings.items():
        target = common if name in common else probe_settings
        target[name] = value
    detailed.update(options or {})
    return check(url, common, probe_settings, dict(THRESHOLDS, **(thresholds or {})), detailed)


def test_healthy_endpoint_in_milliseconds(server):
    result = probe(server.url("/health"))
    assert result["status"] == "ok", result["reasons"]
    assert result["is_available"] is True
    assert result["http_status"] == 200
    assert len(result["attempt_results"]) == 1
    assert isinstance(result["metrics"]["latency_ms"], float)
    assert 0 < result["metrics"]["latency_ms"] < 200
    assert result["checked"] == server.url("/health")


def test_one_failure_then_success_is_a_blip(server):
    server.configure(fail_first=1)
    result = probe(server.url("/health"))
    assert result["status"] == "warning"
    assert [(one["http_status"], one["ok"]) for one in result["attempt_results"]] == [(503, False), (200, True)]
    assert result["reasons"] == [
        "attempt 1 of 2 failed (HTTP 503 Service Unavailable), then the endpoint answered: a blip"]
    assert result["is_available"] is True


def test_consecutive_failures_are_an_outage(server):
    server.configure(fail_first=10)
    started = time.monotonic()
    result = probe(server.url("/health"), retry_delay_ms=100)
    assert time.monotonic() - started >= 0.2, "two delays between three attempts"
    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert [one["http_status"] for one in result["attempt_results"]] == [503, 503, 503]
    assert result["metrics"]["consecutive_failures"] == 3
    assert result["error"] == "HTTP 503 Service Unavailable"


def test_two_failures_then_recovery_is_still_critical(server):
    server.configure(fail_first=2)
    result = probe(server.url("/health"))
    assert result["status"] == "critical"
    assert result["is_available"] is True
    assert result["reasons"][0].endswith("then the endpoint answered again at attempt 3")


def test_expected_statuses_and_body_regex(server):
    server.configure(status=503, body="maintenance")
    assert probe(server.url("/health"), status_code=[200, 503])["status"] == "ok"
    server.configure(status=200, body='{"status": "starting"}')
    pattern = re.compile('"status": "ok"')
    mismatch = probe(server.url("/health"), body_pattern=pattern, attempts=2)
    assert mismatch["status"] == "critical"
    assert mismatch["error"] == "HTTP 200 but the body does not match '\"status\": \"ok\"'"


def test_slow_endpoint_against_latency_thresholds(server):
    server.configure(delay_s=0.25)
    result = probe(server.url("/health"), thresholds={"latency_warning_ms": 100.0, "latency_critical_ms": 1000.0})
    assert result["status"] == "warning"
    assert result["metrics"]["latency_ms"] >= 250
    assert result["reasons"][0].startswith("latency is 2")


def test_hung_endpoint_times_out_on_every_attempt(server):
    server.configure(delay_s=5)
    started = time.monotonic()
    result = probe(server.url("/health"), timeout=0.3, attempts=2)
    assert time.monotonic() - started < 2 * 0.3 + 0.05 + 0.6
    assert result["status"] == "critical"
    assert [one["error"] for one in result["attempt_results"]] == ["no answer within 0.3 s"] * 2
    assert all(250 <= one["latency_ms"] < 900 for one in result["attempt_results"])


def test_detailed_names_degraded_and_slow_components(server):
    server.configure(overall_status="degraded", components={
        "database": {"status": "healthy", "responseTime": 5300},
        "redis": {"status": "degraded", "responseTime": 20},
        "blockchain": {"status": "healthy", "responseTime": 150},
    })
    result = probe(server.url("/health/detailed"), detailed=True)
    assert result["status"] == "warning"
    assert result["overall_status"] == "degraded"
    assert result["degraded_components"] == ["redis"]
    assert result["slow_components"] == ["database"]
    assert result["unhealthy_components"] == []
    assert result["reasons"] == [
        "overall status is degraded",
        "response time of component 'database' is 5300 ms, above the warning threshold of 5000 ms",
        "component 'redis' is degraded",
    ]
    assert result["metrics"]["max_component_time_ms"] == 5300.0
    assert result["metrics"]["components_total"] == 3


def test_detailed_unhealthy_component_in_checks_shape(server):
    server.configure(shape="checks", overall_status="unhealthy", components={
        "database": {"status": "unhealthy", "responseTime": 2},
        "redis": {"status": "healthy", "responseTime": 1},
    })
    result = probe(server.url("/health/detailed"), detailed=True)
    assert result["status"] == "critical"
    assert result["unhealthy_components"] == ["database"]
    assert [one["name"] for one in result["components"]] == ["database", "redis"]
    assert "component 'database' is unhealthy" in result["reasons"]


def test_detailed_on_a_plain_endpoint(server):
    server.configure(body="OK", content_type="text/plain")
    result = probe(server.url("/health"), detailed=True, attempts=2)
    assert result["status"] == "critical"
    assert result["error"] == "HTTP 200 but the body is not JSON"


def test_headers_reach_the_endpoint(server):
    probe(server.url("/health"), headers={"Accept": "application/json"}, auth_headers={"Authorization": "Bearer t"})
    assert server.requests[-1]["headers"]["Authorization"] == "Bearer t"
    assert server.requests[-1]["headers"]["Accept"] == "application/json"


# ---------------------------------------------------------------- TLS


def test_tls_with_the_right_ca(tls_files):
    with HealthServer(ssl_context=server_ssl_context(tls_files)) as tls_server:
        result = probe(tls_server.url("/health"), ca_cert=str(tls_files["ca_cert"]))
    assert result["status"] == "ok", result["reasons"]
    assert result["checked"].startswith("https://127.0.0.1:")


@pytest.mark.parametrize("ca", [None, "other_ca_cert"], ids=["system_store", "other_ca"])
def test_tls_without_the_right_ca_is_an_error_not_a_crash(tls_files, ca):
    with HealthServer(ssl_context=server_ssl_context(tls_files)) as tls_server:
        result = probe(tls_server.url("/health"), ca_cert=str(tls_files[ca]) if ca else None, attempts=2)
    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert "CERTIFICATE_VERIFY_FAILED" in result["error"]


def test_tls_without_validation(tls_files):
    with HealthServer(ssl_context=server_ssl_context(tls_files)) as tls_server:
        result = probe(tls_server.url("/health"), validate_certs=False)
    assert result["status"] == "ok", result["reasons"]


def test_mutual_tls_needs_the_client_certificate(tls_files):
    with HealthServer(ssl_context=server_ssl_context(tls_files, require_client_cert=True)) as tls_server:
        refused = probe(tls_server.url("/health"), ca_cert=str(tls_files["ca_cert"]), attempts=2)
        accepted = probe(tls_server.url("/health"), ca_cert=str(tls_files["ca_cert"]),
                         client_cert=str(tls_files["client_cert"]), client_key=str(tls_files["client_key"]))
    assert refused["status"] == "critical"
    assert refused["error"]
    assert accepted["status"] == "ok", accepted["reasons"]


def test_unreadable_ca_file_is_reported(tmp_path, server):
    result = probe(server.url("/health"), ca_cert=str(tmp_path / "missing.pem"), attempts=2)
    assert result["status"] == "critical"
    assert result["error"].startswith("TLS options unusable")


# ---------------------------------------------------------------- through Ansible

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Probe the detailed health endpoint
      incident.remediation.http_health:
        url: "{{{{ health_url }}}}"
        detailed: true
        retry_delay_ms: 100
        ca_cert: {ca_cert}
        auth_headers:
          Authorization: "Bearer {{{{ health_token }}}}"
      register: health
    - ansible.builtin.copy:
        content: "{{{{ health | to_json }}}}"
        dest: {out}
        mode: "0600"
"""


def test_through_ansible_a_blip_with_a_degraded_component_over_tls(tls_files, tmp_path, monkeypatch):
    out = tmp_path / "result.json"
    playbook = tmp_path / "health.yml"
    playbook.write_text(PLAYBOOK.format(out=out, ca_cert=tls_files["ca_cert"]))
    monkeypatch.setenv("ANSIBLE_VERBOSITY", "3")
    with HealthServer(ssl_context=server_ssl_context(tls_files), fail_first=1) as tls_server:
        tls_server.components["cache"] = {"status": "degraded", "responseTime": 7}
        url = tls_server.url("/health/detailed?token=query-token-secret")
        run = ansible.run_playbook(playbook, {"health_url": url, "health_token": "header-token-secret"}, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        assert tls_server.requests[-1]["headers"]["Authorization"] == "Bearer header-token-secret"
    result = json.loads(out.read_text())
    assert result["status"] == "warning"
    assert result["changed"] is False
    assert [one["http_status"] for one in result["attempt_results"]] == [503, 200]
    assert result["degraded_components"] == ["cache"]
    assert result["checked"] == "https://127.0.0.1:%d/health/detailed" % tls_server.port
    for secret in ("query-token-secret", "header-token-secret"):
        assert secret not in run.stdout + run.stderr
        assert secret not in out.read_text()
