#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: incident_record
short_description: Append to an incident's timeline or save a piece of evidence
version_added: 0.1.0
description:
  - Writes on the controller (the ops host), whatever host the play targets, into
    the incident folder O(incident_dir).
  - With O(event), appends one JSON line to C(timeline.jsonl) carrying O(data), the
    UTC time C(at), the C(event) name, the C(host) the task ran for and, from the
    C(incident) fact set by the incident.remediation.incident_context role,
    the C(incident) id, C(playbook) and C(dry_run).
  - With O(evidence), saves O(content) as C(evidence/<UTC time>-<evidence>.json)
    (or C(.log) when O(content) is a string).
  - With O(evidence_items), saves several pieces of evidence in one call.
  - With both an event and evidence, saves the evidence and appends the event, whose
    data then names the evidence files (C(evidence)), so one task records a step and what it found.
  - "Secrets are redacted before anything is written: in mappings by key name, in
    text by C(name=value) and C(name: value) patterns (see O(secret_names))."
author:
  - incident.remediation contributors (@incident-remediation)
extends_documentation_fragment:
  - incident.remediation.attributes
attributes:
  action:
    support: full
    description: Runs as an action plugin on the controller.
  check_mode:
    support: full
    details:
      - The record is written in check mode too, because it is the run's own log
        (a dry run must say what it would have done); nothing on a managed host changes.
  diff_mode:
    support: none
    details: Nothing on a managed host changes.
options:
  incident_dir:
    description:
      - The incident folder; created when missing. Must not contain C(..).
      - Defaults to C(incident.dir), the folder opened by the incident_context role.
    type: path
  event:
    description: Name of the timeline event (for example C(detected), C(tier), C(resolved)).
    type: str
  data:
    description: Details of the event, merged into the JSON line.
    type: dict
    default: {}
  evidence:
    description: Short name of the evidence, used in the file name (letters, digits, C(_) and C(-)).
    type: str
  content:
    description: The evidence, a string (saved as text) or any other value (saved as JSON).
    type: raw
  evidence_items:
    description: Several pieces of evidence, by name (as O(evidence)), each saved like O(content).
    type: dict
    default: {}
  secret_names:
    description: Names whose values are redacted; C(_) also matches C(-) and nothing.
    type: list
    elements: str
    default: [password, passwd, secret, token, api_key, apikey, authorization, private_key, credentials]
notes:
  - Never reports C(changed), the folder is bookkeeping on the ops host.
"""

EXAMPLES = r"""
- name: Record the diagnosis (in the folder the incident_context role opened)
  incident.remediation.incident_record:
    event: diagnosed
    data:
      service_state: stopped
      plan: [start, recreate]

- name: Save the health check as evidence in a given folder
  incident.remediation.incident_record:
    incident_dir: /var/lib/incident-remediation/incidents/manual-check
    evidence: cache-health
    content: "{{ cache_check }}"
"""

RETURN = r"""
paths:
  description: The evidence files written, in the order given.
  returned: always
  type: list
  elements: str
path:
  description: The first evidence file written, else the timeline.
  returned: always
  type: str
  sample: /var/lib/incident-remediation/incidents/5e1c0ffee0000001-20261122030000/timeline.jsonl
record:
  description: The JSON line appended, as written (after redaction).
  returned: when O(event) is set
  type: dict
  sample: {"at": "2026-11-22T03:02:11.104Z", "event": "diagnosed", "service_state": "stopped"}
"""
