#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: queue_health
short_description: Check job queue backlogs and return a verdict per queue with reasons
version_added: 0.1.0
description:
  - Reads the backlog of one or more job queues from one backend, judges each against
    depth thresholds, and reports consumers (workers), failed jobs and the age of the
    oldest waiting job where the backend knows them.
  - "Backends: V(redis_list) (C(LLEN) of a list), V(redis_stream) (a stream and its
    consumer groups: lag, pending entries, consumers, idle time of the oldest pending
    entry), V(bullmq) (the Redis keys BullMQ keeps for a queue), V(rabbitmq) (the
    management plugin's HTTP API) and V(metrics) (a gauge on a Prometheus C(/metrics)
    endpoint)."
  - The depth judged is the number of jobs waiting to be handed to a consumer. Per
    backend, V(redis_list) the list length; V(redis_stream) the lag of the consumer
    group (entries not yet delivered to it); V(bullmq) the C(wait), C(paused) and
    C(prioritized) jobs; V(rabbitmq) C(messages_ready); V(metrics) the gauge value.
    Jobs in flight (BullMQ C(active), RabbitMQ C(messages_unacknowledged), stream
    pending entries) are reported apart and added to the depth with O(count_in_flight=true).
  - A queue with waiting jobs and no consumer is critical (C(no consumers)), since
    nothing will drain it. A paused BullMQ queue with waiting jobs is a warning.
  - With O(sample_interval) above 0 the module reads every queue twice, that many
    seconds apart, and reports the growth rate in jobs per second and whether the
    backlog is draining, so a playbook can verify that a remediation worked.
  - An unreachable backend is a result, not a failure. The module returns
    RV(status=critical) and RV(is_available=false) with the reason.
  - Reads only; it never changes a queue.
author:
  - incident.remediation contributors (@incident-remediation)
extends_documentation_fragment:
  - incident.remediation.redis
  - incident.remediation.attributes
  - incident.remediation.attributes.read_only
