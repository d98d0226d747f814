# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the incident.remediation collection: no compatibility promise
# outside it.
"""Verdicts shared by the health modules: a status plus the reasons for it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

OK = "ok"
WARNING = "warning"
CRITICAL = "critical"
UNKNOWN = "unknown"

# Worst wins when findings are combined; unknown ranks between warning and
# critical because "could not tell" must not hide a warning, nor mask a
# confirmed outage.
_RANK = {OK: 0, WARNING: 1, UNKNOWN: 2, CRITICAL: 3}


class Verdict:
    """Accumulates findings; the status is the worst one seen."""

    def __init__(self):
        self.status = OK
        self.reasons = []

    def add(self, status, reason):
        if _RANK[status] > _RANK[self.status]:
            self.status = status
        self.reasons.append(reason)

    def check_above(self, name, value, warning, critical, unit=""):
        """Flag value when above a threshold; None thresholds are not applied."""
        if value is None:
            return
        for status, limit in ((CRITICAL, critical), (WARNING, warning)):
            if limit is not None and value > limit:
                self.add(status, "%s is %s%s, above the %s threshold of %s%s"
                         % (name, _fmt(value), unit, status, _fmt(limit), unit))
                return

    def check_below(self, name, value, warning, critical, unit=""):
        """Flag value when below a threshold; None thresholds are not applied."""
        if value is None:
            return
        for status, limit in ((CRITICAL, critical), (WARNING, warning)):
            if limit is not None and value < limit:
                self.add(status, "%s is %s%s, below the %s threshold of %s%s"
                         % (name, _fmt(value), unit, status, _fmt(limit), unit))
                return


def _fmt(value):
    """Plain decimal, up to 4 places: 1234.56, 1000, 0.9504 (never 1.23e+03)."""
    if isinstance(value, float):
        return ("%.4f" % value).rstrip("0").rstrip(".")
    return str(value)


class Stopwatch:
    """Milliseconds since creation, as a float rounded to 0.01 ms."""

    def __init__(self):
        self._start = time.monotonic()

    def elapsed_ms(self):
        return round((time.monotonic() - self._start) * 1000.0, 2)
