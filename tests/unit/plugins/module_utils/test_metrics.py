"""Unit tests for plugins/module_utils/_metrics.py (its doc fragment: doc_fragments/test_fragments.py).

The quantile cases marked "Prometheus" are values Prometheus 2.42 itself gives
(checked with `promtool test rules` on the same buckets, and in
tests/integration/test_metrics_health.py against a live server).
"""

import math

import pytest
from ansible_collections.incident.remediation.plugins.module_utils import _metrics
from ansible_collections.incident.remediation.plugins.module_utils._http import http_common_argument_spec
from ansible_collections.incident.remediation.plugins.module_utils._metrics import (
    MetricsError,
    Sample,
    SourceUnavailable,
    bucket_counts,
    bucket_increase,
    check_matchers,
    counter_rate,
    format_bound,
    histogram_increase,
    histogram_quantile,
    increase,
    label_match,
    metrics_common_argument_spec,
    metrics_source_argument_spec,
    parse_exposition,
    prometheus_query,
    promql_selector,
    scrape,
    select,
    series_key,
    total,
    valid_metric_name,
)

INF = math.inf

EXPOSITION = """\
# HELP http_requests_total HTTP requests handled
# TYPE http_requests_total counter
http_requests_total{handler="/api",status="200"} 920.0
http_requests_total{handler="/api",status="500"} 60.0
http_requests_total{handler="/api",status="503"} 20.0
http_requests_total{handler="/health",status="200"} 50.0
http_requests_created{handler="/api",status="200"} 1.7e+09
# HELP http_request_duration_seconds Time to handle a request
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{handler="/api",le="0.1"} 50.0
http_request_duration_seconds_bucket{handler="/api",le="0.2"} 70.0
http_request_duration_seconds_bucket{handler="/api",le="1.0"} 110.0
http_request_duration_seconds_bucket{handler="/api",le="+Inf"} 120.0
http_request_duration_seconds_count{handler="/api"} 120.0
http_request_duration_seconds_sum{handler="/api"} 30.5
http_request_duration_seconds_bucket{handler="/health",le="0.1"} 10.0
http_request_duration_seconds_bucket{handler="/health",le="0.2"} 10.0
http_request_duration_seconds_bucket{handler="/health",le="1.0"} 10.0
http_request_duration_seconds_bucket{handler="/health",le="+Inf"} 10.0
http_request_duration_seconds_count{handler="/health"} 10.0
http_request_duration_seconds_sum{handler="/health"} 0.2
# HELP queue_depth Jobs waiting
# TYPE queue_depth gauge
queue_depth{queue="emails"} 150.0
queue_depth{queue="reports"} 20.0
queue_depth{queue="with \\"quotes\\""} 1.0
# TYPE temperature gauge
temperature NaN
"""


@pytest.fixture(scope="module")
def samples():
    return parse_exposition(EXPOSITION)


def counter(value, **labels):
    return Sample("c_total", labels, float(value))


def buckets_of(name, counts, **labels):
    """Bucket samples of one histogram series from {bound: cumulative count}."""
    return [
        Sample(name + "_bucket", dict(labels, le=format_bound(bound)), float(count)) for bound, count in counts.items()
    ]


# ---------------------------------------------------------------- parsing


def test_parse_exposition_gives_every_sample_with_labels_and_float_values(samples):
    by_key = {series_key(sample): sample.value for sample in samples}
    assert by_key[("http_requests_total", (("handler", "/api"), ("status", "500")))] == 60.0
    assert by_key[("http_request_duration_seconds_bucket", (("handler", "/api"), ("le", "+Inf")))] == 120.0
    assert by_key[("queue_depth", (("queue", 'with "quotes"'),))] == 1.0
    assert math.isnan(by_key[("temperature", ())])
    assert all(isinstance(sample.value, float) for sample in samples)


@pytest.mark.parametrize("text", ["<html>not metrics</html>\n", "metric{label=unquoted} 1\n", "name one\n"])
def test_parse_exposition_rejects_what_is_not_an_exposition(text):
    with pytest.raises(MetricsError, match="not a Prometheus text exposition"):
        parse_exposition(text)


