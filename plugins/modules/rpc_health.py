#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: rpc_health
short_description: Probe a primary JSON-RPC endpoint and its backups at once, and name the best one
version_added: 0.1.0
description:
  - Sends one JSON-RPC 2.0 call over HTTP(S) to the primary endpoint and to every backup,
    all at the same time (one thread each), so a hung endpoint costs its own timeout and
    not the sum of them.
  - By default calls C(eth_blockNumber), decodes the hex block height, and measures how
    far each endpoint lags behind the highest height seen (its lag, in blocks). Any other
    method, params and result path can be given for other JSON-RPC services; with
    O(result_is_height=false) the result is only read, not compared.
  - Each endpoint gets a verdict. C(ok); C(warning) when its lag is above O(lag_warning)
    or its latency above O(latency_warning_ms); C(critical) when its lag is above
    O(lag_critical), its latency above O(latency_critical_ms), or it gave no usable
    answer (transport error, timeout, HTTP error, a reply that is not JSON-RPC, a
    JSON-RPC error, a result that is missing or not a height).
  - The overall RV(status) follows the primary, which is what the application uses.
    C(critical) when the primary is critical, even if a backup is fine; this is the
    signal the C(rpc_failover) playbook acts on, and RV(best_endpoint) names the backup
    to switch to. C(warning) when the primary is in warning, or when the primary is fine
    but a backup has a problem (a broken backup leaves nothing to fail over to; the
    reason names it). C(ok) otherwise.
  - URLs often carry credentials or an API key (C(https://user:pass@host),
    C(/v3/<key>), C(?apikey=...)). The O(primary.url) and O(backups[].url) options are
    C(no_log), and results only hold a redacted URL (no user information, no query, no
    fragment, key-like path segments replaced by C([REDACTED])) and the caller's
    O(primary.name).
  - An endpoint that does not answer is a result, never a task failure.
  - Reads only; nothing is changed.
author:
  - incident.remediation contributors (@incident-remediation)
extends_documentation_fragment:
  - incident.remediation.http
  - incident.remediation.attributes
  - incident.remediation.attributes.read_only
options:
  primary:
    description: The endpoint the application uses.
    type: dict
    required: true
    suboptions: &endpoint
      url:
        description:
          - URL of the JSON-RPC endpoint, C(http) or C(https).
          - User information in it (C(user:password@)) is sent as basic authentication.
          - Hidden from output and logs when it carries user information, a query, a
            fragment or a key-like path segment.
        type: str
        required: true
      name:
        description:
          - Name of the endpoint in results and reasons, for example the provider's.
          - Names must be unique. Defaults to C(primary) and C(backup1), C(backup2), ...
        type: str
      timeout:
        description: Seconds to wait for this endpoint; defaults to O(timeout).
        type: float
      headers:
        description: Headers for this endpoint only, added to O(headers).
        type: dict
        default: {}
      auth_headers:
        description:
          - Secret headers for this endpoint only (C(Authorization), C(X-Api-Key)), added to
            O(auth_headers). Hidden from output and logs.
        type: dict
        default: {}
  backups:
    description: Backup endpoints, probed at the same time as the primary.
    type: list
    elements: dict
    default: []
    suboptions: *endpoint
  method:
    description: JSON-RPC method to call.
    type: str
    default: eth_blockNumber
  params:
    description: JSON-RPC params, a list (positional) or a dict (named).
    type: raw
    default: []
  result_path:
    description:
      - Dotted path to the value to read in the JSON-RPC response, for example C(result)
        or C(result.number); a number selects a list item (C(result.0.height)).
      - A path that does not start with C(result) is taken inside C(result).
    type: str
    default: result
  result_is_height:
    description:
      - Whether the value at O(result_path) is a block height, as an integer or a
        C(0x)-prefixed hex string (as C(eth_blockNumber) returns it).
      - When true, heights are compared and lag thresholds apply. When false, the value is
        returned as is and only errors and latency are judged.
    type: bool
    default: true
  lag_warning:
    description: Blocks behind the best height above which an endpoint is in C(warning).
    type: int
    default: 5
  lag_critical:
    description: Blocks behind the best height above which an endpoint is C(critical).
    type: int
    default: 20
  latency_warning_ms:
    description: Round trip in milliseconds above which an endpoint is in C(warning).
    type: float
    default: 1000
  latency_critical_ms:
    description: Round trip in milliseconds above which an endpoint is C(critical).
    type: float
    default: 3000
notes:
  - Runbook 000 pages on C(BlockchainRPCDown) when more than 50% of requests fail for
    2 minutes. That rate is the alert's; this module is one probe of every endpoint, and
    RV(metrics.failing_ratio) is the share of endpoints that failed it. Repeat the task
    with C(until)/C(retries) to watch an endpoint over time.
  - Default thresholds. Lag 5 blocks (warning) and 20 blocks (critical); at Ethereum's 12 s
    blocks that is one and four minutes behind, at 2 s layer-2 blocks 10 and 40 seconds;
    raise them for fast chains. Latency 1 s (warning) and 3 s (critical); an
    C(eth_blockNumber) round trip normally takes tens to a few hundred milliseconds, and a
    node slower than 3 s makes the application's requests, which chain several RPC calls,
    exceed the 5 s of runbook 000's C(HighResponseTime).
  - Lag is relative to the highest height among the endpoints probed, so endpoints that
    are all stuck at the same height do not lag one another; use backups from another
    provider.
seealso:
  - module: incident.remediation.http_health
"""

EXAMPLES = r"""
- name: Probe the RPC provider and its backups
  incident.remediation.rpc_health:
    primary:
      name: alchemy
      url: "{{ rpc_url }}"  # https://eth-mainnet.g.alchemy.com/v2/<key>, hidden from output
    backups:
      - name: infura
        url: "{{ rpc_backup_url }}"
      - name: own-node
        url: http://10.0.0.12:8545
        auth_headers:
          Authorization: "Bearer {{ node_token }}"
    timeout: 2
  register: rpc

- name: Switch the application to the best backup when the primary is unhealthy
  ansible.builtin.debug:
    msg: "fail over to {{ rpc.best_endpoint }}"
  when: rpc.status == 'critical' and rpc.best_endpoint is not none

- name: A non-Ethereum JSON-RPC service (Bitcoin-style getblockcount, integer height)
  incident.remediation.rpc_health:
    primary:
      url: http://rpcuser:rpcpass@127.0.0.1:8332/
    method: getblockcount
    lag_warning: 1
    lag_critical: 3

- name: Read a field of a block object instead of a plain height
  incident.remediation.rpc_health:
    primary:
      url: http://127.0.0.1:8545
    method: eth_getBlockByNumber
    params: [latest, false]
    result_path: result.number
"""

RETURN = r"""
status:
  description: Overall verdict, following the primary; see the description.
  returned: always
  type: str
  choices: [ok, warning, critical, unknown]
  sample: critical
is_available:
  description: Whether the primary gave a usable answer (it may still lag or be slow).
  returned: always
  type: bool
  sample: false
reasons:
  description:
    - Sentences that explain the verdict, the primary's first; empty when all is well.
    - When the primary is unhealthy, the last one names the endpoint to fail over to, or
      says there is none.
  returned: always
  type: list
  elements: str
  sample:
    - "primary 'alchemy' did not answer within 2 s"
    - "the primary is unhealthy; backup 'infura' is healthy and is the best endpoint"
best_endpoint:
  description:
    - Name of the best healthy endpoint (verdict C(ok) or C(warning)), the least lag first,
      then the lowest latency, the primary winning ties; null when none is healthy.
    - It may be a backup while the primary is healthy but a little behind; act on
      RV(status), not on this alone.
  returned: always
  type: str
  sample: infura
endpoints:
  description: One entry per endpoint, the primary first, then the backups in order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The endpoint's name.
      type: str
      sample: alchemy
    role:
      description: C(primary) or C(backup).
      type: str
      sample: primary
    url:
      description: The URL without credentials, query or key-like path segments.
      type: str
      sample: https://eth-mainnet.g.alchemy.com/v2/[REDACTED]
    status:
      description: This endpoint's verdict.
      type: str
      choices: [ok, warning, critical]
    healthy:
      description: Whether it answered usably and its verdict is C(ok) or C(warning).
      type: bool
    latency_ms:
      description: Milliseconds until the reply was read, or until the request gave up.
      type: float
      sample: 84.2
    http_status:
      description: HTTP status of the reply; null when there was none.
      type: int
      sample: 200
    height:
      description: Block height decoded from the result; null when not a height or no answer.
      type: int
      sample: 19000000
    lag:
      description: Blocks behind the best height seen; null without a height.
      type: int
      sample: 0
    result:
      description: The value at O(result_path) as the endpoint returned it; null without one.
      type: raw
      sample: "0x121eac0"
    rpc_error:
      description: The JSON-RPC error object's C(code) and C(message); null when none.
      type: dict
      sample: {"code": -32000, "message": "header not found"}
    error:
      description: What made the answer unusable (transport, HTTP, JSON-RPC or result); null when none.
      type: str
      sample: "no answer within 2 s"
    timed_out:
      description: Whether the endpoint did not answer within its timeout.
      type: bool
    reasons:
      description: Sentences explaining this endpoint's verdict.
      type: list
      elements: str
metrics:
  description: The numbers behind the verdict. Keys are always present; null when not known.
  returned: always
  type: dict
  contains:
    best_height:
      description: Highest height among the endpoints.
      type: int
    primary_height:
      description: The primary's height.
      type: int
    primary_lag:
      description: Blocks the primary is behind the best height.
      type: int
    primary_latency_ms:
      description: The primary's round trip in milliseconds.
      type: float
    endpoints_total:
      description: Endpoints probed.
      type: int
    endpoints_healthy:
      description: Endpoints with a C(ok) or C(warning) verdict.
      type: int
    endpoints_failing:
      description: Endpoints that gave no usable answer.
      type: int
    failing_ratio:
      description: C(endpoints_failing / endpoints_total).
      type: float
thresholds:
  description: The thresholds applied.
  returned: always
  type: dict
  sample: {"lag_warning": 5, "lag_critical": 20, "latency_warning_ms": 1000.0, "latency_critical_ms": 3000.0}
elapsed_ms:
  description: Milliseconds the probes took, all endpoints together.
  returned: always
  type: float
  sample: 2003.4
checked:
  description:
    - The primary's URL, without user information, query, fragment or key-like path segments
      (as in RV(endpoints[].url)).
    - Every module of the collection names what it checked or acted on in this key.
  returned: always
  type: str
  sample: https://eth-mainnet.g.alchemy.com/v2/[REDACTED]
"""

import threading
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.remediation.plugins.module_utils._http import (
    HttpResult,
    http_common_argument_spec,
    post_json,
)
from ansible_collections.incident.remediation.plugins.module_utils._redact import (
    redact_url,
    scrub,
    show_public_url,
)
from ansible_collections.incident.remediation.plugins.module_utils._verdict import (
    CRITICAL,
    OK,
    WARNING,
    Stopwatch,
    Verdict,
    _fmt,
)

ENDPOINT_OPTIONS = dict(
    url=dict(type="str", required=True, no_log=True),
    name=dict(type="str"),
    timeout=dict(type="float"),
    headers=dict(type="dict", default={}),
    auth_headers=dict(type="dict", default={}, no_log=True),
)

# The verdict's thresholds, with documented defaults.
THRESHOLD_SPEC = dict(
    lag_warning=dict(type="int", default=5),
    lag_critical=dict(type="int", default=20),
    latency_warning_ms=dict(type="float", default=1000.0),
    latency_critical_ms=dict(type="float", default=3000.0),
)

CALL_SPEC = dict(
    method=dict(type="str", default="eth_blockNumber"),
    params=dict(type="raw", default=[]),
    result_path=dict(type="str", default="result"),
    result_is_height=dict(type="bool", default=True),
)

# A thread that has not finished this long after its timeout is given up on.
DEADLINE_GRACE_S = 0.25


class ResultError(Exception):
    """The JSON-RPC reply does not hold a usable value; the message says why."""


# ---------------------------------------------------------------- pure helpers


def split_path(path):
    """Segments of a dotted result path, inside `result` unless it starts with it."""
    segments = [segment for segment in (path or "").split(".") if segment != ""]
    if not segments or segments[0] != "result":
        segments.insert(0, "result")
    return segments


def extract(document, path):
    """The value at a dotted path; digits index lists. Raises ResultError when absent."""
    segments = split_path(path)
    value = document
    for depth, segment in enumerate(segments):
        where = ".".join(segments[: depth + 1])
        if isinstance(value, dict):
            if segment not in value:
                raise ResultError("the reply has no %s" % where)
            value = value[segment]
        elif isinstance(value, list):
            try:
                value = value[int(segment)]
            except (ValueError, IndexError):
                raise ResultError("the reply has no %s" % where) from None
        else:
            raise ResultError("the reply has no %s (%s is not an object or a list)"
                              % (where, ".".join(segments[:depth]) or "the reply"))
    return value


def decode_height(value):
    """A block height from an integer, a 0x hex string or a decimal string; raises ResultError."""
    height = None
    if isinstance(value, bool):
        height = None
    elif isinstance(value, int):
        height = value
    elif isinstance(value, float) and value.is_integer():
        height = int(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            if text[:2].lower() == "0x" and len(text) > 2:
                height = int(text[2:], 16)
            elif text.isdigit():
                height = int(text)
        except ValueError:
            height = None
    if height is None or height < 0:
        raise ResultError("the result %s is not a block height (an integer or 0x hex)" % _short(value))
    return height


def _short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def rpc_call(method, params):
    return {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}


def empty_observation():
    return dict(latency_ms=None, http_status=None, result=None, height=None,
                rpc_error=None, error=None, timed_out=False)


def rpc_error_of(error):
    """code and message of a JSON-RPC error member (an object by the spec, tolerated otherwise)."""
    if isinstance(error, dict):
        return dict(code=error.get("code"), message=error.get("message"))
    return dict(code=None, message=str(error))


def interpret(reply, result_path, result_is_height, timeout):
    """What a JSON-RPC reply (an HttpResult) says: an observation dict; never raises."""
    seen = empty_observation()
    seen.update(latency_ms=reply.elapsed_ms, http_status=reply.status, timed_out=reply.timed_out)
    if reply.status is None:
        if reply.timed_out:
            seen["error"] = "no answer within %s s" % _fmt(timeout)
        else:
            seen["error"] = reply.error or "no answer"
        return seen
    try:
        document = reply.json()
    except ValueError:
        document = None
    if isinstance(document, dict) and document.get("error") is not None and (
            isinstance(document["error"], dict) or "jsonrpc" in document):
        seen["rpc_error"] = rpc_error_of(document["error"])
        seen["error"] = "JSON-RPC error %s: %s" % (seen["rpc_error"]["code"], seen["rpc_error"]["message"])
        if reply.status >= 300:
            seen["error"] = "HTTP %s, %s" % (reply.status, seen["error"])
        return seen
    if reply.status >= 300 or reply.error:
        seen["error"] = reply.error or "HTTP %s" % reply.status
        return seen
    if document is None:
        seen["error"] = "the reply is not JSON: %s" % _short(reply.text)
        return seen
    if not isinstance(document, dict) or "result" not in document:
        seen["error"] = "the reply is not a JSON-RPC response: %s" % _short(document)
        return seen
    try:
        seen["result"] = extract(document, result_path)
        if result_is_height:
            seen["height"] = decode_height(seen["result"])
    except ResultError as exc:
        seen["error"] = str(exc)
    return seen


def label(endpoint):
    """How reasons name an endpoint: its name, with its role when the name does not say it."""
    name, role = endpoint["name"], endpoint["role"]
    return name if name.startswith(role) else "%s '%s'" % (role, name)


def judge_endpoint(endpoint, thresholds):
    """Set status, healthy and reasons of an endpoint whose observation and lag are filled in;
    returns its findings as (status, reason) pairs."""
    name = label(endpoint)
    findings = []
    if endpoint["error"]:
        if endpoint["timed_out"]:
            reason = "%s did not answer within %s s" % (name, _fmt(endpoint["timeout"]))
        elif endpoint["rpc_error"] is not None:
            reason = "%s answered with %s" % (name, endpoint["error"])
        else:
            reason = "%s gave no usable answer: %s" % (name, endpoint["error"])
        findings.append((CRITICAL, reason))
    else:
        checks = (
            ("lag of %s" % name, endpoint["lag"], thresholds["lag_warning"], thresholds["lag_critical"], " blocks"),
            ("latency of %s" % name, endpoint["latency_ms"],
             thresholds["latency_warning_ms"], thresholds["latency_critical_ms"], " ms"),
        )
        for check_name, value, warning, critical, unit in checks:
            one = Verdict()
            one.check_above(check_name, value, warning, critical, unit)
            findings.extend((one.status, reason) for reason in one.reasons)
    verdict = Verdict()
    for status, reason in findings:
        verdict.add(status, reason)
    endpoint.update(status=verdict.status, reasons=verdict.reasons,
                    healthy=not endpoint["error"] and verdict.status in (OK, WARNING))
    return findings


def fill_lags(endpoints):
    """Best height among endpoints, and each endpoint's lag behind it."""
    heights = [endpoint["height"] for endpoint in endpoints if endpoint["height"] is not None]
    best = max(heights) if heights else None
    for endpoint in endpoints:
        endpoint["lag"] = None if endpoint["height"] is None else best - endpoint["height"]
    return best


def choose_best(endpoints):
    """Name of the healthy endpoint with the least lag, then the lowest latency; ties keep
    the given order (primary first). None when no endpoint is healthy."""
    healthy = [(index, endpoint) for index, endpoint in enumerate(endpoints) if endpoint["healthy"]]
    if not healthy:
        return None

    def rank(item):
        index, endpoint = item
        lag = endpoint["lag"] if endpoint["lag"] is not None else 0
        latency = endpoint["latency_ms"] if endpoint["latency_ms"] is not None else float("inf")
        return (lag, latency, index)

    return min(healthy, key=rank)[1]["name"]


def overall(endpoints, findings, best):
    """The overall verdict from the endpoints' findings: the primary's count as they are,
    a backup's at most as a warning; a primary that is not healthy is critical."""
    verdict = Verdict()
    primary = endpoints[0]
    for status, reason in findings[0]:
        verdict.add(status, reason)
    for endpoint_findings in findings[1:]:
        for _status, reason in endpoint_findings:
            verdict.add(WARNING, reason)
    if not primary["healthy"]:
        if best is not None:
            best_endpoint = next(endpoint for endpoint in endpoints if endpoint["name"] == best)
            verdict.add(CRITICAL, "the primary is unhealthy; %s is healthy and is the best endpoint"
                        % label(best_endpoint))
        elif len(endpoints) > 1:
            verdict.add(CRITICAL, "the primary is unhealthy and no backup is healthy")
        else:
            verdict.add(CRITICAL, "the primary is unhealthy and there is no backup")
    return verdict


def metrics_of(endpoints, best_height):
    primary = endpoints[0]
    failing = len([endpoint for endpoint in endpoints if endpoint["error"]])
    return dict(
        best_height=best_height,
        primary_height=primary["height"],
        primary_lag=primary["lag"],
        primary_latency_ms=primary["latency_ms"],
        endpoints_total=len(endpoints),
        endpoints_healthy=len([endpoint for endpoint in endpoints if endpoint["healthy"]]),
        endpoints_failing=failing,
        failing_ratio=round(float(failing) / len(endpoints), 4),
    )


# ---------------------------------------------------------------- probing


def endpoint_list(primary, backups):
    """Endpoint dicts with role and default names; raises ValueError on duplicate names."""
    endpoints = [dict(primary, role="primary", name=primary.get("name") or "primary")]
    for index, backup in enumerate(backups or [], start=1):
        endpoints.append(dict(backup, role="backup", name=backup.get("name") or "backup%d" % index))
    names = [endpoint["name"] for endpoint in endpoints]
    duplicates = sorted(set(name for name in names if names.count(name) > 1))
    if duplicates:
        raise ValueError("endpoint names must be unique; repeated: %s" % ", ".join(duplicates))
    return endpoints


def request_params(endpoint, common):
    """The _http.request options for one endpoint: common ones, its own timeout and headers."""
    params = dict(common)
    params["timeout"] = endpoint.get("timeout") or common["timeout"]
    params["headers"] = dict(common.get("headers") or {}, **(endpoint.get("headers") or {}))
    params["auth_headers"] = dict(common.get("auth_headers") or {}, **(endpoint.get("auth_headers") or {}))
    return params


def probe_all(endpoints, common, call):
    """Call every endpoint concurrently, each within its own timeout; returns the endpoint
    entries with their observations, in the given order."""
    document = rpc_call(call["method"], call["params"])
    observations = [None] * len(endpoints)
    prepared = [request_params(endpoint, common) for endpoint in endpoints]

    def run(index):
        params = prepared[index]
        reply = post_json(endpoints[index]["url"], params, document)
        observations[index] = interpret(reply, call["result_path"], call["result_is_height"], params["timeout"])

    started = time.monotonic()
    threads = []
    for index in range(len(endpoints)):
        thread = threading.Thread(target=run, args=(index,), name="rpc_health-%d" % index)
        thread.daemon = True  # one that never returns must not hold the module open
        thread.start()
        threads.append(thread)
    for index, thread in enumerate(threads):
        deadline = started + prepared[index]["timeout"] + DEADLINE_GRACE_S
        thread.join(max(0.0, deadline - time.monotonic()))
    entries = []
    for index, endpoint in enumerate(endpoints):
        seen = observations[index]
        if seen is None:  # still reading a trickling reply: give up at the deadline
            timeout = prepared[index]["timeout"]
            seen = interpret(HttpResult(elapsed_ms=round((time.monotonic() - started) * 1000.0, 2),
                                        error="deadline", timed_out=True),
                             call["result_path"], call["result_is_height"], timeout)
        redacted, secrets = redact_url(endpoint["url"])
        seen["error"] = scrub(seen["error"], secrets)
        entries.append(dict(
            name=endpoint["name"], role=endpoint["role"], url=redacted,
            timeout=prepared[index]["timeout"], status=None, healthy=False, lag=None, reasons=[],
            **seen
        ))
    return entries


RETURNED_ENDPOINT_KEYS = ("name", "role", "url", "status", "healthy", "latency_ms", "http_status", "height",
                          "lag", "result", "rpc_error", "error", "timed_out", "reasons")


def check(endpoints, common, call, thresholds):
    """Probe and judge; never raises for an endpoint's problem."""
    entries = probe_all(endpoints, common, call)
    best_height = fill_lags(entries)
    findings = [judge_endpoint(entry, thresholds) for entry in entries]
    best = choose_best(entries)
    verdict = overall(entries, findings, best)
    return dict(
        status=verdict.status,
        is_available=not entries[0]["error"],
        reasons=verdict.reasons,
        best_endpoint=best,
        endpoints=[dict((key, entry[key]) for key in RETURNED_ENDPOINT_KEYS) for entry in entries],
        metrics=metrics_of(entries, best_height),
        checked=entries[0]["url"],
    )


def argument_spec():
    spec = http_common_argument_spec()
    spec.update(
        primary=dict(type="dict", required=True, options=ENDPOINT_OPTIONS),
        backups=dict(type="list", elements="dict", default=[], options=ENDPOINT_OPTIONS),
    )
    spec.update(CALL_SPEC)
    spec.update(THRESHOLD_SPEC)
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    if not isinstance(params["params"], (list, dict)):
        module.fail_json(msg="params must be a list or a dict, not %s" % type(params["params"]).__name__)
    try:
        endpoints = endpoint_list(params["primary"], params["backups"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    for endpoint in endpoints:
        show_public_url(module, endpoint["url"])
    thresholds = dict((name, params[name]) for name in THRESHOLD_SPEC)
    call = dict((name, params[name]) for name in CALL_SPEC)
    common = dict((name, params[name]) for name in http_common_argument_spec())
    clock = Stopwatch()
    result = check(endpoints, common, call, thresholds)
    module.exit_json(changed=False, thresholds=thresholds, elapsed_ms=clock.elapsed_ms(), **result)


if __name__ == "__main__":
    main()
