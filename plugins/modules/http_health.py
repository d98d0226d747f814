#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: http_health
short_description: Probe a health endpoint with millisecond latency, retries and detailed component checks
version_added: 0.1.0
description:
  - Requests a health endpoint and measures the round trip in milliseconds
    (M(ansible.builtin.uri) only reports whole seconds). An attempt succeeds when the
    endpoint answers with a status in O(status_code), its body matches O(body_regex) when
    given, and, with O(detailed=true), the body is a JSON object.
  - A failed attempt is retried after O(retry_delay_ms), up to O(attempts) requests in all;
    the first success ends the probe. Consecutive failures tell a blip from an outage, as
    the runbooks page only after 2 consecutive failures (runbook 000 C(ServiceDown)).
    O(failures_for_critical) or more failures in a row make the verdict C(critical), even
    if a later attempt succeeded (the reason says it answered again); fewer, followed by a
    success, make it C(warning) (a blip). Every attempt is returned in RV(attempt_results).
  - The latency of the successful attempt is judged against O(latency_warning_ms) and
    O(latency_critical_ms).
  - With O(detailed=true) the body is read as a detailed health document, by default in
    runbook 002's shape (C(/health/detailed)). The overall status at
    O(overall_status_path) and every component's status are judged, C(degraded) as a
    C(warning) and C(unhealthy) (or anything that is neither healthy nor degraded) as
    C(critical); components whose response time is above O(component_time_warning_ms)
    (runbook 002 C(HealthCheckSlowResponse), 5000 ms) are named as slow.
  - An endpoint that does not answer is a result (RV(is_available=false)), never a task failure.
  - The O(url) option is C(no_log) when it carries credentials or a query, and results only
    hold a redacted URL.
  - Reads only; nothing is changed.
author:
  - incident.remediation contributors (@incident-remediation)
extends_documentation_fragment:
  - incident.remediation.http
  - incident.remediation.attributes
  - incident.remediation.attributes.read_only
options:
  url:
    description:
      - URL of the health endpoint, C(http) or C(https).
      - User information in it (C(user:password@)) is sent as basic authentication.
      - Hidden from output and logs when it carries user information, a query, a fragment
        or a key-like path segment; results hold it redacted.
    type: str
    required: true
  method:
    description: HTTP method; C(HEAD) cannot be combined with O(body_regex) or O(detailed).
    type: str
    default: GET
    choices: [GET, HEAD]
  status_code:
    description: HTTP statuses that count as a successful attempt.
    type: list
    elements: int
    default: [200]
    aliases: [expected_status]
  body_regex:
    description: Regular expression (Python syntax) the body must contain for an attempt to succeed.
    type: str
  attempts:
    description:
      - Most requests to make; the first success ends the probe.
      - At least O(failures_for_critical), so that an endpoint that is down can be judged C(critical).
    type: int
    default: 3
  retry_delay_ms:
    description: Milliseconds to wait after a failed attempt before the next one.
    type: int
    default: 1000
  failures_for_critical:
    description: Consecutive failed attempts that make the verdict C(critical); fewer, then a success, are a C(warning).
    type: int
    default: 2
  latency_warning_ms:
    description: Latency in milliseconds of the successful request above which the verdict is C(warning).
    type: float
    default: 1000
  latency_critical_ms:
    description: Latency in milliseconds of the successful request above which the verdict is C(critical).
    type: float
    default: 3000
  detailed:
    description: Read the body as a detailed health document (JSON) and judge its overall and component statuses.
    type: bool
    default: false
  overall_status_path:
    description:
      - Dotted path to the overall status in the detailed document.
      - An empty string skips the overall status.
    type: str
    default: overallStatus
  components_path:
    description:
      - Dotted paths where the components may be, tried in order; the first one present is used.
      - >-
        Components are either an object keyed by component name
        (C({"components": {"database": {"status": "healthy", "responseTime": 12}}})) or a list of
        objects carrying their name at O(component_name_key)
        (C({"checks": [{"name": "database", "status": "healthy", "responseTime": 12}]}), the shape
        runbook 002's C(jq '.checks[]') reads).
    type: list
    elements: str
    default: [components, checks]
  component_name_key:
    description: Key of a component's name when the components are a list.
    type: str
    default: name
  component_status_key:
    description: Key of a component's status.
    type: str
    default: status
  component_time_key:
    description: Key of a component's response time in milliseconds.
    type: str
    default: responseTime
  healthy_statuses:
    description: Status values (compared without case) that mean healthy.
    type: list
    elements: str
    default: [healthy, ok, up, pass]
  degraded_statuses:
    description:
      - Status values (compared without case) that mean degraded, a C(warning).
      - Any other value is taken as unhealthy, C(critical).
    type: list
    elements: str
    default: [degraded, warn, warning]
  component_time_warning_ms:
    description: A component's response time in milliseconds above which it is slow, a C(warning).
    type: float
    default: 5000
  component_time_critical_ms:
    description:
      - A component's response time in milliseconds above which the verdict is C(critical).
      - Not applied when unset.
    type: float
notes:
  - Latency defaults are per request. Health endpoints normally answer in milliseconds, so
    1 s is a warning; 3 s is critical, leaving room below the default O(timeout) of 5 s
    to tell a slow endpoint from a hung one. Runbook 000's C(HighResponseTime) (p95 above
    5 s over 5 minutes) is a rate over all traffic and is judged from metrics, not here.
  - A detailed endpoint checks its components while answering, so it can be slower than
    C(/health); raise O(timeout) and the latency thresholds when probing it.
