#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cache_health
short_description: Check a Redis server and return a verdict with reasons
version_added: 0.1.0
description:
  - Connects, sends C(PING) and measures its round trip in milliseconds, then reads C(INFO) in one
    round trip (sections C(server), C(clients), C(memory), C(stats), C(persistence) and
    C(replication); on Redis before 7, which takes one section, the default C(INFO)).
  - Judges the PING latency, memory use against C(maxmemory), the keyspace hit rate
    (only with enough lookups), connected clients against C(maxclients), connections
    refused at C(maxclients), keys evicted at C(maxmemory), the last RDB save and, when
    AOF is on, the last AOF write, and on a replica the link to its master.
  - C(maxclients) comes from C(INFO clients) (Redis 7 and later) or C(CONFIG GET maxclients).
    When C(CONFIG) is renamed or refused by the ACL, RV(metrics.maxclients) is null,
    the client ratio is not judged, and the module still succeeds.
  - An unreachable or hung server is a result, not a failure. The module returns
    RV(status=critical) and RV(is_available=false) with the reason, so a playbook
    decides what to do with C(failed_when) or C(when). Refused credentials and failed
    TLS handshakes (unknown CA, refused client certificate) give RV(status=unknown),
    because the server may be fine and the check could not tell.
  - Reads only; it never changes the server. An ACL user needs C(+ping +info), and
    C(+config|get) only on Redis before 7.
author:
  - incident.remediation contributors (@incident-remediation)
extends_documentation_fragment:
  - incident.remediation.redis
  - incident.remediation.attributes
  - incident.remediation.attributes.read_only
options:
  ping_warning_ms:
    description: PING latency in milliseconds above which the verdict is C(warning).
    type: float
    default: 100
  ping_critical_ms:
    description: PING latency in milliseconds above which the verdict is C(critical).
    type: float
    default: 1000
  memory_warning_ratio:
    description:
      - C(used_memory / maxmemory) above which the verdict is C(warning).
      - Not applied when C(maxmemory) is 0 (no limit).
    type: float
    default: 0.90
  memory_critical_ratio:
    description: C(used_memory / maxmemory) above which the verdict is C(critical).
    type: float
    default: 0.95
  hit_rate_warning:
    description: Keyspace hit rate (0 to 1) below which the verdict is C(warning).
    type: float
    default: 0.5
  hit_rate_min_sample:
    description:
      - Fewest lookups (hits plus misses) for the hit rate to be judged; with fewer,
        RV(metrics.hit_rate) is still reported but not judged.
    type: int
    default: 100
  clients_warning_ratio:
    description:
      - C(connected_clients / maxclients) above which the verdict is C(warning).
      - Not applied when C(maxclients) is not known.
    type: float
    default: 0.80
  clients_critical_ratio:
    description:
      - C(connected_clients / maxclients) above which the verdict is C(critical); at
        C(maxclients) Redis refuses every new connection.
    type: float
    default: 0.95
  rejected_connections_warning:
    description:
      - Connections refused at C(maxclients) (C(rejected_connections), counted since the
        server started or the last C(CONFIG RESETSTAT)) above which the verdict is C(warning).
      - The default flags any refused connection; set it to null to not judge it.
    type: int
    default: 0
  evicted_keys_warning:
    description:
      - Keys evicted at C(maxmemory) (C(evicted_keys), counted since the server started
        or the last C(CONFIG RESETSTAT)) above which the verdict is C(warning).
      - Not applied by default, because evicting is what a cache with an C(allkeys-*)
        or C(volatile-*) policy is meant to do; RV(metrics.evicted_keys) is always reported.
    type: int
  replica_io_warning_seconds:
    description:
      - On a replica whose link is up, seconds since the last data or PING from the
        master (C(master_last_io_seconds_ago)) above which the verdict is C(warning).
      - A master PINGs its replicas every 10 seconds by default (C(repl-ping-replica-period)).
    type: int
    default: 30
notes:
  - Thresholds default to the runbooks' values (LowCacheHitRate below 50%, memory above 90% and 95%).
    The client ratios (80% and 95% of C(maxclients)) mirror the database connection pool
    alerts; a replica link that is down, a failed RDB save and a failed AOF write are
    always C(critical), since Redis refuses writes after a failed save or AOF write
    (C(stop-writes-on-bgsave-error), on by default) and a replica without its master
    serves stale data.
  - Counters (C(rejected_connections), C(evicted_keys), hits and misses) are totals since the
    server started or the last C(CONFIG RESETSTAT); RV(metrics.uptime_seconds) gives the span.
