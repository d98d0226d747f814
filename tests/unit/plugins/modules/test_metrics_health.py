"""Unit tests for plugins/modules/metrics_health.py.

No Prometheus is needed: the verdict logic is pure, the endpoint mode reads a
real loopback HTTP server (stdlib) serving exposition text, and the unreachable
and hung sources are a closed port and a socket that never answers.
"""

import importlib
import math
import time

import pytest
import yaml
from ansible_collections.incident.remediation.plugins.module_utils import _metrics
from ansible_collections.incident.remediation.plugins.module_utils._metrics import (
    metrics_common_argument_spec,
    parse_exposition,
)
from ansible_collections.incident.remediation.plugins.modules import metrics_health
from ansible_collections.incident.remediation.plugins.modules.metrics_health import (
    ARGUMENT_SPEC,
    CHECK_SPEC,
    KIND_DEFAULTS,
    CheckSpecError,
    aggregate,
    build_promql,
    distinguishing_labels,
    evaluate,
    judge,
    normalize_checks,
    read_endpoint,
    read_vector,
    reading,
    valid_duration,
)

NAN = math.nan
RETURN = yaml.safe_load(metrics_health.RETURN)
DOCUMENTATION = yaml.safe_load(metrics_health.DOCUMENTATION)
CHECK_RESULT_KEYS = set(RETURN["checks"]["contains"])


def params(**overrides):
    """Module params as AnsibleModule fills them."""
    values = {name: spec.get("default") for name, spec in metrics_common_argument_spec().items()}
    values.update((name, spec.get("default")) for name, spec in ARGUMENT_SPEC.items())
    values.update(overrides)
    return values


def one(kind, prometheus=True, **options):
    """One normalized check."""
    (check,) = normalize_checks([dict(kind=kind, **options)], prometheus)
    return check


def exposition(requests=None, buckets=None, gauges=None):
    """Exposition text: requests {(handler, status): count}, buckets {handler: {le: count}},
    gauges {queue: depth}."""
    lines = ["# TYPE http_requests_total counter"]
    for (handler, status), count in (requests or {}).items():
        lines.append('http_requests_total{handler="%s",status="%s"} %s' % (handler, status, count))
    lines.append("# TYPE http_request_duration_seconds histogram")
    for handler, counts in (buckets or {}).items():
        for bound, count in counts.items():
            lines.append('http_request_duration_seconds_bucket{handler="%s",le="%s"} %s' % (handler, bound, count))
        lines.append('http_request_duration_seconds_count{handler="%s"} %s' % (handler, counts["+Inf"]))
        lines.append('http_request_duration_seconds_sum{handler="%s"} 1.0' % handler)
    lines.append("# TYPE queue_depth gauge")
    for queue, depth in (gauges or {}).items():
        lines.append('queue_depth{queue="%s"} %s' % (queue, depth))
    return "\n".join(lines) + "\n"


BEFORE = exposition(
    requests={("/api", "200"): 900, ("/api", "500"): 50, ("/idle", "200"): 10},
    buckets={"/api": {"0.05": 900, "2.5": 900, "5.0": 950, "+Inf": 950}},
    gauges={"emails": 150, "reports": 20},
)
AFTER = exposition(
    requests={("/api", "200"): 1800, ("/api", "500"): 60, ("/api", "503"): 40, ("/idle", "200"): 10},
    buckets={"/api": {"0.05": 1800, "2.5": 1800, "5.0": 1950, "+Inf": 1950}},
    gauges={"emails": 170, "reports": 20},
)


# ---------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("5m", True),
        ("30s", True),
        ("1h30m", True),
        ("500ms", True),
        ("2d", True),
        ("", False),
        (None, False),
        ("5", False),
        ("m", False),
        ("5 m", False),
        ("5min", False),
        ("-5m", False),
    ],
)
def test_valid_duration(text, valid):
    assert valid_duration(text) is valid