seealso:
  - module: ansible.builtin.uri
  - module: incident.remediation.rpc_health
"""

EXAMPLES = r"""
- name: Is the API up? (a single failure followed by a success is a warning, two in a row critical)
  incident.remediation.http_health:
    url: http://127.0.0.1:3001/health
  register: api

- name: Page when it is down
  ansible.builtin.debug:
    msg: "{{ api.reasons | join('; ') }}"
  when: api.status == 'critical'

- name: Degraded and slow components of the detailed health endpoint (runbook 002)
  incident.remediation.http_health:
    url: https://credlink-api.internal/health/detailed
    detailed: true
    timeout: 15
    ca_cert: /etc/ssl/internal-ca.pem
    auth_headers:
      Authorization: "Bearer {{ health_token }}"
  register: detailed

- name: Restart what is degraded
  ansible.builtin.debug:
    msg: "degraded: {{ detailed.degraded_components }}, slow: {{ detailed.slow_components }}"

- name: Wait until the endpoint answers again after a restart
  incident.remediation.http_health:
    url: http://127.0.0.1:3001/health
    attempts: 2
    retry_delay_ms: 200
  register: api
  until: api.is_available
  retries: 30
  delay: 2
"""

RETURN = r"""
status:
  description: Verdict, the worst of all findings.
  returned: always
  type: str
  choices: [ok, warning, critical, unknown]
  sample: warning
is_available:
  description: Whether the last attempt succeeded, that is the endpoint answers as expected now.
  returned: always
  type: bool
  sample: true
reasons:
  description: Sentences that explain the verdict; empty when everything is within thresholds.
  returned: always
  type: list
  elements: str
  sample:
    - "attempt 1 of 3 failed (HTTP 503 Service Unavailable), then the endpoint answered: a blip"
    - "component 'redis' is degraded"
metrics:
  description: The numbers behind the verdict. Keys are always present; null when not known.
  returned: always
  type: dict
  contains:
    latency_ms:
      description: Round trip of the successful attempt, or of the last one when none succeeded.
      type: float
      sample: 3.42
    attempts_made:
      description: Requests made.
      type: int
    failed_attempts:
      description: Requests that failed.
      type: int
    consecutive_failures:
      description: Longest run of failed requests in a row.
      type: int
    components_total:
      description: Components in the detailed document; null without O(detailed).
      type: int
    components_degraded:
      description: Components whose status is degraded; null without O(detailed).
      type: int
    components_unhealthy:
      description: Components whose status is neither healthy nor degraded; null without O(detailed).
      type: int
    components_slow:
      description: Components above O(component_time_warning_ms); null without O(detailed).
      type: int
    max_component_time_ms:
      description: Highest component response time; null when none is reported.
      type: float
thresholds:
  description: The thresholds applied.
  returned: always
  type: dict
  sample: {"latency_warning_ms": 1000.0, "latency_critical_ms": 3000.0, "failures_for_critical": 2}
elapsed_ms:
  description: Milliseconds the whole probe took, retries and delays included.
  returned: always
  type: float
  sample: 4.1
checked:
  description:
    - The URL probed, without user information, query, fragment or key-like path segments.
    - Every module of the collection names what it checked or acted on in this key.
  returned: always
  type: str
  sample: http://127.0.0.1:3001/health
http_status:
  description: HTTP status of the last attempt; null when it got no answer.
  returned: always
  type: int
  sample: 200
error:
  description: Why the last attempt failed; null when it succeeded.
  returned: always
  type: str
  sample: null
