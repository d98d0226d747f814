# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the incident.remediation collection: no compatibility promise
# outside it.
"""A Deployment, its ReplicaSets, pods and events as the normalised service status:
shared by the kubernetes_service_status filter and the kubernetes_snapshot module."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from ansible_collections.incident.remediation.plugins.module_utils._service_status import empty_status, worst_state


_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE](?P<exponent>[+-]?[0-9]+))?$"
)
_MULTIPLIERS = {
    None: Decimal(1),
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def parse_quantity(quantity):
    """A Kubernetes quantity (``512Mi``, ``500m``, ``1.5``, ``1e3``, a number) as a Decimal.

    None if absent or invalid.
    """
    if quantity is None or isinstance(quantity, bool):
        return None
    if isinstance(quantity, (int, float)):
        return Decimal(str(quantity))
    match = _QUANTITY.match(str(quantity).strip())
    if not match:
        return None
    try:
        number = Decimal(match.group("number"))
    except InvalidOperation:
        return None
    if match.group("exponent") is not None:
        return number.scaleb(int(match.group("exponent")))
    return number * _MULTIPLIERS[match.group("suffix")]


def memory_bytes(quantity):
    """A memory quantity in bytes, rounded up; None if absent or invalid."""
    value = parse_quantity(quantity)
    return None if value is None else int(value.to_integral_value(rounding=ROUND_CEILING))


def cpu_cores(quantity):
    """A CPU quantity in cores (``500m`` is 0.5); None if absent or invalid."""
    value = parse_quantity(quantity)
    return None if value is None else float(value)


def _get(obj, *path):
    """obj[path[0]][path[1]]... with None for anything missing or null on the way."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _owned_by(obj, uids):
    """Whether obj names one of uids as its owner; objects without owner references are kept."""
    refs = _get(obj, "metadata", "ownerReferences") or []
    if not uids or not refs:
        return True
    return any(ref.get("uid") in uids for ref in refs)


def _terminated(container_status):
    """The terminated state a container is in, else the last one it was in, else {}."""
    return _get(container_status, "state", "terminated") or _get(container_status, "lastState", "terminated") or {}


def _state(state):
    """The one key of a container state (running, waiting or terminated) and its details, or (None, {})."""
    for key in ("waiting", "terminated", "running"):
        details = _get(state, key)
        if details is not None:
            return key, details
    return None, {}


def _container_row(status):
    state, details = _state(status.get("state"))
    last_state, last = _state(status.get("lastState"))
    return dict(
        name=status.get("name"),
        ready=bool(status.get("ready")),
        restart_count=status.get("restartCount") or 0,
        state=state,
        reason=details.get("reason"),
        message=details.get("message"),
        exit_code=details.get("exitCode"),
        started_at=details.get("startedAt"),
        finished_at=details.get("finishedAt"),
        last_state=dict(
            reason=last.get("reason"),
            exit_code=last.get("exitCode"),
            started_at=last.get("startedAt"),
            finished_at=last.get("finishedAt"),
        )
        if last_state == "terminated"
        else None,
    )


def _condition(obj, kind):
    for condition in _get(obj, "status", "conditions") or []:
        if condition.get("type") == kind:
            return condition
    return {}


def pod_state(pod, previous_restarts=None):
    """Normalised state of one pod: stopped, crash-looping, unhealthy or running."""
    phase = _get(pod, "status", "phase")
    if phase in ("Succeeded", "Failed"):
        return "stopped"
    statuses = _get(pod, "status", "containerStatuses") or []
    for status in statuses:
        if _get(status, "state", "waiting", "reason") == "CrashLoopBackOff":
            return "crash-looping"
        # Between two back-offs: running (or starting) again after a crash, not ready yet.
        if (
            (status.get("restartCount") or 0) > 0
            and _get(status, "lastState", "terminated")
            and not status.get("ready")
        ):
            return "crash-looping"
    restarts = sum(status.get("restartCount") or 0 for status in statuses)
    if previous_restarts is not None and restarts > previous_restarts:
        return "crash-looping"
    if _condition(pod, "Ready").get("status") == "True":
        return "running"
    return "unhealthy"


