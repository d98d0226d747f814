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
    platform-neutral service status (docs/service-control.md), without the
    C(platform), C(service) and C(project) keys, which the caller adds.
  - C(state) is one of C(missing), C(stopped), C(paused), C(crash-looping),
    C(unhealthy) or C(running), the worst over all containers.
  - C(revision) and C(last_rollout_time) come from the service's recorded image
    history, when given; Compose itself keeps none.
options:
  _input:
    description: Container inspection results (the C(container) key of docker_container_info).
    type: list
    elements: dict
    required: true
  history:
    description:
      - The service's image history, as service_control records it in
        C(<project_src>/.incident-remediation/<service>.images.json), a list of
        entries with C(image), C(image_id), C(recorded_at) and C(deployed_at).
      - Empty or omitted when nothing was recorded; C(revision) and C(last_rollout_time) are then null.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Normalise what docker_container_info returned
  ansible.builtin.set_fact:
    service_status: "{{ inspected.results | map(attribute='container') | incident.remediation.compose_service_status }}"

- name: The same, with the recorded image history
  ansible.builtin.set_fact:
    service_status: "{{ containers | incident.remediation.compose_service_status(history=image_history) }}"
"""

RETURN = r"""
_value:
  description: The normalised status.
  type: dict
  contains:
    state:
      description: Worst state over the containers.
      type: str
    replicas_desired:
      description: Number of containers found (Compose has no other notion of desired replicas).
      type: int
    replicas_ready:
      description: Containers running and not unhealthy, paused or restarting.
      type: int
    restart_count:
      description: Sum of the containers' restart counts.
      type: int
    oom_killed:
      description: Whether any container was last stopped by the OOM killer.
      type: bool
    image:
      description: Image of the first container as configured (a name, or an image id when pinned), null when none.
      type: str
    resources:
      description: Limits of the first container; each null when not set.
      type: dict
      contains:
        memory_limit:
          description: Memory limit in bytes (C(mem_limit)).
          type: int
        cpu_limit:
          description: CPU limit in cores (C(cpus), or C(cpu_quota) / C(cpu_period)).
          type: float
        memory_request:
          description: Memory reservation in bytes (C(mem_reservation)).
          type: int
        cpu_request:
          description: Always null; Docker has no CPU reservation.
          type: float
    revision:
      description: Number of entries in the recorded image history, null when none.
      type: int
    last_rollout_time:
      description: When the image the service runs now was deployed, from the last history entry; null when none.
      type: str
    instances:
      description: Per container name, short id, state, health, restart count, start time, OOM kill and exit code.
      type: list
      elements: dict
"""

from ansible_collections.incident.remediation.plugins.module_utils._compose_status import compose_service_status


class FilterModule(object):
    def filters(self):
        return {"compose_service_status": compose_service_status}