attempt_results:
  description: Every request made, in order.
  returned: always
  type: list
  elements: dict
  contains:
    attempt:
      description: 1 for the first request.
      type: int
    http_status:
      description: HTTP status; null without an answer.
      type: int
    latency_ms:
      description: Milliseconds until the reply was read, or until the request gave up.
      type: float
    ok:
      description: Whether the attempt succeeded.
      type: bool
    error:
      description: Why it failed; null when it succeeded.
      type: str
overall_status:
  description: The overall status in the detailed document; null without O(detailed) or when absent.
  returned: always
  type: str
  sample: degraded
components:
  description: Components of the detailed document; empty without O(detailed).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Component name.
      type: str
      sample: database
    status:
      description: Status as the endpoint reported it; null when absent.
      type: str
      sample: degraded
    response_time_ms:
      description: Response time as the endpoint reported it; null when absent.
      type: float
      sample: 5200
    verdict:
      description: C(ok), C(warning) or C(critical) for this component.
      type: str
degraded_components:
  description: Names of degraded components.
  returned: always
  type: list
  elements: str
  sample: [redis]
unhealthy_components:
  description: Names of components that are neither healthy nor degraded.
  returned: always
  type: list
  elements: str
  sample: []
slow_components:
  description: Names of components above O(component_time_warning_ms).
  returned: always
  type: list
  elements: str
  sample: [database]
