# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: runbook_plan
short_description: Decide which tiers of a runbook's tier table apply, and why the others do not
version_added: 0.2.0
description:
  - Used by the incident.remediation.runbook role (docs/runbook.md). Returns every tier of the
    table, in order, each with C(applies) and, when it does not apply, C(skipped_because).
  - A tier applies when the target's platform is among its C(platforms) (or it names none),
    the service state is among its C(states) (or it names none), the check found the
    finding it C(requires), and for a C(handover) tier the target C(depends_on) an entry
    with that role.
options:
  _input:
    description: The tier table (the role's C(runbook_tiers)).
    type: list
    elements: dict
    required: true
  platform:
    description: The target's platform.
    type: str
    required: true
  state:
    description: The service's normalised state (docs/service-control.md).
    type: str
    required: true
  findings:
    description: Names of what the check found (the check hook's C(runbook_findings)).
    type: list
    elements: str
    default: []
  depends_on:
    description: The target's C(depends_on) entries (docs/input-contract.md).
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Plan the tiers
  ansible.builtin.set_fact:
    plan: >-
      {{ runbook_tiers | incident.remediation.runbook_plan(platform=incident.target.platform,
                                                           state=service_control_status.state) }}
"""

RETURN = r"""
_value:
  description: The tiers, each with C(applies) (bool) and C(skipped_because) (str, empty when it applies);
    a C(handover) tier also gets C(handover_to), the C(depends_on) entry it hands over to.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError


def runbook_plan(tiers, platform, state, findings=None, depends_on=None):
    if not isinstance(tiers, list):
        raise AnsibleFilterError("runbook_plan expects the tier table, a list")
    findings = set(findings or [])
    plan = []
    for tier in tiers:
        entry = dict(tier)
        reasons = []
        if tier.get("platforms") and platform not in tier["platforms"]:
            reasons.append(
                tier.get("platform_note") or "does not apply on %s (only %s)" % (platform, ", ".join(tier["platforms"]))
            )
        if tier.get("states") and state not in tier["states"]:
            reasons.append("the service is %s (the tier is for %s)" % (state, ", ".join(tier["states"])))
        if tier.get("requires") and tier["requires"] not in findings:
            reasons.append("the check did not find %s" % tier["requires"])
        if tier.get("handover"):
            found = [dep for dep in depends_on or [] if dep.get("role") == tier["handover"]]
            if found:
                entry["handover_to"] = found[0]
            else:
                reasons.append("the target names no %s in depends_on" % tier["handover"])
        entry["applies"] = not reasons
        entry["skipped_because"] = "; ".join(reasons)
        plan.append(entry)
    return plan


class FilterModule(object):
    def filters(self):
        return {"runbook_plan": runbook_plan}