def test_parse_exposition_of_nothing_is_no_samples():
    assert parse_exposition("") == []


def test_sample_repr_names_the_series():
    assert repr(Sample("up", {"job": "a"}, 1.0)) == "Sample('up', {'job': 'a'}, 1.0)"


# ---------------------------------------------------------------- label_match / select / total


@pytest.mark.parametrize(
    ("labels", "matchers", "expected"),
    [
        ({"status": "500"}, None, True),
        ({"status": "500"}, {}, True),
        ({"status": "500"}, {"status": "500"}, True),
        ({"status": "500"}, {"status": 500}, True),  # YAML gives ints: compared as text
        ({"status": "500"}, {"status": "200"}, False),
        ({"status": "500"}, {"status": {"regex": "5.."}}, True),
        ({"status": "5000"}, {"status": {"regex": "5.."}}, False),  # anchored at both ends, like =~
        ({"status": "1500"}, {"status": {"regex": "5.."}}, False),
        ({"status": "503"}, {"status": {"regex": "500|503"}}, True),  # alternation stays anchored
        ({"status": "5030"}, {"status": {"regex": "500|503"}}, False),
        ({}, {"status": ""}, True),  # an absent label is ""
        ({}, {"status": {"regex": ".*"}}, True),
        ({}, {"status": {"regex": ".+"}}, False),
        ({"a": "1", "b": "2"}, {"a": "1", "b": {"regex": "[0-9]"}}, True),
        ({"a": "1", "b": "x"}, {"a": "1", "b": {"regex": "[0-9]"}}, False),
    ],
)
def test_label_match(labels, matchers, expected):
    assert label_match(labels, matchers) is expected


def test_select_by_name_and_matchers(samples):
    chosen = select(samples, "http_requests_total", {"handler": "/api", "status": {"regex": "5.."}})
    assert sorted(sample.labels["status"] for sample in chosen) == ["500", "503"]
    assert select(samples, "http_requests", None) == []  # the family name is not a sample name


def test_total_sums_matching_series_and_is_none_without_any(samples):
    assert total(samples, "http_requests_total") == 1050.0
    assert total(samples, "http_requests_total", {"handler": "/api"}) == 1000.0
    assert total(samples, "http_requests_total", {"status": "404"}) is None
    assert total(samples, "no_such_metric") is None


# ---------------------------------------------------------------- counters


@pytest.mark.parametrize(
    ("before", "after", "seconds", "expected"),
    [
        (100.0, 160.0, 10.0, 6.0),
        (100.0, 100.0, 10.0, 0.0),
        (100.0, 30.0, 10.0, 3.0),  # reset: the counter restarted from 0 and reached 30
        (None, 30.0, 10.0, None),
        (100.0, None, 10.0, None),
        (100.0, 160.0, 0.0, None),
    ],
)
def test_counter_rate(before, after, seconds, expected):
    assert counter_rate(before, after, seconds) == expected


def test_increase_is_summed_series_by_series():
    before = [counter(100, status="200"), counter(10, status="500")]
    after = [counter(190, status="200"), counter(20, status="500")]
    assert increase(before, after, "c_total") == 100.0
    assert increase(before, after, "c_total", {"status": {"regex": "5.."}}) == 10.0


def test_increase_counts_a_reset_series_from_zero():
    before = [counter(1000, status="200"), counter(10, status="500")]
    after = [counter(40, status="200"), counter(15, status="500")]
    # The sum went down (1010 -> 55) but only one series was reset.
    assert increase(before, after, "c_total") == 40.0 + 5.0


def test_increase_counts_a_series_born_during_the_interval_from_zero():
    before = [counter(100, status="200")]
    after = [counter(150, status="200"), counter(7, status="500")]
    assert increase(before, after, "c_total", {"status": "500"}) == 7.0
    assert increase(before, after, "c_total") == 57.0