"""

import re
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.remediation.plugins.module_utils._http import http_common_argument_spec, request
from ansible_collections.incident.remediation.plugins.module_utils._redact import (
    redact_url,
    scrub,
    show_public_url,
)
from ansible_collections.incident.remediation.plugins.module_utils._verdict import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    Stopwatch,
    Verdict,
    _fmt,
)

# The verdict's thresholds, with documented defaults.
THRESHOLD_SPEC = dict(
    failures_for_critical=dict(type="int", default=2),
    latency_warning_ms=dict(type="float", default=1000.0),
    latency_critical_ms=dict(type="float", default=3000.0),
    component_time_warning_ms=dict(type="float", default=5000.0),
    component_time_critical_ms=dict(type="float"),
)

PROBE_SPEC = dict(
    url=dict(type="str", required=True, no_log=True),
    method=dict(type="str", default="GET", choices=["GET", "HEAD"]),
    status_code=dict(type="list", elements="int", default=[200], aliases=["expected_status"]),
    body_regex=dict(type="str"),
    attempts=dict(type="int", default=3),
    retry_delay_ms=dict(type="int", default=1000),
)

DETAILED_SPEC = dict(
    detailed=dict(type="bool", default=False),
    overall_status_path=dict(type="str", default="overallStatus"),
    components_path=dict(type="list", elements="str", default=["components", "checks"]),
    component_name_key=dict(type="str", default="name", no_log=False),
    component_status_key=dict(type="str", default="status", no_log=False),
    component_time_key=dict(type="str", default="responseTime", no_log=False),
    healthy_statuses=dict(type="list", elements="str", default=["healthy", "ok", "up", "pass"]),
    degraded_statuses=dict(type="list", elements="str", default=["degraded", "warn", "warning"]),
)

_MISSING = object()


# ---------------------------------------------------------------- attempts


def attempt_outcome(reply, status_codes, body_pattern, detailed):
    """Why one reply (an HttpResult) is a failed attempt, or None when it succeeded."""
    if reply.status is None:
        return reply.error or "no answer"
    if reply.status not in status_codes:
        return reply.error or "HTTP %s, expected %s" % (reply.status, ", ".join(str(code) for code in status_codes))
    if body_pattern is not None and not body_pattern.search(reply.text):
        return "HTTP %s but the body does not match %r" % (reply.status, body_pattern.pattern)
    if detailed:
        try:
            document = reply.json()
        except ValueError:
            return "HTTP %s but the body is not JSON" % reply.status
        if not isinstance(document, dict):
            return "HTTP %s but the body is not a JSON object" % reply.status
    return None


def failure_runs(outcomes):
    """(longest run of consecutive failures, failures in all) of a list of attempt oks."""
    longest = run = 0
    for ok in outcomes:
        run = 0 if ok else run + 1
        longest = max(longest, run)
    return longest, len([ok for ok in outcomes if not ok])


def judge_attempts(attempts, failures_for_critical):
    """Verdict on availability from the attempt results (dicts with ok and error)."""
    verdict = Verdict()
    oks = [attempt["ok"] for attempt in attempts]
    longest, failed = failure_runs(oks)
    if not failed:
        return verdict
    total = len(attempts)
    last_error = [attempt["error"] for attempt in attempts if not attempt["ok"]][-1]
    recovered_at = None
    if oks[-1]:
        recovered_at = len(oks)
    if longest >= failures_for_critical:
        reason = "%d of %d %s failed, %d in a row (%s)" % (
            failed, total, "attempt" if total == 1 else "attempts", longest, last_error)
        if recovered_at:
            reason += ", then the endpoint answered again at attempt %d" % recovered_at
        verdict.add(CRITICAL, reason)
    elif recovered_at:
        verdict.add(WARNING, "%s %s of %d failed (%s), then the endpoint answered: a blip"
                    % ("attempt" if failed == 1 else "attempts", _attempt_list(oks), total, last_error))
    else:
        # Only when attempts < failures_for_critical, which main() refuses.
        verdict.add(WARNING, "%d of %d %s failed (%s), fewer than the %d in a row that make it critical"
                    % (failed, total, "attempt" if total == 1 else "attempts", last_error, failures_for_critical))
    return verdict


def _attempt_list(oks):
    numbers = [str(index) for index, ok in enumerate(oks, start=1) if not ok]
    return ", ".join(numbers)


def run_attempts(url, params, probe, *, sleep=time.sleep):
    """Request until one succeeds or probe["attempts"] were made; returns (attempt dicts, last reply,
    reply of the successful attempt or None)."""
    attempts = []
    reply = success = None
    secrets = redact_url(url)[1]
    for number in range(1, probe["attempts"] + 1):
        if number > 1:
            sleep(probe["retry_delay_ms"] / 1000.0)
        reply = request(url, params, method=probe["method"])
        error = attempt_outcome(reply, probe["status_code"], probe["body_pattern"], probe["detailed"])
        if reply.timed_out:
            error = "no answer within %s s" % _fmt(params["timeout"])
        attempts.append(dict(attempt=number, http_status=reply.status, latency_ms=reply.elapsed_ms,
                             ok=error is None, error=scrub(error, secrets)))
        if error is None:
            success = reply
            break
    return attempts, reply, success


# ---------------------------------------------------------------- detailed document


def lookup(document, path):
    """Value at a dotted path (digits index lists), or _MISSING."""
    value = document
    for segment in [part for part in (path or "").split(".") if part != ""]:
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.lstrip("-").isdigit() and -len(value) <= int(segment) < len(value):
            value = value[int(segment)]
        else:
            return _MISSING
    return value


def components_of(document, options):
    """[(name, component dict)] found at the first of options["components_path"] present."""
    for path in options["components_path"]:
        found = lookup(document, path)
        if isinstance(found, dict):
            return [(str(name), component) for name, component in found.items() if isinstance(component, dict)]
        if isinstance(found, list):
            items = [component for component in found if isinstance(component, dict)]
            return [(str(component.get(options["component_name_key"], "%s.%d" % (path, index))), component)
                    for index, component in enumerate(items)]
    return []


def classify(status, options):
    """ok, warning or critical for a reported status value."""
    text = str(status).strip().lower()
    if text in [value.lower() for value in options["healthy_statuses"]]:
        return OK
    if text in [value.lower() for value in options["degraded_statuses"]]:
        return WARNING
    return CRITICAL


def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip().rstrip("ms").strip())
    except ValueError:
        return None


def judge_detailed(document, options, thresholds):
    """(findings as (status, reason) pairs, overall status, component entries) for a detailed
    health document."""
    findings = []
    overall = None
    if options["overall_status_path"]:
        found = lookup(document, options["overall_status_path"])
        if found is _MISSING or found is None:
            findings.append((UNKNOWN, "the detailed health document has no %s" % options["overall_status_path"]))
        else:
            overall = str(found)
            status = classify(found, options)
            if status != OK:
                findings.append((status, "overall status is %s" % overall))
    entries = []
    for name, component in components_of(document, options):
        reported = component.get(options["component_status_key"])
        time_ms = _number(component.get(options["component_time_key"]))
        status_class = None if reported is None else classify(reported, options)
        component_findings = []
        if status_class in (WARNING, CRITICAL):
            component_findings.append((status_class, "component '%s' is %s" % (name, reported)))
        for status, limit in ((CRITICAL, thresholds["component_time_critical_ms"]),
                              (WARNING, thresholds["component_time_warning_ms"])):
            if time_ms is not None and limit is not None and time_ms > limit:
                component_findings.append((status, "response time of component '%s' is %s ms, above the %s "
                                                   "threshold of %s ms" % (name, _fmt(time_ms), status, _fmt(limit))))
                break
        one = Verdict()
        for status, reason in component_findings:
            one.add(status, reason)
        findings.extend(component_findings)
        warning_ms = thresholds["component_time_warning_ms"]
        entries.append(dict(
            name=name,
            status=None if reported is None else str(reported),
            response_time_ms=time_ms,
            verdict=one.status,
            status_class=status_class,
            slow=time_ms is not None and warning_ms is not None and time_ms > warning_ms,
        ))
    return findings, overall, entries


# ---------------------------------------------------------------- module


def empty_metrics():
    return dict(latency_ms=None, attempts_made=0, failed_attempts=0, consecutive_failures=0,
                components_total=None, components_degraded=None, components_unhealthy=None,
                components_slow=None, max_component_time_ms=None)


def component_metrics(components):
    times = [entry["response_time_ms"] for entry in components if entry["response_time_ms"] is not None]
    return dict(
        components_total=len(components),
        components_degraded=len([entry for entry in components if entry["status_class"] == WARNING]),
        components_unhealthy=len([entry for entry in components if entry["status_class"] == CRITICAL]),
        components_slow=len([entry for entry in components if entry["slow"]]),
        max_component_time_ms=max(times) if times else None,
    )


def check(url, params, probe, thresholds, options, *, sleep=time.sleep):
    """Probe and judge; never raises for the endpoint's problems. probe holds method, status_code,
    body_pattern (compiled or None), attempts, retry_delay_ms, detailed; options the detailed
    document's paths and status values."""
    attempts, last, success = run_attempts(url, params, probe, sleep=sleep)
    verdict = judge_attempts(attempts, thresholds["failures_for_critical"])
    metrics = empty_metrics()
    longest, failed = failure_runs([attempt["ok"] for attempt in attempts])
    metrics.update(attempts_made=len(attempts), failed_attempts=failed, consecutive_failures=longest,
                   latency_ms=(success or last).elapsed_ms)
    overall, components = None, []
    if success is not None:
        verdict.check_above("latency", success.elapsed_ms,
                            thresholds["latency_warning_ms"], thresholds["latency_critical_ms"], " ms")
        if probe["detailed"]:
            findings, overall, components = judge_detailed(success.json(), options, thresholds)
            for status, reason in findings:
                verdict.add(status, reason)
            metrics.update(component_metrics(components))
    return dict(
        status=verdict.status,
        is_available=success is not None,
        reasons=verdict.reasons,
        metrics=metrics,
        checked=redact_url(url)[0],
        http_status=attempts[-1]["http_status"],
        error=attempts[-1]["error"],
        attempt_results=attempts,
        overall_status=overall,
        components=[dict((key, entry[key]) for key in ("name", "status", "response_time_ms", "verdict"))
                    for entry in components],
        degraded_components=[entry["name"] for entry in components if entry["status_class"] == WARNING],
        unhealthy_components=[entry["name"] for entry in components if entry["status_class"] == CRITICAL],
        slow_components=[entry["name"] for entry in components if entry["slow"]],
    )