seealso:
  - module: community.general.redis_info
  - module: incident.remediation.cache_evict
"""

EXAMPLES = r"""
- name: Check the cache behind the API
  incident.remediation.cache_health:
    login_host: 127.0.0.1
    login_port: 6379
  register: cache

- name: Fail when Redis does not answer
  ansible.builtin.assert:
    that: cache.is_available
    fail_msg: "{{ cache.reasons | join('; ') }}"

- name: Wait until Redis answers PING again
  incident.remediation.cache_health:
    login_port: 6379
    connect_timeout: 1
  register: cache
  until: cache.is_available
  retries: 15
  delay: 2

- name: Check a replica over mutual TLS as a least-privilege ACL user
  incident.remediation.cache_health:
    login_host: redis-replica.internal
    login_user: monitor
    login_password: "{{ vault_redis_monitor_password }}"
    tls: true
    ca_cert: /etc/ssl/redis/ca.crt
    client_cert: /etc/ssl/redis/monitor.crt
    client_key: /etc/ssl/redis/monitor.key
  register: replica

- name: Page when the replica lost its master
  ansible.builtin.debug:
    msg: "{{ replica.reasons }}"
  when: replica.metrics.master_link_status == 'down'
"""

RETURN = r"""
status:
  description: Verdict, the worst of all findings.
  returned: always
  type: str
  choices: [ok, warning, critical, unknown]
  sample: ok
is_available:
  description: Whether the server answered C(PING).
  returned: always
  type: bool
  sample: true
reasons:
  description: Sentences that explain the verdict; empty when everything is within thresholds.
  returned: always
  type: list
  elements: str
  sample: ["memory use is 0.962, above the critical threshold of 0.95"]
metrics:
  description: The numbers behind the verdict. Keys are always present; null when not known.
  returned: always
  type: dict
  contains:
    ping_ms:
      description: PING round trip in milliseconds, on an open connection.
      type: float
      sample: 0.31
    connect_ms:
      description:
        - Milliseconds to connect, authenticate and get the first PONG, TLS handshake included.
        - Reported, not judged.
      type: float
      sample: 0.9
    redis_version:
      description: Server version.
      type: str
      sample: 7.0.15
    role:
      description: Replication role, C(master) or C(slave).
      type: str
      sample: master
    uptime_seconds:
      description: Seconds since the server started.
      type: int
    used_memory:
      description: Bytes in use.
      type: int
    maxmemory:
      description: Configured limit in bytes; 0 means no limit.
      type: int
    memory_ratio:
      description: C(used_memory / maxmemory), null when there is no limit.
      type: float
    maxmemory_policy:
      description: Eviction policy.
      type: str
      sample: noeviction
    connected_clients:
      description: Open client connections, this check's own included.
      type: int
    maxclients:
      description: Most client connections the server accepts; null when it could not be read.
      type: int
      sample: 10000
    clients_ratio:
      description: C(connected_clients / maxclients), null when C(maxclients) is not known.
      type: float
    blocked_clients:
      description: Clients waiting in a blocking call.
      type: int
    rejected_connections:
      description: Connections refused because of maxclients since start.
      type: int
    evicted_keys:
      description: Keys evicted because of maxmemory since start.
      type: int
    keyspace_hits:
      description: Successful lookups since start.
      type: int
    keyspace_misses:
      description: Failed lookups since start.
      type: int
    hit_rate:
      description: C(hits / (hits + misses)), null with no lookups.
      type: float
    rdb_last_bgsave_status:
      description: Outcome of the last RDB background save, C(ok) or C(err) (C(ok) when none ran).
      type: str
      sample: ok
    rdb_changes_since_last_save:
      description: Writes since the last successful RDB save.
      type: int
    aof_enabled:
      description: Whether the append-only file is on.
      type: bool
    aof_last_write_status:
      description: Outcome of the last AOF write, C(ok) or C(err); null when AOF is off.
      type: str
    connected_replicas:
      description: Replicas connected to this server (C(connected_slaves)).
      type: int
    master_host:
      description: On a replica, the master it follows; null on a master.
      type: str
    master_port:
      description: On a replica, the master's port; null on a master.
      type: int
    master_link_status:
      description: On a replica, C(up) or C(down); null on a master.
      type: str
      sample: up
    master_last_io_seconds_ago:
      description: On a replica whose link is up, seconds since the master last sent anything; null otherwise.
      type: int
    master_link_down_since_seconds:
      description: On a replica whose link is down, seconds since it went down; null otherwise.
      type: int
    master_sync_in_progress:
      description: On a replica, whether a full synchronisation from the master is running; null on a master.
      type: bool
