# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the incident.remediation collection: no compatibility promise
# outside it.
"""Queue backlog readers for queue_health: Redis lists and streams, BullMQ's
Redis keyspace, RabbitMQ's management HTTP API and a Prometheus gauge.

Each backend reads every queue of a call in one round and returns one
QueueReading per queue. A queue that cannot be read (wrong key type, not found)
is a QueueReadError on that reading; a backend that cannot be read at all
(unreachable, credentials refused) raises BackendError for the round."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import time

from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.incident.remediation.plugins.module_utils._http import request
from ansible_collections.incident.remediation.plugins.module_utils._metrics import MetricsError, scrape, total
from ansible_collections.incident.remediation.plugins.module_utils._redact import redact_url
from ansible_collections.incident.remediation.plugins.module_utils._redis import redis, redis_client, redis_url
from ansible_collections.incident.remediation.plugins.module_utils._verdict import CRITICAL, UNKNOWN

# Metrics of one queue; every key is always present, None when the backend
# does not know it.
METRIC_KEYS = (
    "depth",
    "waiting",
    "in_flight",
    "delayed",
    "prioritized",
    "paused",
    "failed",
    "completed",
    "consumers",
    "oldest_age_seconds",
    "oldest_pending_idle_seconds",
    "length",
    "group",
    "groups",
    "state",
    "publish_rate",
    "deliver_rate",
    "ack_rate",
)

# BullMQ job ids that are markers, not jobs: BullMQ 3 pushed "0" or "0:<delay>"
# into the wait list to wake workers up.
_BULLMQ_MARKER = "0"

# RabbitMQ queue states that mean the queue cannot deliver.
RABBITMQ_DOWN_STATES = ("crashed", "down", "stopped", "terminated")
RABBITMQ_DEGRADED_STATES = ("minority",)


class QueueReadError(Exception):
    """One queue could not be read; its verdict is `status` (unknown by default)."""

    def __init__(self, message, status=UNKNOWN):
        super(QueueReadError, self).__init__(message)
        self.status = status


class BackendError(Exception):
    """No queue could be read: the server did not answer or refused the credentials."""

    def __init__(self, message, status=CRITICAL):
        super(BackendError, self).__init__(message)
        self.status = status


class QueueReading:
    """What one round saw of one queue: metrics, notes, an error, and when (monotonic seconds)."""

    def __init__(self, metrics=None, notes=None, error=None, at=None):
        self.metrics = metrics if metrics is not None else empty_metrics()
        self.notes = notes or []
        self.error = error
        self.at = time.monotonic() if at is None else at


def empty_metrics():
    return dict.fromkeys(METRIC_KEYS)


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _int_or_none(value):
    return None if value is None else int(value)


def _rate(stats, name):
    details = (stats or {}).get(name + "_details") or {}
    rate = details.get("rate")
    return None if rate is None else round(float(rate), 3)


def age_seconds(now_ms, since_ms):
    """Seconds from since_ms to now_ms (both epoch milliseconds), never negative
    (clocks of producer and server may differ a little); None when unknown."""
    if now_ms is None or since_ms is None:
        return None
    return round(max(0.0, (float(now_ms) - float(since_ms)) / 1000.0), 3)


def stream_id_ms(entry_id):
    """The millisecond part of a stream entry id such as 1700000000000-3."""
    return int(_text(entry_id).split("-", 1)[0])


# ---------------------------------------------------------------- BullMQ


def bullmq_keys(prefix, queue):
    """The Redis keys BullMQ keeps for a queue (see BullMQ's QueueKeys)."""
    base = "%s:%s" % (prefix, queue)
    keys = dict((kind, "%s:%s" % (base, kind))
                for kind in ("wait", "active", "delayed", "failed", "paused", "prioritized", "completed", "meta"))
    keys["base"] = base
    return keys


def bullmq_job_key(prefix, queue, job_id):
    return "%s:%s:%s" % (prefix, queue, job_id)


def bullmq_client_name(prefix, queue):
    """The connection name BullMQ workers set: <prefix>:<base64 of the queue name>."""
    return "%s:%s" % (prefix, base64.b64encode(queue.encode("utf-8")).decode("ascii"))


def count_bullmq_workers(client_names, prefix, queue):
    """Workers of a queue among CLIENT LIST names, matched as BullMQ's
    Queue.getWorkers does: the bare client name, or it followed by ":w:<worker name>"."""
    exact = bullmq_client_name(prefix, queue)
    named = exact + ":w:"
    return sum(1 for name in client_names if name and (name == exact or name.startswith(named)))


def oldest_job_id(tail_ids):
    """The oldest real job id from the tail of a BullMQ wait list (oldest last), markers skipped."""
    for job_id in reversed([_text(job_id) for job_id in tail_ids]):
        if job_id != _BULLMQ_MARKER and not job_id.startswith(_BULLMQ_MARKER + ":"):
            return job_id
    return None


def bullmq_waiting_since_ms(timestamp, delay):
    """When a job became ready: its creation timestamp plus its delay (ms), None without a timestamp."""
    if timestamp in (None, b"", ""):
        return None
    return int(float(_text(timestamp))) + int(float(_text(delay) or 0))


# ---------------------------------------------------------------- Redis backends


class RedisBackend:
    """Reads redis_list, redis_stream or bullmq queues with one client."""

    def __init__(self, kind, params, prefix="bull"):
        self.kind = kind
        self.params = params
        self.prefix = prefix
        self.address = "%s:%s" % (params["login_host"], params["login_port"])
        self.checked = redis_url(params)
        self.client = redis_client(params)
        self._client_list_error = None

    def close(self):
        self.client.close()

    def read_all(self, queues):
        try:
            self.client.ping()
            client_names = self._client_names() if self.kind == "bullmq" else None
            return [self._read_one(queue, client_names) for queue in queues]
        except redis.AuthenticationError as exc:
            raise BackendError("Redis at %s refused the credentials: %s" % (self.address, exc),
                               status=UNKNOWN) from exc
        except redis.TimeoutError as exc:
            raise BackendError("Redis at %s did not answer within %s s (TimeoutError: %s)"
                               % (self.address, self.params["connect_timeout"], exc)) from exc
        except redis.ConnectionError as exc:
            raise BackendError("Redis at %s refused or dropped the connection (ConnectionError: %s)"
                               % (self.address, exc)) from exc

    def _read_one(self, queue, client_names):
        try:
            if self.kind == "redis_list":
                metrics, notes = self.read_list(queue["name"])
            elif self.kind == "redis_stream":
                metrics, notes = self.read_stream(queue["name"], queue.get("group"))
            else:
                metrics, notes = self.read_bullmq(queue["name"], client_names)
        except QueueReadError as exc:
            return QueueReading(error=exc)
        except (redis.ConnectionError, redis.TimeoutError, redis.AuthenticationError):
            raise
        except redis.RedisError as exc:
            return QueueReading(error=QueueReadError(_redis_error(exc, queue["name"])))
        return QueueReading(metrics, notes)

    def _now_ms(self):
        seconds, micros = self.client.time()
        return seconds * 1000 + micros // 1000

    def _client_names(self):
        """Names of the connected clients, None when CLIENT LIST is not allowed."""
        try:
            return [_text(client.get("name")) for client in self.client.client_list()]
        except (redis.ConnectionError, redis.TimeoutError):
            raise
        except redis.RedisError as exc:
            self._client_list_error = "%s: %s" % (type(exc).__name__, exc)
            return None

    def read_list(self, key):
        length = self.client.llen(key)
        metrics = empty_metrics()
        metrics.update(waiting=length, length=length)
        return metrics, []

    def read_stream(self, key, group=None):
        if not self.client.exists(key):
            raise QueueReadError("stream %s does not exist" % key)
        now_ms = self._now_ms()
        length = self.client.xlen(key)
        groups = [self._stream_group(key, info, now_ms) for info in self.client.xinfo_groups(key)]
        metrics = empty_metrics()
        metrics.update(length=length, groups=groups)
        notes = []
        if group is not None:
            chosen = [entry for entry in groups if entry["name"] == group]
            if not chosen:
                raise QueueReadError("consumer group %s does not exist on stream %s" % (group, key))
            judged = chosen[0]
        elif groups:
            judged = max(groups, key=lambda entry: ((entry["lag"] or 0) + entry["pending"], -groups.index(entry)))
            if len(groups) > 1:
                notes.append("stream %s has %d consumer groups; the one with the largest backlog (%s) is judged"
                             % (key, len(groups), judged["name"]))
        else:
            metrics.update(waiting=length, consumers=0)
            notes.append("stream %s has no consumer group; its depth is the stream length" % key)
            return metrics, notes
        waiting = judged["lag"]
        if waiting is None:
            waiting = length
            notes.append("Redis did not report the lag of group %s (Redis before 7, or entries were deleted); "
                         "its waiting count is the stream length, an upper bound" % judged["name"])
        metrics.update(
            waiting=waiting,
            in_flight=judged["pending"],
            consumers=judged["consumers"],
            oldest_age_seconds=judged["oldest_undelivered_age_seconds"],
            oldest_pending_idle_seconds=judged["oldest_pending_idle_seconds"],
            group=judged["name"],
        )
        return metrics, notes

    def _stream_group(self, key, info, now_ms):
        name = _text(info["name"])
        last_delivered = _text(info.get("last-delivered-id")) or "0-0"
        pending = int(info.get("pending") or 0)
        lag = _int_or_none(info.get("lag"))
        oldest_pending_idle = None
        if pending:
            oldest = self.client.xpending_range(key, name, min="-", max="+", count=1)
            if oldest:
                oldest_pending_idle = round(oldest[0]["time_since_delivered"] / 1000.0, 3)
        undelivered = self.client.xrange(key, min="(" + last_delivered, max="+", count=1)
        oldest_undelivered_age = age_seconds(now_ms, stream_id_ms(undelivered[0][0])) if undelivered else None
        return dict(
            name=name,
            consumers=int(info.get("consumers") or 0),
            pending=pending,
            lag=lag,
            entries_read=_int_or_none(info.get("entries-read")),
            last_delivered_id=last_delivered,
            oldest_undelivered_age_seconds=oldest_undelivered_age,
            oldest_pending_idle_seconds=oldest_pending_idle,
        )

    def read_bullmq(self, queue, client_names):
        keys = bullmq_keys(self.prefix, queue)
        pipe = self.client.pipeline(transaction=False)
        pipe.llen(keys["wait"])
        pipe.llen(keys["active"])
        pipe.zcard(keys["delayed"])
        pipe.zcard(keys["failed"])
        pipe.llen(keys["paused"])
        pipe.zcard(keys["prioritized"])
        pipe.zcard(keys["completed"])
        pipe.hexists(keys["meta"], "paused")
        pipe.exists(keys["meta"])
        pipe.lrange(keys["wait"], -5, -1)
        pipe.lrange(keys["paused"], -5, -1)
        pipe.time()
        replies = pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception):
                raise QueueReadError(_redis_error(reply, keys["base"] + ":*"))
        (wait, active, delayed, failed, paused_list, prioritized, completed,
         paused_flag, meta_exists, wait_tail, paused_tail, server_time) = replies
        now_ms = server_time[0] * 1000 + server_time[1] // 1000
        notes = []
        workers = None
        if client_names is None:
            notes.append("workers not counted: CLIENT LIST failed (%s)"
                         % self._client_list_error)
        else:
            workers = count_bullmq_workers(client_names, self.prefix, queue)
        counts = (wait, active, delayed, failed, paused_list, prioritized, completed)
        if not meta_exists and not any(counts) and not workers:
            raise QueueReadError("no BullMQ keys and no workers for %s: check the prefix and the queue name"
                                 % keys["base"])
        job_id = oldest_job_id(wait_tail) or oldest_job_id(paused_tail)
        oldest_age = None
        if job_id is not None:
            timestamp, delay = self.client.hmget(bullmq_job_key(self.prefix, queue, job_id), ["timestamp", "delay"])
            oldest_age = age_seconds(now_ms, bullmq_waiting_since_ms(timestamp, delay))
        waiting = wait + paused_list + prioritized
        metrics = empty_metrics()
        metrics.update(
            waiting=waiting,
            in_flight=active,
            delayed=delayed,
            prioritized=prioritized,
            paused=bool(paused_flag or paused_list),
            failed=failed,
            completed=completed,
            consumers=workers,
            oldest_age_seconds=oldest_age,
        )
        return metrics, notes