@pytest.mark.parametrize(
    ("kind", "metric", "warning", "critical"),
    [
        ("error_ratio", "http_requests_total", 0.05, 0.10),
        ("quantile", "http_request_duration_seconds", 2.0, 5.0),
    ],
)
def test_kind_defaults_are_the_runbooks(kind, metric, warning, critical):
    check = one(kind)
    assert (check["metric"], check["warning"], check["critical"]) == (metric, warning, critical)
    assert check["direction"] == "above"


def test_gauge_has_no_default_thresholds():
    check = one("gauge", metric="queue_depth")
    assert (check["warning"], check["critical"]) == (None, None)


def test_given_thresholds_win_over_the_kind_defaults():
    check = one("error_ratio", warning=0.01, critical=0.02)
    assert (check["warning"], check["critical"]) == (0.01, 0.02)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"kind": "error_ratio"}, "http_requests_total error ratio"),
        ({"kind": "quantile"}, "http_request_duration_seconds p95"),
        ({"kind": "quantile", "quantile": 0.999}, "http_request_duration_seconds p99.9"),
        ({"kind": "quantile", "quantile": 0.5, "metric": "db_seconds"}, "db_seconds p50"),
        ({"kind": "gauge", "metric": "queue_depth"}, "queue_depth"),
        ({"kind": "query", "query": "sum(up)"}, "sum(up)"),
        ({"kind": "gauge", "metric": "queue_depth", "name": "emails queue"}, "emails queue"),
    ],
)
def test_default_names(options, name):
    (check,) = normalize_checks([options], True)
    assert check["name"] == name


def test_every_normalized_check_has_every_suboption():
    for kind in KIND_DEFAULTS:
        options = {"metric": "m"} if kind == "gauge" else {"query": "up"} if kind == "query" else {}
        assert set(one(kind, **options)) == set(CHECK_SPEC)


@pytest.mark.parametrize(
    ("checks", "prometheus", "message"),
    [
        ([], True, "at least one check"),
        ([{"kind": "query"}], True, "kind query needs query"),
        ([{"kind": "query", "query": "up"}], False, "kind query needs prometheus_url"),
        ([{"kind": "gauge"}], True, "kind gauge needs metric"),
        ([{"kind": "gauge", "metric": "queue-depth"}], False, "'queue-depth' is not a valid metric name"),
        ([{"kind": "gauge", "metric": 'up{job="x"}'}], True, "is not a valid metric name"),
        ([{"kind": "quantile", "quantile": 0}], True, "quantile must be above 0 and at most 1"),
        ([{"kind": "quantile", "quantile": 1.5}], True, "quantile must be above 0 and at most 1"),
        ([{"kind": "error_ratio", "labels": {"bad-label": "x"}}], True, "check 1 \\(error_ratio\\): 'bad-label'"),
        ([{"kind": "error_ratio", "error_labels": {"status": {"regexp": "5.."}}}], True, "must be a value or"),
        (
            [{"kind": "error_ratio"}, {"kind": "gauge", "metric": "g", "name": "g", "labels": {"q": {"regex": "(("}}}],
            True,
            "check 2 \\(g\\): the regex of label q",
        ),
        (
            [{"kind": "error_ratio"}, {"kind": "error_ratio", "labels": {"job": "b"}}],
            True,
            "unique; repeated: http_requests_total error ratio",
        ),
    ],
)
def test_checks_that_cannot_be_evaluated_are_rejected(checks, prometheus, message):
    with pytest.raises(CheckSpecError, match=message):
        normalize_checks(checks, prometheus)


def test_a_user_query_spares_the_metric_only_with_prometheus():
    (check,) = normalize_checks([{"kind": "gauge", "query": "max(queue_depth)", "name": "depth"}], True)
    assert check["metric"] is None
    with pytest.raises(CheckSpecError, match="needs metric"):
        normalize_checks([{"kind": "gauge", "query": "max(queue_depth)", "name": "depth"}], False)


