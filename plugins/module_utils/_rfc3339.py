# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the incident.remediation collection: no compatibility promise
# outside it.
"""RFC 3339 times, as Alertmanager writes them (nanoseconds, any offset) and as the
collection records them (UTC, microseconds, Z): shared by the rfc3339 and
from_rfc3339 filters."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

UTC = datetime.timezone.utc
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)
TIMESPECS = ("microseconds", "milliseconds", "seconds")


def parse_rfc3339(text):
    """An aware UTC datetime from an RFC 3339 time; digits past microseconds are dropped.
    ValueError when the text is not one."""
    match = _RFC3339.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError("not an RFC 3339 time (YYYY-MM-DDTHH:MM:SS[.fraction] with Z or +HH:MM)")
    year, month, day, hour, minute, second, fraction, zulu, sign, offset_h, offset_m = match.groups()
    if not zulu and (int(offset_h) > 23 or int(offset_m) > 59):
        raise ValueError("the UTC offset is out of range")
    moment = datetime.datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second),
        int((fraction or "0")[:6].ljust(6, "0")),
        tzinfo=UTC,
    )
    if not zulu:
        offset = datetime.timedelta(hours=int(offset_h), minutes=int(offset_m))
        try:
            moment = moment - offset if sign == "+" else moment + offset
        except OverflowError:
            raise ValueError("the time is out of range once in UTC") from None
    return moment


def as_utc(value):
    """An aware UTC datetime from a datetime (naive is taken as UTC), epoch seconds
    or an RFC 3339 time. ValueError or TypeError when it is none of these."""
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        return parse_rfc3339(value)
    raise TypeError("expected a datetime, epoch seconds or an RFC 3339 time, got %s" % type(value).__name__)


def format_rfc3339(moment, timespec="microseconds"):
    """YYYY-MM-DDTHH:MM:SS.ffffffZ (or .fff, or none with timespec) in UTC."""
    if timespec not in TIMESPECS:
        raise ValueError("timespec must be one of %s" % ", ".join(TIMESPECS))
    return as_utc(moment).replace(tzinfo=None).isoformat(timespec=timespec) + "Z"
