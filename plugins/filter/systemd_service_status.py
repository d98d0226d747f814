# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: systemd_service_status
short_description: Normalise a systemd unit's properties into the service status
version_added: 0.1.0
description:
  - Takes the C(status) dict that M(ansible.builtin.systemd_service) returns for one
    unit (the unit's C(systemctl show) properties, all values strings) and returns the
    collection's platform-neutral service status (see docs/service-control.md).
  - C(state) is C(missing) when systemd does not know the unit (C(LoadState=not-found))
    or nothing was read; C(paused) when the unit's cgroup is frozen; C(crash-looping)
    while systemd waits to restart a crashed unit (C(SubState=auto-restart)), when the
    unit has been restarted automatically (C(NRestarts) > 0) and is not active with a
    C(Result) other than C(success) (for instance C(failed) after hitting its start
    limit), or when C(NRestarts) rose since O(previous); C(running) when
    C(ActiveState) is C(active) (or C(reloading)); C(stopped) when C(inactive) or
    C(deactivating); C(unhealthy) otherwise (C(failed), or still C(activating)).
  - Systemd resets C(Result) to C(success) and keeps counting in C(NRestarts) each time
    it restarts a unit by itself, and resets C(NRestarts) to 0 when someone starts or
    restarts the unit by hand; pass O(previous) to see restarts between two looks.
  - C(MemoryMax) (falling back to the cgroup v1 C(MemoryLimit)) becomes bytes and
    C(CPUQuotaPerSecUSec) cores; C(infinity) or an unset value becomes null.
  - Timestamps in UTC (or with a numeric offset) become ISO 8601 (C(2024-05-01T10:00:00Z));
    in any other zone they are kept as systemd printed them.
options:
  _input:
    description: The C(status) of M(ansible.builtin.systemd_service) (C(systemctl show) properties).
    type: dict
    required: true
  previous:
    description:
      - An earlier status of the same unit returned by this filter. C(NRestarts) above its
        C(restart_count) counts as C(crash-looping).
    type: dict
"""

EXAMPLES = r"""
- name: Read the unit
  ansible.builtin.systemd_service:
    name: postgresql.service
  register: unit

- name: Normalise what systemctl show returned
  ansible.builtin.set_fact:
    service_status: "{{ unit.status | incident.remediation.systemd_service_status }}"
"""

RETURN = r"""
_value:
  description: The normalised status.
  type: dict
  contains:
    state:
      description: One of C(missing), C(stopped), C(paused), C(crash-looping), C(unhealthy), C(running).
      type: str
    replicas_desired:
      description: 1, or null for a missing unit.
      type: int
    replicas_ready:
      description: 1 when the unit is running, 0 when not, null for a missing unit.
      type: int
    restart_count:
      description: C(NRestarts), the automatic restarts since the unit was last started by hand.
      type: int
    oom_killed:
      description: Whether the unit's last run ended with C(Result=oom-kill).
      type: bool
    image:
      description: Always null (systemd units have no image).
      type: str
    resources:
      description: >-
        C(memory_limit) (bytes, from C(MemoryMax) or C(MemoryLimit)) and C(cpu_limit) (cores, from
        C(CPUQuotaPerSecUSec)), null when unlimited; C(memory_request) and C(cpu_request) are always null.
      type: dict
    revision:
      description: Always null (systemd keeps no rollout history).
      type: int
    last_rollout_time:
      description: When the unit's main process last started (C(ExecMainStartTimestamp)), null if never.
      type: str
    instances:
      description: >-
        One row for the unit (none when missing): name (C(Id)), state, health (always null), restart_count,
        started_at, oom_killed, exit_code (the exit status, 128 + signal number when killed by a signal,
        null while no exit is recorded), main_pid (null when none), load_state, active_state, sub_state,
        result.
      type: list
      elements: dict
"""

import re
from decimal import Decimal

from ansible_collections.incident.remediation.plugins.module_utils._service_status import empty_status

_UNLIMITED = ("", "infinity", "[not set]")

# systemd's time span units (systemd.time(7)), in microseconds.
_SPAN_UNITS = {
    "us": 1, "usec": 1, "\u00b5s": 1, "\u03bcs": 1,
    "ms": 10 ** 3, "msec": 10 ** 3,
    "s": 10 ** 6, "sec": 10 ** 6, "second": 10 ** 6, "seconds": 10 ** 6,
    "m": 60 * 10 ** 6, "min": 60 * 10 ** 6, "minute": 60 * 10 ** 6, "minutes": 60 * 10 ** 6,
    "h": 3600 * 10 ** 6, "hr": 3600 * 10 ** 6, "hour": 3600 * 10 ** 6, "hours": 3600 * 10 ** 6,
    "d": 86400 * 10 ** 6, "day": 86400 * 10 ** 6, "days": 86400 * 10 ** 6,
    "w": 7 * 86400 * 10 ** 6, "week": 7 * 86400 * 10 ** 6, "weeks": 7 * 86400 * 10 ** 6,
    "M": 2629800 * 10 ** 6, "month": 2629800 * 10 ** 6, "months": 2629800 * 10 ** 6,
    "y": 31557600 * 10 ** 6, "year": 31557600 * 10 ** 6, "years": 31557600 * 10 ** 6,
}
_SPAN_PART = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z\u00b5\u03bc]*)\s*")
_TIMESTAMP = re.compile(
    r"^(?:[A-Za-z]+ )?(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2}) (?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?P<fraction>\.[0-9]+)?"
    r" (?P<zone>UTC|GMT|[+-][0-9]{2}:?[0-9]{2})$"
)


def timespan_usec(value):
    """A systemd time span (``1.500000s``, ``125ms``, ``1min 30s``, a number of microseconds) in microseconds.

    None when unset, ``infinity`` or not a time span.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    text = str(value).strip()
    matches = list(_SPAN_PART.finditer(text))
    # Matches never overlap: they cover the text exactly when their lengths add up to it.
    if text in _UNLIMITED or sum(len(match.group(0)) for match in matches) != len(text):
        return None
    # A bare number is seconds, systemd's default unit.
    parts = [(Decimal(match.group(1)), _SPAN_UNITS.get(match.group(2) or "s")) for match in matches]
    if any(factor is None for number, factor in parts):
        return None
    return sum((number * factor for number, factor in parts), Decimal(0))


def cpu_quota_cores(value):
    """``CPUQuotaPerSecUSec`` (CPU time per second of wall time) in cores; None when unlimited."""
    usec = timespan_usec(value)
    if usec is None:
        return None
    return float(usec / Decimal(10 ** 6))


def memory_bytes(value):
    """A ``systemctl show`` memory value (bytes) as an int; None when unlimited or not a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text in _UNLIMITED or not text.isdigit():
        return None
    number = int(text)
    # systemd prints "infinity" for no limit, but the raw maximum can show through.
    return None if number >= 2 ** 63 - 4096 else number


def iso_timestamp(value):
    """A ``systemctl show`` timestamp as ISO 8601 when its zone is UTC or numeric; else as given; None if empty."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or text in ("n/a", "0"):
        return None
    match = _TIMESTAMP.match(text)
    if not match:
        return text
    zone = match.group("zone")
    if zone in ("UTC", "GMT"):
        zone = "Z"
    else:
        zone = zone[:3] + ":" + zone[-2:]
    return "%sT%s%s%s" % (match.group("date"), match.group("time"), match.group("fraction") or "", zone)


def _int(value, default=0):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def exit_code(status):
    """The main process's last exit: its status, 128 + signal when killed; None while none is recorded."""
    code = _int(status.get("ExecMainCode"))
    value = _int(status.get("ExecMainStatus"), None)
    if value is None or code == 0:
        return None
    if code == 1:  # CLD_EXITED
        return value
    return 128 + value  # CLD_KILLED, CLD_DUMPED: a signal, as a shell reports it


def unit_state(status, previous_restarts=None):
    """Normalised state of one unit from its ``systemctl show`` properties."""
    status = status or {}
    active = status.get("ActiveState") or ""
    restarts = _int(status.get("NRestarts"))
    # First match wins.
    rules = (
        ("missing", (status.get("LoadState") or "not-found") == "not-found"),
        ("paused", status.get("FreezerState") in ("frozen", "freezing")),
        ("crash-looping", status.get("SubState") == "auto-restart"),
        ("crash-looping", previous_restarts is not None and restarts > previous_restarts),
        ("running", active in ("active", "reloading", "refreshing")),
        ("crash-looping", restarts > 0 and (status.get("Result") or "success") != "success"),
        ("stopped", active in ("inactive", "deactivating")),
    )
    return next((state for state, applies in rules if applies), "unhealthy")


def _missing():
    return empty_status()


def systemd_service_status(status, previous=None):
    status = status or {}
    previous_rows = (previous or {}).get("instances") or []
    previous_restarts = (previous or {}).get("restart_count") if previous_rows else None
    state = unit_state(status, previous_restarts)
    if state == "missing":
        return _missing()

    restarts = _int(status.get("NRestarts"))
    oom_killed = status.get("Result") == "oom-kill"
    started_at = iso_timestamp(status.get("ExecMainStartTimestamp"))
    memory_limit = memory_bytes(status.get("MemoryMax"))
    if memory_limit is None:
        memory_limit = memory_bytes(status.get("MemoryLimit"))
    main_pid = _int(status.get("MainPID"))
    row = dict(
        name=status.get("Id"),
        state=state,
        health=None,
        restart_count=restarts,
        started_at=started_at,
        oom_killed=oom_killed,
        exit_code=exit_code(status),
        main_pid=main_pid or None,
        load_state=status.get("LoadState"),
        active_state=status.get("ActiveState"),
        sub_state=status.get("SubState"),
        result=status.get("Result"),
    )
    return dict(
        state=state,
        replicas_desired=1,
        replicas_ready=1 if state == "running" else 0,
        restart_count=restarts,
        oom_killed=oom_killed,
        image=None,
        resources=dict(
            memory_limit=memory_limit,
            cpu_limit=cpu_quota_cores(status.get("CPUQuotaPerSecUSec")),
            memory_request=None,
            cpu_request=None,
        ),
        revision=None,
        last_rollout_time=started_at,
        instances=[row],
    )


class FilterModule(object):
    def filters(self):
        return {"systemd_service_status": systemd_service_status}