def test_normalize_does_not_share_label_dicts_between_checks():
    first, second = normalize_checks([{"kind": "error_ratio", "name": "a"}, {"kind": "error_ratio", "name": "b"}], True)
    first["error_labels"]["status"] = "500"
    assert second["error_labels"] == {"status": {"regex": "5.."}}


# ---------------------------------------------------------------- PromQL


@pytest.mark.parametrize(
    ("check", "window", "promql"),
    [
        (
            {"kind": "error_ratio"},
            "5m",
            '(sum(rate(http_requests_total{status=~"5.."}[5m])) or vector(0)) / sum(rate(http_requests_total[5m]))',
        ),
        (
            {"kind": "error_ratio", "labels": {"job": "api", "status": {"regex": "[245].."}}},
            "10m",
            '(sum(rate(http_requests_total{job="api",status=~"5.."}[10m])) or vector(0))'
            ' / sum(rate(http_requests_total{job="api",status=~"[245].."}[10m]))',
        ),
        (
            {
                "kind": "error_ratio",
                "metric": "grpc_server_handled_total",
                "error_labels": {"grpc_code": "Unavailable"},
            },
            "5m",
            '(sum(rate(grpc_server_handled_total{grpc_code="Unavailable"}[5m])) or vector(0))'
            " / sum(rate(grpc_server_handled_total[5m]))",
        ),
        (
            {"kind": "quantile"},
            "5m",
            "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
        ),
        (
            {"kind": "quantile", "quantile": 0.5, "metric": "db_query_seconds", "labels": {"db": "main"}},
            "1m",
            'histogram_quantile(0.5, sum by (le) (rate(db_query_seconds_bucket{db="main"}[1m])))',
        ),
        (
            {"kind": "gauge", "metric": "queue_depth", "labels": {"queue": "emails"}},
            "5m",
            'queue_depth{queue="emails"}',
        ),
        ({"kind": "query", "query": "sum(up) / count(up)"}, "5m", "sum(up) / count(up)"),
        ({"kind": "error_ratio", "query": "job:errors:ratio5m"}, "5m", "job:errors:ratio5m"),
    ],
)
def test_build_promql(check, window, promql):
    assert build_promql(one(**check), window) == promql


# ---------------------------------------------------------------- aggregate


PAIRS = [
    ({"queue": "emails", "job": "w"}, 150.0),
    ({"queue": "reports", "job": "w"}, 20.0),
    ({"queue": "x", "job": "w"}, NAN),
]


@pytest.mark.parametrize(
    ("how", "direction", "value", "labels"),
    [
        ("worst", "above", 150.0, {"queue": "emails"}),
        ("worst", "below", 20.0, {"queue": "reports"}),
        ("max", "below", 150.0, {"queue": "emails"}),
        ("min", "above", 20.0, {"queue": "reports"}),
        ("sum", "above", 170.0, None),
        ("avg", "above", 85.0, None),
    ],
)
def test_aggregate_leaves_nan_out(how, direction, value, labels):
    assert aggregate(PAIRS, how, direction) == (value, labels)


def test_aggregate_of_one_series_names_none():
    assert aggregate([({"job": "a"}, 3.0)], "worst", "above") == (3.0, None)


@pytest.mark.parametrize("pairs", [[], [({}, NAN)], [({"a": "1"}, NAN), ({"a": "2"}, NAN)]])
def test_aggregate_without_numbers_is_none(pairs):
    assert aggregate(pairs, "sum", "above") == (None, None)


def test_distinguishing_labels_keep_only_what_varies():
    everyone = [{"__name__": "q", "job": "w", "queue": "a"}, {"__name__": "q", "job": "w", "queue": "b", "x": "1"}]
    assert distinguishing_labels(everyone[0], everyone) == {"queue": "a", "x": ""}
    assert distinguishing_labels({"job": "w"}, [{"job": "w"}, {"job": "w"}]) is None