def _pod_row(pod, revisions, previous_restarts, warning):
    statuses = _get(pod, "status", "containerStatuses") or []
    waiting = next((_get(s, "state", "waiting") for s in statuses if _get(s, "state", "waiting")), None) or {}
    terminated = next((_terminated(s) for s in statuses if _terminated(s)), {})
    ready_condition = _condition(pod, "Ready")
    ready = ready_condition.get("status") == "True"
    # A container running but not ready (a failing probe) has no reason of its own.
    not_ready = {} if ready else warning or ready_condition
    containers = _get(pod, "spec", "containers") or [{}]
    return dict(
        name=_get(pod, "metadata", "name"),
        state=pod_state(pod, previous_restarts),
        health="healthy" if ready else "unhealthy",
        ready=ready,
        phase=_get(pod, "status", "phase"),
        restart_count=sum(s.get("restartCount") or 0 for s in statuses),
        started_at=_get(pod, "status", "startTime"),
        oom_killed=any(_terminated(s).get("reason") == "OOMKilled" for s in statuses),
        exit_code=terminated.get("exitCode"),
        reason=waiting.get("reason") or terminated.get("reason") or not_ready.get("reason"),
        message=waiting.get("message") or terminated.get("message") or not_ready.get("message"),
        last_warning="%s: %s" % (warning["reason"], warning["message"]) if warning else None,
        image=containers[0].get("image"),
        revision=revisions.get(_get(pod, "metadata", "labels", "pod-template-hash")),
        containers=[_container_row(status) for status in statuses],
    )


def _revision(obj):
    try:
        return int(_get(obj, "metadata", "annotations", "deployment.kubernetes.io/revision"))
    except (TypeError, ValueError):
        return None


def _resources(container):
    return dict(
        memory_limit=memory_bytes(_get(container, "resources", "limits", "memory")),
        cpu_limit=cpu_cores(_get(container, "resources", "limits", "cpu")),
        memory_request=memory_bytes(_get(container, "resources", "requests", "memory")),
        cpu_request=cpu_cores(_get(container, "resources", "requests", "cpu")),
    )


def _event_row(event):
    involved = event.get("involvedObject") or {}
    return dict(
        time=event.get("lastTimestamp") or event.get("eventTime") or _get(event, "metadata", "creationTimestamp"),
        type=event.get("type"),
        reason=event.get("reason"),
        object="%s/%s" % (involved.get("kind"), involved.get("name")),
        message=(event.get("message") or "").strip(),
        count=event.get("count") or 1,
    )


def _workload_events(events, deployment, set_names, pod_names):
    """Event rows about the Deployment, its ReplicaSets and their pods, oldest first."""
    kept = []
    for event in events or []:
        involved = (event or {}).get("involvedObject") or {}
        kind, name = involved.get("kind"), involved.get("name") or ""
        if (
            (kind == "Deployment" and name == _get(deployment, "metadata", "name"))
            or (kind == "ReplicaSet" and name in set_names)
            # Pods are named <ReplicaSet>-<suffix>, gone ones included.
            or (kind == "Pod" and (name in pod_names or any(name.startswith(rs + "-") for rs in set_names)))
        ):
            kept.append(event)
    # RFC 3339 UTC timestamps sort as strings once cut to whole seconds (eventTime has microseconds).
    return sorted((_event_row(event) for event in kept), key=lambda row: (row["time"] or "")[:19])


def _newest_warnings(event_rows):
    """Per pod name, its newest failing probe (a Warning with reason Unhealthy), else its newest Warning."""
    warnings = {}
    for row in event_rows:
        kind, name = row["object"].split("/", 1) if "/" in row["object"] else (row["object"], "")
        if kind == "Pod" and row["type"] == "Warning":
            if row["reason"] == "Unhealthy" or warnings.get(name, {}).get("reason") != "Unhealthy":
                warnings[name] = row
    return warnings


def _deadline_exceeded(deployment):
    progressing = _condition(deployment, "Progressing")
    return progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded"


def _rollout(deployment, desired, rows):
    """(rollout_state, rollout_reason), the way kubectl rollout status decides."""
    status = deployment.get("status") or {}
    generation = _get(deployment, "metadata", "generation")
    deadline_exceeded = _deadline_exceeded(deployment)
    observed = status.get("observedGeneration")
    replicas = status.get("replicas") or 0
    updated = status.get("updatedReplicas") or 0
    ready = status.get("readyReplicas") or 0
    available = status.get("availableReplicas") or 0
    steps = []
    if observed is None or (generation is not None and observed < generation):
        steps.append("the Deployment controller has not seen the latest spec yet")
    else:
        if updated < desired:
            steps.append("%d of %d replicas updated" % (updated, desired))
        if replicas > updated:
            steps.append("%d old replicas pending termination" % (replicas - updated))
        if available < updated or ready < desired:
            steps.append("%d of %d updated replicas available" % (min(available, updated), updated))
    if not steps and not deadline_exceeded:
        return "complete", None
    if deadline_exceeded:
        message = _condition(deployment, "Progressing").get("message") or "no progress"
        steps.insert(0, "ProgressDeadlineExceeded: %s" % message)
    unready = [
        "%s (%s)" % (row["name"], ": ".join(part for part in (row["reason"], row["message"]) if part) or "no reason")
        for row in rows
        if not row["ready"]
    ]
    if unready:
        steps.append("not ready: " + ", ".join(unready))
    return ("stalled" if deadline_exceeded else "progressing"), "; ".join(steps)


