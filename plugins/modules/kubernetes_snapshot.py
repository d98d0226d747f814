#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: kubernetes_snapshot
short_description: Read a Deployment's status, its containers' logs and resource usage in one call
version_added: 0.4.0
description:
  - Reads one Deployment, its ReplicaSets, its pods and the events of its namespace, and
    optionally each container's last log lines (and, for a container that restarted, its
    previous instance's) and the pods' usage from the metrics API, all in one module call;
    the evidence an incident needs before anything acts.
  - RV(status) is the collection's normalised service status (docs/service-control.md),
    the same as the service_control role's C(status) action returns and the
    C(incident.remediation.kubernetes_service_status) filter makes.
  - With O(wait_rollout), first waits as C(kubectl rollout status) does, in the same module call,
    until the Deployment's rollout is complete or stalled (past its C(progressDeadlineSeconds)).
  - Reads only. A missing Deployment is a result (RV(status.state=missing)), not a failure;
    unreadable logs and an absent metrics API are said so in RV(logs) and RV(resources).
  - Takes the connection options of the kubernetes.core modules (and their C(K8S_AUTH_*)
    environment variables).
author:
  - incident.remediation contributors (@incident-remediation)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - incident.remediation.attributes
  - incident.remediation.attributes.read_only
options:
  name:
    description: The Deployment's name.
    type: str
    required: true
  namespace:
    description: The Deployment's namespace.
    type: str
    default: default
  log_lines:
    description:
      - Last log lines to read per container, and per previous instance of a container that
        restarted; C(0) reads no logs (RV(logs) is then empty).
    type: int
    default: 100
  resources:
    description:
      - Read the pods' usage from the metrics API (C(metrics.k8s.io) PodMetrics, served by
        metrics-server) and fill RV(resources).
    type: bool
    default: true
  wait_rollout:
    description:
      - Seconds to wait, before reading, until the rollout is complete or stalled; C(0) reads at
        once. When the time is up the snapshot is read all the same, and RV(status.rollout_state)
        says C(progressing).
    type: float
    default: 0
  wait_interval:
    description: Seconds between two reads of the Deployment while waiting.
    type: float
    default: 0.5
  previous:
    description:
      - An earlier status of the same Deployment (RV(status) of an earlier call). A pod whose
        restart count rose since then counts as C(crash-looping).
    type: dict
requirements:
  - kubernetes >= 24.2.0 (the Python client)
"""

EXAMPLES = r"""
- name: Read the state, logs and resource usage of the redis Deployment
  incident.remediation.kubernetes_snapshot:
    name: redis
    namespace: shop
    log_lines: 100
  register: snapshot

- name: Read the status only, with a kubeconfig of its own
  incident.remediation.kubernetes_snapshot:
    kubeconfig: /etc/remediate/kubeconfig
    name: redis
    namespace: shop
    log_lines: 0
    resources: false
  register: snapshot

- name: Wait up to 60 seconds until the rollout of the redis Deployment is complete or stalled
  incident.remediation.kubernetes_snapshot:
    name: redis
    namespace: shop
    wait_rollout: 60
    log_lines: 0
    resources: false
  register: snapshot
"""

RETURN = r"""
status:
  description:
    - The normalised service status (docs/service-control.md), with C(platform), C(service) and
      C(namespace), as the C(incident.remediation.kubernetes_service_status) filter gives it.
  returned: always
  type: dict
  sample: {platform: kubernetes, service: redis, namespace: shop, state: crash-looping, replicas_ready: 0}
  contains:
    state:
      description: C(missing), C(stopped), C(crash-looping), C(unhealthy) or C(running).
      type: str
    rollout_state:
      description: C(complete), C(progressing) or C(stalled); null without a Deployment.
      type: str
    instances:
      description: Per pod name, state, phase, ready, restart count, OOM kill, exit code, reason and containers.
      type: list
      elements: dict
    events:
      description: The newest 50 events of the Deployment, its ReplicaSets and their pods, oldest first.
      type: list
      elements: dict
logs:
  description:
    - Per container a C(==> pod POD, container NAME (STATE) <==) header and its last lines; for a
      container that restarted, also a C(==> pod POD, container NAME, previous instance (exit CODE,
      REASON, ended TIME) <==) header and the previous instance's last lines.
    - "A log that could not be read says C((logs unavailable: ...)); a missing Deployment, or one
      without pods, is said so in one line. Empty when O(log_lines) is C(0)."
  returned: always
  type: str
