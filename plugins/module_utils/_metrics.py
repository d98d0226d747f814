# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the incident.remediation collection: no compatibility promise
# outside it.
"""Prometheus metrics: scrape and parse a /metrics endpoint (prometheus-client's
parser), query a Prometheus server, and derive rates, ratios and quantiles.
Shared by metrics_health and the `metrics` backends of queue_health and pool_health.

Label matchers, wherever a function takes `matchers`, are a dict of
{label: value} for equality or {label: {"regex": pattern}} for a full regex
match, as in PromQL's `=` and `=~` (an absent label matches as "")."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re
import traceback

from ansible.module_utils.six.moves.urllib.parse import urlencode

from ansible_collections.incident.remediation.plugins.module_utils._http import http_common_argument_spec, request
from ansible_collections.incident.remediation.plugins.module_utils._redact import redact_url, scrub

PROMETHEUS_CLIENT_IMPORT_ERROR = None
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    text_string_to_metric_families = None
    PROMETHEUS_CLIENT_IMPORT_ERROR = traceback.format_exc()


class MetricsError(Exception):
    """The metrics could not be read; the message says why."""


class SourceUnavailable(MetricsError):
    """The endpoint or Prometheus server did not answer, or not with metrics:
    nothing can be read from it (as opposed to one query it rejected)."""


def metrics_source_argument_spec():
    """Where metrics come from; keep in sync with the incident.remediation.metrics doc
    fragment. A module makes them mutually exclusive (and one of them required). Both
    are no_log because a URL may carry credentials: call _redact.show_public_url on the
    one given, so a URL without any is shown."""
    return dict(
        url=dict(type="str", no_log=True),
        prometheus_url=dict(type="str", no_log=True),
    )


def metrics_common_argument_spec():
    """The source plus the HTTP options used to reach it (incident.remediation.metrics
    and incident.remediation.http doc fragments)."""
    spec = metrics_source_argument_spec()
    spec.update(http_common_argument_spec())
    return spec


def _failure(url, text):
    """text with the URL's secrets replaced by [REDACTED]."""
    return scrub(text, redact_url(url)[1])


class Sample:
    __slots__ = ("labels", "name", "value")

    def __init__(self, name, labels, value):
        self.name = name
        self.labels = labels
        self.value = value

    def __repr__(self):
        return "Sample(%r, %r, %r)" % (self.name, self.labels, self.value)


def parse_exposition(text):
    """Samples of a Prometheus text exposition."""
    try:
        return [
            Sample(sample.name, dict(sample.labels), float(sample.value))
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]
    except ValueError as exc:
        raise MetricsError("not a Prometheus text exposition: %s" % exc) from exc


def scrape(url, params):
    """Samples from a /metrics endpoint; http options as in _http.request. Raises
    SourceUnavailable (a MetricsError) when it does not answer 200."""
    result = request(url, params)
    if result.error or result.status != 200:
        raise SourceUnavailable(_failure(
            url, "scraping %s failed: %s" % (redact_url(url)[0], result.error or "HTTP %s" % result.status)
        ))
    return parse_exposition(result.text)


def label_match(labels, matchers):
    """Whether labels satisfy matchers: {label: value} for equality, or
    {label: {"regex": pattern}} for a full regex match (absent labels are "")."""
    for name, wanted in (matchers or {}).items():
        have = labels.get(name, "")
        if isinstance(wanted, dict):
            if not re.match("(?:%s)\\Z" % wanted["regex"], have):
                return False
        elif have != str(wanted):
            return False
    return True


def select(samples, name, matchers=None):
    return [sample for sample in samples if sample.name == name and label_match(sample.labels, matchers)]


def total(samples, name, matchers=None):
    """Sum of the matching series, None when there are none."""
    chosen = select(samples, name, matchers)
    return sum(sample.value for sample in chosen) if chosen else None


def series_key(sample):
    """What identifies a series: its name and labels."""
    return sample.name, tuple(sorted(sample.labels.items()))


def increase(before, after, name, matchers=None):
    """Summed increase of the matching counter series from one scrape to the next,
    series by series: a series that went down was reset (its increase is its new
    value), a series absent before appeared during the interval (counted from 0).
    None when no series matches in the later scrape."""
    chosen = select(after, name, matchers)
    if not chosen:
        return None
    old = dict((series_key(sample), sample.value) for sample in select(before, name, matchers))
    grown = 0.0
    for sample in chosen:
        previous = old.get(series_key(sample), 0.0)
        grown += sample.value - previous if sample.value >= previous else sample.value
    return grown


def counter_rate(before, after, seconds):
    """Per-second increase of a counter between two readings; a decrease is a reset."""
    if before is None or after is None or seconds <= 0:
        return None
    increase = after - before if after >= before else after
    return increase / seconds


def bucket_counts(samples, histogram, matchers=None):
    """Cumulative (upper bound, count) pairs of a histogram, summed over the
    matching series and sorted by bound."""
    counts = {}
    for sample in select(samples, histogram + "_bucket", matchers):
        bound = float(sample.labels["le"])
        counts[bound] = counts.get(bound, 0.0) + sample.value
    return sorted(counts.items())


def bucket_increase(before, after):
    """Per-bucket increase between two bucket_counts readings (a reset restarts from after)."""
    old = dict(before)
    reset = any(count < old.get(bound, 0.0) for bound, count in after)
    return [(bound, count if reset else count - old.get(bound, 0.0)) for bound, count in after]


