"""Unit tests for plugins/module_utils/_verdict.py."""

import itertools
import re

import pytest
from ansible_collections.incident.remediation.plugins.module_utils._verdict import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    Stopwatch,
    Verdict,
)

# Best to worst: unknown ranks between warning and critical.
ORDER = [OK, WARNING, UNKNOWN, CRITICAL]


def test_status_constants_are_the_documented_strings():
    assert (OK, WARNING, UNKNOWN, CRITICAL) == ("ok", "warning", "unknown", "critical")


def test_new_verdict_is_ok_without_reasons():
    verdict = Verdict()
    assert verdict.status == OK
    assert verdict.reasons == []


@pytest.mark.parametrize(("first", "second"), list(itertools.product(ORDER, repeat=2)))
def test_worst_status_wins_whatever_the_order(first, second):
    verdict = Verdict()
    verdict.add(first, "first finding")
    verdict.add(second, "second finding")
    assert verdict.status == max(first, second, key=ORDER.index)
    assert verdict.reasons == ["first finding", "second finding"]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([WARNING, UNKNOWN], UNKNOWN),  # could-not-tell must not hide behind a warning
        ([UNKNOWN, WARNING], UNKNOWN),
        ([UNKNOWN, CRITICAL, WARNING], CRITICAL),  # nor mask a confirmed outage
        ([CRITICAL, OK, OK], CRITICAL),
        ([OK, OK], OK),
    ],
)
def test_ranking_ok_warning_unknown_critical(statuses, expected):
    verdict = Verdict()
    for status in statuses:
        verdict.add(status, status)
    assert verdict.status == expected
    assert verdict.reasons == statuses


def test_add_rejects_an_unknown_status():
    with pytest.raises(KeyError):
        Verdict().add("fine", "not a status")


@pytest.mark.parametrize(
    ("value", "warning", "critical", "expected"),
    [
        (50, 100, 1000, OK),
        (100, 100, 1000, OK),  # strictly above: the threshold itself is fine
        (101, 100, 1000, WARNING),
        (1000, 100, 1000, WARNING),
        (1001, 100, 1000, CRITICAL),
        (5000, None, 1000, CRITICAL),
        (500, None, 1000, OK),
        (5000, 100, None, WARNING),
        (5000, None, None, OK),
        (None, 100, 1000, OK),
    ],
)
def test_check_above(value, warning, critical, expected):
    verdict = Verdict()
    verdict.check_above("PING latency", value, warning, critical, " ms")
    assert verdict.status == expected
    assert len(verdict.reasons) == (0 if expected == OK else 1)


@pytest.mark.parametrize(
    ("value", "warning", "critical", "expected"),
    [
        (0.9, 0.5, 0.2, OK),
        (0.5, 0.5, 0.2, OK),  # strictly below: the threshold itself is fine
        (0.4, 0.5, 0.2, WARNING),
        (0.2, 0.5, 0.2, WARNING),
        (0.1, 0.5, 0.2, CRITICAL),
        (0.1, None, 0.2, CRITICAL),
        (0.3, None, 0.2, OK),
        (0.0, 0.5, None, WARNING),
        (0.0, None, None, OK),
        (None, 0.5, 0.2, OK),
    ],
)
def test_check_below(value, warning, critical, expected):
    verdict = Verdict()
    verdict.check_below("keyspace hit rate", value, warning, critical)
    assert verdict.status == expected
    assert len(verdict.reasons) == (0 if expected == OK else 1)


def test_check_above_reports_only_the_critical_threshold_when_both_are_crossed():
    verdict = Verdict()
    verdict.check_above("PING latency", 1500, 100, 1000, " ms")
    assert verdict.status == CRITICAL
    assert verdict.reasons == ["PING latency is 1500 ms, above the critical threshold of 1000 ms"]


def test_check_below_reports_only_the_critical_threshold_when_both_are_crossed():
    verdict = Verdict()
    verdict.check_below("keyspace hit rate", 0.1, 0.5, 0.25)
    assert verdict.status == CRITICAL
    assert verdict.reasons == ["keyspace hit rate is 0.1, below the critical threshold of 0.25"]


def test_check_above_warning_sentence_names_value_threshold_and_unit():
    verdict = Verdict()
    verdict.check_above("PING latency", 150, 100, 1000, " ms")
    assert verdict.reasons == ["PING latency is 150 ms, above the warning threshold of 100 ms"]


def test_check_below_warning_sentence_names_value_and_threshold():
    verdict = Verdict()
    verdict.check_below("keyspace hit rate", 0.3141, 0.5, None)
    (reason,) = verdict.reasons
    assert reason == "keyspace hit rate is 0.3141, below the warning threshold of 0.5"


def test_float_values_are_shown_as_plain_decimals_to_four_places():
    verdict = Verdict()
    verdict.check_above("memory use", 0.96234, 0.9, 0.95)
    verdict.check_above("PING latency", 1000.0, 100.0, None, " ms")
    assert verdict.reasons == [
        "memory use is 0.9623, above the critical threshold of 0.95",
        "PING latency is 1000 ms, above the warning threshold of 100 ms",
    ]


def test_checks_accumulate_into_one_verdict():
    verdict = Verdict()
    verdict.check_above("PING latency", 150, 100, 1000, " ms")
    verdict.check_above("memory use", 0.97, 0.9, 0.95)
    verdict.check_below("keyspace hit rate", 0.9, 0.5, None)
    assert verdict.status == CRITICAL
    assert len(verdict.reasons) == 2
    assert verdict.reasons[0].startswith("PING latency is 150 ms")
    assert verdict.reasons[1].startswith("memory use is 0.97")


_SENTENCE = re.compile(r" is (?P<value>\S+?)(?: ms)?, (?:above|below) the \w+ threshold of (?P<limit>\S+?)(?: ms)?$")


@pytest.mark.parametrize(
    ("value", "warning", "critical"),
    [
        (1234.56, 100.0, 1000.0),  # '%.3g' once gave '1.23e+03 ms ... threshold of 1e+03 ms'
        (100.4, 100.0, 1000.0),  # ... and '100 ms, above the warning threshold of 100 ms'
        (0.9504, 0.9, 0.95),  # ... and 'is 0.95, above the critical threshold of 0.95'
    ],
)
def test_reason_tells_value_and_threshold_apart(value, warning, critical):
    verdict = Verdict()
    verdict.check_above("PING latency", value, warning, critical, " ms")
    (reason,) = verdict.reasons
    match = _SENTENCE.search(reason)
    assert match, reason
    assert "e+" not in reason
    assert match.group("value") != match.group("limit")


def test_stopwatch_returns_a_non_negative_float_that_does_not_go_backwards():
    clock = Stopwatch()
    first = clock.elapsed_ms()
    second = clock.elapsed_ms()
    assert isinstance(first, float)
    assert first >= 0.0
    assert second >= first
