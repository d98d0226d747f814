# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: kubernetes_service_status
short_description: Normalise a Deployment, its ReplicaSets and pods into one service status
version_added: 0.1.0
description:
  - Takes what M(kubernetes.core.k8s_info) returned for one Deployment, its
    ReplicaSets and its pods, and returns the collection's platform-neutral
    service status (see docs/service-control.md).
  - C(state) is C(missing) without a Deployment, C(stopped) when it wants 0
    replicas, otherwise the worst over its pods - C(crash-looping) (a container
    waiting in C(CrashLoopBackOff), restarted and not ready, or restarted more often
    than in O(previous)), C(unhealthy) (a pod not ready, for instance waiting in
    C(ImagePullBackOff)) or C(running) - and at least C(unhealthy) while fewer
    replicas are ready than wanted or the rollout exceeded its progress deadline.
  - C(rollout_state) follows C(kubectl rollout status) - C(complete) once the
    controller has seen the latest spec and every wanted replica is updated, ready
    and available (and no old one is left), C(stalled) once the rollout exceeded its
    progress deadline, otherwise C(progressing) - and C(rollout_reason) says why a
    rollout is not complete, naming the pods that are not ready and why (their
    container's waiting or terminated reason, else their newest failing probe or
    other Warning event).
  - Pods being deleted are left out. ReplicaSets and pods not owned by the
    Deployment (same labels, other owner) are left out.
  - Memory quantities become bytes (rounded up, as Kubernetes does) and CPU
    quantities cores (a float); a quantity that does not parse becomes null.
options:
  _input:
    description:
      - The Deployment, or the C(resources) list of M(kubernetes.core.k8s_info)
        (the first item is used; an empty list means no Deployment).
    type: raw
    required: true
  replicasets:
    description: The ReplicaSets selected by the Deployment's C(spec.selector.matchLabels).
    type: list
    elements: dict
    default: []
  pods:
    description: The pods selected by the Deployment's C(spec.selector.matchLabels).
    type: list
    elements: dict
    default: []
  events:
    description:
      - The Events of the Deployment's namespace (M(kubernetes.core.k8s_info) C(kind=Event)).
        Those about the Deployment, its ReplicaSets and their pods (gone ones too) are kept.
    type: list
    elements: dict
    default: []
  events_limit:
    description: How many of the newest kept events to return.
    type: int
    default: 50
  previous:
    description:
      - An earlier status of the same Deployment returned by this filter. A pod
        whose restart count rose since then counts as C(crash-looping).
    type: dict
"""

EXAMPLES = r"""
- name: Normalise what k8s_info returned
  ansible.builtin.set_fact:
    service_status: >-
      {{ deployment.resources
         | incident.remediation.kubernetes_service_status(replicasets=replicasets.resources, pods=pods.resources,
                                                          events=events.resources) }}

- name: Wait until a rollout is complete or stalled (the Deployment alone is enough)
  kubernetes.core.k8s_info:
    api_version: apps/v1
    kind: Deployment
    name: api
    namespace: shop
  register: deployment
  until: >-
    (deployment.resources | incident.remediation.kubernetes_service_status).rollout_state
    in ['complete', 'stalled']
  retries: 60
  delay: 1
"""

RETURN = r"""
_value:
  description: The normalised status.
  type: dict
  contains:
    state:
      description: One of C(missing), C(stopped), C(crash-looping), C(unhealthy), C(running).
      type: str
    replicas_desired:
      description: C(spec.replicas), null without a Deployment.
      type: int
    replicas_ready:
      description: C(status.readyReplicas), null without a Deployment.
      type: int
    replicas_updated:
      description: C(status.updatedReplicas), null without a Deployment.
      type: int
    replicas_available:
      description: C(status.availableReplicas), null without a Deployment.
      type: int
    rollout_observed:
      description: Whether the controller has seen the latest spec (C(observedGeneration >= generation)).
      type: bool
    progress_deadline_exceeded:
      description: Whether the Progressing condition says C(ProgressDeadlineExceeded).
      type: bool
    rollout_state:
      description: C(complete), C(progressing) or C(stalled); null without a Deployment.
      type: str
    rollout_reason:
      description: Why the rollout is not complete, null when it is.
      type: str
    restart_count:
      description: Sum of the restart counts of all containers of all pods.
      type: int
    oom_killed:
      description: Whether any container was last stopped by the OOM killer.
      type: bool
    image:
      description: Image of the first container of the pod template, null without a Deployment.
      type: str
    resources:
      description: >-
        C(memory_limit), C(memory_request) (bytes) and C(cpu_limit), C(cpu_request) (cores)
        of the first container, null when unset.
      type: dict
    revision:
      description: The Deployment's C(deployment.kubernetes.io/revision), an integer or null.
      type: int
    last_rollout_time:
      description: Creation time of the newest ReplicaSet, null without one.
      type: str
    replicasets:
      description: Per ReplicaSet name, revision, image, replicas, ready and created, newest revision first.
      type: list
      elements: dict
    instances:
      description: >-
        Per pod name, state, health (C(healthy) when Ready), ready, phase, restart_count, started_at,
        oom_killed, exit_code, reason and message (of a waiting or terminated container, else of the
        newest failing probe or other Warning event, or of the Ready condition, of a pod that is not
        ready), last_warning (C(reason: message) of its newest failing probe - a Warning with reason
        C(Unhealthy) - else of its newest Warning event), image, revision and containers.
      type: list
      elements: dict
      contains:
        containers:
          description: >-
            Per container name, ready, restart_count, state (C(running), C(waiting), C(terminated)),
            reason, message, exit_code, started_at, finished_at and last_state (the previous
            instance's C(terminated) reason, exit_code, started_at and finished_at, null if none).
          type: list
          elements: dict
    events:
      description: >-
        The newest O(events_limit) events of the Deployment, its ReplicaSets and their pods, oldest
        first - time, type, reason, object (C(Kind/name)), message and count.
      type: list
      elements: dict
"""

from ansible_collections.incident.remediation.plugins.module_utils._kubernetes_status import kubernetes_service_status


class FilterModule(object):
    def filters(self):
        return {"kubernetes_service_status": kubernetes_service_status}