# ---------------------------------------------------------------- readings and verdicts


@pytest.mark.parametrize(
    ("kind", "vector", "value", "missing", "idle"),
    [
        ("error_ratio", [({}, 0.07)], 0.07, None, None),
        ("error_ratio", [], None, "the query returned no series", None),
        ("error_ratio", [({}, NAN)], None, None, "no requests in the last 5m"),
        ("quantile", [({}, NAN)], None, None, "no observations in the last 5m"),
        ("gauge", [({}, NAN)], None, "the query returned NaN", None),
        ("query", [({}, 1.0), ({"a": "b"}, 3.0)], 3.0, None, None),
    ],
)
def test_read_vector(kind, vector, value, missing, idle):
    check = one(kind, metric="m", query="q" if kind == "query" else None)
    result = read_vector(check, vector, "q", "5m")
    assert result["value"] == value
    assert (result["missing"] or "").startswith(missing or "")
    assert bool(result["missing"]) is bool(missing)
    assert result["idle"] == idle
    assert [entry["value"] for entry in result["samples"]["series"]] == [
        None if math.isnan(number) else number for _labels, number in vector
    ]


@pytest.mark.parametrize(
    ("value", "limits", "status", "reason"),
    [
        (0.05, (0.05, 0.10, "above"), "ok", None),
        (0.0501, (0.05, 0.10, "above"), "warning", "c is 0.0501, above the warning threshold of 0.05"),
        (0.10, (0.05, 0.10, "above"), "warning", "c is 0.1, above the warning threshold of 0.05"),
        (0.12, (0.05, 0.10, "above"), "critical", "c is 0.12, above the critical threshold of 0.1"),
        (0.12, (None, None, "above"), "ok", None),
        (0.12, (None, 0.5, "above"), "ok", None),
        (0.7, (None, 0.5, "above"), "critical", "c is 0.7, above the critical threshold of 0.5"),
        (3.0, (5.0, 2.0, "below"), "warning", "c is 3, below the warning threshold of 5"),
        (1.0, (5.0, 2.0, "below"), "critical", "c is 1, below the critical threshold of 2"),
        (9.0, (5.0, 2.0, "below"), "ok", None),
        (0.0, (5.0, 2.0, "below"), "critical", "c is 0, below the critical threshold of 2"),
    ],
)
def test_judge_thresholds(value, limits, status, reason):
    warning, critical, direction = limits
    check = one("gauge", metric="m", name="c", warning=warning, critical=critical, direction=direction)
    verdict = judge(check, reading(value=value))
    assert verdict.status == status
    assert verdict.reasons == ([reason] if reason else [])


def test_judge_names_the_series_that_crossed():
    check = one("gauge", metric="queue_depth", warning=100)
    read = reading(value=150.0)
    read["labels"] = {"queue": "emails"}
    assert judge(check, read).reasons == ['queue_depth {queue="emails"} is 150, above the warning threshold of 100']


def test_judge_missing_metric_is_unknown():
    verdict = judge(one("error_ratio", name="api"), reading(missing="no series x in the scrape"))
    assert verdict.status == "unknown"
    assert verdict.reasons == ["api: no series x in the scrape"]


def test_judge_no_traffic_is_ok_and_says_so():
    verdict = judge(one("error_ratio", name="api"), reading(idle="no requests in the last 5m"))
    assert verdict.status == "ok"
    assert verdict.reasons == ["api: no requests in the last 5m, not judged"]


# ---------------------------------------------------------------- endpoint readings


@pytest.fixture(scope="module")
def scrapes():
    return parse_exposition(BEFORE), parse_exposition(AFTER)


