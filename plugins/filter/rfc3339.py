# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: rfc3339
short_description: Format a time as RFC 3339 in UTC, the way the collection records times
version_added: 0.1.0
description:
  - Returns C(YYYY-MM-DDTHH:MM:SS.ffffffZ) in UTC, the form of C(incident.started_at)
    and of every C(at) in an incident's timeline.
  - Takes a datetime (an aware one is converted to UTC; a naive one is taken as UTC, which
    is what C(now(utc=true)) returns), epoch seconds, or an RFC 3339 time with any offset
    and up to nanoseconds (normalised; digits past microseconds are dropped).
options:
  _input:
    description: The time.
    type: raw
    required: true
  timespec:
    description: How much of the fraction to keep.
    type: str
    choices: [microseconds, milliseconds, seconds]
    default: microseconds
seealso:
  - plugin: incident.remediation.from_rfc3339
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Now, as the collection records times
  ansible.builtin.debug:
    msg: "{{ now(utc=true) | incident.remediation.rfc3339 }}"  # 2026-11-22T14:47:17.545318Z

- name: Alertmanager's startsAt in UTC, to the second
  ansible.builtin.debug:
    # 2026-11-22T14:47:17Z
    msg: "{{ '2026-11-22T16:47:17.123456789+02:00' | incident.remediation.rfc3339(timespec='seconds') }}"
"""

RETURN = r"""
_value:
  description: The time in UTC, RFC 3339 with C(Z).
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.incident.remediation.plugins.module_utils._rfc3339 import format_rfc3339


def rfc3339(value, timespec="microseconds"):
    try:
        return format_rfc3339(value, timespec=timespec)
    except (TypeError, ValueError, OverflowError, OSError) as error:
        raise AnsibleFilterError("rfc3339: %s" % error) from error


class FilterModule(object):
    def filters(self):
        return {"rfc3339": rfc3339}