thresholds:
  description: The thresholds applied.
  returned: always
  type: dict
  sample: {"ping_warning_ms": 100, "ping_critical_ms": 1000, "memory_warning_ratio": 0.9, "clients_warning_ratio": 0.8}
elapsed_ms:
  description: Milliseconds the checks took.
  returned: always
  type: float
  sample: 1.42
checked:
  description:
    - The Redis server and database checked, as C(redis://host:port/db); C(rediss://) with
      O(tls=true), C(user@) before the host with O(login_user). Never holds a password.
    - Every module of the collection names what it checked or acted on in this key.
  returned: always
  type: str
  sample: redis://127.0.0.1:6379/0
error:
  description: The connection or protocol error, null when none.
  returned: always
  type: str
  sample: null
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.remediation.plugins.module_utils._redis import (
    ensure_redis_library,
    redis,
    redis_client,
    redis_common_argument_spec,
    redis_url,
    tls_error,
)
from ansible_collections.incident.remediation.plugins.module_utils._verdict import (
    CRITICAL,
    UNKNOWN,
    WARNING,
    Stopwatch,
    Verdict,
)

# The verdict's thresholds, with the runbooks' defaults.
THRESHOLD_SPEC = dict(
    ping_warning_ms=dict(type="float", default=100.0),
    ping_critical_ms=dict(type="float", default=1000.0),
    memory_warning_ratio=dict(type="float", default=0.90),
    memory_critical_ratio=dict(type="float", default=0.95),
    hit_rate_warning=dict(type="float", default=0.5),
    hit_rate_min_sample=dict(type="int", default=100),
    clients_warning_ratio=dict(type="float", default=0.80),
    clients_critical_ratio=dict(type="float", default=0.95),
    rejected_connections_warning=dict(type="int", default=0),
    evicted_keys_warning=dict(type="int", no_log=False),
    replica_io_warning_seconds=dict(type="int", default=30),
)

# Everything the checks read, in one INFO call (several sections need Redis 7).
INFO_SECTIONS = ("server", "clients", "memory", "stats", "persistence", "replication")

# metric name -> (INFO field, conversion)
_INFO_KEYS = {
    "redis_version": ("redis_version", str),
    "role": ("role", str),
    "uptime_seconds": ("uptime_in_seconds", int),
    "used_memory": ("used_memory", int),
    "maxmemory": ("maxmemory", int),
    "maxmemory_policy": ("maxmemory_policy", str),
    "connected_clients": ("connected_clients", int),
    "maxclients": ("maxclients", int),
    "blocked_clients": ("blocked_clients", int),
    "rejected_connections": ("rejected_connections", int),
    "evicted_keys": ("evicted_keys", int),
    "keyspace_hits": ("keyspace_hits", int),
    "keyspace_misses": ("keyspace_misses", int),
    "rdb_last_bgsave_status": ("rdb_last_bgsave_status", str),
    "rdb_changes_since_last_save": ("rdb_changes_since_last_save", int),
    "aof_enabled": ("aof_enabled", bool),
    "aof_last_write_status": ("aof_last_write_status", str),
    "connected_replicas": ("connected_slaves", int),
}

# Only meaningful on a replica (role slave); null on a master.
_REPLICA_KEYS = {
    "master_host": ("master_host", str),
    "master_port": ("master_port", int),
    "master_link_status": ("master_link_status", str),
    "master_last_io_seconds_ago": ("master_last_io_seconds_ago", int),
    "master_link_down_since_seconds": ("master_link_down_since_seconds", int),
    "master_sync_in_progress": ("master_sync_in_progress", bool),
}

_DERIVED_KEYS = ("ping_ms", "connect_ms", "memory_ratio", "clients_ratio", "hit_rate")


def empty_metrics():
    metrics = dict.fromkeys(_INFO_KEYS)
    metrics.update(dict.fromkeys(_REPLICA_KEYS))
    metrics.update(dict.fromkeys(_DERIVED_KEYS))
    return metrics


def _convert(value, kind):
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def _ratio(part, whole):
    if part is None or not whole:
        return None
    return round(float(part) / whole, 4)


def metrics_from_info(info, ping_ms, maxclients=None):
    """Pick and derive the reported metrics from a parsed INFO reply.

    maxclients, when given, is used if INFO lacks it (Redis before 7 reports it
    only through CONFIG GET).
    """
    metrics = empty_metrics()
    metrics["ping_ms"] = ping_ms
    for name, (key, kind) in _INFO_KEYS.items():
        metrics[name] = _convert(info.get(key), kind)
    if metrics["maxclients"] is None:
        metrics["maxclients"] = _convert(maxclients, int)
    if metrics["role"] == "slave":
        for name, (key, kind) in _REPLICA_KEYS.items():
            metrics[name] = _convert(info.get(key), kind)
        # Redis says -1 for "not known" (link down, never connected).
        for name in ("master_last_io_seconds_ago", "master_link_down_since_seconds"):
            if metrics[name] is not None and metrics[name] < 0:
                metrics[name] = None
        if metrics["master_link_status"] != "up":
            metrics["master_last_io_seconds_ago"] = None
    if not metrics["aof_enabled"]:
        metrics["aof_last_write_status"] = None
    metrics["memory_ratio"] = _ratio(metrics["used_memory"], metrics["maxmemory"])
    metrics["clients_ratio"] = _ratio(metrics["connected_clients"], metrics["maxclients"])
    hits, misses = metrics["keyspace_hits"], metrics["keyspace_misses"]
    if hits is not None and misses is not None and hits + misses > 0:
        metrics["hit_rate"] = round(float(hits) / (hits + misses), 4)
    return metrics


def _since_start(metrics):
    if metrics["uptime_seconds"] is None:
        return "since the server started or the last CONFIG RESETSTAT"
    return "in the %d s since the server started (or the last CONFIG RESETSTAT)" % metrics["uptime_seconds"]


def judge(metrics, thresholds, maxclients_note=None):
    """Verdict for a server that answered.

    maxclients_note says why maxclients is unknown; it is only mentioned where it
    matters (connections were refused).
    """
    verdict = Verdict()
    verdict.check_above("PING latency", metrics["ping_ms"],
                        thresholds["ping_warning_ms"], thresholds["ping_critical_ms"], " ms")
    verdict.check_above("memory use", metrics["memory_ratio"],
                        thresholds["memory_warning_ratio"], thresholds["memory_critical_ratio"])
    lookups = (metrics["keyspace_hits"] or 0) + (metrics["keyspace_misses"] or 0)
    if lookups >= thresholds["hit_rate_min_sample"]:
        verdict.check_below("keyspace hit rate", metrics["hit_rate"],
                            thresholds["hit_rate_warning"], None)
    if metrics["clients_ratio"] is not None:
        verdict.check_above("client use (%s of maxclients %s)" % (metrics["connected_clients"], metrics["maxclients"]),
                            metrics["clients_ratio"],
                            thresholds["clients_warning_ratio"], thresholds["clients_critical_ratio"])
    _judge_counters(verdict, metrics, thresholds, maxclients_note)
    _judge_persistence(verdict, metrics)
    _judge_replication(verdict, metrics, thresholds)
    return verdict


def _judge_counters(verdict, metrics, thresholds, maxclients_note):
    rejected, limit = metrics["rejected_connections"], thresholds["rejected_connections_warning"]
    if rejected is not None and limit is not None and rejected > limit:
        if metrics["maxclients"] is not None:
            cause = "maxclients (%d) was reached" % metrics["maxclients"]
        else:
            cause = "maxclients was reached (its value is not known: %s)" % (maxclients_note or "not reported")
        verdict.add(WARNING, "%d connections were refused because %s %s, above the warning threshold of %d"
                    % (rejected, cause, _since_start(metrics), limit))
    evicted, limit = metrics["evicted_keys"], thresholds["evicted_keys_warning"]
    if evicted is not None and limit is not None and evicted > limit:
        verdict.add(WARNING, "%d keys were evicted at maxmemory (policy %s) %s, above the warning threshold of %d"
                    % (evicted, metrics["maxmemory_policy"], _since_start(metrics), limit))


def _judge_persistence(verdict, metrics):
    if metrics["rdb_last_bgsave_status"] not in (None, "ok"):
        verdict.add(CRITICAL, "the last RDB background save failed (rdb_last_bgsave_status %s, %s writes not saved);"
                    " Redis refuses writes until a save succeeds when stop-writes-on-bgsave-error is on"
                    " (the default)" % (metrics["rdb_last_bgsave_status"], metrics["rdb_changes_since_last_save"]))
    if metrics["aof_enabled"] and metrics["aof_last_write_status"] not in (None, "ok"):
        verdict.add(CRITICAL, "the last append-only file write failed (aof_last_write_status %s);"
                    " Redis refuses writes until an AOF write succeeds" % metrics["aof_last_write_status"])


def _judge_replication(verdict, metrics, thresholds):
    if metrics["role"] != "slave":
        return
    master = "%s:%s" % (metrics["master_host"], metrics["master_port"])
    if metrics["master_link_status"] != "up":
        details = []
        if metrics["master_link_down_since_seconds"] is not None:
            details.append("down for %d s" % metrics["master_link_down_since_seconds"])
        if metrics["master_sync_in_progress"]:
            details.append("a full synchronisation is in progress")
        verdict.add(CRITICAL, "the replica's link to its master %s is %s%s; it serves stale data or errors"
                    % (master, metrics["master_link_status"] or "not reported",
                       " (%s)" % ", ".join(details) if details else ""))
        return
    io_ago, limit = metrics["master_last_io_seconds_ago"], thresholds["replica_io_warning_seconds"]
    if io_ago is not None and limit is not None and io_ago > limit:
        verdict.add(WARNING, "the replica last heard from its master %s %d s ago, above the warning threshold of %d s"
                    % (master, io_ago, limit))


def read_info(client):
    """INFO in one round trip, plus CONFIG GET maxclients only where INFO lacks it.

    Returns (info, maxclients, maxclients_note): maxclients from CONFIG GET when
    it had to be asked for, and a note saying why it is unknown when CONFIG is
    renamed or refused.
    """
    try:
        info = client.execute_command("INFO", *INFO_SECTIONS)
    except redis.ResponseError:
        # Before Redis 7, INFO takes one section: ask for the default set.
        info = client.info()
    if info.get("maxclients") is not None:
        return info, None, None
    try:
        reply = client.config_get("maxclients")
    except redis.ResponseError as exc:
        return info, None, "CONFIG GET maxclients: %s" % exc
    return info, (reply or {}).get("maxclients"), None


def check(params, thresholds):
    """Run the checks; never raises for a server-side problem."""
    client = redis_client(params)
    metrics = empty_metrics()
    verdict = Verdict()
    error = None
    is_available = False
    server = "%s:%s" % (params["login_host"], params["login_port"])
    try:
        # The first PING opens the connection (TCP, TLS handshake, AUTH); the second
        # one, on the open connection, is the latency a client sees.
        connect_clock = Stopwatch()
        client.ping()
        connect_ms = connect_clock.elapsed_ms()
        is_available = True
        ping_clock = Stopwatch()
        client.ping()
        ping_ms = ping_clock.elapsed_ms()
        info, maxclients, maxclients_note = read_info(client)
        metrics = metrics_from_info(info, ping_ms, maxclients)
        metrics["connect_ms"] = connect_ms
        verdict = judge(metrics, thresholds, maxclients_note)
    except redis.AuthenticationError as exc:
        error = str(exc)
        verdict.add(UNKNOWN, "Redis at %s refused the credentials: %s" % (server, exc))
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        error = "%s: %s" % (type(exc).__name__, exc)
        handshake = tls_error(exc)
        if is_available:
            verdict.add(CRITICAL, "Redis at %s stopped answering during the checks (%s)" % (server, error))
        elif isinstance(exc, redis.TimeoutError):
            verdict.add(CRITICAL, "Redis at %s did not answer PING within %s s (%s)"
                        % (server, params["connect_timeout"], error))
        elif handshake is not None:
            verdict.add(UNKNOWN, "the TLS handshake with Redis at %s failed (%s); check ca_cert, validate_certs,"
                        " client_cert and client_key" % (server, handshake))
        elif "max number of clients" in str(exc):
            verdict.add(CRITICAL, "Redis at %s refuses new connections: maxclients is reached (%s)" % (server, error))
        else:
            hint = ""
            if not params["tls"] and "closed" in str(exc).lower():
                hint = "; if the server only accepts TLS, set tls to true"
            verdict.add(CRITICAL, "Redis at %s refused or dropped the connection (%s)%s" % (server, error, hint))
    except redis.RedisError as exc:
        error = "%s: %s" % (type(exc).__name__, exc)
        verdict.add(UNKNOWN, "Redis at %s answered with an error: %s" % (server, error))
    finally:
        client.close()
    return dict(
        status=verdict.status,
        is_available=is_available,
        reasons=verdict.reasons,
        metrics=metrics,
        checked=redis_url(params),
        error=error,
    )


def main():
    argument_spec = redis_common_argument_spec()
    argument_spec.update(THRESHOLD_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_redis_library(module)
    thresholds = dict((name, module.params[name]) for name in THRESHOLD_SPEC)
    clock = Stopwatch()
    result = check(module.params, thresholds)
    module.exit_json(changed=False, thresholds=thresholds, elapsed_ms=clock.elapsed_ms(), **result)


if __name__ == "__main__":
    main()