def test_error_ratio_between_two_scrapes(scrapes):
    before, after = scrapes
    result = read_endpoint(one("error_ratio", False, labels={"handler": "/api"}), before, after, 10.0)
    # +900 ok, +10 500s, +40 503s (a series born during the interval): 50 errors of 950.
    assert result["value"] == pytest.approx(50 / 950)
    assert result["samples"]["errors"] == 50.0
    assert result["samples"]["requests"] == 950.0
    assert result["samples"]["requests_per_second"] == pytest.approx(95.0)
    assert result["samples"]["errors_per_second"] == pytest.approx(5.0)
    assert result["samples"]["seconds"] == 10.0
    assert {entry["labels"]["status"] for entry in result["samples"]["series"]} == {"200", "500", "503"}
    assert judge(one("error_ratio", False, labels={"handler": "/api"}), result).status == "warning"


def test_error_ratio_since_start(scrapes):
    after = scrapes[1]
    result = read_endpoint(one("error_ratio", False, labels={"handler": "/api"}), None, after, None)
    assert result["value"] == pytest.approx(100 / 1900)
    assert result["samples"]["requests_per_second"] is None


def test_error_ratio_without_requests_is_idle(scrapes):
    before, after = scrapes
    result = read_endpoint(one("error_ratio", False, labels={"handler": "/idle"}), before, after, 10.0)
    assert result["value"] is None
    assert result["idle"] == "no requests in the 10.00 s between the two scrapes"
    assert result["samples"]["errors"] == 0.0


def test_error_ratio_of_an_absent_counter_is_missing(scrapes):
    before, after = scrapes
    result = read_endpoint(one("error_ratio", False, labels={"handler": "/nowhere"}), before, after, 10.0)
    assert result["missing"] == 'no series http_requests_total{handler="/nowhere"} in the scrape'


def test_error_labels_choose_what_counts_as_an_error(scrapes):
    before, after = scrapes
    check = one("error_ratio", False, labels={"handler": "/api"}, error_labels={"status": "503"})
    assert read_endpoint(check, before, after, 10.0)["value"] == pytest.approx(40 / 950)


def test_quantile_between_two_scrapes(scrapes):
    before, after = scrapes
    result = read_endpoint(one("quantile", False), before, after, 10.0)
    # 900 new at <= 0.05 and 100 in (2.5, 5]: p95 = 2.5 + 2.5 * (950 - 900) / 100.
    assert result["value"] == pytest.approx(3.75)
    assert result["samples"]["observations"] == 1000.0
    assert result["samples"]["buckets"][-1] == {"le": "+Inf", "count": 1000.0}
    assert result["samples"]["buckets"][0] == {"le": "0.05", "count": 900.0}


def test_quantile_since_start_and_other_quantiles(scrapes):
    after = scrapes[1]
    assert read_endpoint(one("quantile", False), None, after, None)["value"] == pytest.approx(
        2.5 + 2.5 * (1852.5 - 1800) / 150
    )
    assert read_endpoint(one("quantile", False, quantile=0.5), None, after, None)["value"] == pytest.approx(
        0.05 * 975 / 1800
    )


def test_quantile_without_observations_is_idle(scrapes):
    before = scrapes[0]
    result = read_endpoint(one("quantile", False), before, before, 10.0)
    assert result["value"] is None
    assert result["idle"].startswith("no observations in the 10.00 s")


def test_quantile_of_an_absent_histogram_is_missing(scrapes):
    before, after = scrapes
    result = read_endpoint(one("quantile", False, metric="db_seconds"), before, after, 10.0)
    assert result["missing"] == "no series db_seconds_bucket in the scrape"


def test_gauge_from_the_last_scrape(scrapes):
    after = scrapes[1]
    result = read_endpoint(one("gauge", False, metric="queue_depth"), None, after, None)
    assert result["value"] == 170.0
    assert result["labels"] == {"queue": "emails"}
    assert judge(one("gauge", False, metric="queue_depth", warning=100, critical=500), result).reasons == [
        'queue_depth {queue="emails"} is 170, above the warning threshold of 100'
    ]
    absent = read_endpoint(one("gauge", False, metric="queue_depth", labels={"queue": "none"}), None, after, None)
    assert absent["missing"] == 'no series queue_depth{queue="none"} in the scrape'


