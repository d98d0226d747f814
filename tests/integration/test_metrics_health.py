"""metrics_health against a real instrumented app (prometheus_client, on loopback)
and a real Prometheus (the project's image, in Docker) scraping it every second.

The app serves steady traffic on several handlers at once, each with its own
error ratio and latency mix, so one Prometheus run covers the ok, warning and
critical cases by label:

| handler    | req/s | errors (5xx)      | latencies                 | p95      |
|------------|-------|-------------------|---------------------------|----------|
| /ok        | 200   | 1% (and 2% 404)   | all 0.02 s                | 0.02425  |
| /errors    | 200   | 8% (500 and 503)  | 90% 0.05 s, 10% 3 s       | 3.75     |
| /failing   | 100   | 20%               | 90% 0.5 s, 10% 8 s        | 8.75     |
| /burst     | 0     | 1000 requests once, 12% errors, fixed latencies | |
| /idle      | 0     | none                                            | |
"""

import json
import math

import pytest
from ansible_collections.incident.remediation.plugins.module_utils._http import http_common_argument_spec
from ansible_collections.incident.remediation.plugins.module_utils._metrics import (
    bucket_counts,
    histogram_quantile,
    scrape,
)
from ansible_collections.incident.remediation.plugins.modules.metrics_health import (
    ARGUMENT_SPEC,
    evaluate,
    normalize_checks,
)

from tests.harness import ansible
from tests.harness.ansible import wait_for
from tests.harness.metrics_app import MetricsApp
from tests.harness.prometheus import prometheus_server

pytestmark = pytest.mark.integration

HTTP = {name: spec.get("default") for name, spec in http_common_argument_spec().items()}
BURST_LATENCIES = {0.1: 0.5, 0.3: 0.3, 1.2: 0.15, 6.0: 0.05}


def params(**overrides):
    values = dict(HTTP, url=None, prometheus_url=None, timeout=2.0)
    values.update((name, spec.get("default")) for name, spec in ARGUMENT_SPEC.items())
    values.update(overrides)
    return values


def run(checks, **options):
    prometheus = bool(options.get("prometheus_url"))
    return evaluate(normalize_checks(checks, prometheus), params(**options))


def by_name(result):
    return {check["name"]: check for check in result["checks"]}


def handler_checks(kind, *handlers, **options):
    return [dict(kind=kind, name=handler, labels={"handler": handler}, **options) for handler in handlers]


@pytest.fixture(scope="module")
def app():
    with MetricsApp(handlers=("/ok", "/errors", "/failing", "/burst", "/idle")) as running:
        running.serve("/burst", 1000, {"200": 0.88, "500": 0.12}, BURST_LATENCIES)
        running.run("/ok", 200, {"200": 0.97, "404": 0.02, "500": 0.01}, {0.02: 1.0})
        running.run("/errors", 200, {"200": 0.92, "500": 0.05, "503": 0.03}, {0.05: 0.9, 3.0: 0.1})
        running.run("/failing", 100, {"200": 0.8, "503": 0.2}, {0.5: 0.9, 8.0: 0.1})
        running.set_queue_depth("emails", 150)
        running.set_queue_depth("reports", 20)
        running.set_pool("main", size=10, checked_out=9)
        yield running


@pytest.fixture(scope="module")
def prometheus(app):
    with prometheus_server(["127.0.0.1:%d" % app.port], scrape_interval="1s") as server:
        # rate() needs two samples in its range; wait for a few so it is steady.
        wait_for(
            lambda: server.query('count_over_time(up{job="app"}[30s])'),
            lambda result: bool(result) and result[0][1] >= 4,
            timeout=30,
        )
        yield server


# ---------------------------------------------------------------- from the app's /metrics