options:
  backend:
    description:
      - Where the queues live.
      - The Redis connection options apply to V(redis_list), V(redis_stream) and V(bullmq);
        O(api_url) and the API options apply to V(rabbitmq) and V(metrics).
    type: str
    required: true
    choices: [redis_list, redis_stream, bullmq, rabbitmq, metrics]
  queues:
    description:
      - The queues to check, each with its own name and optional thresholds that
        override the module-level ones.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - The queue. V(redis_list) and V(redis_stream) the key; V(bullmq) the queue
            name (without prefix); V(rabbitmq) the queue name; V(metrics) the value of
            the O(metrics_label) label.
        type: str
        required: true
      group:
        description:
          - V(redis_stream) only. The consumer group to judge.
          - When unset, every group is reported and the one with the largest backlog is judged.
        type: str
      vhost:
        description: V(rabbitmq) only. The virtual host of this queue, when not O(vhost).
        type: str
      depth_warning:
        description: Overrides O(depth_warning) for this queue.
        type: int
      depth_critical:
        description: Overrides O(depth_critical) for this queue.
        type: int
      failed_warning:
        description: Overrides O(failed_warning) for this queue.
        type: int
      failed_critical:
        description: Overrides O(failed_critical) for this queue.
        type: int
      age_warning_seconds:
        description: Overrides O(age_warning_seconds) for this queue.
        type: float
      age_critical_seconds:
        description: Overrides O(age_critical_seconds) for this queue.
        type: float
  depth_warning:
    description: Depth above which a queue is C(warning) (runbook HighQueueDepth, more than 100 jobs).
    type: int
    default: 100
  depth_critical:
    description: Depth above which a queue is C(critical) (runbook CriticalQueueDepth, more than 500 jobs).
    type: int
    default: 500
  failed_warning:
    description:
      - Failed jobs (BullMQ C(failed) set) above which a queue is C(warning).
      - Not applied when unset; other backends do not report failed jobs.
    type: int
  failed_critical:
    description: Failed jobs above which a queue is C(critical); not applied when unset.
    type: int
  age_warning_seconds:
    description:
      - Age in seconds of the oldest waiting job above which a queue is C(warning).
      - Not applied when unset, nor where the age is not known (see RV(queues[].metrics.oldest_age_seconds)).
    type: float
  age_critical_seconds:
    description: Age in seconds of the oldest waiting job above which a queue is C(critical); not applied when unset.
    type: float
  count_in_flight:
    description: Add jobs in flight (delivered but not finished) to the depth judged.
    type: bool
    default: false
  check_consumers:
    description:
      - Judge a queue with waiting jobs and no consumer as C(critical).
      - Turn off where consumers cannot be seen, for example BullMQ on a managed Redis
        that refuses C(CLIENT SETNAME), where every queue would show 0 workers.
    type: bool
    default: true
  sample_interval:
    description:
      - Seconds between two readings of every queue, to measure the growth rate.
      - V(0) takes one reading, and RV(queues[].metrics.growth_rate) and
        RV(queues[].metrics.draining) are null.
    type: float
    default: 0
  bullmq_prefix:
    description: V(bullmq) only. The key prefix of the queues (BullMQ's C(prefix) option).
    type: str
    default: bull
  api_url:
    description:
      - V(rabbitmq) the base URL of the management API, for example V(http://127.0.0.1:15672).
      - V(metrics) the URL of the metrics endpoint, for example V(http://127.0.0.1:3001/metrics).
      - Required for these two backends. O(validate_certs), O(ca_cert) and O(connect_timeout)
        also apply to it.
      - Give credentials with O(api_user) and O(api_password), not in the URL; the
        URL is not secret and shows in logs (RV(checked) drops any C(user:password@)).
    type: str
  api_user:
    description: User for HTTP basic authentication to O(api_url). No authentication when unset.
    type: str
  api_password:
    description: Password of O(api_user).
    type: str
  vhost:
    description: V(rabbitmq) only. The virtual host of the queues.
    type: str
    default: /
  metrics_gauge:
    description: V(metrics) only. The name of the gauge that holds the depth.
    type: str
    default: queue_depth
  metrics_label:
    description: V(metrics) only. The label whose value is the queue name.
    type: str
    default: queue
  metrics_labels:
    description:
      - "V(metrics) only. More label matchers the series must satisfy, such as C({job: worker})."
      - Matching series are summed.
    type: dict
    default: {}
  metrics_consumers_gauge:
    description:
      - V(metrics) only. A gauge with the consumer (worker) count of each queue, with the
        same labels as O(metrics_gauge). Consumers are not known when unset.
    type: str
notes:
  - Thresholds default to the runbooks' values (HighQueueDepth above 100 jobs, CriticalQueueDepth above 500).
  - BullMQ workers are counted with C(CLIENT LIST), as BullMQ's own C(Queue.getWorkers) does
    (clients named C(<prefix>:<base64 of the queue name>)). When the user may not run it,
    RV(queues[].metrics.consumers) is null and a note says why.
  - The age of the oldest BullMQ job is measured from its C(timestamp) (plus C(delay)) to
    the Redis server's clock; the age of the oldest undelivered stream entry from its id;
    RabbitMQ's from C(head_message_timestamp), which exists only when producers set the
    C(timestamp) property.
seealso:
  - module: incident.remediation.cache_health
"""

EXAMPLES = r"""
- name: Check the BullMQ queues of the app
  incident.remediation.queue_health:
    backend: bullmq
    login_host: 127.0.0.1
    queues:
      - name: emails
      - name: exports
        depth_warning: 1000
        depth_critical: 5000
  register: queues

- name: Fail when a queue is critical
  ansible.builtin.assert:
    that: queues.status != 'critical'
    fail_msg: "{{ queues.reasons | join('; ') }}"

- name: Verify the backlog drains after scaling the workers
  incident.remediation.queue_health:
    backend: bullmq
    queues: [{name: emails}]
    sample_interval: 5
  register: after
  until: after.queues[0].metrics.draining or after.status == 'ok'
  retries: 6
  delay: 10

- name: Check a RabbitMQ queue through the management API
  incident.remediation.queue_health:
    backend: rabbitmq
    api_url: http://127.0.0.1:15672
    api_user: monitoring
    api_password: "{{ vault_rabbitmq_password }}"
    queues:
      - name: invoices

- name: Check the queue_depth gauge the app exports
  incident.remediation.queue_health:
    backend: metrics
    api_url: http://127.0.0.1:3001/metrics
    metrics_gauge: queue_depth
    metrics_label: queue
    queues:
      - name: default

- name: Check a Redis stream's consumer group
  incident.remediation.queue_health:
    backend: redis_stream
    queues:
      - name: events
        group: indexer
    age_warning_seconds: 300
"""

RETURN = r"""
status:
  description: Verdict, the worst of all queues and of the backend's availability.
  returned: always
  type: str
  choices: [ok, warning, critical, unknown]
  sample: warning
is_available:
  description: Whether the backend answered and accepted the credentials, in every reading.
  returned: always
  type: bool
  sample: true
reasons:
  description: Sentences that explain the verdict, each queue's prefixed with its name; empty when all is well.
  returned: always
  type: list
  elements: str
  sample: ["queue emails: queue depth is 240, above the warning threshold of 100"]
metrics:
  description: Totals over the queues. Keys are always present; null when not known.
  returned: always
  type: dict
  contains:
    queue_count:
      description: Queues checked.
      type: int
      sample: 2
    total_depth:
      description: Sum of the depths that were read.
      type: int
      sample: 250
    max_depth:
      description: The largest depth read.
      type: int
      sample: 240
    sample_seconds:
      description: Seconds between the two readings, null with one reading.
      type: float
      sample: 5.01
thresholds:
  description: The module-level thresholds; each queue's effective ones are in RV(queues[].thresholds).
  returned: always
  type: dict
  sample: {"depth_warning": 100, "depth_critical": 500, "failed_warning": null}
elapsed_ms:
  description: Milliseconds the checks took, the sampling interval included.
  returned: always
  type: float
  sample: 3.42
backend:
  description: The backend read.
  returned: always
  type: str
  sample: bullmq
checked:
  description:
    - V(redis_list), V(redis_stream) and V(bullmq) the Redis server and database read, as
      C(redis://host:port/db); C(rediss://) with O(tls=true), C(user@) before the host with
      O(login_user). Never holds a password.
    - V(rabbitmq) and V(metrics) O(api_url) without user information, query, fragment or
      key-like path segments.
    - Every module of the collection names what it checked or acted on in this key.
  returned: always
  type: str
  sample: redis://127.0.0.1:6379/0
error:
  description: The error that kept the backend from being read, null when none.
  returned: always
  type: str
  sample: null
queues:
  description: One entry per queue of O(queues), in the same order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The queue name.
      type: str
      sample: emails
    source:
      description: What was read, such as the Redis key, BullMQ key prefix, API path or series.
      type: str
      sample: bull:emails
    status:
      description: Verdict of this queue.
      type: str
      sample: ok
    reasons:
      description: Sentences that explain this queue's verdict.
      type: list
      elements: str
    notes:
      description: Facts that did not change the verdict, such as what could not be counted.
      type: list
      elements: str
    error:
      description: Why this queue could not be read, null when it was.
      type: str
    thresholds:
      description: The thresholds applied to this queue.
      type: dict
    metrics:
      description: The numbers behind the verdict. Keys are always present; null when the backend does not know them.
      type: dict
      contains:
        depth:
          description:
            - The depth judged, RV(queues[].metrics.waiting) plus, with O(count_in_flight),
              RV(queues[].metrics.in_flight).
          type: int
          sample: 240
        waiting:
          description: Jobs waiting for a consumer (see the description for each backend).
          type: int
        in_flight:
          description: Jobs delivered and not yet finished (BullMQ active, RabbitMQ unacknowledged, stream pending).
          type: int
        delayed:
          description: BullMQ delayed jobs.
          type: int
        prioritized:
          description: BullMQ prioritized jobs (BullMQ 4 and later), included in RV(queues[].metrics.waiting).
          type: int
        paused:
          description: Whether the BullMQ queue is paused.
          type: bool
        failed:
          description: BullMQ failed jobs kept in the C(failed) set.
          type: int
        completed:
          description: BullMQ completed jobs kept in the C(completed) set.
          type: int
        consumers:
          description:
            - Consumers; BullMQ workers, RabbitMQ consumers, consumers of the stream's judged
              group, or the value of O(metrics_consumers_gauge).
          type: int
        oldest_age_seconds:
          description: Seconds the oldest waiting job has waited (BullMQ, stream, RabbitMQ with message timestamps).
          type: float
        oldest_pending_idle_seconds:
          description: Stream only. Seconds since the oldest pending entry of the judged group was delivered.
          type: float
        length:
          description: Stream length (C(XLEN)), list length, or RabbitMQ C(messages) (ready plus unacknowledged).
          type: int
        group:
          description: Stream only. The consumer group judged.
          type: str
        groups:
          description:
            - Stream only. Every consumer group, with C(name), C(consumers), C(pending), C(lag),
              C(entries_read), C(last_delivered_id), C(oldest_undelivered_age_seconds) and
              C(oldest_pending_idle_seconds).
          type: list
          elements: dict
        state:
          description: RabbitMQ queue state, such as C(running).
          type: str
        publish_rate:
          description: RabbitMQ messages published per second, as the broker reports it.
          type: float
        deliver_rate:
          description: RabbitMQ messages delivered per second.
          type: float
        ack_rate:
          description: RabbitMQ messages acknowledged per second.
          type: float
        samples:
          description: The depth at each reading, oldest first.
          type: list
          elements: float
          sample: [240, 180]
        sample_seconds:
          description: Seconds between the two readings of this queue, null with one reading.
          type: float
        growth_rate:
          description: Change of the depth per second between the readings; negative when draining.
          type: float
          sample: -12.0
        draining:
          description:
            - True when the depth fell between the readings; false when it stayed or grew with
              jobs waiting; null with one reading or when the queue was empty both times.
          type: bool
        drain_eta_seconds:
          description: At the measured rate, seconds until the queue is empty; null unless draining.
          type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.incident.remediation.plugins.module_utils import _metrics
from ansible_collections.incident.remediation.plugins.module_utils._queues import (
    RABBITMQ_DEGRADED_STATES,
    RABBITMQ_DOWN_STATES,
    BackendError,
    MetricsBackend,
    RabbitMQBackend,
    RedisBackend,
    basic_auth_header,
    bullmq_keys,
    describe_series,
    empty_metrics,
    gauge_matchers,
    rabbitmq_queue_url,
)
from ansible_collections.incident.remediation.plugins.module_utils._redis import (
    ensure_redis_library,
    redis_common_argument_spec,
)
from ansible_collections.incident.remediation.plugins.module_utils._verdict import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    Stopwatch,
    Verdict,
)

REDIS_BACKENDS = ("redis_list", "redis_stream", "bullmq")
HTTP_BACKENDS = ("rabbitmq", "metrics")

# The verdict's thresholds, with the runbooks' defaults; each queue may override them.
THRESHOLD_SPEC = dict(
    depth_warning=dict(type="int", default=100),
    depth_critical=dict(type="int", default=500),
    failed_warning=dict(type="int"),
    failed_critical=dict(type="int"),
    age_warning_seconds=dict(type="float"),
    age_critical_seconds=dict(type="float"),
)

QUEUE_SPEC = dict(
    name=dict(type="str", required=True),
    group=dict(type="str"),
    vhost=dict(type="str"),
    **dict((name, dict(type=spec["type"])) for name, spec in THRESHOLD_SPEC.items())
)

OPTION_SPEC = dict(
    backend=dict(type="str", required=True, choices=list(REDIS_BACKENDS + HTTP_BACKENDS)),
    queues=dict(type="list", elements="dict", required=True, options=QUEUE_SPEC),
    count_in_flight=dict(type="bool", default=False),
    check_consumers=dict(type="bool", default=True),
    sample_interval=dict(type="float", default=0.0),
    bullmq_prefix=dict(type="str", default="bull"),
    api_url=dict(type="str"),
    api_user=dict(type="str"),
    api_password=dict(type="str", no_log=True),
    vhost=dict(type="str", default="/"),
    metrics_gauge=dict(type="str", default="queue_depth"),
    metrics_label=dict(type="str", default="queue"),
    metrics_labels=dict(type="dict", default={}),
    metrics_consumers_gauge=dict(type="str"),
)

SAMPLING_KEYS = ("samples", "sample_seconds", "growth_rate", "draining", "drain_eta_seconds")


def argument_spec():
    spec = redis_common_argument_spec()
    spec.update(OPTION_SPEC)
    spec.update(THRESHOLD_SPEC)
    return spec


def queue_thresholds(queue, defaults):
    """The thresholds for one queue: its own where set, else the module's."""
    return dict((name, defaults[name] if queue.get(name) is None else queue[name]) for name in THRESHOLD_SPEC)


def depth_of(metrics, count_in_flight):
    waiting = metrics.get("waiting")
    if waiting is None:
        return None
    if count_in_flight and metrics.get("in_flight") is not None:
        return waiting + metrics["in_flight"]
    return waiting


def growth(depth_before, at_before, depth_after, at_after):
    """(growth_rate in jobs/s, draining, drain_eta_seconds) between two readings.

    draining is True when the depth fell, False when it stayed or grew while jobs
    were waiting, None when either depth is unknown or the queue was empty both times."""
    seconds = at_after - at_before
    if depth_before is None or depth_after is None or seconds <= 0:
        return None, None, None
    rate = round((depth_after - depth_before) / seconds, 3)
    if depth_after < depth_before:
        eta = round(depth_after / -rate, 1) if rate < 0 else None
        return rate, True, eta
    if depth_after == 0 and depth_before == 0:
        return rate, None, None
    return rate, False, None


def no_consumers(metrics):
    """Jobs are waiting and nothing consumes them (consumers known to be 0)."""
    return metrics.get("consumers") == 0 and (metrics.get("depth") or 0) > 0


def judge(metrics, thresholds, check_consumers=True):
    """Verdict for a queue that was read."""
    verdict = Verdict()
    verdict.check_above("queue depth", metrics["depth"], thresholds["depth_warning"], thresholds["depth_critical"])
    depth_status = verdict.status
    if metrics.get("draining") is not None and depth_status != OK:
        verdict.add(depth_status, growth_sentence(metrics))
    if check_consumers and no_consumers(metrics):
        verdict.add(CRITICAL, "no consumers: %s jobs are waiting and no consumer is connected to take them"
                    % metrics["depth"])
    if metrics.get("paused") and (metrics.get("depth") or 0) > 0:
        verdict.add(WARNING, "the queue is paused with %s jobs waiting" % metrics["depth"])
    state = metrics.get("state")
    if state in RABBITMQ_DOWN_STATES:
        verdict.add(CRITICAL, "the queue is %s and cannot deliver" % state)
    elif state in RABBITMQ_DEGRADED_STATES:
        verdict.add(WARNING, "the queue is in %s state" % state)
    verdict.check_above("failed jobs", metrics.get("failed"), thresholds["failed_warning"],
                        thresholds["failed_critical"])
    verdict.check_above("oldest waiting job age", metrics.get("oldest_age_seconds"),
                        thresholds["age_warning_seconds"], thresholds["age_critical_seconds"], " s")
    return verdict


def growth_sentence(metrics):
    first, last = metrics["samples"][0], metrics["samples"][-1]
    rate = metrics["growth_rate"]
    text = "depth went from %s to %s in %s s (%+g jobs/s)" % (first, last, metrics["sample_seconds"], rate)
    if metrics["draining"]:
        if metrics["drain_eta_seconds"] is not None:
            return "%s: draining, empty in about %s s at this rate" % (text, metrics["drain_eta_seconds"])
        return text + ": draining"
    return text + ": not draining"


def queue_source(params, queue):
    backend, name = params["backend"], queue["name"]
    if backend == "bullmq":
        return bullmq_keys(params["bullmq_prefix"], name)["base"]
    if backend == "redis_stream" and queue.get("group"):
        return "%s (group %s)" % (name, queue["group"])
    if backend == "rabbitmq":
        return rabbitmq_queue_url("", queue.get("vhost") or params["vhost"], name)
    if backend == "metrics":
        return describe_series(params["metrics_gauge"],
                               gauge_matchers(params["metrics_label"], name, params["metrics_labels"]))
    return name


def queue_result(params, queue, readings, defaults):
    """One queue's entry from its readings (one or two, oldest first)."""
    thresholds = queue_thresholds(queue, defaults)
    last = readings[-1]
    result = dict(name=queue["name"], source=queue_source(params, queue), thresholds=thresholds,
                  notes=list(last.notes), error=None)
    metrics = dict(last.metrics)
    metrics.update(dict.fromkeys(SAMPLING_KEYS))
    if last.error is not None:
        result.update(status=last.error.status, reasons=[str(last.error)], error=str(last.error), metrics=metrics)
        return result
    metrics["depth"] = depth_of(metrics, params["count_in_flight"])
    depths = [depth_of(reading.metrics, params["count_in_flight"]) for reading in readings
              if reading.error is None]
    metrics["samples"] = depths
    if len(readings) > 1 and readings[0].error is None:
        metrics["sample_seconds"] = round(last.at - readings[0].at, 3)
        metrics["growth_rate"], metrics["draining"], metrics["drain_eta_seconds"] = growth(
            depths[0], readings[0].at, depths[-1], last.at)
    verdict = judge(metrics, thresholds, params["check_consumers"])
    result.update(status=verdict.status, reasons=verdict.reasons, metrics=metrics)
    return result


def unread_result(params, queue, defaults, message):
    metrics = empty_metrics()
    metrics.update(dict.fromkeys(SAMPLING_KEYS))
    return dict(name=queue["name"], source=queue_source(params, queue), thresholds=queue_thresholds(queue, defaults),
                status=UNKNOWN, reasons=["not read: %s" % message], notes=[], error=message, metrics=metrics)


def queue_label(params, queue):
    vhost = queue.get("vhost")
    if params["backend"] == "rabbitmq" and vhost and vhost != params["vhost"]:
        return "queue %s (vhost %s)" % (queue["name"], vhost)
    return "queue %s" % queue["name"]


def http_params(params):
    headers = {}
    if params["api_user"] is not None:
        headers.update(basic_auth_header(params["api_user"], params["api_password"]))
    return dict(
        timeout=params["connect_timeout"],
        validate_certs=params["validate_certs"],
        ca_cert=params["ca_cert"],
        client_cert=params.get("client_cert"),
        client_key=params.get("client_key"),
        headers=headers,
    )


def make_backend(params):
    backend = params["backend"]
    if backend in REDIS_BACKENDS:
        return RedisBackend(backend, params, prefix=params["bullmq_prefix"])
    if backend == "rabbitmq":
        return RabbitMQBackend(params["api_url"], http_params(params), vhost=params["vhost"])
    return MetricsBackend(params["api_url"], http_params(params), params["metrics_gauge"], params["metrics_label"],
                          extra_labels=params["metrics_labels"],
                          consumers_gauge=params["metrics_consumers_gauge"])


def check(params, defaults):
    """Read every queue (twice with a sample_interval) and judge; never raises for a backend problem."""
    queues = params["queues"]
    backend = make_backend(params)
    verdict = Verdict()
    error = None
    is_available = True
    rounds = []
    try:
        try:
            rounds.append(backend.read_all(queues))
            if params["sample_interval"] > 0:
                time.sleep(params["sample_interval"])
                rounds.append(backend.read_all(queues))
        except BackendError as exc:
            error = str(exc)
            is_available = False
            if rounds:
                verdict.add(exc.status, "%s (during the sampling interval, after a first reading)" % error)
            else:
                verdict.add(exc.status, error)
    finally:
        backend.close()
    results = []
    for index, queue in enumerate(queues):
        if not rounds:
            results.append(unread_result(params, queue, defaults, error))
            continue
        result = queue_result(params, queue, [reading[index] for reading in rounds], defaults)
        for reason in result["reasons"]:
            verdict.add(result["status"], "%s: %s" % (queue_label(params, queue), reason))
        results.append(result)
    depths = [result["metrics"]["depth"] for result in results if result["metrics"]["depth"] is not None]
    sampled = [result["metrics"]["sample_seconds"] for result in results
               if result["metrics"]["sample_seconds"] is not None]
    return dict(
        status=verdict.status,
        is_available=is_available,
        reasons=verdict.reasons,
        metrics=dict(
            queue_count=len(queues),
            total_depth=sum(depths) if depths else None,
            max_depth=max(depths) if depths else None,
            sample_seconds=max(sampled) if sampled else None,
        ),
        queues=results,
        backend=params["backend"],
        checked=backend.checked,
        error=error,
    )


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[("backend", "rabbitmq", ["api_url"]), ("backend", "metrics", ["api_url"])],
        supports_check_mode=True,
    )
    params = module.params
    if params["sample_interval"] < 0:
        module.fail_json(msg="sample_interval must be 0 or more seconds, not %s" % params["sample_interval"])
    if not params["queues"]:
        module.fail_json(msg="queues must name at least one queue")
    if params["backend"] in REDIS_BACKENDS:
        ensure_redis_library(module)
    if params["backend"] == "metrics" and _metrics.text_string_to_metric_families is None:
        module.fail_json(msg=missing_required_lib("prometheus-client"),
                         exception=_metrics.PROMETHEUS_CLIENT_IMPORT_ERROR)
    defaults = dict((name, params[name]) for name in THRESHOLD_SPEC)
    clock = Stopwatch()
    result = check(params, defaults)
    module.exit_json(changed=False, thresholds=defaults, elapsed_ms=clock.elapsed_ms(), **result)


if __name__ == "__main__":
    main()