# ---------------------------------------------------------------- evaluate() against real loopback sockets


@pytest.fixture
def endpoint(http_server):
    """endpoint(*bodies) -> the URL of a loopback /metrics endpoint serving bodies in turn
    (the last one from then on); a body of None answers HTTP 500."""

    def serve(*bodies):
        remaining = list(bodies)

        def answer(headers):
            body = remaining.pop(0) if len(remaining) > 1 else remaining[0]
            return (200, body) if body is not None else (500, "boom")

        return http_server(answer) + "/metrics"

    return serve


CHECKS = [
    {"kind": "error_ratio", "name": "api errors", "labels": {"handler": "/api"}},
    {"kind": "quantile", "name": "api p95", "labels": {"handler": "/api"}},
    {"kind": "gauge", "name": "queue", "metric": "queue_depth", "warning": 100, "critical": 500},
]


class FakeClock:
    """Stands in for time.sleep and time.monotonic: sleeping advances the clock."""

    def __init__(self):
        self.now = 100.0
        self.slept = []

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds

    def monotonic(self):
        return self.now


def run_endpoint(url, checks=None, **options):
    clock = FakeClock()
    result = evaluate(
        normalize_checks(checks or CHECKS, False), params(url=url, **options), sleep=clock.sleep, clock=clock.monotonic
    )
    return result, clock


def test_endpoint_mode_scrapes_twice_an_interval_apart(endpoint):
    url = endpoint(BEFORE, AFTER)
    result, clock = run_endpoint(url, interval=10.0)
    assert clock.slept == [10.0]
    assert result["is_available"] is True
    assert result["error"] is None
    assert result["status"] == "warning"
    assert result["metrics"] == {"api errors": round(50 / 950, 6), "api p95": 3.75, "queue": 170.0}
    assert result["reasons"] == [
        "api errors is 0.0526, above the warning threshold of 0.05",
        "api p95 is 3.75, above the warning threshold of 2",
        'queue {queue="emails"} is 170, above the warning threshold of 100',
    ]
    assert [check["window"] for check in result["checks"]] == ["10.00s", "10.00s", "instant"]
    assert result["checked"] == "endpoint " + url
    assert result["thresholds"]["api p95"] == {"warning": 2.0, "critical": 5.0, "direction": "above"}
    assert result["checks"][0]["promql"].endswith('/ sum(rate(http_requests_total{handler="/api"}[5m]))')
    for check in result["checks"]:
        assert set(check) == CHECK_RESULT_KEYS


def test_endpoint_mode_with_interval_0_scrapes_once(endpoint):
    url = endpoint(AFTER, None)
    result, clock = run_endpoint(url, interval=0.0)
    assert clock.slept == []
    assert result["is_available"] is True
    assert result["metrics"]["api errors"] == round(100 / 1900, 6)
    assert [check["window"] for check in result["checks"]] == ["since start", "since start", "instant"]


def test_endpoint_mode_with_only_gauges_does_not_wait(endpoint):
    url = endpoint(AFTER, None)
    result, clock = run_endpoint(url, checks=CHECKS[2:], interval=30.0)
    assert clock.slept == []
    assert result["status"] == "warning"


@pytest.mark.parametrize("unavailable_status", ["unknown", "critical"])
def test_unreachable_endpoint_is_reported_with_the_configured_status(closed_port, unavailable_status):
    url = "http://127.0.0.1:%d/metrics" % closed_port
    result, clock = run_endpoint(url, unavailable_status=unavailable_status)
    assert clock.slept == []
    assert result["status"] == unavailable_status
    assert result["is_available"] is False
    assert result["error"].startswith("scraping %s failed: " % url)
    assert result["reasons"] == [result["error"]]
    assert result["metrics"] == dict.fromkeys(["api errors", "api p95", "queue"])
    for check in result["checks"]:
        assert set(check) == CHECK_RESULT_KEYS
        assert check["status"] == unavailable_status
        assert check["error"] == result["error"]
        assert check["samples"] == {"series": []}
        assert check["promql"]


