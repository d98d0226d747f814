# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the incident.remediation collection: no compatibility promise
# outside it.
"""A compose service's inspected containers as the normalised service status:
shared by the compose_service_status filter and the compose_snapshot module."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.incident.remediation.plugins.module_utils._service_status import worst_state


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


def container_resources(container):
    """Limits of one inspected container, in bytes and cores; null when not set."""
    host = (container or {}).get("HostConfig") or {}
    cpu_limit = None
    if host.get("NanoCpus"):
        cpu_limit = host["NanoCpus"] / 1e9
    elif host.get("CpuQuota") and host["CpuQuota"] > 0:
        cpu_limit = host["CpuQuota"] / float(host.get("CpuPeriod") or 100000)
    return dict(
        memory_limit=host.get("Memory") or None,
        cpu_limit=cpu_limit,
        memory_request=host.get("MemoryReservation") or None,
        cpu_request=None,
    )


def compose_service_status(containers, history=None):
    containers = [c for c in containers or [] if c]
    history = [entry for entry in history or [] if entry]
    rows = []
    for container in containers:
        state = container.get("State") or {}
        rows.append(
            dict(
                name=(container.get("Name") or "").lstrip("/"),
                id=(container.get("Id") or "")[:12],
                state=container_state(container),
                health=(state.get("Health") or {}).get("Status"),
                restart_count=container.get("RestartCount") or 0,
                started_at=state.get("StartedAt"),
                oom_killed=bool(state.get("OOMKilled")),
                exit_code=state.get("ExitCode"),
            )
        )
    states = [row["state"] for row in rows] or ["missing"]
    first = containers[0] if containers else {}
    last = history[-1] if history else {}
    return dict(
        state=worst_state(states),
        replicas_desired=len(rows),
        replicas_ready=sum(1 for row in rows if row["state"] == "running"),
        restart_count=sum(row["restart_count"] for row in rows),
        oom_killed=any(row["oom_killed"] for row in rows),
        image=(first.get("Config") or {}).get("Image"),
        resources=container_resources(first),
        revision=len(history) or None,
        last_rollout_time=last.get("deployed_at") or last.get("recorded_at"),
        instances=rows,
    )