def _redis_error(exc, key):
    message = str(exc)
    if message.startswith("WRONGTYPE"):
        return "key %s holds the wrong type for this backend (%s)" % (key, message)
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return "reading %s is not permitted for this user (%s)" % (key, message)
    return "reading %s failed: %s: %s" % (key, type(exc).__name__, message)


# ---------------------------------------------------------------- RabbitMQ


def basic_auth_header(user, password):
    token = base64.b64encode(("%s:%s" % (user, password or "")).encode("utf-8")).decode("ascii")
    return {"Authorization": "Basic " + token}


def rabbitmq_queue_url(api_url, vhost, name):
    return "%s/api/queues/%s/%s" % (api_url.rstrip("/"), quote(vhost, safe=""), quote(name, safe=""))


def metrics_from_rabbitmq(document, now_s):
    """Metrics from a /api/queues/<vhost>/<name> document; now_s is epoch seconds."""
    ready = _int_or_none(document.get("messages_ready"))
    stats = document.get("message_stats")
    head = document.get("head_message_timestamp")
    metrics = empty_metrics()
    metrics.update(
        waiting=ready,
        in_flight=_int_or_none(document.get("messages_unacknowledged")),
        consumers=_int_or_none(document.get("consumers")),
        length=_int_or_none(document.get("messages")),
        state=document.get("state"),
        publish_rate=_rate(stats, "publish"),
        deliver_rate=_rate(stats, "deliver_get"),
        ack_rate=_rate(stats, "ack"),
        oldest_age_seconds=None if head is None else age_seconds(now_s * 1000.0, float(head) * 1000.0),
    )
    return metrics