def test_endpoint_that_fails_on_the_second_scrape_says_so(endpoint):
    url = endpoint(BEFORE, None)
    result, _clock = run_endpoint(url, interval=10.0)
    assert result["status"] == "unknown"
    assert result["is_available"] is False
    assert "HTTP 500" in result["error"]
    assert "the first scrape, 10.0 s earlier, had answered" in result["error"]


def test_prometheus_unreachable_stops_at_the_first_query(closed_port):
    started = time.monotonic()
    result = evaluate(normalize_checks(CHECKS, True), params(prometheus_url="http://127.0.0.1:%d" % closed_port))
    assert time.monotonic() - started < 1.0
    assert result["status"] == "unknown"
    assert result["is_available"] is False
    assert result["error"].startswith("Prometheus at http://127.0.0.1:%d did not answer" % closed_port)
    assert result["reasons"] == [result["error"]]
    assert [check["window"] for check in result["checks"]] == ["5m", "5m", "instant"]
    assert result["checks"][2]["promql"] == "queue_depth"


def test_hung_prometheus_costs_one_timeout(silent_port):
    started = time.monotonic()
    result = evaluate(
        normalize_checks(CHECKS, True),
        params(prometheus_url="http://127.0.0.1:%d" % silent_port, timeout=0.5, unavailable_status="critical"),
    )
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 1.2
    assert result["status"] == "critical"
    assert "timed out" in result["error"]
    assert {check["status"] for check in result["checks"]} == {"critical"}


# ---------------------------------------------------------------- main() in process


def test_main_returns_the_stable_shape(run_module, closed_port):
    code, result, out = run_module(
        metrics_health,
        {
            "prometheus_url": "http://admin:s3cret-pw@127.0.0.1:%d" % closed_port,
            "checks": [{"kind": "error_ratio"}, {"kind": "gauge", "metric": "up", "direction": "below", "critical": 1}],
        },
    )
    assert code == 0
    assert "failed" not in result
    assert result["changed"] is False
    assert set(RETURN) | {"changed"} <= set(result)
    assert result["status"] == "unknown"
    assert result["is_available"] is False
    assert result["checked"] == "prometheus http://127.0.0.1:%d" % closed_port
    assert result["thresholds"] == {
        "http_requests_total error ratio": {"warning": 0.05, "critical": 0.1, "direction": "above"},
        "up": {"warning": None, "critical": 1.0, "direction": "below"},
    }
    assert isinstance(result["elapsed_ms"], float)
    for check in result["checks"]:
        assert set(check) == CHECK_RESULT_KEYS
    assert "s3cret-pw" not in out


def test_main_shows_a_url_without_secrets(run_module, closed_port):
    url = "http://127.0.0.1:%d/metrics" % closed_port
    _code, result, _out = run_module(metrics_health, {"url": url, "checks": [{"kind": "error_ratio"}]})
    assert result["checked"] == "endpoint " + url
    assert result["error"].startswith("scraping %s failed" % url)


