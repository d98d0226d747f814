# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: from_rfc3339
short_description: Parse an RFC 3339 time, such as Alertmanager's startsAt, into a UTC datetime
version_added: 0.1.0
description:
  - Parses C(YYYY-MM-DDTHH:MM:SS[.fraction]) with C(Z) or a C(+HH:MM)/C(-HH:MM) offset
    (C(T) may be C(t) or a space), as Alertmanager writes C(startsAt) and C(endsAt);
    the fraction may carry up to nine digits, those past microseconds are dropped.
  - Returns an aware datetime in UTC, or epoch seconds with O(epoch). A datetime given
    as input is returned in UTC (a naive one is taken as UTC).
  - Anything else (no offset, a date alone, out-of-range fields, not a string) fails with
    a message, or returns O(default) when one is given, so that a caller can test a
    value with C(from_rfc3339(default=none) is not none).
options:
  _input:
    description: The time.
    type: raw
    required: true
  epoch:
    description: Return seconds since 1970-01-01T00:00:00Z (a float) instead of a datetime.
    type: bool
    default: false
  default:
    description: Returned instead of failing when the input is not an RFC 3339 time.
    type: raw
seealso:
  - plugin: incident.remediation.rfc3339
    plugin_type: filter
"""

EXAMPLES = r"""
- name: The digits of an alert's start, in UTC
  ansible.builtin.debug:
    msg: "{{ (incident.alert.startsAt | incident.remediation.from_rfc3339).strftime('%Y%m%d%H%M%S') }}"

- name: How long ago the alert started, in seconds
  ansible.builtin.debug:
    msg: >-
      {{ (now(utc=true) | incident.remediation.from_rfc3339(epoch=true))
         - (incident.alert.startsAt | incident.remediation.from_rfc3339(epoch=true)) }}

- name: Is it a time at all?
  ansible.builtin.assert:
    that: alert.startsAt | incident.remediation.from_rfc3339(default=none) is not none
"""

RETURN = r"""
_value:
  description: The time as an aware datetime in UTC, epoch seconds with O(epoch), or O(default).
  type: raw
"""

import datetime

from ansible.errors import AnsibleFilterError

from ansible_collections.incident.remediation.plugins.module_utils._rfc3339 import as_utc

_NO_DEFAULT = object()


def from_rfc3339(value, epoch=False, default=_NO_DEFAULT):
    try:
        if not isinstance(value, (str, datetime.datetime)):
            raise TypeError("expected an RFC 3339 time or a datetime, got %s" % type(value).__name__)
        moment = as_utc(value)
    except (TypeError, ValueError, OverflowError) as error:
        if default is not _NO_DEFAULT:
            return default
        raise AnsibleFilterError("from_rfc3339: %s" % error) from error
    return moment.timestamp() if epoch else moment


class FilterModule(object):
    def filters(self):
        return {"from_rfc3339": from_rfc3339}
