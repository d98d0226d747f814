# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: compose_service_status
short_description: Normalise the containers of a compose service into one status
version_added: 0.1.0
description:
  - Takes the C(container) results of M(community.docker.docker_container_info)
    for the containers of one compose service and returns the collection's
    platform-neutral service status.
  - C(state) is one of C(missing), C(stopped), C(paused), C(crash-looping),
    C(unhealthy) or C(running), the worst over all replicas.
options:
  _input:
    description: Container inspection results (the C(container) key of docker_container_info).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Normalise what docker_container_info returned
  ansible.builtin.set_fact:
    service_status: "{{ inspected.results | map(attribute='container') | incident.remediation.compose_service_status }}"
"""

RETURN = r"""
_value:
  description: The normalised status.
  type: dict
  contains:
    state:
      description: Worst state over the replicas.
      type: str
    replicas:
      description: Number of containers found.
      type: int
    ready:
      description: Containers running and not unhealthy.
      type: int
    restart_count:
      description: Sum of the containers' restart counts.
      type: int
    oom_killed:
      description: Whether any container was last stopped by the OOM killer.
      type: bool
    image:
      description: Image of the first container, null when none.
      type: str
    memory_limit:
      description: Memory limit in bytes of the first container, 0 for none.
      type: int
    containers:
      description: Per-container name, id, state, health, exit code, restart count and start time.
      type: list
      elements: dict
"""

# Worst first: the service takes the worst state of its replicas.
_SEVERITY = ("missing", "stopped", "paused", "crash-looping", "unhealthy", "running")


def container_state(container):
    """Normalised state of one inspected container."""
    state = container.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    if state.get("Restarting"):
        return "crash-looping"
    if state.get("Paused"):
        return "paused"
    if state.get("Running"):
        return "unhealthy" if health == "unhealthy" else "running"
    return "stopped"


def compose_service_status(containers):
    containers = [c for c in containers or [] if c]
    rows = []
    for container in containers:
        state = container.get("State") or {}
        rows.append(dict(
            name=(container.get("Name") or "").lstrip("/"),
            id=(container.get("Id") or "")[:12],
            state=container_state(container),
            health=(state.get("Health") or {}).get("Status"),
            exit_code=state.get("ExitCode"),
            restart_count=container.get("RestartCount") or 0,
            started_at=state.get("StartedAt"),
            oom_killed=bool(state.get("OOMKilled")),
        ))
    states = [row["state"] for row in rows] or ["missing"]
    first = containers[0] if containers else {}
    return dict(
        state=min(states, key=_SEVERITY.index),
        replicas=len(rows),
        ready=sum(1 for row in rows if row["state"] == "running"),
        restart_count=sum(row["restart_count"] for row in rows),
        oom_killed=any(row["oom_killed"] for row in rows),
        image=(first.get("Config") or {}).get("Image"),
        memory_limit=(first.get("HostConfig") or {}).get("Memory") or 0,
        containers=rows,
    )


class FilterModule(object):
    def filters(self):
        return {"compose_service_status": compose_service_status}