def test_endpoint_error_ratio_over_an_interval(app):
    checks = handler_checks("error_ratio", "/ok", "/errors", "/failing", "/idle")
    result = run(checks, url=app.url, interval=1.0)
    checks = by_name(result)
    assert result["is_available"] is True
    assert result["status"] == "critical"
    assert {name: check["status"] for name, check in checks.items()} == {
        "/ok": "ok",
        "/errors": "warning",
        "/failing": "critical",
        "/idle": "ok",
    }
    assert checks["/ok"]["value"] == pytest.approx(0.01, abs=0.01)
    assert checks["/errors"]["value"] == pytest.approx(0.08, abs=0.01)
    assert checks["/failing"]["value"] == pytest.approx(0.20, abs=0.015)
    samples = checks["/errors"]["samples"]
    assert samples["requests_per_second"] == pytest.approx(200, rel=0.15)
    assert samples["errors"] == pytest.approx(0.08 * samples["requests"], abs=1.5)
    assert 0.95 <= samples["seconds"] < 2.0
    assert checks["/idle"]["value"] is None
    assert checks["/idle"]["reasons"][0].startswith("/idle: no requests in the ")
    assert checks["/errors"]["reasons"][0].startswith("/errors is 0.0")
    assert checks["/errors"]["promql"] == (
        '(sum(rate(http_requests_total{handler="/errors",status=~"5.."}[5m])) or vector(0))'
        ' / sum(rate(http_requests_total{handler="/errors"}[5m]))'
    )


def test_endpoint_p95_from_histogram_buckets_over_an_interval(app):
    result = run(handler_checks("quantile", "/ok", "/errors", "/failing"), url=app.url, interval=1.0)
    checks = by_name(result)
    assert checks["/ok"]["status"] == "ok"
    assert checks["/ok"]["value"] == pytest.approx(0.02425, abs=0.001)
    assert checks["/errors"]["status"] == "warning"
    assert checks["/errors"]["value"] == pytest.approx(3.75, abs=0.2)
    assert checks["/failing"]["status"] == "critical"
    assert checks["/failing"]["value"] == pytest.approx(8.75, abs=0.2)
    buckets = checks["/errors"]["samples"]["buckets"]
    assert buckets[-1]["le"] == "+Inf"
    assert buckets[-1]["count"] == checks["/errors"]["samples"]["observations"] > 100


def test_endpoint_totals_since_start_with_interval_0(app):
    checks = [
        dict(kind="error_ratio", name="burst errors", labels={"handler": "/burst"}),
        dict(kind="quantile", name="burst p50", quantile=0.5, labels={"handler": "/burst"}),
        dict(kind="quantile", name="burst p99", quantile=0.99, labels={"handler": "/burst"}, critical=None),
    ]
    result = run(checks, url=app.url, interval=0)
    checks = by_name(result)
    assert checks["burst errors"]["value"] == 0.12
    assert checks["burst errors"]["status"] == "critical"
    assert checks["burst errors"]["samples"]["requests"] == 1000.0
    assert checks["burst errors"]["window"] == "since start"
    # 500 at 0.1 s fill the (0.075, 0.1] bucket: the median is its upper bound.
    assert checks["burst p50"]["value"] == pytest.approx(0.1)
    # 990th of 1000: 950 at or below 2.5 s, the 50 at 6 s in (5, 7.5]: 5 + 2.5 * 40 / 50.
    assert checks["burst p99"]["value"] == pytest.approx(7.0)
    assert checks["burst p99"]["status"] == "critical"  # the kind's default critical (5 s) still applies


def test_endpoint_gauges_above_and_below(app):
    checks = [
        dict(kind="gauge", name="queue depth", metric="queue_depth", warning=100, critical=500),
        dict(kind="gauge", name="emails only", metric="queue_depth", labels={"queue": "reports"}, warning=100),
        dict(
            kind="gauge",
            name="free connections",
            metric="sqlalchemy_pool_checked_in",
            direction="below",
            warning=3,
            critical=2,
        ),
        dict(kind="gauge", name="total depth", metric="queue_depth", aggregate="sum"),
        dict(kind="gauge", name="absent", metric="no_such_gauge", warning=1),
    ]
    result = run(checks, url=app.url)
    checks = by_name(result)
    assert checks["queue depth"]["status"] == "warning"
    assert checks["queue depth"]["reasons"] == [
        'queue depth {queue="emails"} is 150, above the warning threshold of 100'
    ]
    assert checks["emails only"]["status"] == "ok"
    assert checks["free connections"]["status"] == "critical"
    assert checks["free connections"]["value"] == 1.0
    assert checks["total depth"]["value"] == 170.0
    assert checks["total depth"]["status"] == "ok"
    assert checks["absent"]["status"] == "unknown"
    assert checks["absent"]["reasons"] == ["absent: no series no_such_gauge in the scrape"]
    assert result["status"] == "critical"
    assert result["is_available"] is True