class RabbitMQBackend:
    """Reads queues over the management plugin's HTTP API."""

    def __init__(self, api_url, http_params, vhost="/"):
        self.api_url = api_url
        self.http_params = http_params
        self.vhost = vhost
        self.checked = redact_url(api_url)[0]

    def close(self):
        pass

    def read_all(self, queues):
        return [self.read(queue["name"], queue.get("vhost") or self.vhost) for queue in queues]

    def read(self, name, vhost):
        url = rabbitmq_queue_url(self.api_url, vhost, name)
        result = request(url, self.http_params)
        if result.status is None:
            raise BackendError("RabbitMQ management API at %s did not answer: %s" % (self.checked, result.error))
        if result.status == 401:
            raise BackendError("RabbitMQ management API at %s refused the credentials (HTTP 401)" % self.checked,
                               status=UNKNOWN)
        if result.status == 404:
            return QueueReading(error=QueueReadError("no such queue in vhost %s (HTTP 404)" % vhost))
        if result.status == 403:
            return QueueReading(error=QueueReadError(
                "the API user may not read queues in vhost %s (HTTP 403)" % vhost))
        if result.status != 200:
            return QueueReading(error=QueueReadError(
                "RabbitMQ answered HTTP %s for this queue" % result.status, CRITICAL))
        try:
            document = result.json()
        except ValueError:
            return QueueReading(error=QueueReadError("RabbitMQ answered with no JSON for this queue"))
        return QueueReading(metrics_from_rabbitmq(document, time.time()))


