# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: incident_timeline
short_description: Turn an incident's timeline into the rows of a post-incident report
version_added: 0.1.0
description:
  - Takes the lines of an incident folder's C(timeline.jsonl) (written by
    M(incident.remediation.incident_record)) and returns the summary, the timeline
    rows, the remediation tiers with their durations and results, and the actions
    taken, ready for a report template.
  - Generic over playbooks; it knows the collection's event names
    (C(detected), C(diagnosed), C(tier), C(resolved), C(escalated),
    C(dry_run_reported), C(alert_resolved)) and lists any other event as it is.
  - "When one folder holds several runs of a playbook (the same alert again), the
    summary's outcome is that of the last run that did more than find the service
    already healthy; every run is listed in C(runs)."
  - Lines that are empty are skipped; lines that are not a JSON object are left out
    and their line numbers listed in C(unreadable).
options:
  _input:
    description: The timeline's lines (strings), or the events already parsed (dicts).
    type: list
    elements: raw
    required: true
  markdown:
    description:
      - Escape every string of the result for Markdown (characters that would start
        inline markup, HTML or a table cell, and line breaks), so that text from the
        alert, such as annotations, is shown as written and cannot add links or HTML.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Build the report rows from an incident folder
  ansible.builtin.set_fact:
    report: >-
      {{ lookup('ansible.builtin.file', incident_dir ~ '/timeline.jsonl').splitlines()
         | incident.remediation.incident_timeline(markdown=true) }}

- name: Show how long each tier took
  ansible.builtin.debug:
    msg: "{{ report.tiers | map(attribute='duration') | list }}"
