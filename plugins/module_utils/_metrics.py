# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the incident.remediation collection: no compatibility promise
# outside it.
"""Prometheus metrics: scrape and parse a /metrics endpoint (prometheus-client's
parser), query a Prometheus server, and derive rates, ratios and quantiles.
Shared by metrics_health and the `metrics` backends of queue_health and pool_health."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re
import traceback

from ansible.module_utils.six.moves.urllib.parse import urlencode

from ansible_collections.incident.remediation.plugins.module_utils._http import request

PROMETHEUS_CLIENT_IMPORT_ERROR = None
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    text_string_to_metric_families = None
    PROMETHEUS_CLIENT_IMPORT_ERROR = traceback.format_exc()


class MetricsError(Exception):
    """The metrics could not be read; the message says why."""


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
    """Samples from a /metrics endpoint; http options as in _http.request."""
    result = request(url, params)
    if result.error or result.status != 200:
        raise MetricsError("scraping %s failed: %s" % (url, result.error or "HTTP %s" % result.status))
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


def histogram_quantile(quantile, buckets):
    """Prometheus' histogram_quantile over cumulative (bound, count) pairs:
    linear interpolation inside the bucket; None without observations."""
    if not buckets or buckets[-1][0] != math.inf:
        return None
    observed = buckets[-1][1]
    if observed <= 0:
        return None
    rank = quantile * observed
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == math.inf:
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return None


def prometheus_query(base_url, promql, params):
    """Instant query over Prometheus' HTTP API: [(labels, value)] of a vector, or
    [({}, value)] of a scalar."""
    url = "%s/api/v1/query?%s" % (base_url.rstrip("/"), urlencode({"query": promql}))
    result = request(url, params)
    if result.error and result.status is None:
        raise MetricsError("Prometheus at %s did not answer: %s" % (base_url, result.error))
    try:
        document = result.json()
    except ValueError as exc:
        raise MetricsError("Prometheus at %s answered HTTP %s with no JSON" % (base_url, result.status)) from exc
    if document.get("status") != "success":
        raise MetricsError("Prometheus rejected %r: %s" % (promql, document.get("error", result.error)))
    data = document["data"]
    if data["resultType"] == "scalar":
        return [({}, float(data["result"][1]))]
    if data["resultType"] != "vector":
        raise MetricsError("query %r gave a %s, not an instant vector" % (promql, data["resultType"]))
    return [(series["metric"], float(series["value"][1])) for series in data["result"]]