def test_increase_is_none_without_series_after():
    assert increase([counter(1)], [], "c_total") is None
    assert increase([], [counter(1, status="200")], "c_total", {"status": "500"}) is None


def test_series_key_ignores_label_order():
    assert series_key(Sample("m", {"a": "1", "b": "2"}, 0)) == series_key(Sample("m", {"b": "2", "a": "1"}, 5))


# ---------------------------------------------------------------- histograms


def test_bucket_counts_are_summed_over_series_and_sorted(samples):
    assert bucket_counts(samples, "http_request_duration_seconds") == [
        (0.1, 60.0),
        (0.2, 80.0),
        (1.0, 120.0),
        (INF, 130.0),
    ]
    assert bucket_counts(samples, "http_request_duration_seconds", {"handler": "/health"})[-1] == (INF, 10.0)
    assert bucket_counts(samples, "no_such_histogram") == []


def test_bucket_increase_subtracts_and_restarts_after_a_reset():
    before = [(0.1, 10.0), (1.0, 20.0), (INF, 25.0)]
    assert bucket_increase(before, [(0.1, 15.0), (1.0, 30.0), (INF, 40.0)]) == [(0.1, 5.0), (1.0, 10.0), (INF, 15.0)]
    assert bucket_increase(before, [(0.1, 2.0), (1.0, 3.0), (INF, 3.0)]) == [(0.1, 2.0), (1.0, 3.0), (INF, 3.0)]
    assert bucket_increase([], [(INF, 3.0)]) == [(INF, 3.0)]


def test_histogram_increase_series_by_series():
    before = buckets_of("h", {0.1: 10, 1.0: 20, INF: 25}, handler="a") + buckets_of(
        "h", {0.1: 500, 1.0: 900, INF: 1000}, handler="b"
    )
    after = (
        buckets_of("h", {0.1: 15, 1.0: 30, INF: 40}, handler="a")  # +5, +10, +15
        + buckets_of("h", {0.1: 1, 1.0: 2, INF: 2}, handler="b")  # reset: counts from 0
        + buckets_of("h", {0.1: 0, 1.0: 4, INF: 4}, handler="c")  # new during the interval
    )
    assert histogram_increase(before, after, "h") == [(0.1, 6.0), (1.0, 16.0), (INF, 21.0)]
    assert histogram_increase(before, after, "h", {"handler": "a"}) == [(0.1, 5.0), (1.0, 10.0), (INF, 15.0)]
    assert histogram_increase(before, after, "h", {"handler": "zzz"}) == []
    assert histogram_increase([], after, "h", {"handler": "a"}) == [(0.1, 15.0), (1.0, 30.0), (INF, 40.0)]


@pytest.mark.parametrize(("bound", "text"), [(0.005, "0.005"), (2.5, "2.5"), (10.0, "10.0"), (1, "1.0"), (INF, "+Inf")])
def test_format_bound_writes_bounds_like_prometheus_client(bound, text):
    assert format_bound(bound) == text


# Prometheus' own test histograms (promql/testdata/histograms.test), at 50m.
POSITIVE = [(0.1, 50.0), (0.2, 70.0), (1.0, 110.0), (INF, 120.0)]
NEGATIVE = [(-0.2, 10.0), (-0.1, 20.0), (0.3, 20.0), (INF, 30.0)]