def histogram_increase(before, after, histogram, matchers=None):
    """Cumulative (upper bound, count) pairs of the observations made between two
    scrapes, series by series (a histogram series is its buckets minus `le`): a
    series with any bucket lower than before was reset and counts from 0, a series
    absent before appeared during the interval. Empty when no series matches."""
    def by_series(samples):
        grouped = {}
        for sample in select(samples, histogram + "_bucket", matchers):
            labels = dict((key, value) for key, value in sample.labels.items() if key != "le")
            key = tuple(sorted(labels.items()))
            grouped.setdefault(key, {})[float(sample.labels["le"])] = sample.value
        return grouped

    old = by_series(before)
    counts = {}
    for key, buckets in by_series(after).items():
        previous = old.get(key, {})
        reset = any(count < previous.get(bound, 0.0) for bound, count in buckets.items())
        for bound, count in buckets.items():
            grown = count if reset else count - previous.get(bound, 0.0)
            counts[bound] = counts.get(bound, 0.0) + grown
    return sorted(counts.items())


def format_bound(bound):
    """A bucket bound as the `le` label writes it: 0.005, 2.5, 10.0, +Inf."""
    return "+Inf" if bound == math.inf else repr(float(bound))


def histogram_quantile(quantile, buckets):
    """Prometheus' histogram_quantile over cumulative (bound, count) pairs:
    linear interpolation inside the bucket, the lower bound of the +Inf bucket
    when the rank falls in it, the bound itself for a first bucket at or below 0;
    None (Prometheus: NaN) without a +Inf bucket, with fewer than two buckets or
    without observations. Counts that go down are raised to the previous bucket's,
    as Prometheus does for buckets scraped at slightly different times."""
    if not 0 <= quantile <= 1:
        return math.copysign(math.inf, quantile)
    monotonic, highest = [], 0.0
    for bound, count in buckets:
        highest = max(highest, count)
        monotonic.append((bound, highest))
    observed = highest
    if len(monotonic) < 2 or monotonic[-1][0] != math.inf or observed <= 0:
        return None
    rank = quantile * observed
    # The first finite bucket holding the rank; the +Inf bucket when none does.
    index = len(monotonic) - 1
    for position, (_bound, count) in enumerate(monotonic[:-1]):
        if count >= rank:
            index = position
            break
    if index == len(monotonic) - 1:
        return monotonic[-2][0]
    bound, count = monotonic[index]
    if index == 0 and bound <= 0:
        return bound
    lower_bound, lower_count = monotonic[index - 1] if index > 0 else (0.0, 0.0)
    if count == lower_count:  # only an empty first bucket with quantile 0: 0/0
        return None
    return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)


_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")


def valid_metric_name(name):
    return bool(name) and bool(_METRIC_NAME.match(name))


def check_matchers(matchers):
    """Raise ValueError unless matchers is {label: value or {"regex": pattern}} with
    valid label names and regexes."""
    for name, wanted in (matchers or {}).items():
        if not _LABEL_NAME.match(str(name)):
            raise ValueError("%r is not a valid label name" % (name,))
        if isinstance(wanted, dict):
            if set(wanted) != {"regex"} or not isinstance(wanted["regex"], str):
                raise ValueError("the matcher of label %s must be a value or {regex: pattern}, not %r" % (name, wanted))
            try:
                re.compile(wanted["regex"])
            except re.error as exc:
                raise ValueError("the regex of label %s is not valid: %s" % (name, exc)) from exc
        elif isinstance(wanted, (list, tuple)) or wanted is None:
            raise ValueError("the matcher of label %s must be a value or {regex: pattern}, not %r" % (name, wanted))


def _promql_string(text):
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def promql_selector(metric, matchers=None):
    """The PromQL series selector of metric and matchers (sorted by label):
    http_requests_total{job="api",status=~"5.."}."""
    parts = []
    for name in sorted(matchers or {}):
        wanted = matchers[name]
        if isinstance(wanted, dict):
            parts.append("%s=~%s" % (name, _promql_string(wanted["regex"])))
        else:
            parts.append("%s=%s" % (name, _promql_string(str(wanted))))
    return "%s{%s}" % (metric, ",".join(parts)) if parts else metric


def prometheus_query(base_url, promql, params):
    """Instant query over Prometheus' HTTP API: [(labels, value)] of a vector, or
    [({}, value)] of a scalar."""
    url = "%s/api/v1/query?%s" % (base_url.rstrip("/"), urlencode({"query": promql}))
    result = request(url, params)
    shown = redact_url(base_url)[0]
    if result.error and result.status is None:
        raise SourceUnavailable(_failure(base_url, "Prometheus at %s did not answer: %s" % (shown, result.error)))
    try:
        document = result.json()
        if not isinstance(document, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise SourceUnavailable("Prometheus at %s answered HTTP %s with no JSON" % (shown, result.status)) from exc
    if document.get("status") != "success":
        raise MetricsError("Prometheus rejected %r: %s" % (promql, document.get("error", result.error)))
    data = document["data"]
    if data["resultType"] == "scalar":
        return [({}, float(data["result"][1]))]
    if data["resultType"] != "vector":
        raise MetricsError("query %r gave a %s, not an instant vector" % (promql, data["resultType"]))
    return [(series["metric"], float(series["value"][1])) for series in data["result"]]
