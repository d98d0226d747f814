# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the incident timeline and evidence on the controller (the ops host)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os
import re

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.incident.remediation.plugins.module_utils._redact import (
    DEFAULT_SECRET_NAMES,
    redact,
)

ARGUMENT_SPEC = dict(
    incident_dir=dict(type="path"),
    event=dict(type="str"),
    data=dict(type="dict", default={}),
    evidence=dict(type="str"),
    content=dict(type="raw"),
    evidence_items=dict(type="dict", default={}),
    secret_names=dict(type="list", elements="str", default=list(DEFAULT_SECRET_NAMES)),
)

_EVIDENCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _jsonable(value):
    # Ansible's tagged strings and similar subclasses serialise as their plain values.
    return json.loads(json.dumps(value, default=str))


def append_event(incident_dir, event, data, context, secret_names):
    record = dict(redact(_jsonable(data), secret_names), at=iso(utc_now()), event=event, **context)
    path = os.path.join(incident_dir, "timeline.jsonl")
    with open(path, "a") as timeline:
        timeline.write(json.dumps(record, sort_keys=True) + "\n")
    return path, record


def save_evidence(incident_dir, name, content, secret_names):
    folder = os.path.join(incident_dir, "evidence")
    os.makedirs(folder, mode=0o750, exist_ok=True)
    content = redact(_jsonable(content), secret_names)
    if isinstance(content, str):
        suffix, text = "log", content if content.endswith("\n") else content + "\n"
    else:
        suffix, text = "json", json.dumps(content, indent=2, sort_keys=True) + "\n"
    path = os.path.join(folder, "%s-%s.%s" % (utc_now().strftime("%Y%m%dT%H%M%S.%fZ"), name, suffix))
    with open(path, "w") as evidence:
        evidence.write(text)
    return path


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC,
            required_one_of=[("event", "evidence", "evidence_items")],
            required_by={"evidence": "content"},
        )
        incident = self._templar.template(task_vars.get("incident")) or {}
        incident_dir = args["incident_dir"] or incident.get("dir")
        if not incident_dir:
            raise AnsibleActionFail("incident_dir is required when no incident is open (incident_context role)")
        if ".." in incident_dir.split(os.sep):
            raise AnsibleActionFail("incident_dir must not contain '..': %s" % incident_dir)
        os.makedirs(incident_dir, mode=0o750, exist_ok=True)
        items = dict(args["evidence_items"])
        if args["evidence"] is not None:
            items[args["evidence"]] = args["content"]
        bad = sorted(name for name in items if not _EVIDENCE_NAME.match(name))
        if bad:
            raise AnsibleActionFail("evidence names must be short plain names, got %r" % bad[:5])
        paths = [save_evidence(incident_dir, name, content, args["secret_names"]) for name, content in items.items()]
        result.update(paths=paths, path=paths[0] if paths else None)
        if args["event"] is not None:
            context = dict(
                host=task_vars.get("inventory_hostname"),
                incident=incident.get("id"),
                playbook=incident.get("playbook"),
                dry_run=incident.get("dry_run"),
            )
            data = dict(args["data"], evidence=[os.path.basename(path) for path in paths]) if paths else args["data"]
            timeline, record = append_event(incident_dir, args["event"], data, context, args["secret_names"])
            result.update(record=record, path=result["path"] or timeline)
        # The record is the run's own log on the ops host, not a change to a managed host.
        result.update(changed=False)
        return result
