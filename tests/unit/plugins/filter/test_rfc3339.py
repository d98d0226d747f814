"""Unit tests for plugins/filter/rfc3339.py and plugins/filter/from_rfc3339.py."""

import datetime

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.incident.remediation.plugins.filter import from_rfc3339 as parse_plugin
from ansible_collections.incident.remediation.plugins.filter import rfc3339 as format_plugin
from ansible_collections.incident.remediation.plugins.filter.from_rfc3339 import from_rfc3339
from ansible_collections.incident.remediation.plugins.filter.rfc3339 import rfc3339

UTC = datetime.timezone.utc


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        # Alertmanager: nanoseconds, UTC.
        ("2026-11-22T14:47:17.123456789Z", datetime.datetime(2026, 11, 22, 14, 47, 17, 123456)),
        ("2026-11-22T14:47:17Z", datetime.datetime(2026, 11, 22, 14, 47, 17)),
        ("2026-11-22T14:47:17.5Z", datetime.datetime(2026, 11, 22, 14, 47, 17, 500000)),
        # Offsets east and west of UTC, across midnight.
        ("2026-11-23T01:17:17.000001+10:30", datetime.datetime(2026, 11, 22, 14, 47, 17, 1)),
        ("2026-11-22T21:47:17-07:00", datetime.datetime(2026, 11, 23, 4, 47, 17)),
        ("2026-11-22t14:47:17z", datetime.datetime(2026, 11, 22, 14, 47, 17)),
        ("2026-11-22 14:47:17+00:00", datetime.datetime(2026, 11, 22, 14, 47, 17)),
        # Alertmanager's zero time (endsAt of a firing alert).
        ("0001-01-01T00:00:00Z", datetime.datetime(1, 1, 1)),
    ],
)
def test_from_rfc3339_parses_to_utc(text, moment):
    parsed = from_rfc3339(text)
    assert parsed == moment.replace(tzinfo=UTC)
    assert parsed.utcoffset() == datetime.timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2026-11-22",
        "2026-11-22T14:47:17",  # no offset: not RFC 3339
        "2026-11-22T14:47:17.Z",
        "2026-11-22T14:47:17.1234567890Z",  # more than nine fraction digits
        "2026-13-22T14:47:17Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T14:47:17+24:00",
        "2026-11-22T14:47:17+0200",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "2026-11-22T14:47:17Z; touch /tmp/x",
        " 2026-11-22T14:47:17Z",
    ],
)
def test_from_rfc3339_refuses_what_is_not_a_time(text):
    with pytest.raises(AnsibleFilterError, match="from_rfc3339: "):
        from_rfc3339(text)
    assert from_rfc3339(text, default=None) is None


@pytest.mark.parametrize("value", [None, 1700000000, 1.5, True, ["2026-11-22T14:47:17Z"], {}])
def test_from_rfc3339_refuses_other_types(value):
    with pytest.raises(AnsibleFilterError, match="expected an RFC 3339 time"):
        from_rfc3339(value)
    assert from_rfc3339(value, default="fallback") == "fallback"


def test_from_rfc3339_epoch():
    assert from_rfc3339("1970-01-01T00:00:01.25Z", epoch=True) == 1.25
    assert from_rfc3339("2026-11-22T16:47:17+02:00", epoch=True) == from_rfc3339("2026-11-22T14:47:17Z", epoch=True)


def test_from_rfc3339_takes_a_datetime():
    aware = datetime.datetime(2026, 11, 22, 16, 47, 17, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert from_rfc3339(aware) == datetime.datetime(2026, 11, 22, 14, 47, 17, tzinfo=UTC)
    assert from_rfc3339(datetime.datetime(2026, 11, 22, 14, 47, 17)).tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime.datetime(2026, 11, 22, 14, 47, 17, 545318), "2026-11-22T14:47:17.545318Z"),  # naive: UTC
        (datetime.datetime(2026, 11, 22, 14, 47, 17), "2026-11-22T14:47:17.000000Z"),
        (
            datetime.datetime(2026, 11, 22, 9, 47, 17, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
            "2026-11-22T14:47:17.000005Z",
        ),
        (0, "1970-01-01T00:00:00.000000Z"),
        (1.5, "1970-01-01T00:00:01.500000Z"),
        ("2026-11-22T16:47:17.123456789+02:00", "2026-11-22T14:47:17.123456Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"),
    ],
)
def test_rfc3339_formats_in_utc_with_microseconds(value, text):
    assert rfc3339(value) == text


def test_rfc3339_timespec():
    moment = datetime.datetime(2026, 11, 22, 14, 47, 17, 545318)
    assert rfc3339(moment, timespec="seconds") == "2026-11-22T14:47:17Z"
    assert rfc3339(moment, timespec="milliseconds") == "2026-11-22T14:47:17.545Z"
    with pytest.raises(AnsibleFilterError, match="timespec must be one of"):
        rfc3339(moment, timespec="hours")


@pytest.mark.parametrize("value", ["", "now", "2026-11-22T14:47:17", None, True, [], 1e20])
def test_rfc3339_refuses_what_is_not_a_time(value):
    with pytest.raises(AnsibleFilterError, match="rfc3339: "):
        rfc3339(value)


def test_the_two_filters_round_trip():
    now = datetime.datetime.now(UTC).replace(tzinfo=None)
    assert from_rfc3339(rfc3339(now)) == now.replace(tzinfo=UTC)


def test_the_filters_are_registered():
    assert format_plugin.FilterModule().filters()["rfc3339"] is rfc3339
    assert parse_plugin.FilterModule().filters()["from_rfc3339"] is from_rfc3339
