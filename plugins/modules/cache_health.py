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
  - Sends C(PING) and measures its latency in milliseconds, reads C(INFO) (memory,
    clients, stats, server) and judges memory use against C(maxmemory) and the
    keyspace hit rate against thresholds.
  - An unreachable or hung server is a result, not a failure. The module returns
    RV(status=critical) and RV(is_available=false) with the reason, so a playbook
    decides what to do with C(failed_when) or C(when).
  - Reads only; it never changes the server.
author:
  - incident.remediation contributors (@incident-remediation)
extends_documentation_fragment:
  - incident.remediation.redis
attributes:
  check_mode:
    support: full
    description: The module only reads, so check mode runs the same checks.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
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
notes:
  - Thresholds default to the runbooks' values (LowCacheHitRate below 50%, memory above 90% and 95%).
seealso:
  - module: community.general.redis_info
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
      description: PING round trip in milliseconds.
      type: float
      sample: 0.31
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
      description: Open client connections.
      type: int
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
thresholds:
  description: The thresholds applied.
  returned: always
  type: dict
  sample: {"ping_warning_ms": 100, "ping_critical_ms": 1000, "memory_warning_ratio": 0.9}
elapsed_ms:
  description: Milliseconds the checks took.
  returned: always
  type: float
  sample: 1.42
server:
  description: The C(host:port) checked.
  returned: always
  type: str
  sample: 127.0.0.1:6379
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
)
from ansible_collections.incident.remediation.plugins.module_utils._verdict import (
    CRITICAL,
    UNKNOWN,
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
)

_INFO_KEYS = {
    "redis_version": "redis_version",
    "role": "role",
    "uptime_seconds": "uptime_in_seconds",
    "used_memory": "used_memory",
    "maxmemory": "maxmemory",
    "maxmemory_policy": "maxmemory_policy",
    "connected_clients": "connected_clients",
    "blocked_clients": "blocked_clients",
    "rejected_connections": "rejected_connections",
    "evicted_keys": "evicted_keys",
    "keyspace_hits": "keyspace_hits",
    "keyspace_misses": "keyspace_misses",
}


def empty_metrics():
    metrics = dict.fromkeys(_INFO_KEYS)
    metrics.update(ping_ms=None, memory_ratio=None, hit_rate=None)
    return metrics


def metrics_from_info(info, ping_ms):
    """Pick and derive the reported metrics from a parsed INFO reply."""
    metrics = empty_metrics()
    metrics["ping_ms"] = ping_ms
    for name, key in _INFO_KEYS.items():
        metrics[name] = info.get(key)
    if metrics["maxmemory"] and metrics["used_memory"] is not None:
        metrics["memory_ratio"] = round(float(metrics["used_memory"]) / metrics["maxmemory"], 4)
    hits, misses = metrics["keyspace_hits"], metrics["keyspace_misses"]
    if hits is not None and misses is not None and hits + misses > 0:
        metrics["hit_rate"] = round(float(hits) / (hits + misses), 4)
    return metrics


def judge(metrics, thresholds):
    """Verdict for a server that answered."""
    verdict = Verdict()
    verdict.check_above("PING latency", metrics["ping_ms"],
                        thresholds["ping_warning_ms"], thresholds["ping_critical_ms"], " ms")
    verdict.check_above("memory use", metrics["memory_ratio"],
                        thresholds["memory_warning_ratio"], thresholds["memory_critical_ratio"])
    lookups = (metrics["keyspace_hits"] or 0) + (metrics["keyspace_misses"] or 0)
    if lookups >= thresholds["hit_rate_min_sample"]:
        verdict.check_below("keyspace hit rate", metrics["hit_rate"],
                            thresholds["hit_rate_warning"], None)
    return verdict


def check(params, thresholds):
    """Run the checks; never raises for a server-side problem."""
    client = redis_client(params)
    metrics = empty_metrics()
    verdict = Verdict()
    error = None
    is_available = False
    server = "%s:%s" % (params["login_host"], params["login_port"])
    try:
        ping_clock = Stopwatch()
        client.ping()
        ping_ms = ping_clock.elapsed_ms()
        is_available = True
        metrics = metrics_from_info(client.info(), ping_ms)
        verdict = judge(metrics, thresholds)
    except redis.AuthenticationError as exc:
        error = str(exc)
        verdict.add(UNKNOWN, "Redis at %s refused the credentials: %s" % (server, exc))
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        error = "%s: %s" % (type(exc).__name__, exc)
        if is_available:
            verdict.add(CRITICAL, "Redis at %s stopped answering during the checks (%s)" % (server, error))
        elif isinstance(exc, redis.TimeoutError):
            verdict.add(CRITICAL, "Redis at %s did not answer PING within %s s (%s)"
                        % (server, params["connect_timeout"], error))
        else:
            verdict.add(CRITICAL, "Redis at %s refused or dropped the connection (%s)" % (server, error))
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
        server=server,
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
