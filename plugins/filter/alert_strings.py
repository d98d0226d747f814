# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: alert_strings
short_description: Give an alert's labels, annotations and fingerprint back as strings
version_added: 0.3.0
description:
  - Alertmanager sends every label and annotation, name and value, and the fingerprint
    as a string. Extra variables tagged C(!unsafe), as AWX/AAP writes the variables given
    at launch, reach ansible-core 2.19 read as YAML scalars, so C(true), C(6379), C(null)
    or C(2026-11-22) arrive as a boolean, a number, null or a date. This filter turns
    those back into strings; the input contract applies it to the alert it is given.
  - A boolean becomes C(true) or C(false), null the empty string, a date or time its
    ISO 8601 form, a number its decimal digits. Where YAML read more than one spelling
    the same way (C(yes) and C(true), C(0x1f) and C(31)) the original cannot be told,
    and the result is this normal form.
  - Anything that is not a mapping, and values that are not such scalars, are left as
    they are, for the contract to check.
options:
  _input:
    description: The alert (Alertmanager's webhook form).
    type: raw
    required: true
seealso:
  - plugin: incident.remediation.rfc3339
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Labels as Alertmanager sent them
  ansible.builtin.debug:
    # {'labels': {'alertname': 'RedisDown', 'port': '6379', 'canary': 'true'}, 'fingerprint': '1234'}
    msg: "{{ {'labels': {'alertname': 'RedisDown', 'port': 6379, 'canary': true}, 'fingerprint': 1234}
             | incident.remediation.alert_strings }}"
"""

RETURN = r"""
_value:
  description: The alert, its labels, annotations and fingerprint as strings.
  type: raw
"""

import datetime

SCALARS = (bool, int, float, datetime.date, type(None))


def as_text(value):
    """The string YAML read as ``value``; other values unchanged."""
    if not isinstance(value, SCALARS):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def alert_strings(alert):
    if not isinstance(alert, dict):
        return alert
    normal = dict(alert)
    for field in ("labels", "annotations"):
        if isinstance(alert.get(field), dict):
            normal[field] = dict((as_text(name), as_text(value)) for name, value in alert[field].items())
    if "fingerprint" in alert:
        normal["fingerprint"] = as_text(alert["fingerprint"])
    return normal


class FilterModule(object):
    def filters(self):
        return {"alert_strings": alert_strings}