# ---------------------------------------------------------------- Prometheus gauge


def gauge_matchers(label, name, extra):
    matchers = dict(extra or {})
    matchers[label] = name
    return matchers


def describe_series(gauge, matchers):
    return "%s{%s}" % (gauge, ",".join('%s="%s"' % item for item in sorted(matchers.items())))


class MetricsBackend:
    """Reads a gauge per queue from one scrape of a /metrics endpoint."""

    def __init__(self, url, http_params, gauge, label, *, extra_labels=None, consumers_gauge=None):
        self.url = url
        self.http_params = http_params
        self.gauge = gauge
        self.label = label
        self.extra_labels = extra_labels or {}
        self.consumers_gauge = consumers_gauge
        self.checked = redact_url(url)[0]

    def close(self):
        pass

    def read_all(self, queues):
        try:
            samples = scrape(self.url, self.http_params)
        except MetricsError as exc:
            raise BackendError(str(exc)) from exc
        at = time.monotonic()
        return [self.read(samples, queue["name"], at) for queue in queues]

    def read(self, samples, name, at):
        matchers = gauge_matchers(self.label, name, self.extra_labels)
        depth = total(samples, self.gauge, matchers)
        if depth is None:
            series = describe_series(self.gauge, matchers)
            return QueueReading(error=QueueReadError("no series %s at %s" % (series, self.checked)), at=at)
        metrics = empty_metrics()
        metrics.update(waiting=_number(depth))
        notes = []
        if self.consumers_gauge:
            consumers = total(samples, self.consumers_gauge, matchers)
            if consumers is None:
                notes.append("no series %s: consumers not known" % describe_series(self.consumers_gauge, matchers))
            else:
                metrics["consumers"] = _number(consumers)
        return QueueReading(metrics, notes, at=at)


def _number(value):
    """Gauge values come as floats; whole numbers are reported as ints."""
    return int(value) if float(value).is_integer() else value