"""

RETURN = r"""
_value:
  description: The report's data; times are UTC.
  type: dict
  contains:
    incident:
      description: Incident id recorded on the events.
      type: str
    playbook:
      description: Playbook that recorded the first event.
      type: str
    host:
      description: Host the first event was recorded for.
      type: str
    alertname:
      description: Alert name from the C(detected) event.
      type: str
    severity:
      description: The alert's C(severity) label, null without one.
      type: str
    priority:
      description: The runbooks' priority for that severity (critical P0/P1, warning P2, info P3), null when unknown.
      type: str
    service:
      description: The target's service (else the alert's C(service) label).
      type: str
    platform:
      description: The target's platform.
      type: str
    labels:
      description: The alert's labels.
      type: dict
    annotations:
      description: The alert's annotations.
      type: dict
    started_at:
      description: Time of the first event (ISO 8601).
      type: str
    ended_at:
      description: Time of the outcome event the summary reports, null while no run finished.
      type: str
    start:
      description: C(started_at) for people, C(YYYY-MM-DD HH:MM:SS UTC).
      type: str
    end:
      description: C(ended_at) for people.
      type: str
    date:
      description: Date of the first event, C(YYYY-MM-DD).
      type: str
    duration_s:
      description: Seconds from C(started_at) to C(ended_at).
      type: float
    duration:
      description: C(duration_s) for people (C(2.4 s), C(3 min 5 s), C(1 h 12 min)).
      type: str
    status:
      description:
        - Name of the reported outcome event (C(resolved), C(escalated), C(dry_run_reported),
          C(alert_resolved)); C(open) when no run finished.
      type: str
    outcome:
      description: The reported run's C(outcome) (for example C(healed), C(unhealed), C(already_healthy)).
      type: str
    dry_run:
      description: Whether the reported run was a dry run.
      type: bool
    runs:
      description: Every outcome event, in order, with C(at), C(time), C(event), C(outcome), C(dry_run).
      type: list
      elements: dict
    events:
      description:
        - Every event, in order, with C(at), C(time), C(offset) (since the first event), C(event),
          C(dry_run) and C(details) (the event's own fields as text).
      type: list
      elements: dict
    tiers:
      description:
        - Every C(tier) event with C(tier), C(result), C(why), C(started_at), C(time) (when it
          started), C(duration_s), C(duration), C(error), C(details), C(dry_run).
      type: list
      elements: dict
    diagnoses:
      description: The C(diagnosed) events, as in C(events).
      type: list
      elements: dict
    actions:
      description:
        - What was done, in order (tiers, outcomes and any other event besides detection and
          diagnosis), each with C(at), C(time), C(event) and C(text), a sentence (escaped for
          Markdown with O(markdown), with the tier name in a code span).
      type: list
      elements: dict
    unreadable:
      description: Line numbers of lines that were not a JSON object.
      type: list
      elements: int
"""

import datetime
import json
import re

from ansible.errors import AnsibleFilterError

# Fields every event carries (incident_record adds them); the rest are its details.
_CONTEXT = ("at", "event", "incident", "playbook", "host", "dry_run")
_OUTCOMES = ("resolved", "escalated", "dry_run_reported", "alert_resolved")
_OUTCOME_TEXT = {
    "escalated": "escalated to a person (outcome %(outcome)s)",
    "resolved": "resolved (outcome %(outcome)s)",
    "dry_run_reported": "dry run reported; nothing was changed",
    "alert_resolved": "the alert resolved before remediation; nothing was done",
}
_PRIORITY = {"critical": "P0/P1", "warning": "P2", "info": "P3"}
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$"
)
# CommonMark inline syntax, HTML and table cell separators; `_` only where it can
# start or end emphasis (not inside a word such as already_healthy).
_MARKDOWN_SPECIAL = re.compile(r"[\\`*\[<>|&~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def parse_time(value):
    """A timezone-aware UTC datetime from an ISO 8601 time, None when it is not one."""
    match = _TIMESTAMP.match(str(value or ""))
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    moment = datetime.datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second),
        int((fraction or "0")[:6].ljust(6, "0")), tzinfo=datetime.timezone.utc,
    )
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        moment -= sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment


def human_duration(seconds):
    """2.4 s, 3 min 5 s, 1 h 12 min; None stays None."""
    if seconds is None:
        return None
    seconds = max(float(seconds), 0.0)
    if seconds < 60:
        return "%.1f s" % seconds
    whole = round(seconds)
    if whole < 3600:
        return "%d min %d s" % (whole // 60, whole % 60)
    return "%d h %d min" % (whole // 3600, whole % 3600 // 60)


def markdown_escape(text):
    """Text shown as written in Markdown, on one line."""
    text = _MARKDOWN_SPECIAL.sub(lambda match: "\\" + match.group(0), str(text))
    return re.sub(r"\s*[\r\n]+\s*", " ", text)


def details_text(event):
    """The event's own fields as `name: value; ...`, nested values as compact JSON,
    an outcome's tier actions as `tier (result), ...`."""
    parts = []
    for key in sorted(event):
        if key in _CONTEXT:
            continue
        value = event[key]
        if key == "actions" and isinstance(value, list) and all(isinstance(a, dict) and "tier" in a for a in value):
            # An outcome's actions repeat the tier events: name them only.
            value = ", ".join("%s (%s)" % (a.get("tier"), a.get("result")) for a in value) or "none"
        elif not isinstance(value, str):
            value = json.dumps(value, sort_keys=True, default=str)
        parts.append("%s: %s" % (key, value))
    return "; ".join(parts)


def _read(lines):
    events, unreadable = [], []
    for number, line in enumerate(lines or [], 1):
        if isinstance(line, dict):
            events.append(dict(line))
            continue
        text = str(line).strip()
        if not text:
            continue
        try:
            event = json.loads(text)
        except ValueError:
            event = None
        if isinstance(event, dict):
            events.append(event)
        else:
            unreadable.append(number)
    return events, unreadable


def _clock(moment, same_day):
    if moment is None:
        return None
    return moment.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S")


def _seconds(later, earlier):
    if later is None or earlier is None:
        return None
    return round((later - earlier).total_seconds(), 3)


def _number(value):
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def _first(events, name):
    return next((event for event in events if event.get("event") == name), {})


def _tier_row(event, moment, same_day):
    started = parse_time(event.get("started_at"))
    duration_s = _number(event.get("duration_s"))
    if duration_s is None:
        duration_s = _seconds(moment, started)
    own = ("tier", "result", "why", "started_at", "duration_s", "error")
    return dict(
        at=event.get("at"),
        tier=event.get("tier"),
        result=event.get("result"),
        why=event.get("why"),
        started_at=event.get("started_at"),
        time=_clock(started or moment, same_day),
        duration_s=duration_s,
        duration=human_duration(duration_s),
        error=event.get("error"),
        details=details_text(dict((k, v) for k, v in event.items() if k not in own)),
        dry_run=bool(event.get("dry_run")),
    )


def _action_text(event, tier, esc):
    name = event.get("event")
    if tier is not None:
        head = "tier `%s` (%s): " % (esc(tier["tier"]), esc(tier["why"] or "no reason recorded"))
        if tier["result"] == "would_run":
            would_change = event.get("would_change")
            text = head + "would run (dry run)"
            if would_change is not None:
                text += ", would change the service: %s" % ("yes" if would_change else "no")
            return text
        text = head + esc(tier["result"] or "no result recorded")
        if tier["duration"]:
            text += " after %s" % tier["duration"]
        if tier["error"]:
            text += ": %s" % esc(tier["error"])
        return text
    if name in _OUTCOME_TEXT:
        return _OUTCOME_TEXT[name] % dict(outcome=esc(event.get("outcome") or "not recorded"))
    return "%s: %s" % (esc(name), esc(details_text(event) or "no details"))


def _reported_run(runs):
    """The run the summary reports: the last that did more than find the service healthy."""
    acting = [run for run in runs if run.get("outcome") != "already_healthy"]
    return (acting or runs or [None])[-1]


def _escape_all(value):
    if isinstance(value, dict):
        return dict((key, _escape_all(item)) for key, item in value.items())
    if isinstance(value, list):
        return [_escape_all(item) for item in value]
    if isinstance(value, str):
        return markdown_escape(value)
    return value


def incident_timeline(lines, markdown=False):
    if not isinstance(lines, (list, tuple)):
        raise AnsibleFilterError("incident_timeline expects a list of timeline lines, got %s" % type(lines).__name__)
    events, unreadable = _read(lines)
    moments = [parse_time(event.get("at")) for event in events]
    known = [moment for moment in moments if moment is not None]
    start = known[0] if known else None
    same_day = len(set(moment.date() for moment in known)) <= 1
    esc = markdown_escape if markdown else (lambda text: text)

    rows, tiers, runs, actions = [], [], [], []
    for event, moment in zip(events, moments, strict=True):
        name = event.get("event")
        offset = _seconds(moment, start)
        rows.append(dict(
            at=event.get("at"),
            time=_clock(moment, same_day),
            offset=None if offset is None else "+" + human_duration(offset),
            event=name,
            dry_run=bool(event.get("dry_run")),
            details=details_text(event),
        ))
        tier = None
        if name == "tier":
            tier = _tier_row(event, moment, same_day)
            tiers.append(tier)
        if name in _OUTCOMES:
            runs.append(dict(at=event.get("at"), time=_clock(moment, same_day), event=name,
                             outcome=event.get("outcome") or name, dry_run=bool(event.get("dry_run")),
                             moment=moment))
        if name not in ("detected", "diagnosed"):
            actions.append(dict(at=event.get("at"), time=(tier or {}).get("time") or _clock(moment, same_day),
                                event=esc(str(name)), text=_action_text(event, tier, esc)))

    detected = _first(events, "detected") or _first(events, "alert_resolved")
    labels = detected.get("labels") if isinstance(detected.get("labels"), dict) else {}
    annotations = detected.get("annotations") if isinstance(detected.get("annotations"), dict) else {}
    target = detected.get("target") if isinstance(detected.get("target"), dict) else {}
    first = events[0] if events else {}
    reported = _reported_run(runs)
    end = reported["moment"] if reported else None
    duration_s = _seconds(end, start)
    for run in runs:
        del run["moment"]
    severity = labels.get("severity")

    result = dict(
        incident=next((e.get("incident") for e in events if e.get("incident")), None),
        playbook=first.get("playbook"),
        host=first.get("host"),
        alertname=detected.get("alertname") or labels.get("alertname"),
        severity=severity,
        priority=_PRIORITY.get(str(severity).lower()) if severity else None,
        service=target.get("service") or labels.get("service"),
        platform=target.get("platform"),
        labels=labels,
        annotations=annotations,
        started_at=next((e.get("at") for e, m in zip(events, moments, strict=True) if m is not None), None),
        ended_at=reported["at"] if reported else None,
        start=start.strftime("%Y-%m-%d %H:%M:%S UTC") if start else None,
        end=end.strftime("%Y-%m-%d %H:%M:%S UTC") if end else None,
        date=start.strftime("%Y-%m-%d") if start else None,
        duration_s=duration_s,
        duration=human_duration(duration_s),
        status=reported["event"] if reported else "open",
        outcome=reported["outcome"] if reported else None,
        dry_run=reported["dry_run"] if reported else any(row["dry_run"] for row in rows),
        runs=runs,
        events=rows,
        tiers=tiers,
        diagnoses=[row for row in rows if row["event"] == "diagnosed"],
        unreadable=unreadable,
    )
    if markdown:
        result = _escape_all(result)
        # The alert's own names are free text too.
        for field in ("labels", "annotations"):
            result[field] = dict((markdown_escape(key), value) for key, value in result[field].items())
    # Action sentences are composed from escaped parts already.
    result["actions"] = actions
    return result


class FilterModule(object):
    def filters(self):
        return {"incident_timeline": incident_timeline}
