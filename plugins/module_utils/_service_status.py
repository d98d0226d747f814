# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the incident.remediation collection: no compatibility promise
# outside it.
"""The normalised service status shared by the platform filters (docs/service-control.md)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Worst first: a service takes the worst state of its instances.
STATES = ("missing", "stopped", "paused", "crash-looping", "unhealthy", "running")


def worst_state(states, default="missing"):
    """The worst of the instance states, default when there are none."""
    return min(states, key=STATES.index) if states else default


def empty_status(**extra):
    """The status of a service that does not exist; platform keys in extra."""
    status = dict(
        state="missing",
        replicas_desired=None,
        replicas_ready=None,
        restart_count=0,
        oom_killed=False,
        image=None,
        resources=dict(memory_limit=None, cpu_limit=None, memory_request=None, cpu_request=None),
        revision=None,
        last_rollout_time=None,
        instances=[],
    )
    status.update(extra)
    return status