@pytest.mark.parametrize(
    ("quantile", "buckets", "expected"),
    [
        pytest.param(0.2, POSITIVE, 0.048, id="Prometheus-interpolated-in-first-bucket-from-0"),
        pytest.param(0.5, POSITIVE, 0.15, id="Prometheus-interpolated"),
        pytest.param(0.8, POSITIVE, 0.72, id="Prometheus-interpolated-wide-bucket"),
        pytest.param(1.0, POSITIVE, 1.0, id="Prometheus-rank-in-inf-bucket-gives-its-lower-bound"),
        pytest.param(0.0, POSITIVE, 0.0, id="Prometheus-quantile-0"),
        pytest.param(0.0, NEGATIVE, -0.2, id="Prometheus-first-bucket-at-or-below-0-gives-its-bound"),
        pytest.param(0.2, NEGATIVE, -0.2, id="Prometheus-negative-first-bucket"),
        pytest.param(0.5, NEGATIVE, -0.15, id="Prometheus-negative-interpolated"),
        pytest.param(0.8, NEGATIVE, 0.3, id="Prometheus-empty-bucket-then-inf"),
        pytest.param(1.0, NEGATIVE, 0.3, id="Prometheus-negative-quantile-1"),
        pytest.param(0.9, [(1.0, 10.0), (2.0, 8.0), (INF, 12.0)], 2.0, id="Prometheus-non-monotonic-raised"),
        pytest.param(0.5, [(1.0, 0.0), (2.0, 10.0), (INF, 10.0)], 1.5, id="empty-first-bucket"),
        pytest.param(0.95, [(0.05, 90.0), (2.5, 90.0), (5.0, 100.0), (INF, 100.0)], 3.75, id="p95-runbook-example"),
        pytest.param(0.5, [(1.0, 10.0), (2.0, 10.0), (INF, 10.0)], 0.5, id="all-in-first-bucket"),
    ],
)
def test_histogram_quantile_matches_prometheus(quantile, buckets, expected):
    assert histogram_quantile(quantile, buckets) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("quantile", "expected"), [(-0.1, -INF), (1.01, INF)], ids=["below-0-is-minus-inf", "above-1-is-plus-inf"]
)
def test_histogram_quantile_out_of_range_like_prometheus(quantile, expected):
    assert histogram_quantile(quantile, POSITIVE) == expected


@pytest.mark.parametrize(
    "buckets",
    [
        pytest.param([], id="empty"),
        pytest.param([(INF, 10.0)], id="only-inf-bucket"),
        pytest.param([(0.1, 5.0), (1.0, 10.0)], id="no-inf-bucket"),
        pytest.param([(0.1, 0.0), (1.0, 0.0), (INF, 0.0)], id="no-observations"),
    ],
)
def test_histogram_quantile_is_none_where_prometheus_gives_nan(buckets):
    assert histogram_quantile(0.95, buckets) is None


def test_histogram_quantile_of_an_empty_first_bucket_at_quantile_0_is_none():
    # Prometheus computes 0/0 there: NaN.
    assert histogram_quantile(0.0, [(1.0, 0.0), (2.0, 10.0), (INF, 10.0)]) is None


def test_quantile_of_the_parsed_exposition(samples):
    buckets = bucket_counts(samples, "http_request_duration_seconds", {"handler": "/api"})
    assert buckets == POSITIVE
    assert histogram_quantile(0.8, buckets) == pytest.approx(0.72)


# ---------------------------------------------------------------- PromQL and names


@pytest.mark.parametrize(
    ("metric", "matchers", "expected"),
    [
        ("up", None, "up"),
        ("up", {}, "up"),
        ("requests_total", {"status": {"regex": "5.."}, "job": "api"}, 'requests_total{job="api",status=~"5.."}'),
        ("m", {"code": 500}, 'm{code="500"}'),
        ("m", {"path": 'say "hi"'}, 'm{path="say \\"hi\\""}'),
        ("m", {"path": {"regex": "\\d+"}}, 'm{path=~"\\\\d+"}'),
        ("m", {"text": "a\nb"}, 'm{text="a\\nb"}'),
        ("", {"queue": "emails"}, '{queue="emails"}'),
    ],
)
def test_promql_selector(metric, matchers, expected):
    assert promql_selector(metric, matchers) == expected


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("http_requests_total", True),
        ("job:http_requests:rate5m", True),
        ("_private", True),
        ("", False),
        (None, False),
        ("9lives", False),
        ("http-requests", False),
        ('up{job="x"}', False),
    ],
)
def test_valid_metric_name(name, valid):
    assert valid_metric_name(name) is valid