resources:
  description:
    - Usage from the metrics API (C(usage), the PodMetrics of the Deployment's pods), C(pods),
      C(requests_and_limits) (the status's C(resources)), C(platform), C(source) and a C(note).
      Without a metrics API C(usage) is null and the note says so.
    - Null when O(resources) is false.
  returned: always
  type: dict
pods:
  description: Names of the Deployment's pods.
  returned: always
  type: list
  elements: str
waited:
  description: Seconds spent waiting for the rollout (O(wait_rollout)); C(0) without a wait.
  returned: always
  type: float
elapsed_ms:
  description: Time the wait and the reads took, in milliseconds.
  returned: always
  type: float
"""

import copy
import json
import time
import traceback

from ansible.module_utils.common.text.converters import to_native, to_text

from ansible_collections.kubernetes.core.plugins.module_utils.ansiblemodule import AnsibleModule
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
from ansible_collections.incident.remediation.plugins.module_utils._kubernetes_status import kubernetes_service_status

try:
    from kubernetes.client.exceptions import ApiException
except ImportError:
    # AnsibleK8SModule reports a missing kubernetes client.
    pass

NO_METRICS_API = (
    "No usage figures: the cluster has no metrics API (metrics-server), "
    "so only the requests and limits of the pods are recorded."
)


def api_message(error):
    """The API server's own message for a failed request, else the HTTP reason."""
    try:
        return json.loads(to_text(error.body))["message"]
    except (TypeError, ValueError, KeyError, AttributeError):
        return to_native(error.reason or error)


def get(client, path, **params):
    """GET a path of the API as plain JSON (timestamps stay RFC 3339 strings), through
    kubernetes.core's dynamic client: the typed API classes cost 0.7 s of imports."""
    return json.loads(to_text(client.request("GET", path, serialize=False, **params).data))


def selector(deployment):
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join("%s=%s" % item for item in sorted(labels.items()))


def log_reader(client, namespace, lines):
    """A function (pod, container, previous) -> the text of that log, or why it could not be read,
    worded as kubernetes.core.k8s_log words it."""

    def read(pod, container, previous):
        query = [("container", container), ("tailLines", lines), ("previous", "true" if previous else "false")]
        try:
            response = client.request(
                "GET", "/api/v1/namespaces/%s/pods/%s/log" % (namespace, pod), serialize=False, query_params=query
            )
        except ApiException as error:
            if error.status == 404:
                return log_body(None, "Pod %s/%s not found." % (namespace, pod))
            return log_body(None, "Unable to retrieve log from Pod due to: %s" % api_message(error))
        return log_body(to_text(response.data, errors="replace"))

    return read


def log_body(text, error=None):
    if text is None:
        return "(logs unavailable: %s)" % " ".join(to_text(error or "unknown error").split())
    if not text.strip():
        return "(no log lines)"
    return text[:-1] if text.endswith("\n") else text


def ended(state):
    return (
        "exit %s" % state.get("exit_code")
        + (", %s" % state["reason"] if state.get("reason") else "")
        + (", ended %s" % state["finished_at"] if state.get("finished_at") else "")
    )


def read_logs(read, instances):
    """Each container's last lines and, for one that restarted, its previous instance's.

    A container waiting to restart serves its last instance's log as its current one: that is
    read once, as the previous instance's. A container that has just ended is its own last
    instance (the kubelet has removed the one before).
    """
    out = []
    for pod in instances:
        if not pod.get("containers"):
            out += ["==> pod %s <==" % pod["name"], "(no container has started)"]
        for container in pod.get("containers") or []:
            state = container.get("state")
            if not (state == "waiting" and container.get("last_state")):
                if state == "terminated":
                    detail = ": " + ended(container)
                else:
                    detail = ": " + container["reason"] if container.get("reason") else ""
                out.append(
                    "==> pod %s, container %s (%s%s) <==" % (pod["name"], container["name"], state or "unknown", detail)
                )
                out.append(read(pod["name"], container["name"], previous=False))
            if container.get("last_state") and state != "terminated":
                out.append(
                    "==> pod %s, container %s, previous instance (%s) <=="
                    % (pod["name"], container["name"], ended(container["last_state"]))
                )
                out.append(read(pod["name"], container["name"], previous=True))
    return "\n".join(out)


def read_usage(client, namespace, status):
    """Usage from the metrics API, with the requests and limits; usage null without one."""
    pods = [row["name"] for row in status["instances"] if row.get("name")]
    usage, note = None, "usage from the metrics API"
    try:
        metrics = get(client, "/apis/metrics.k8s.io/v1beta1/namespaces/%s/pods" % namespace)
        usage = [item for item in metrics.get("items") or [] if item["metadata"]["name"] in pods]
    except ApiException as error:
        if error.status == 404:
            note = NO_METRICS_API
        else:
            note = (
                "No usage figures: the metrics API could not be read (%s), "
                "so only the requests and limits of the pods are recorded." % api_message(error)
            )
    return dict(
        platform="kubernetes",
        source="requests and limits from the Deployment (no usage)" if usage is None else "metrics.k8s.io PodMetrics",
        pods=pods,
        usage=usage,
        requests_and_limits=status["resources"],
        note=note,
    )


def read_deployment(client, name, namespace):
    """The Deployment as JSON, or None when there is none."""
    try:
        return get(client, "/apis/apps/v1/namespaces/%s/deployments/%s" % (namespace, name))
    except ApiException as error:
        if error.status != 404:
            raise
        return None


def wait_for_rollout(client, params):
    """Poll the Deployment until its rollout is complete or stalled, it is gone, or the time is up;
    the seconds waited."""
    started = time.monotonic()
    while True:
        deployment = read_deployment(client, params["name"], params["namespace"])
        waited = time.monotonic() - started
        left = params["wait_rollout"] - waited
        if deployment is None or left <= 0:
            return waited
        if kubernetes_service_status(deployment)["rollout_state"] in ("complete", "stalled"):
            return waited
        time.sleep(min(params["wait_interval"], left))


def snapshot(client, params):
    name, namespace = params["name"], params["namespace"]
    deployment = read_deployment(client, name, namespace)
    replicasets, pods, events = [], [], []
    if deployment is not None:
        labels = selector(deployment)
        replicasets = get(client, "/apis/apps/v1/namespaces/%s/replicasets" % namespace, label_selector=labels)["items"]
        pods = get(client, "/api/v1/namespaces/%s/pods" % namespace, label_selector=labels)["items"]
        # All of the namespace's: a field selector cannot name several objects. The status keeps the workload's.
        events = get(client, "/api/v1/namespaces/%s/events" % namespace)["items"]
    status = dict(platform="kubernetes", service=name, namespace=namespace)
    status.update(
        kubernetes_service_status(
            deployment, replicasets=replicasets, pods=pods, events=events, previous=params["previous"]
        )
    )
    if params["log_lines"] <= 0:
        logs = ""
    elif deployment is None:
        logs = "(no Deployment '%s' in the namespace '%s')" % (name, namespace)
    elif not status["instances"]:
        logs = "(the Deployment '%s' has no pods)" % name
    else:
        logs = read_logs(log_reader(client, namespace, params["log_lines"]), status["instances"])
    resources = read_usage(client, namespace, status) if params["resources"] else None
    return status, logs, resources


def main():
    argument_spec = copy.deepcopy(AUTH_ARG_SPEC)
    argument_spec.update(
        name=dict(type="str", required=True),
        namespace=dict(type="str", default="default"),
        log_lines=dict(type="int", default=100),
        resources=dict(type="bool", default=True),
        wait_rollout=dict(type="float", default=0),
        wait_interval=dict(type="float", default=0.5),
        previous=dict(type="dict"),
    )
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if params["wait_interval"] <= 0:
        module.fail_json(msg="wait_interval must be more than 0 seconds, not %s" % params["wait_interval"])
    started = time.monotonic()
    waited = 0.0
    try:
        # kubernetes.core's client: its connection options, environment variables and kubeconfig handling.
        client = get_api_client(module=module).client
        if params["wait_rollout"] > 0:
            waited = wait_for_rollout(client, params)
        status, logs, resources = snapshot(client, params)
    except CoreException as error:
        module.fail_from_exception(error)
    except ApiException as error:
        module.fail_json(
            msg="Kubernetes API error reading the Deployment '%s' in the namespace '%s': %s"
            % (params["name"], params["namespace"], api_message(error)),
            status_code=error.status,
        )
    except Exception as error:  # an API server that cannot be reached (urllib3 raises its own errors)
        module.fail_json(
            msg="Could not read the Deployment '%s' in the namespace '%s' from the Kubernetes API: %s"
            % (params["name"], params["namespace"], to_native(error)),
            exception=traceback.format_exc(),
        )
    module.exit_json(
        changed=False,
        status=status,
        logs=logs,
        resources=resources,
        pods=[row["name"] for row in status["instances"]],
        waited=round(waited, 2),
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
    )


if __name__ == "__main__":
    main()
