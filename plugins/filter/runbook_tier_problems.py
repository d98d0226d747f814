# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: runbook_tier_problems
short_description: Say what is wrong with a runbook's tier table
version_added: 0.2.0
description:
  - Used by the incident.remediation.runbook role at play start (docs/runbook.md), so a
    mistake in a playbook's tier table fails before anything acts, never silently.
  - Checks that each tier has exactly one of C(action), C(tasks) or C(handover), unique
    names, known service C(states), C(platforms) the playbook supports, and C(vars) the
    action takes.
options:
  _input:
    description: The tier table (the role's C(runbook_tiers)).
    type: list
    elements: dict
    required: true
  action_vars:
    description: The C(vars) keys each service_control action takes.
    type: dict
    required: true
  platforms:
    description: The platforms the playbook supports.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Check the tier table
  ansible.builtin.assert:
    that: >-
      runbook_tiers | incident.remediation.runbook_tier_problems(runbook_action_vars, runbook_platforms)
      | length == 0
"""

RETURN = r"""
_value:
  description: One sentence per problem; empty when the table is sound.
  type: list
  elements: str
"""

from ansible_collections.incident.remediation.plugins.module_utils._service_status import STATES

TIER_KINDS = ("action", "tasks", "handover")


def tier_table_problems(tiers, action_vars, platforms):
    """What is wrong with a tier table, in words; empty when it is sound."""
    problems = []
    names = [tier.get("name") for tier in tiers]
    for duplicate in sorted({name for name in names if names.count(name) > 1}):
        problems.append("tier name %s is used twice" % duplicate)
    for tier in tiers:
        name = tier.get("name")
        kinds = [kind for kind in TIER_KINDS if tier.get(kind)]
        if len(kinds) != 1:
            problems.append("tier %s needs exactly one of action, tasks or handover" % name)
        unknown_states = sorted(set(tier.get("states") or []) - set(STATES))
        if unknown_states:
            problems.append("tier %s names unknown service states %s" % (name, ", ".join(unknown_states)))
        foreign = sorted(set(tier.get("platforms") or []) - set(platforms))
        if foreign:
            problems.append("tier %s names platforms the playbook does not support: %s" % (name, ", ".join(foreign)))
        if tier.get("action"):
            allowed = action_vars.get(tier["action"], [])
            unknown = sorted(set(tier.get("vars") or {}) - set(allowed))
            if unknown:
                problems.append(
                    "tier %s: %s takes %s, not %s"
                    % (name, tier["action"], ", ".join(allowed) or "no vars", ", ".join(unknown))
                )
        elif tier.get("handover") and tier.get("vars"):
            problems.append("tier %s hands over and takes no vars" % name)
    return problems


class FilterModule(object):
    def filters(self):
        return {"runbook_tier_problems": tier_table_problems}