@pytest.mark.parametrize(
    "matchers",
    [None, {}, {"status": "500"}, {"status": 500}, {"status": {"regex": "5.."}}, {"a": "", "b": {"regex": ""}}],
)
def test_check_matchers_accepts(matchers):
    check_matchers(matchers)


@pytest.mark.parametrize(
    ("matchers", "message"),
    [
        ({"bad-name": "x"}, "not a valid label name"),
        ({"1st": "x"}, "not a valid label name"),
        ({"status": {"regexp": "5.."}}, "must be a value or {regex: pattern}"),
        ({"status": {"regex": "5..", "extra": 1}}, "must be a value or {regex: pattern}"),
        ({"status": {"regex": 5}}, "must be a value or {regex: pattern}"),
        ({"status": ["500", "503"]}, "must be a value or {regex: pattern}"),
        ({"status": None}, "must be a value or {regex: pattern}"),
        ({"status": {"regex": "5(("}}, "regex of label status is not valid"),
    ],
)
def test_check_matchers_rejects(matchers, message):
    with pytest.raises(ValueError, match=message.replace("{", "\\{").replace("}", "\\}").replace("(", "\\(")):
        check_matchers(matchers)


# ---------------------------------------------------------------- scrape and query over real loopback sockets


HTTP_PARAMS = {name: spec.get("default") for name, spec in http_common_argument_spec().items()}


def always(status, body):
    """An answer for the http_server fixture: the same reply to every request."""
    return lambda headers: (status, body)


def test_scrape_parses_an_endpoint(http_server):
    scraped = scrape(http_server(always(200, EXPOSITION)) + "/metrics", HTTP_PARAMS)
    assert total(scraped, "queue_depth", {"queue": "emails"}) == 150.0


def test_scrape_of_a_closed_port_is_source_unavailable(closed_port):
    with pytest.raises(SourceUnavailable, match="scraping http://127.0.0.1:%d/metrics failed" % closed_port):
        scrape("http://127.0.0.1:%d/metrics" % closed_port, HTTP_PARAMS)


def test_scrape_of_an_http_error_is_source_unavailable_without_credentials(http_server):
    base = http_server(always(503, "down"))
    with pytest.raises(SourceUnavailable) as raised:
        scrape(base.replace("://", "://user:secret@") + "/metrics", HTTP_PARAMS)
    assert "503" in str(raised.value)
    assert "secret" not in str(raised.value)


def test_scrape_of_a_page_that_is_not_metrics_is_a_metrics_error(http_server):
    base = http_server(always(200, "<html><body>hello</body></html>"), content_type="text/html")
    with pytest.raises(MetricsError, match="not a Prometheus text exposition"):
        scrape(base, HTTP_PARAMS)


def test_prometheus_query_of_a_closed_port_is_source_unavailable(closed_port):
    with pytest.raises(SourceUnavailable, match="did not answer"):
        prometheus_query("http://127.0.0.1:%d" % closed_port, "up", HTTP_PARAMS)


def test_prometheus_query_of_something_that_is_not_prometheus_is_source_unavailable(http_server):
    web_page = http_server(always(200, "<html>a web page</html>"), content_type="text/html")
    with pytest.raises(SourceUnavailable, match="with no JSON"):
        prometheus_query(web_page, "up", HTTP_PARAMS)
    json_list = http_server(always(200, "[1, 2]"), content_type="application/json")
    with pytest.raises(SourceUnavailable, match="with no JSON"):
        prometheus_query(json_list, "up", HTTP_PARAMS)


def test_source_unavailable_is_a_metrics_error():
    assert issubclass(SourceUnavailable, MetricsError)


def test_prometheus_client_is_importable_here():
    assert _metrics.PROMETHEUS_CLIENT_IMPORT_ERROR is None


# ---------------------------------------------------------------- argument spec


SPEC = metrics_source_argument_spec()


def test_common_spec_is_the_source_plus_the_http_options():
    common = metrics_common_argument_spec()
    assert set(common) == set(SPEC) | set(http_common_argument_spec())
    assert not set(SPEC) & set(http_common_argument_spec())