def test_endpoint_that_is_gone_is_reported():
    stopped = MetricsApp()
    with stopped:
        url = stopped.url
    result = run([dict(kind="error_ratio")], url=url, unavailable_status="critical")
    assert result["status"] == "critical"
    assert result["is_available"] is False
    assert "Connection refused" in result["error"] or "ConnectionRefused" in result["error"]


# ---------------------------------------------------------------- from Prometheus


def test_prometheus_error_ratio_by_promql(prometheus):
    checks = handler_checks("error_ratio", "/ok", "/errors", "/failing", "/idle")
    result = run(checks, prometheus_url=prometheus.url, window="30s")
    checks = by_name(result)
    assert result["is_available"] is True
    assert result["checked"] == "prometheus " + prometheus.url
    assert {name: check["status"] for name, check in checks.items()} == {
        "/ok": "ok",
        "/errors": "warning",
        "/failing": "critical",
        "/idle": "ok",
    }
    assert checks["/ok"]["value"] == pytest.approx(0.01, abs=0.005)
    assert checks["/errors"]["value"] == pytest.approx(0.08, abs=0.005)
    assert checks["/failing"]["value"] == pytest.approx(0.20, abs=0.005)
    assert checks["/idle"]["reasons"] == ["/idle: no requests in the last 30s, not judged"]
    assert checks["/idle"]["samples"]["series"] == [{"labels": {}, "value": None}]  # NaN
    # The expression reported is the one that gave the value: the engineer can paste it.
    (pasted,) = prometheus.query(checks["/errors"]["promql"])
    assert pasted[1] == pytest.approx(checks["/errors"]["value"], abs=0.005)
    assert checks["/errors"]["samples"]["series"][0]["value"] == pytest.approx(checks["/errors"]["value"], abs=1e-6)


def test_prometheus_p95_by_promql(prometheus):
    result = run(handler_checks("quantile", "/ok", "/errors", "/failing"), prometheus_url=prometheus.url, window="30s")
    checks = by_name(result)
    assert checks["/ok"]["status"] == "ok"
    assert checks["/ok"]["value"] == pytest.approx(0.02425, abs=0.001)
    assert checks["/errors"]["status"] == "warning"
    assert checks["/errors"]["value"] == pytest.approx(3.75, abs=0.1)
    assert checks["/failing"]["status"] == "critical"
    assert checks["/failing"]["value"] == pytest.approx(8.75, abs=0.1)
    assert checks["/errors"]["promql"] == (
        'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{handler="/errors"}[30s])))'
    )
    assert checks["/errors"]["window"] == "30s"


@pytest.mark.parametrize("quantile", [0.0, 0.1, 0.25, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0])
def test_histogram_quantile_agrees_with_prometheus(app, prometheus, quantile):
    """The same cumulative buckets (the burst, which no longer changes) through
    Prometheus' histogram_quantile and through _metrics.histogram_quantile."""
    buckets = bucket_counts(scrape(app.url, HTTP), "http_request_duration_seconds", {"handler": "/burst"})
    ours = histogram_quantile(quantile, buckets)
    (theirs,) = prometheus.query(
        'histogram_quantile(%s, sum by (le) (http_request_duration_seconds_bucket{handler="/burst"}))' % quantile
    )
    if math.isnan(theirs[1]):  # quantile 0 with an empty first bucket: 0/0 in Prometheus
        assert ours is None
    else:
        assert ours == pytest.approx(theirs[1], abs=1e-9)


