#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: metrics_health
short_description: Judge a service by its Prometheus metrics (error ratio, latency quantile, gauges)
version_added: 0.1.0
description:
  - Evaluates a list of O(checks) against warning and critical thresholds, each with
    its own verdict; the overall verdict is the worst of them.
  - Reads the metrics either from a Prometheus server (O(prometheus_url), one instant
    query per check over the HTTP API) or straight from a service's C(/metrics)
    endpoint (O(url), parsed with prometheus-client's parser). From an endpoint, rates
    come from two scrapes O(interval) seconds apart.
  - "Kinds of check: C(error_ratio), the share of a request counter's increase whose
    series match O(checks[].error_labels) (by default C(status=~\"5..\")); C(quantile),
    a quantile of a histogram's observations (p95 by default), as PromQL's
    C(histogram_quantile) computes it; C(gauge), the current value of a gauge; and
    C(query), the value of any PromQL expression (Prometheus only)."
  - Every check returns the PromQL it evaluated (RV(checks[].promql)) and the samples
    behind its value, so the on-call engineer can reproduce the number in Prometheus.
  - A source that cannot be read is a result, not a failure, RV(is_available=false)
    and every check RV(checks[].status=unknown) (or O(unavailable_status)). A metric
    with no series is C(unknown) too. A counter or histogram without any traffic in
    the window gives a null value and C(ok), with a reason that says so.
  - Reads only; it never changes anything.
author:
  - incident.remediation contributors (@incident-remediation)
extends_documentation_fragment:
  - incident.remediation.metrics
  - incident.remediation.http
  - incident.remediation.attributes
  - incident.remediation.attributes.read_only
options:
  checks:
    description:
      - What to judge. At least one check; each has its own verdict in RV(checks).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Name of the check in reasons, RV(metrics) and RV(thresholds); unique.
          - Defaults to the metric and the kind, for example
            C(http_requests_total error ratio) or C(http_request_duration_seconds p95),
            and to the query for O(checks[].kind=query).
        type: str
      kind:
        description:
          - C(error_ratio) divides the increase of the counter's series matching
            O(checks[].labels) and O(checks[].error_labels) by that of all series
            matching O(checks[].labels), over O(window) (Prometheus) or O(interval)
            (endpoint).
          - C(quantile) is O(checks[].quantile) of the histogram's observations over the
            same window, interpolated in the buckets like PromQL's C(histogram_quantile).
          - C(gauge) is the current value of the series matching O(checks[].labels),
            combined by O(checks[].aggregate).
          - C(query) is the value of O(checks[].query), a PromQL expression; it needs
            O(prometheus_url).
        type: str
        required: true
        choices: [error_ratio, quantile, gauge, query]
      metric:
        description:
          - Name of the series to read, as Prometheus shows it. For C(error_ratio) a
            counter with its C(_total) suffix (default C(http_requests_total)); for
            C(quantile) the histogram's base name, without C(_bucket) (default
            C(http_request_duration_seconds)); required for C(gauge).
        type: str
      labels:
        description:
          - "Label matchers that choose the series, for example C({job: api})."
          - "A value matches equal labels; C({regex: PATTERN}) matches labels that
            fully match PATTERN, like PromQL's C(=~). An absent label matches as
            an empty string."
        type: dict
        default: {}
      error_labels:
        description:
          - For C(error_ratio), the matchers that tell errors among the series chosen
            by O(checks[].labels), in the same form.
        type: dict
        default: {status: {regex: 5..}}
      quantile:
        description: For C(quantile), the quantile to compute, above 0 and at most 1.
        type: float
        default: 0.95
      query:
        description:
          - PromQL expression whose value is judged. Required for C(query).
          - For the other kinds it replaces the expression the module builds when the
            source is O(prometheus_url), and is ignored with O(url), so one list of
            checks serves both sources.
        type: str
      aggregate:
        description:
          - How the values of several series combine into one.
          - C(worst) takes the highest with O(checks[].direction=above) and the lowest
            with C(below), and names that series in the reason.
        type: str
        default: worst
        choices: [worst, max, min, sum, avg]
      direction:
        description: Whether values C(above) or C(below) the thresholds are bad.
        type: str
        default: above
        choices: [above, below]
      warning:
        description:
          - Value beyond which the check is C(warning).
          - Defaults to C(0.05) for C(error_ratio) (runbook HighErrorRate, 5%) and to
            C(2.0) seconds for C(quantile) (HighLatency, p95 above 2 s); none for
            the other kinds, whose value is then reported without being judged.
        type: float
      critical:
        description:
          - Value beyond which the check is C(critical).
          - Defaults to C(0.10) for C(error_ratio) (CriticalErrorRate, 10%) and to
            C(5.0) seconds for C(quantile) (HighResponseTime, p95 above 5 s); none for
            the other kinds.
        type: float
  window:
    description:
      - Range of the C(rate()) in the PromQL the module builds for C(error_ratio) and
        C(quantile) checks with O(prometheus_url), a PromQL duration such as C(5m)
        (the runbooks' alerts look at 5 minutes).
      - With O(url) it only goes into the reference expression RV(checks[].promql).
    type: str
    default: 5m
  interval:
    description:
      - With O(url), seconds between the two scrapes from which C(error_ratio) and
        C(quantile) checks take their increase. The module waits that long.
      - C(0) scrapes once and judges the counters' totals since the service started,
        which is rarely what an alert means but answers at once.
      - Not used with O(prometheus_url), nor when every check is a C(gauge).
    type: float
    default: 10.0
  unavailable_status:
    description:
      - Status of every check, and so of the module, when the source cannot be read
        (connection refused, timeout, an HTTP error, not Prometheus metrics).
      - C(unknown) suits a Prometheus server or a separate metrics port, whose outage
        says nothing about the service; C(critical) suits a service's own C(/metrics)
        on its main port, where no answer means the service is down.
    type: str
    default: unknown
    choices: [unknown, critical]
notes:
  - Statuses rank C(ok) < C(warning) < C(unknown) < C(critical), so a check that could
    not be read never hides a warning, and a playbook verifying a fix should treat
    C(unknown) as not fixed.
  - A threshold is crossed when the value is strictly beyond it, as in the alert rules
    (C(> 0.05)).
  - From an endpoint, a counter series absent in the first scrape counts from 0 (it
    appeared during the interval), and a series that went down was reset and counts
    from its new value. Prometheus' C(rate()) instead ignores a series' first sample,
    so numbers from the two sources can differ slightly for new series.
seealso:
  - name: Prometheus histogram_quantile()
    description: How quantiles are interpolated from buckets.
    link: https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile
"""

EXAMPLES = r"""
- name: Error ratio and p95 latency of the API, from Prometheus (runbook thresholds)
  incident.remediation.metrics_health:
    prometheus_url: http://prometheus:9090
    checks:
      - kind: error_ratio
        name: api errors
        labels: {job: api}
      - kind: quantile
        name: api p95
        labels: {job: api}
  register: api

- name: Fail the verification while the error ratio is still above 5%
  ansible.builtin.assert:
    that: api.checks | selectattr('name', 'eq', 'api errors') | map(attribute='status') | first == 'ok'
    fail_msg: "{{ api.reasons | join('; ') }}"

- name: The same from the service's own /metrics, two scrapes 15 s apart
  incident.remediation.metrics_health:
    url: http://127.0.0.1:8000/metrics
    interval: 15
    unavailable_status: critical
    checks:
      - kind: error_ratio
      - kind: quantile
        quantile: 0.99
        warning: 1.0
        critical: 3.0
      - kind: gauge
        name: queue depth
        metric: queue_depth
        labels: {queue: {regex: "emails|reports"}}
        warning: 100
        critical: 500

- name: Free connections in the pool must stay above 2, and a query of one's own
  incident.remediation.metrics_health:
    prometheus_url: http://prometheus:9090
    window: 10m
    checks:
      - kind: gauge
        name: free pool connections
        metric: sqlalchemy_pool_checked_in
        direction: below
        warning: 5
        critical: 2
      - kind: query
        name: 4xx share
        query: sum(rate(http_requests_total{status=~"4.."}[10m])) / sum(rate(http_requests_total[10m]))
        warning: 0.2
"""

RETURN = r"""
status:
  description: Overall verdict, the worst of the checks' statuses.
  returned: always
  type: str
  choices: [ok, warning, critical, unknown]
  sample: warning
is_available:
  description:
    - Whether the source answered every scrape or query.
    - A query that Prometheus rejected still counts as an answer.
  returned: always
  type: bool
  sample: true
reasons:
  description:
    - Sentences that explain the verdict, from every check, each once.
    - Empty when every check has a value within its thresholds; a check without traffic
      says so here even though it is C(ok).
  returned: always
  type: list
  elements: str
  sample: ["api errors is 0.0712, above the warning threshold of 0.05"]
metrics:
  description: The value of each check by name; null when it could not be computed.
  returned: always
  type: dict
  sample: {"api errors": 0.0712, "api p95": 0.84}
thresholds:
  description: The thresholds applied, by check name, with the direction in which they apply.
  returned: always
  type: dict
  sample: {"api errors": {"warning": 0.05, "critical": 0.1, "direction": "above"}}
elapsed_ms:
  description: Milliseconds the checks took, including the O(interval) between scrapes.
  returned: always
  type: float
  sample: 10012.5
checked:
  description:
    - Where the metrics were read, C(prometheus) followed by O(prometheus_url), or C(endpoint)
      followed by O(url); the URL without user information, query, fragment or key-like path
      segments.
    - Every module of the collection names what it checked or acted on in this key.
  returned: always
  type: str
  sample: prometheus http://prometheus:9090
error:
  description: Why the source could not be read, null when it could.
  returned: always
  type: str
  sample: null
checks:
  description: One result per check, in the order of O(checks). Every key is always present.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The check's name.
      type: str
      sample: api errors
    kind:
      description: The check's kind.
      type: str
      sample: error_ratio
    status:
      description: The check's verdict.
      type: str
      choices: [ok, warning, critical, unknown]
      sample: warning
    value:
      description:
        - The judged value (a ratio from 0 to 1, a quantile in the histogram's unit,
          a gauge or query value); null when it could not be computed or there was
          no traffic.
      type: float
      sample: 0.0712
    reasons:
      description: Sentences that explain this check's status.
      type: list
      elements: str
    warning:
      description: The warning threshold applied, null for none.
      type: float
      sample: 0.05
    critical:
      description: The critical threshold applied, null for none.
      type: float
      sample: 0.1
    direction:
      description: C(above) or C(below).
      type: str
      sample: above
    window:
      description:
        - What the value covers, C(5m) (O(window)), C(10.02s) (the measured time
          between two scrapes), C(since start) (O(interval=0)) or C(instant) (a
          gauge); null for a O(checks[].query) of the user's, whose ranges are its own.
      type: str
      sample: 5m
    promql:
      description:
        - The PromQL expression evaluated with O(prometheus_url), to paste into
          Prometheus; with O(url), the equivalent expression over O(window), for
          reference (not run).
      type: str
      sample: >-
        (sum(rate(http_requests_total{job="api",status=~"5.."}[5m])) or vector(0))
        / sum(rate(http_requests_total{job="api"}[5m]))
    samples:
      description:
        - The numbers behind the value. Always C(series), a list of C(labels) and
          C(value) (null for NaN), values not rounded. From Prometheus, the query's
          result. From an endpoint, the series in the last scrape (for C(error_ratio)
          the counters' cumulative values; empty for C(quantile)).
        - "For C(error_ratio) from an endpoint also C(errors), C(requests) (their
          increases, or totals with O(interval=0)), C(errors_per_second),
          C(requests_per_second) and C(seconds); for C(quantile) from an endpoint
          C(observations), C(buckets) (cumulative, each C(le) and C(count)) and C(seconds)."
      type: dict
      sample: {"series": [{"labels": {}, "value": 0.0712}]}
    error:
      description: Why this check could not be evaluated, null when it was.
      type: str
      sample: null
"""

import math
import re
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.incident.remediation.plugins.module_utils import _metrics
from ansible_collections.incident.remediation.plugins.module_utils._metrics import (
    MetricsError,
    SourceUnavailable,
    bucket_counts,
    check_matchers,
    format_bound,
    histogram_increase,
    histogram_quantile,
    increase,
    metrics_common_argument_spec,
    prometheus_query,
    promql_selector,
    scrape,
    select,
    total,
    valid_metric_name,
)
from ansible_collections.incident.remediation.plugins.module_utils._redact import redact_url, show_public_url
from ansible_collections.incident.remediation.plugins.module_utils._verdict import (
    CRITICAL,
    OK,
    UNKNOWN,
    Stopwatch,
    Verdict,
)

KINDS = ("error_ratio", "quantile", "gauge", "query")

# Per kind: the default metric and thresholds (the runbooks': HighErrorRate > 5%,
# CriticalErrorRate > 10%; HighLatency p95 > 2 s, HighResponseTime p95 > 5 s).
KIND_DEFAULTS = {
    "error_ratio": dict(metric="http_requests_total", warning=0.05, critical=0.10),
    "quantile": dict(metric="http_request_duration_seconds", warning=2.0, critical=5.0),
    "gauge": dict(metric=None, warning=None, critical=None),
    "query": dict(metric=None, warning=None, critical=None),
}

CHECK_SPEC = dict(
    name=dict(type="str"),
    kind=dict(type="str", required=True, choices=list(KINDS)),
    metric=dict(type="str"),
    labels=dict(type="dict", default={}),
    error_labels=dict(type="dict", default={"status": {"regex": "5.."}}),
    quantile=dict(type="float", default=0.95),
    query=dict(type="str"),
    aggregate=dict(type="str", default="worst", choices=["worst", "max", "min", "sum", "avg"]),
    direction=dict(type="str", default="above", choices=["above", "below"]),
    warning=dict(type="float"),
    critical=dict(type="float"),
)

ARGUMENT_SPEC = dict(
    checks=dict(type="list", elements="dict", required=True, options=CHECK_SPEC),
    window=dict(type="str", default="5m"),
    interval=dict(type="float", default=10.0),
    unavailable_status=dict(type="str", default=UNKNOWN, choices=[UNKNOWN, CRITICAL]),
)

_DURATION = re.compile(r"([0-9]+(ms|s|m|h|d|w|y))+\Z")


class CheckSpecError(ValueError):
    """The checks as given cannot be evaluated; the message says why."""


# ---------------------------------------------------------------- options


def valid_duration(text):
    """Whether text is a PromQL duration such as 5m, 90s or 1h30m."""
    return bool(_DURATION.match(text or ""))


def default_name(check):
    if check["kind"] == "query":
        return check["query"]
    if check["kind"] == "error_ratio":
        return "%s error ratio" % check["metric"]
    if check["kind"] == "quantile":
        return "%s p%s" % (check["metric"], ("%g" % (check["quantile"] * 100)))
    return check["metric"]


def normalize_checks(checks, prometheus):
    """The checks with the kind's defaults filled in; raises CheckSpecError for
    checks that cannot be evaluated with this source (prometheus: bool)."""
    if not checks:
        raise CheckSpecError("checks must list at least one check")
    normalized = []
    for position, given in enumerate(checks, 1):
        check = dict((name, spec.get("default")) for name, spec in CHECK_SPEC.items())
        check.update((key, value) for key, value in given.items() if value is not None)
        for key in ("labels", "error_labels"):
            check[key] = dict(check[key] or {})
        for key, value in KIND_DEFAULTS[check["kind"]].items():
            if check.get(key) is None:
                check[key] = value
        _validate_check(check, "check %d (%s)" % (position, check.get("name") or check["kind"]), prometheus)
        check["name"] = check.get("name") or default_name(check)
        normalized.append(check)
    names = [check["name"] for check in normalized]
    duplicates = sorted(set(name for name in names if names.count(name) > 1))
    if duplicates:
        raise CheckSpecError("check names must be unique; repeated: %s" % ", ".join(duplicates))
    return normalized


def _validate_check(check, where, prometheus):
    if check["kind"] == "query":
        if not check["query"]:
            raise CheckSpecError("%s: kind query needs query" % where)
        if not prometheus:
            raise CheckSpecError("%s: kind query needs prometheus_url" % where)
    elif not (prometheus and check["query"]):
        if not check["metric"]:
            raise CheckSpecError("%s: kind %s needs metric" % (where, check["kind"]))
        if not valid_metric_name(check["metric"]):
            raise CheckSpecError("%s: %r is not a valid metric name" % (where, check["metric"]))
    if check["kind"] == "quantile" and not 0 < check["quantile"] <= 1:
        raise CheckSpecError("%s: quantile must be above 0 and at most 1, not %s" % (where, check["quantile"]))
    try:
        check_matchers(check["labels"])
        check_matchers(check["error_labels"])
    except ValueError as exc:
        raise CheckSpecError("%s: %s" % (where, exc)) from exc


# ---------------------------------------------------------------- PromQL


def build_promql(check, window):
    """The instant PromQL expression whose value the check judges."""
    if check["query"]:
        return check["query"]
    metric, labels = check["metric"], check["labels"]
    if check["kind"] == "error_ratio":
        errors = dict(labels, **check["error_labels"])
        # `or vector(0)`: a service that never failed has no error series at all.
        return "(sum(rate(%s[%s])) or vector(0)) / sum(rate(%s[%s]))" % (
            promql_selector(metric, errors), window, promql_selector(metric, labels), window)
    if check["kind"] == "quantile":
        return "histogram_quantile(%s, sum by (le) (rate(%s[%s])))" % (
            "%g" % check["quantile"], promql_selector(metric + "_bucket", labels), window)
    return promql_selector(metric, labels)


# ---------------------------------------------------------------- readings


def reading(value=None, series=None, missing=None, idle=None, **samples):
    """What a check read: value, the series behind it, and why there is no value
    (missing: nothing matched, judged unknown; idle: no traffic, judged ok)."""
    samples["series"] = series or []
    return dict(value=value, samples=samples, missing=missing, idle=idle, labels=None)


def series_list(pairs):
    return [dict(labels=dict(labels), value=None if math.isnan(value) else value) for labels, value in pairs]


def aggregate(pairs, how, direction):
    """(value, labels that single out the chosen series or None) over (labels,
    value) pairs, NaN values left out; (None, None) when none is left."""
    values = [(labels, value) for labels, value in pairs if not math.isnan(value)]
    if not values:
        return None, None
    if how == "worst":
        how = "max" if direction == "above" else "min"
    if how in ("max", "min"):
        pick = max if how == "max" else min
        labels, value = pick(values, key=lambda pair: pair[1])
        return value, distinguishing_labels(labels, [other for other, _value in values])
    numbers = [value for _labels, value in values]
    if how == "sum":
        return sum(numbers), None
    return sum(numbers) / len(numbers), None


def distinguishing_labels(labels, all_labels):
    """The labels of one series whose values differ among all_labels (queue="emails",
    not the job and instance every series shares); None when there is nothing to tell."""
    names = set()
    for other in all_labels:
        names.update(other)
    varying = dict(
        (name, labels.get(name, ""))
        for name in sorted(names)
        if name != "__name__" and len(set(other.get(name, "") for other in all_labels)) > 1
    )
    return varying or None


def read_vector(check, vector, source_text, window):
    """Reading of a Prometheus query result."""
    if not vector:
        return reading(missing="the query returned no series (%s)" % source_text)
    value, labels = aggregate(vector, check["aggregate"], check["direction"])
    result = reading(value=value, series=series_list(vector))
    result["labels"] = labels
    if value is None:
        if check["kind"] == "error_ratio":
            result["idle"] = "no requests in the last %s" % window
        elif check["kind"] == "quantile":
            result["idle"] = "no observations in the last %s" % window
        else:
            result["missing"] = "the query returned NaN (%s)" % source_text
    return result


def read_endpoint(check, before, after, seconds):
    """Reading of a check from endpoint samples: after alone (before None) for
    totals since start or gauges, or the increase from before to after."""
    metric, labels = check["metric"], check["labels"]
    if check["kind"] == "quantile":
        return _read_histogram(check, before, after, seconds)
    chosen = select(after, metric, labels)
    if not chosen:
        return reading(missing="no series %s in the scrape" % promql_selector(metric, labels))
    pairs = [(sample.labels, sample.value) for sample in chosen]
    if check["kind"] == "gauge":
        value, chosen_labels = aggregate(pairs, check["aggregate"], check["direction"])
        result = reading(value=value, series=series_list(pairs))
        result["labels"] = chosen_labels
        if value is None:
            result["missing"] = "every series %s is NaN" % promql_selector(metric, labels)
        return result
    # error_ratio: the series are the counter's cumulative values in the last scrape.
    errors_matchers = dict(labels, **check["error_labels"])
    if before is None:
        requests, errors = total(after, metric, labels), total(after, metric, errors_matchers)
    else:
        requests, errors = increase(before, after, metric, labels), increase(before, after, metric, errors_matchers)
    errors = errors or 0.0
    extra = dict(errors=errors, requests=requests, seconds=seconds,
                 errors_per_second=_per_second(errors, seconds), requests_per_second=_per_second(requests, seconds))
    if requests <= 0:
        return reading(series=series_list(pairs), idle="no requests %s" % _span(before, seconds), **extra)
    return reading(value=errors / requests, series=series_list(pairs), **extra)


def _read_histogram(check, before, after, seconds):
    metric, labels = check["metric"], check["labels"]
    if before is None:
        buckets = bucket_counts(after, metric, labels)
    else:
        buckets = histogram_increase(before, after, metric, labels)
    if not buckets:
        return reading(missing="no series %s in the scrape" % promql_selector(metric + "_bucket", labels))
    observations = buckets[-1][1] if buckets[-1][0] == math.inf else None
    extra = dict(observations=observations, seconds=seconds,
                 buckets=[dict(le=format_bound(bound), count=count) for bound, count in buckets])
    if observations is None:
        return reading(missing="the histogram %s has no +Inf bucket" % metric, **extra)
    if observations <= 0:
        return reading(idle="no observations %s" % _span(before, seconds), **extra)
    return reading(value=histogram_quantile(check["quantile"], buckets), **extra)


def _span(before, seconds):
    if before is None:
        return "since the service started"
    return "in the %.2f s between the two scrapes" % seconds


def _per_second(count, seconds):
    return count / seconds if seconds else None


# ---------------------------------------------------------------- verdicts


def judge(check, read):
    """Verdict of one check from its reading."""
    verdict = Verdict()
    name = check["name"]
    if read["missing"]:
        verdict.add(UNKNOWN, "%s: %s" % (name, read["missing"]))
        return verdict
    if read["value"] is None:
        verdict.add(OK, "%s: %s, not judged" % (name, read["idle"] or "no value"))
        return verdict
    if read["labels"]:
        name = "%s %s" % (name, promql_selector("", read["labels"]))
    judge_value = verdict.check_above if check["direction"] == "above" else verdict.check_below
    judge_value(name, read["value"], check["warning"], check["critical"])
    return verdict


def check_result(check, status, reasons, *, value=None, promql=None, window=None, samples=None, error=None):
    return dict(
        name=check["name"],
        kind=check["kind"],
        status=status,
        value=None if value is None else round(value, 6),
        reasons=list(reasons),
        warning=check["warning"],
        critical=check["critical"],
        direction=check["direction"],
        window=window,
        promql=promql,
        samples=samples if samples is not None else dict(series=[]),
        error=error,
    )


def judged_result(check, read, promql, window):
    verdict = judge(check, read)
    return check_result(check, verdict.status, verdict.reasons, value=read["value"], promql=promql, window=window,
                        samples=read["samples"])


# ---------------------------------------------------------------- sources


def evaluate_prometheus(checks, params):
    """(results, is_available, error) from one instant query per check; the first
    query Prometheus does not answer stops the others."""
    base, window = params["prometheus_url"], params["window"]
    results, error = [], None
    for check in checks:
        promql = build_promql(check, window)
        if check["query"]:
            window_text = None
        else:
            window_text = "instant" if check["kind"] == "gauge" else window
        if error is not None:
            results.append(check_result(check, params["unavailable_status"], [error], promql=promql,
                                        window=window_text, error=error))
            continue
        try:
            vector = prometheus_query(base, promql, params)
        except SourceUnavailable as exc:
            error = str(exc)
            results.append(check_result(check, params["unavailable_status"], [error], promql=promql,
                                        window=window_text, error=error))
            continue
        except MetricsError as exc:
            reason = "%s: %s" % (check["name"], exc)
            results.append(check_result(check, UNKNOWN, [reason], promql=promql, window=window_text, error=str(exc)))
            continue
        read = read_vector(check, vector, promql, window)
        results.append(judged_result(check, read, promql, window_text))
    return results, error is None, error


def evaluate_endpoint(checks, params, sleep=time.sleep, clock=time.monotonic):
    """(results, is_available, error) from one scrape, or two O(interval) apart when
    a check needs an increase."""
    url, interval = params["url"], params["interval"]
    needs_increase = interval > 0 and any(check["kind"] in ("error_ratio", "quantile") for check in checks)
    promql_window = params["window"]
    before, seconds = None, None
    try:
        after = scrape(url, params)
        if needs_increase:
            started = clock()
            sleep(interval)
            before = after
            try:
                after = scrape(url, params)
            except MetricsError as exc:
                raise MetricsError("%s (the first scrape, %s s earlier, had answered)" % (exc, interval)) from exc
            seconds = round(clock() - started, 3)
    except MetricsError as exc:
        error = str(exc)
        results = [check_result(check, params["unavailable_status"], [error],
                                promql=build_promql(dict(check, query=None), promql_window), error=error)
                   for check in checks]
        return results, False, error
    results = []
    for check in checks:
        if check["kind"] == "gauge":
            window = "instant"
            read = read_endpoint(check, None, after, None)
        else:
            window = "%.2fs" % seconds if before is not None else "since start"
            read = read_endpoint(check, before, after, seconds)
        results.append(judged_result(check, read, build_promql(dict(check, query=None), promql_window), window))
    return results, True, None


def evaluate(checks, params, **kwargs):
    """The module's result without changed/elapsed_ms; never raises for the source."""
    prometheus = bool(params.get("prometheus_url"))
    if prometheus:
        results, is_available, error = evaluate_prometheus(checks, params)
    else:
        results, is_available, error = evaluate_endpoint(checks, params, **kwargs)
    overall = Verdict()  # only its status is used: the reasons are the checks' own
    reasons = []
    for result in results:
        overall.add(result["status"], None)
        reasons.extend(reason for reason in result["reasons"] if reason not in reasons)
    return dict(
        status=overall.status,
        is_available=is_available,
        reasons=reasons,
        metrics=dict((result["name"], result["value"]) for result in results),
        thresholds=dict(
            (check["name"], dict(warning=check["warning"], critical=check["critical"], direction=check["direction"]))
            for check in checks
        ),
        checked="%s %s" % (
            "prometheus" if prometheus else "endpoint",
            redact_url(params["prometheus_url"] if prometheus else params["url"])[0],
        ),
        error=error,
        checks=results,
    )


def main():
    argument_spec = metrics_common_argument_spec()
    argument_spec.update(ARGUMENT_SPEC)
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("url", "prometheus_url")],
        required_one_of=[("url", "prometheus_url")],
        supports_check_mode=True,
    )
    params = module.params
    prometheus = bool(params["prometheus_url"])
    show_public_url(module, params["prometheus_url"] if prometheus else params["url"])
    if not prometheus and _metrics.text_string_to_metric_families is None:
        module.fail_json(msg=missing_required_lib("prometheus-client"),
                         exception=_metrics.PROMETHEUS_CLIENT_IMPORT_ERROR)
    if not valid_duration(params["window"]):
        module.fail_json(msg="window must be a PromQL duration such as 5m or 1h30m, not %r" % params["window"])
    if params["interval"] < 0:
        module.fail_json(msg="interval must be 0 or more seconds, not %s" % params["interval"])
    try:
        checks = normalize_checks(params["checks"], prometheus)
    except CheckSpecError as exc:
        module.fail_json(msg=str(exc))
    clock = Stopwatch()
    result = evaluate(checks, params)
    module.exit_json(changed=False, elapsed_ms=clock.elapsed_ms(), **result)


if __name__ == "__main__":
    main()