def _missing():
    return empty_status(
        replicas_updated=None,
        replicas_available=None,
        rollout_observed=None,
        progress_deadline_exceeded=None,
        rollout_state=None,
        rollout_reason=None,
        replicasets=[],
        events=[],
    )


def kubernetes_service_status(deployment, replicasets=None, pods=None, previous=None, *, events=None, events_limit=50):
    if isinstance(deployment, (list, tuple)):
        deployment = next((item for item in deployment if item), None)
    if not deployment:
        return _missing()

    uid = _get(deployment, "metadata", "uid")
    owned_sets = [rs for rs in replicasets or [] if rs and _owned_by(rs, {uid} if uid else set())]
    set_uids = {_get(rs, "metadata", "uid") for rs in owned_sets} - {None}
    revisions = {
        _get(rs, "metadata", "labels", "pod-template-hash"): _revision(rs)
        for rs in owned_sets
        if _get(rs, "metadata", "labels", "pod-template-hash")
    }
    previous_restarts = {
        row.get("name"): row.get("restart_count") or 0 for row in (previous or {}).get("instances") or [] if row
    }
    live_pods = [
        pod for pod in pods or [] if pod and not _get(pod, "metadata", "deletionTimestamp") and _owned_by(pod, set_uids)
    ]
    event_rows = _workload_events(
        events,
        deployment,
        {_get(rs, "metadata", "name") for rs in owned_sets} - {None},
        {_get(pod, "metadata", "name") for pod in live_pods},
    )
    warnings = _newest_warnings(event_rows)
    rows = [
        _pod_row(
            pod,
            revisions,
            previous_restarts.get(_get(pod, "metadata", "name")),
            warnings.get(_get(pod, "metadata", "name")),
        )
        for pod in live_pods
    ]

    spec_replicas = _get(deployment, "spec", "replicas")
    desired = 1 if spec_replicas is None else spec_replicas  # the API server's default
    status = deployment.get("status") or {}
    ready = status.get("readyReplicas") or 0
    deadline_exceeded = _deadline_exceeded(deployment)

    if desired == 0:
        state = "stopped"
    else:
        # A failed pod of a Deployment that wants replicas is a health problem, not a stop.
        states = ["unhealthy" if row["state"] == "stopped" else row["state"] for row in rows]
        if ready < desired or deadline_exceeded:
            states.append("unhealthy")
        state = worst_state(states, default="running")

    containers = _get(deployment, "spec", "template", "spec", "containers") or [{}]
    sets = sorted(
        (
            dict(
                name=_get(rs, "metadata", "name"),
                revision=_revision(rs),
                image=((_get(rs, "spec", "template", "spec", "containers") or [{}])[0]).get("image"),
                replicas=_get(rs, "spec", "replicas") or 0,
                ready=_get(rs, "status", "readyReplicas") or 0,
                created=_get(rs, "metadata", "creationTimestamp"),
            )
            for rs in owned_sets
        ),
        key=lambda row: row["revision"] or 0,
        reverse=True,
    )
    created = [row["created"] for row in sets if row["created"]]
    generation = _get(deployment, "metadata", "generation")
    observed = status.get("observedGeneration")
    rollout_state, rollout_reason = _rollout(deployment, desired, rows)
    return dict(
        state=state,
        replicas_desired=desired,
        replicas_ready=ready,
        replicas_updated=status.get("updatedReplicas") or 0,
        replicas_available=status.get("availableReplicas") or 0,
        rollout_observed=observed is not None and (generation is None or observed >= generation),
        progress_deadline_exceeded=deadline_exceeded,
        rollout_state=rollout_state,
        rollout_reason=rollout_reason,
        restart_count=sum(row["restart_count"] for row in rows),
        oom_killed=any(row["oom_killed"] for row in rows),
        image=containers[0].get("image"),
        resources=_resources(containers[0]),
        revision=_revision(deployment),
        # RFC 3339 UTC timestamps of one format sort as strings.
        last_rollout_time=max(created) if created else None,
        replicasets=sets,
        instances=rows,
        events=event_rows[-events_limit:] if events_limit > 0 else [],
    )