def test_prometheus_gauges_and_queries(prometheus):
    checks = [
        dict(kind="gauge", name="queue depth", metric="queue_depth", warning=100, critical=500),
        dict(kind="gauge", name="free connections", metric="sqlalchemy_pool_checked_in", direction="below", critical=2),
        dict(kind="query", name="targets up", query='sum(up{job="app"})', direction="below", critical=1),
        dict(kind="query", name="broken", query="sum(rate(http_requests_total[5m]"),
        dict(kind="query", name="nothing", query="no_such_metric"),
    ]
    result = run(checks, prometheus_url=prometheus.url)
    checks = by_name(result)
    # The series differ only by queue: job and instance are left out of the reason.
    assert checks["queue depth"]["reasons"] == [
        'queue depth {queue="emails"} is 150, above the warning threshold of 100'
    ]
    assert checks["queue depth"]["window"] == "instant"
    assert len(checks["queue depth"]["samples"]["series"]) == 2
    assert checks["free connections"]["status"] == "critical"
    assert checks["targets up"]["status"] == "ok"
    assert checks["targets up"]["value"] == 1.0
    assert checks["targets up"]["window"] is None
    assert checks["broken"]["status"] == "unknown"
    assert "Prometheus rejected" in checks["broken"]["error"]
    assert checks["nothing"]["status"] == "unknown"
    assert checks["nothing"]["reasons"] == ["nothing: the query returned no series (no_such_metric)"]
    assert result["is_available"] is True  # a rejected query is still an answer
    assert result["status"] == "critical"


def test_prometheus_that_hangs_is_reported_within_the_timeout(prometheus):
    checks = handler_checks("error_ratio", "/ok", "/errors")
    prometheus.container.pause()
    try:
        result = run(checks, prometheus_url=prometheus.url, timeout=1.0)
    finally:
        prometheus.container.unpause()
    assert result["status"] == "unknown"
    assert result["is_available"] is False
    assert result["error"].startswith("Prometheus at %s did not answer" % prometheus.url)
    assert "timed out" in result["error"]
    assert [check["status"] for check in result["checks"]] == ["unknown", "unknown"]
    assert result["reasons"] == [result["error"]]


# ---------------------------------------------------------------- through Ansible


def test_module_through_ansible_both_sources(app, prometheus, tmp_path):
    out = tmp_path / "result.json"
    playbook = tmp_path / "check.yml"
    playbook.write_text(
        f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: From Prometheus
      incident.remediation.metrics_health:
        prometheus_url: {prometheus.url}
        window: 30s
        checks:
          - {{kind: error_ratio, name: api errors, labels: {{handler: /errors}}}}
          - {{kind: quantile, name: api p95, labels: {{handler: /errors}}}}
      register: from_prometheus
    - name: From the endpoint, two scrapes half a second apart
      incident.remediation.metrics_health:
        url: {app.url}
        interval: 0.5
        checks:
          - {{kind: error_ratio, name: ok errors, labels: {{handler: /ok}}}}
          - {{kind: gauge, name: pool, metric: sqlalchemy_pool_checked_in, direction: below, critical: 2}}
      register: from_endpoint
    - ansible.builtin.copy:
        content: "{{{{ {{'prometheus': from_prometheus, 'endpoint': from_endpoint}} | to_json }}}}"
        dest: {out}
        mode: "0600"
"""
    )
    completed = ansible.run_playbook(playbook, {}, timeout=120)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = json.loads(out.read_text())
    from_prometheus, from_endpoint = results["prometheus"], results["endpoint"]
    assert from_prometheus["changed"] is False
    assert from_prometheus["status"] == "warning"
    assert from_prometheus["metrics"]["api errors"] == pytest.approx(0.08, abs=0.005)
    assert from_prometheus["metrics"]["api p95"] == pytest.approx(3.75, abs=0.1)
    assert from_prometheus["checked"] == "prometheus " + prometheus.url
    assert from_endpoint["status"] == "critical"
    assert from_endpoint["checks"][0]["status"] == "ok"
    assert from_endpoint["checks"][1]["reasons"] == ["pool is 1, below the critical threshold of 2"]
    assert from_endpoint["checked"] == "endpoint " + app.url