def test_main_runs_the_same_checks_in_check_mode(run_module, closed_port):
    code, result, _out = run_module(
        metrics_health,
        {"url": "http://127.0.0.1:%d/metrics" % closed_port, "checks": [{"kind": "error_ratio"}]},
        check_mode=True,
    )
    assert code == 0
    assert result["changed"] is False
    assert result["is_available"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"checks": [{"kind": "error_ratio"}]}, "one of the following is required: url, prometheus_url"),
        (
            {"url": "http://a/metrics", "prometheus_url": "http://b", "checks": [{"kind": "error_ratio"}]},
            "mutually exclusive: url|prometheus_url",
        ),
        ({"url": "http://a/metrics", "checks": [{"kind": "query", "query": "up"}]}, "kind query needs prometheus_url"),
        (
            {"prometheus_url": "http://b", "window": "5 minutes", "checks": [{"kind": "error_ratio"}]},
            "window must be a PromQL duration",
        ),
        (
            {"url": "http://a/metrics", "interval": -1, "checks": [{"kind": "error_ratio"}]},
            "interval must be 0 or more",
        ),
        ({"prometheus_url": "http://b", "checks": [{"kind": "latency"}]}, "value of kind must be one of"),
        ({"prometheus_url": "http://b", "checks": [{"kind": "gauge", "metric": "m", "treshold": 3}]}, "treshold"),
        ({"prometheus_url": "http://b", "checks": []}, "at least one check"),
    ],
)
def test_main_rejects_bad_arguments(run_module, args, message):
    code, result, _out = run_module(metrics_health, args)
    assert code == 1
    assert result["failed"] is True
    assert message in result["msg"]


def test_main_needs_prometheus_client_only_for_an_endpoint(run_module, monkeypatch, closed_port):
    monkeypatch.setattr(_metrics, "text_string_to_metric_families", None)
    code, result, _out = run_module(
        metrics_health, {"url": "http://127.0.0.1:%d/metrics" % closed_port, "checks": [{"kind": "error_ratio"}]}
    )
    assert code == 1
    assert "prometheus-client" in result["msg"]
    code, result, _out = run_module(
        metrics_health, {"prometheus_url": "http://127.0.0.1:%d" % closed_port, "checks": [{"kind": "error_ratio"}]}
    )
    assert code == 0
    assert result["is_available"] is False


# ---------------------------------------------------------------- documentation


def documented_options():
    options = {}
    for fragment in DOCUMENTATION["extends_documentation_fragment"]:
        module = importlib.import_module(
            "ansible_collections.incident.remediation.plugins.doc_fragments.%s" % fragment.split(".")[2]
        )
        options.update(yaml.safe_load(module.ModuleDocFragment.DOCUMENTATION)["options"])
    options.update(DOCUMENTATION["options"])
    return options


def assert_options_match(documented, spec):
    assert sorted(documented) == sorted(spec)
    for name, option in documented.items():
        coded = spec[name]
        assert option.get("type", "str") == coded.get("type", "str"), name
        assert option.get("default") == coded.get("default"), name
        assert option.get("choices") == coded.get("choices"), name
        assert bool(option.get("required", False)) == bool(coded.get("required", False)), name
        assert sorted(option.get("aliases", [])) == sorted(coded.get("aliases", [])), name
        assert option.get("elements") == coded.get("elements"), name


def test_documentation_matches_the_argument_spec():
    spec = metrics_common_argument_spec()
    spec.update(ARGUMENT_SPEC)
    assert_options_match(documented_options(), spec)


def test_check_suboptions_match_the_check_spec():
    assert_options_match(DOCUMENTATION["options"]["checks"]["suboptions"], CHECK_SPEC)


@pytest.mark.parametrize(
    ("level", "documented"),
    [("warning", ("C(0.05)", "C(2.0)")), ("critical", ("C(0.10)", "C(5.0)"))],
)
def test_documented_threshold_defaults_are_the_coded_ones(level, documented):
    description = " ".join(DOCUMENTATION["options"]["checks"]["suboptions"][level]["description"])
    coded = (KIND_DEFAULTS["error_ratio"][level], KIND_DEFAULTS["quantile"][level])
    assert [float(text[2:-1]) for text in documented] == list(coded)
    assert all(text in description for text in documented)


def test_every_return_key_is_returned_always():
    assert all(value["returned"] == "always" for value in RETURN.values())