def argument_spec():
    spec = http_common_argument_spec()
    spec.update(PROBE_SPEC)
    spec.update(DETAILED_SPEC)
    spec.update(THRESHOLD_SPEC)
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    if params["attempts"] < 1 or params["failures_for_critical"] < 1:
        module.fail_json(msg="attempts and failures_for_critical must be at least 1")
    if params["attempts"] < params["failures_for_critical"]:
        module.fail_json(msg="attempts (%d) must be at least failures_for_critical (%d), or an endpoint "
                             "that is down could never be judged critical"
                         % (params["attempts"], params["failures_for_critical"]))
    if params["retry_delay_ms"] < 0:
        module.fail_json(msg="retry_delay_ms must not be negative")
    if params["method"] == "HEAD" and (params["body_regex"] or params["detailed"]):
        module.fail_json(msg="method HEAD gets no body: it cannot be combined with body_regex or detailed")
    body_pattern = None
    if params["body_regex"]:
        try:
            body_pattern = re.compile(params["body_regex"])
        except re.error as exc:
            module.fail_json(msg="body_regex is not a valid regular expression: %s" % exc)
    show_public_url(module, params["url"])
    probe = dict((name, params[name]) for name in PROBE_SPEC)
    probe.update(body_pattern=body_pattern, detailed=params["detailed"])
    options = dict((name, params[name]) for name in DETAILED_SPEC)
    thresholds = dict((name, params[name]) for name in THRESHOLD_SPEC)
    common = dict((name, params[name]) for name in http_common_argument_spec())
    clock = Stopwatch()
    result = check(params["url"], common, probe, thresholds, options)
    module.exit_json(changed=False, thresholds=thresholds, elapsed_ms=clock.elapsed_ms(), **result)


if __name__ == "__main__":
    main()
