#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: compose_snapshot
short_description: Read a compose service's status, last log lines and resource usage in one call
version_added: 0.2.0
description:
  - Finds the containers of one service of a Docker Compose project by Compose's labels,
    inspects them, reads their last log lines and a one-shot resource sample, all through
    the Docker API in one module call; the evidence an incident needs before anything acts.
  - RV(status) is the collection's normalised service status (docs/service-control.md),
    the same as the service_control role's C(status) action returns.
  - Reads only. A service with no container is a result (RV(status.state=missing)), not a failure.
author:
  - incident.remediation contributors (@incident-remediation)
extends_documentation_fragment:
  - community.docker.docker.api_documentation
  - incident.remediation.attributes
  - incident.remediation.attributes.read_only
options:
  project:
    description: The compose project name (label C(com.docker.compose.project)).
    type: str
    required: true
  service:
    description: The compose service name (label C(com.docker.compose.service)).
    type: str
    required: true
  log_lines:
    description: Last log lines to read per container; C(0) reads none.
    type: int
    default: 100
  resources:
    description:
      - Read a one-shot resource sample (memory, CPU time, processes) of each running container.
      - One-shot samples have no previous reading, so CPU is reported as total CPU time, not a percentage.
    type: bool
    default: true
  history_file:
    description:
      - The service's image history as the service_control role records it
        (C(<project_src>/.incident-remediation/<service>.images.json)); fills
        RV(status.revision) and RV(status.last_rollout_time). A missing file is no history.
    type: path
requirements:
  - Docker API >= 1.41 (Docker Engine 20.10) for one-shot resource samples.
"""

EXAMPLES = r"""
- name: Read the state, logs and resource usage of the redis service
  incident.remediation.compose_snapshot:
    project: shop
    service: redis
    log_lines: 100
  register: snapshot
"""

RETURN = r"""
status:
  description:
    - The normalised service status (docs/service-control.md), with C(platform), C(service) and C(project),
      as the C(incident.remediation.compose_service_status) filter gives it.
  returned: always
  type: dict
  sample: {platform: compose, service: redis, project: shop, state: stopped, replicas_desired: 1, replicas_ready: 0}
  contains:
    state:
      description: Worst state over the containers (missing, stopped, paused, crash-looping, unhealthy, running).
      type: str
    revision:
      description: Number of entries in the recorded image history, null when none.
      type: int
    last_rollout_time:
      description: When the image the service runs now was deployed, from the image history; null when none.
      type: str
    instances:
      description: Per container name, short id, state, health, restart count, start time, OOM kill and exit code.
      type: list
      elements: dict
logs:
  description: The last log lines of each container, each line prefixed with the container name, with timestamps.
  returned: always
  type: str
resources:
  description: Resource usage per running container (C(containers), each with C(name), C(memory_bytes),
    C(memory_limit_bytes), C(memory_ratio), C(cpu_total_seconds), C(pids)), the service's configured
    C(limits), and C(platform), C(source) and a C(note) on how to read them.
  returned: always
  type: dict
containers:
  description: Names of the service's containers.
  returned: always
  type: list
  elements: str
elapsed_ms:
  description: Time the reads took, in milliseconds.
  returned: always
  type: float
"""

import json
import time
import traceback

from ansible.module_utils.common.text.converters import to_native, to_text

from ansible_collections.community.docker.plugins.module_utils.common_api import (
    AnsibleDockerClient,
    RequestException,
)
from ansible_collections.community.docker.plugins.module_utils._api.errors import DockerException
from ansible_collections.incident.remediation.plugins.module_utils._compose_status import compose_service_status


def read_history(path):
    if not path:
        return []
    try:
        with open(path) as history:
            entries = json.load(history)
    except (IOError, OSError, ValueError):
        return []
    return entries if isinstance(entries, list) else []


def read_logs(client, container, lines):
    response = client._get(
        client._url("/containers/{0}/logs", container["Id"]),
        params={"stdout": 1, "stderr": 1, "timestamps": 1, "follow": 0, "tail": lines},
    )
    output = client._get_result_tty(False, response, (container.get("Config") or {}).get("Tty"))
    name = (container.get("Name") or "").lstrip("/")
    return ["%s  | %s" % (name, line) for line in to_text(output, errors="replace").splitlines()]


def read_usage(client, container):
    stats = client.get_json("/containers/{0}/stats", container["Id"], params={"stream": False, "one-shot": True})
    memory = stats.get("memory_stats") or {}
    # Docker's own `docker stats` figure: usage less the page cache it could drop.
    cache = (memory.get("stats") or {}).get("inactive_file", 0)
    used = max(0, (memory.get("usage") or 0) - cache)
    limit = memory.get("limit") or None
    return dict(
        name=(container.get("Name") or "").lstrip("/"),
        memory_bytes=used,
        memory_limit_bytes=limit,
        memory_ratio=round(used / float(limit), 4) if limit else None,
        cpu_total_seconds=round(((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0) / 1e9, 3),
        pids=(stats.get("pids_stats") or {}).get("current"),
    )


def main():
    client = AnsibleDockerClient(
        argument_spec=dict(
            project=dict(type="str", required=True),
            service=dict(type="str", required=True),
            log_lines=dict(type="int", default=100),
            resources=dict(type="bool", default=True),
            history_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = client.module.params
    started = time.monotonic()
    try:
        filters = {
            "label": [
                "com.docker.compose.project=%s" % params["project"],
                "com.docker.compose.service=%s" % params["service"],
            ]
        }
        found = client.get_json("/containers/json", params={"all": 1, "filters": json.dumps(filters)})
        containers = sorted(
            (client.get_container_by_id(item["Id"]) for item in found),
            key=lambda container: container.get("Name") or "",
        )
        containers = [container for container in containers if container]
        status = dict(platform="compose", service=params["service"], project=params["project"])
        status.update(compose_service_status(containers, history=read_history(params["history_file"])))
        logs = []
        if params["log_lines"] > 0:
            for container in containers:
                logs.extend(read_logs(client, container, params["log_lines"]))
        usage = []
        if params["resources"]:
            usage = [
                read_usage(client, container)
                for container in containers
                if (container.get("State") or {}).get("Running")
            ]
    except DockerException as error:
        client.fail(
            "Docker API error reading %s: %s" % (params["service"], to_native(error)), exception=traceback.format_exc()
        )
    except RequestException as error:
        client.fail("Could not reach the Docker daemon: %s" % to_native(error), exception=traceback.format_exc())
    client.module.exit_json(
        changed=False,
        status=status,
        logs="\n".join(logs),
        resources=dict(
            platform="compose",
            source="Docker API, one-shot stats",
            containers=usage,
            limits=status["resources"],
            note="a single sample: CPU is total CPU time, memory excludes the reclaimable page cache"
            if containers
            else "the service has no container",
        ),
        containers=[row["name"] for row in status["instances"]],
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
    )


if __name__ == "__main__":
    main()
