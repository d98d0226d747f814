#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cache_evict
short_description: Delete Redis keys matching patterns in small batches, or flush Redis when explicitly allowed
version_added: 0.1.0
description:
  - Guarded remediation for a Redis that runs out of memory (runbook 002 deletes C(*:expired:*)).
  - Walks the keyspace with C(SCAN MATCH pattern COUNT scan_count), never C(KEYS), and deletes
    the matching keys with C(UNLINK) in batches of O(batch_size), so no single command holds
    Redis for long; O(batch_pause_ms) adds a pause between batches.
  - Deletes at most O(max_keys) keys in total across all O(patterns); RV(cap_reached) says
    whether the cap left matching keys behind.
  - Optionally deletes only keys idle for at least O(min_idle_seconds) (C(OBJECT IDLETIME))
    and/or only keys without an expiry (O(only_without_ttl), C(TTL) is -1). The filters are
    read in one pipelined round trip per C(SCAN) page; a key touched between that read and
    its C(UNLINK) (a few milliseconds) is still deleted.
  - With O(flush=true) and O(allow_flush=true) runs C(FLUSHALL) (or C(FLUSHDB)) instead,
    C(ASYNC) by default so Redis frees the memory in a background thread and keeps serving.
    O(flush) without O(allow_flush) fails, in check mode too.
  - A server that cannot be reached, or an error during the run, is reported in RV(error)
    with RV(is_available) and the counts so far, not raised as a task failure; use
    C(failed_when) on RV(error) where a failed remediation must stop the play.
  - An ACL user needs C(+info +scan +unlink), plus C(+object|idletime) for
    O(min_idle_seconds), C(+ttl) for O(only_without_ttl), and C(+flushall) or C(+flushdb) for O(flush).
author:
  - incident.remediation contributors (@incident-remediation)
extends_documentation_fragment:
  - incident.remediation.redis
  - incident.remediation.attributes
attributes:
  check_mode:
    support: full
    details:
      - Scans and applies the filters and the cap exactly as a real run would, and reports
        the keys it would delete in RV(selected); deletes nothing.
      - With O(flush=true), reports how many keys a flush would remove and does not flush.
  diff_mode:
    support: none
    details: The counts in the result say what changed.
options:
  patterns:
    description:
      - C(SCAN MATCH) glob patterns of the keys to delete, for example V(*:expired:*).
      - Required unless O(flush=true). A pattern made only of C(*) (every key) is refused;
        use O(flush) with O(allow_flush) for that.
      - A key matching several patterns is counted and deleted once, under the first.
    type: list
    elements: str
  max_keys:
    description:
      - Most keys deleted in one run, across all O(patterns). When more keys qualify, the
        run stops at the cap and RV(cap_reached) is V(true); run the module again to go on.
      - In check mode, the most keys counted.
    type: int
    default: 100000
  scan_count:
    description:
      - C(COUNT) hint of each C(SCAN) call, the number of keyspace slots Redis visits per call.
      - Bigger is fewer round trips but longer commands.
    type: int
    default: 1000
  batch_size:
    description:
      - Keys per C(UNLINK) command (at most 2000).
      - C(UNLINK) frees small values in the command itself and large ones in a background
        thread, so its cost grows with the batch; the default keeps each batch well under a millisecond.
    type: int
    default: 500
  batch_pause_ms:
    description: Milliseconds to sleep after each C(UNLINK) batch before scanning on.
    type: int
    default: 0
  min_idle_seconds:
    description:
      - Delete only keys not read or written for at least this many seconds (C(OBJECT IDLETIME)).
      - Redis does not track idle time under an LFU C(maxmemory-policy) (C(allkeys-lfu),
        C(volatile-lfu)); the module then fails with a message before touching anything.
    type: int
  only_without_ttl:
    description: Delete only keys that have no expiry (C(TTL) is -1); keys that will expire anyway are left.
    type: bool
    default: false
  flush:
    description:
      - Remove every key (C(FLUSHALL), or C(FLUSHDB) with O(flush_scope=db)) instead of
        deleting by pattern. Needs O(allow_flush=true); cannot be combined with O(patterns)
        or the filters.
      - Nothing is flushed when there are no keys, so a second run reports no change.
    type: bool
    default: false
  allow_flush:
    description:
      - Explicit consent for O(flush). Meant to be set per route or inventory where
        losing the whole cache is acceptable (runbooks 000 and 004).
    type: bool
    default: false
  flush_scope:
    description: V(all) runs C(FLUSHALL) (every database); V(db) runs C(FLUSHDB) on O(db) only.
    type: str
    choices: [all, db]
    default: all
  flush_async:
    description:
      - Flush with C(ASYNC), so Redis frees the memory in a background thread instead of
        blocking every client until it is done (seconds for millions of keys).
      - RV(used_memory_after) may then still show memory that is being freed.
    type: bool
    default: true
notes:
  - For a standalone Redis or a replication master; Redis Cluster is not supported. A replica
    refuses C(UNLINK) and C(FLUSHALL), which is reported in RV(error).
  - Check mode remembers the keys it counts (at most O(max_keys)) so that each is counted once;
    a real run only remembers the keys of the batch being deleted.
  - C(SCAN) may return a key twice when Redis resizes its hash table during the run. Keys
    selected for deletion are counted once; RV(skipped_by_filter) may then count a key twice.
  - UNLINK reports how many keys it removed; keys that expired or were deleted between the
    scan and the UNLINK make RV(deleted) smaller than RV(selected).
seealso:
  - module: incident.remediation.cache_health
"""

EXAMPLES = r"""
- name: Count what would be deleted (runbook 002, Redis memory exhaustion)
  incident.remediation.cache_evict:
    login_host: 127.0.0.1
    patterns: ["*:expired:*"]
  check_mode: true
  register: would

- name: Delete the expired-session keys, at most 50000, pausing between batches
  incident.remediation.cache_evict:
    login_host: 127.0.0.1
    patterns: ["*:expired:*"]
    max_keys: 50000
    batch_pause_ms: 5
  register: evicted
  failed_when: evicted.error is not none

- name: Delete cache entries nobody read for a day and that never expire
  incident.remediation.cache_evict:
    patterns: ["cache:*"]
    min_idle_seconds: 86400
    only_without_ttl: true

- name: Flush the whole cache, only where the route allows it (runbooks 000 and 004)
  incident.remediation.cache_evict:
    flush: true
    allow_flush: "{{ redis_allow_flush | default(false) }}"
"""

RETURN = r"""
changed:
  description: Whether keys were deleted (in check mode, whether keys would be).
  returned: always
  type: bool
  sample: true
is_available:
  description: Whether the server answered.
  returned: always
  type: bool
  sample: true
error:
  description: The connection or Redis error that stopped the run, null when none.
  returned: always
  type: str
  sample: null
msg:
  description: One sentence saying what was done or would be done.
  returned: always
  type: str
  sample: deleted 1200 keys matching 1 pattern; used_memory 52428800 -> 31457280 bytes
checked:
  description:
    - The Redis server and database acted on, as C(redis://host:port/db); C(rediss://) with
      O(tls=true), C(user@) before the host with O(login_user). Never holds a password.
    - Every module of the collection names what it checked or acted on in this key.
  returned: always
  type: str
  sample: redis://127.0.0.1:6379/0
per_pattern:
  description:
    - Maps each pattern, in the order given, to its counts; empty with O(flush) or when the
      server could not be reached.
    - C(matched), keys the pattern matched that the run examined (C(selected + skipped_by_filter)).
    - C(selected), keys that passed the filters and the cap, deleted or (in check mode) to be deleted.
    - C(deleted), keys C(UNLINK) removed; 0 in check mode.
    - C(skipped_by_filter), matched keys left because of O(min_idle_seconds) or O(only_without_ttl).
  returned: always
  type: dict
  sample:
    "*:expired:*": {"matched": 1300, "selected": 1200, "deleted": 1200, "skipped_by_filter": 100}
matched:
  description: Total of RV(per_pattern) C(matched); with O(flush), the keys the flush covers.
  returned: always
  type: int
  sample: 1300
selected:
  description: Keys deleted or, in check mode, that would be; with O(flush), the keys the flush covers.
  returned: always
  type: int
  sample: 1200
deleted:
  description: Keys removed; 0 in check mode. With O(flush), the keys there were before the flush.
  returned: always
  type: int
  sample: 1200
skipped_by_filter:
  description: Total of RV(per_pattern) C(skipped_by_filter).
  returned: always
  type: int
  sample: 100
cap_reached:
  description: Whether O(max_keys) stopped the run while more keys qualified.
  returned: always
  type: bool
  sample: false
max_keys:
  description: The cap applied.
  returned: always
  type: int
  sample: 100000
flushed:
  description: Whether C(FLUSHALL) or C(FLUSHDB) ran (never in check mode).
  returned: always
  type: bool
  sample: false
used_memory_before:
  description: C(used_memory) in bytes before the run; null when not known.
  returned: always
  type: int
  sample: 52428800
used_memory_after:
  description: C(used_memory) in bytes after the run; null when not known.
  returned: always
  type: int
  sample: 31457280
batches:
  description: C(UNLINK) commands sent.
  returned: always
  type: int
  sample: 3
batch_size:
  description: Keys per C(UNLINK) command.
  returned: always
  type: int
  sample: 500
slowest_batch_ms:
  description: Longest C(UNLINK) round trip in milliseconds; null when none was sent.
  returned: always
  type: float
  sample: 0.84
elapsed_ms:
  description: Milliseconds the run took.
  returned: always
  type: float
  sample: 40.2
actions:
  description: What was done (or, in check mode, would be done), one sentence per pattern or flush.
  returned: always
  type: list
  elements: str
  sample: ["deleted 1200 of 1300 keys matching '*:expired:*' (100 skipped by filters)"]
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.remediation.plugins.module_utils._redis import (
    ensure_redis_library,
    redis,
    redis_client,
    redis_common_argument_spec,
    redis_url,
)
from ansible_collections.incident.remediation.plugins.module_utils._verdict import Stopwatch

MAX_BATCH_SIZE = 2000

EVICT_SPEC = dict(
    patterns=dict(type="list", elements="str"),
    max_keys=dict(type="int", default=100000, no_log=False),
    scan_count=dict(type="int", default=1000),
    batch_size=dict(type="int", default=500),
    batch_pause_ms=dict(type="int", default=0),
    min_idle_seconds=dict(type="int"),
    only_without_ttl=dict(type="bool", default=False),
    flush=dict(type="bool", default=False),
    allow_flush=dict(type="bool", default=False),
    flush_scope=dict(type="str", choices=["all", "db"], default="all"),
    flush_async=dict(type="bool", default=True),
)

# What the filters say about a key.
SELECT = "select"
FILTERED = "filtered"
GONE = "gone"


class OptionRefused(Exception):
    """The options cannot be honoured on this server (checked before anything is deleted)."""


class EvictionError(Exception):
    """Redis answered a command of the run with an error."""


def validate_options(params):
    """Problems with the options, as sentences; empty when they are usable."""
    problems = []
    patterns = params.get("patterns") or []
    if params.get("flush"):
        if not params.get("allow_flush"):
            problems.append("flush=true removes every key (FLUSHALL/FLUSHDB) and needs allow_flush=true")
        if patterns:
            problems.append("give either patterns or flush=true, not both")
        if params.get("min_idle_seconds") is not None or params.get("only_without_ttl"):
            problems.append("min_idle_seconds and only_without_ttl do not apply to flush=true")
    elif not patterns:
        problems.append("patterns is required unless flush=true")
    for pattern in patterns:
        if not pattern:
            problems.append("patterns must not contain an empty string")
        elif set(pattern) == {"*"}:
            problems.append("pattern %r matches every key; use flush=true with allow_flush=true for that" % pattern)
    for name, low, high in (
        ("max_keys", 1, None),
        ("scan_count", 1, None),
        ("batch_size", 1, MAX_BATCH_SIZE),
        ("batch_pause_ms", 0, None),
        ("min_idle_seconds", 0, None),
    ):
        value = params.get(name)
        if value is None:
            continue
        if value < low or (high is not None and value > high):
            problems.append("%s must be %s, got %s"
                            % (name, "at least %d" % low if high is None else "between %d and %d" % (low, high), value))
    return problems


def unique(patterns):
    """Patterns in the given order, each once."""
    seen = []
    for pattern in patterns:
        if pattern not in seen:
            seen.append(pattern)
    return seen


def chunks(items, size):
    """Consecutive slices of at most size items."""
    return [items[start:start + size] for start in range(0, len(items), size)]


def qualifies(idle, ttl, min_idle_seconds, only_without_ttl):
    """SELECT, FILTERED or GONE (the key vanished) for one key's OBJECT IDLETIME and TTL replies.

    idle and ttl are only looked at when their filter is on.
    """
    if min_idle_seconds is not None:
        if idle is None:
            return GONE
        if idle < min_idle_seconds:
            return FILTERED
    if only_without_ttl:
        if ttl is None or ttl == -2:
            return GONE
        if ttl != -1:
            return FILTERED
    return SELECT


class EvictionPlan:
    """Per-pattern accounting, the cap and the UNLINK batches, without any I/O.

    Feed it each SCAN page with offer(); it returns the batches ready to UNLINK.
    In check mode it only counts. Keys already selected are ignored when SCAN
    returns them again (or another pattern matches them), so a key is counted
    once and check mode counts what a real run deletes.
    """

    def __init__(self, patterns, max_keys, batch_size, *, min_idle_seconds=None, only_without_ttl=False,
                 check_mode=False):
        self.patterns = unique(patterns)
        self.max_keys = max_keys
        self.batch_size = batch_size
        self.min_idle_seconds = min_idle_seconds
        self.only_without_ttl = only_without_ttl
        self.check_mode = check_mode
        self.per_pattern = dict(
            (pattern, dict(matched=0, selected=0, deleted=0, skipped_by_filter=0)) for pattern in self.patterns
        )
        self.selected = 0
        self.cap_reached = False
        self._pending = []
        # Selected keys not yet unlinked (real run), or every selected key (check mode).
        self._seen = set()

    @property
    def lookups(self):
        """The per-key commands the filters need: ("idletime", "ttl"), one of them, or none."""
        wanted = []
        if self.min_idle_seconds is not None:
            wanted.append("idletime")
        if self.only_without_ttl:
            wanted.append("ttl")
        return tuple(wanted)

    def fresh(self, keys):
        """keys without those already selected."""
        return [key for key in keys if key not in self._seen]

    def offer(self, pattern, keys, replies=None):
        """Account for one SCAN page; return the batches of keys to UNLINK now.

        replies: per key, a dict with "idletime" and/or "ttl" (as Redis answered),
        or None when no filter is on.
        """
        tally = self.per_pattern[pattern]
        for index, key in enumerate(keys):
            if self.cap_reached:
                break
            if key in self._seen:
                continue
            reply = replies[index] if replies is not None else {}
            outcome = qualifies(reply.get("idletime"), reply.get("ttl"), self.min_idle_seconds,
                                self.only_without_ttl)
            if outcome == GONE:
                continue
            if outcome == FILTERED:
                tally["matched"] += 1
                tally["skipped_by_filter"] += 1
                continue
            if self.selected >= self.max_keys:
                self.cap_reached = True
                break
            tally["matched"] += 1
            tally["selected"] += 1
            self.selected += 1
            self._seen.add(key)
            if not self.check_mode:
                self._pending.append(key)
        return self._take(full_only=True)

    def finish_pattern(self):
        """The last, partly filled batch of the pattern being scanned."""
        return self._take(full_only=False)

    def _take(self, full_only):
        if full_only:
            ready = len(self._pending) - len(self._pending) % self.batch_size
        else:
            ready = len(self._pending)
        batches = chunks(self._pending[:ready], self.batch_size)
        self._pending = self._pending[ready:]
        return batches

    def record_deleted(self, pattern, batch, count):
        """UNLINK of batch removed count keys."""
        self.per_pattern[pattern]["deleted"] += count
        # Unlinked keys cannot come back from SCAN (unless recreated, then they are new).
        self._seen.difference_update(batch)

    @property
    def stopped(self):
        return self.cap_reached

    def totals(self):
        return dict(
            (name, sum(tally[name] for tally in self.per_pattern.values()))
            for name in ("matched", "selected", "deleted", "skipped_by_filter")
        )

    def actions(self):
        sentences = []
        for pattern, tally in self.per_pattern.items():
            skipped = " (%d skipped by filters)" % tally["skipped_by_filter"] if tally["skipped_by_filter"] else ""
            if self.check_mode:
                sentences.append("would delete %d of %d keys matching %r%s"
                                 % (tally["selected"], tally["matched"], pattern, skipped))
            else:
                sentences.append("deleted %d of %d keys matching %r%s"
                                 % (tally["deleted"], tally["matched"], pattern, skipped))
        if self.cap_reached:
            sentences.append("stopped at max_keys=%d with more matching keys left" % self.max_keys)
        return sentences


class Evictor:
    """Runs an EvictionPlan against Redis: SCAN, pipelined filter lookups, UNLINK in batches."""

    def __init__(self, client, plan, scan_count, batch_pause_ms=0, sleep=time.sleep):
        self.client = client
        self.plan = plan
        self.scan_count = scan_count
        self.batch_pause_ms = batch_pause_ms
        self.sleep = sleep
        self.batches = 0
        self.slowest_batch_ms = None
        self._pause_due = False

    def run(self):
        for pattern in self.plan.patterns:
            self._scan_pattern(pattern)
            for batch in self.plan.finish_pattern():
                self._unlink(pattern, batch)
            if self.plan.stopped:
                break

    def _scan_pattern(self, pattern):
        cursor = 0
        while True:
            self._pause()
            cursor, keys = self.client.scan(cursor=cursor, match=pattern, count=self.scan_count)
            keys = self.plan.fresh(keys)
            replies = self._lookups(keys) if keys and self.plan.lookups else None
            for batch in self.plan.offer(pattern, keys, replies):
                self._unlink(pattern, batch)
            if self.plan.stopped or int(cursor) == 0:
                return

    def _lookups(self, keys):
        """One pipelined round trip of OBJECT IDLETIME and/or TTL for the page's keys."""
        wanted = self.plan.lookups
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            for lookup in wanted:
                if lookup == "idletime":
                    pipe.execute_command("OBJECT", "IDLETIME", key)
                else:
                    pipe.execute_command("TTL", key)
        answers = pipe.execute(raise_on_error=False)
        replies = []
        for index in range(len(keys)):
            reply = {}
            for offset, lookup in enumerate(wanted):
                answer = answers[index * len(wanted) + offset]
                if isinstance(answer, Exception):
                    raise EvictionError("%s on a matching key failed: %s"
                                        % ("OBJECT IDLETIME" if lookup == "idletime" else "TTL", answer))
                reply[lookup] = answer
            replies.append(reply)
        return replies

    def _unlink(self, pattern, batch):
        self._pause()
        clock = Stopwatch()
        count = self.client.unlink(*batch)
        took = clock.elapsed_ms()
        self.batches += 1
        self.slowest_batch_ms = took if self.slowest_batch_ms is None else max(self.slowest_batch_ms, took)
        self.plan.record_deleted(pattern, batch, count)
        self._pause_due = self.batch_pause_ms > 0

    def _pause(self):
        if self._pause_due:
            self.sleep(self.batch_pause_ms / 1000.0)
            self._pause_due = False


def used_memory(client):
    return client.info("memory").get("used_memory")


def refusal_for(params, policy):
    """Why the options cannot be honoured under this maxmemory-policy, or None."""
    if params.get("min_idle_seconds") is not None and policy and "lfu" in str(policy):
        return ("min_idle_seconds cannot be applied: maxmemory-policy is %s, under which Redis does not track"
                " idle time (OBJECT IDLETIME fails); leave min_idle_seconds unset or use only_without_ttl" % policy)
    return None


def keys_in_scope(client, scope):
    if scope == "db":
        return int(client.dbsize())
    keyspace = client.info("keyspace")
    return sum(int(value.get("keys", 0)) for name, value in keyspace.items()
               if name.startswith("db") and isinstance(value, dict))


def empty_result(params):
    return dict(
        changed=False,
        is_available=False,
        error=None,
        msg="",
        checked=redis_url(params),
        per_pattern={},
        matched=0,
        selected=0,
        deleted=0,
        skipped_by_filter=0,
        cap_reached=False,
        max_keys=params["max_keys"],
        flushed=False,
        used_memory_before=None,
        used_memory_after=None,
        batches=0,
        batch_size=params["batch_size"],
        slowest_batch_ms=None,
        actions=[],
    )


def run_flush(client, params, check_mode, result):
    count = keys_in_scope(client, params["flush_scope"])
    command = ("FLUSHALL" if params["flush_scope"] == "all" else "FLUSHDB") + (
        " ASYNC" if params["flush_async"] else "")
    where = "in every database" if params["flush_scope"] == "all" else "in database %d" % params["db"]
    result.update(matched=count, selected=count)
    if count == 0:
        result["actions"].append("nothing to flush: no keys %s" % where)
    elif check_mode:
        result["actions"].append("would run %s, removing %d keys %s" % (command, count, where))
    else:
        if params["flush_scope"] == "all":
            client.flushall(asynchronous=params["flush_async"])
        else:
            client.flushdb(asynchronous=params["flush_async"])
        result.update(flushed=True, deleted=count)
        result["actions"].append("ran %s, removing %d keys %s" % (command, count, where))
    result["changed"] = count > 0


def run_patterns(client, params, check_mode, result):
    plan = EvictionPlan(params["patterns"], params["max_keys"], params["batch_size"],
                        min_idle_seconds=params["min_idle_seconds"],
                        only_without_ttl=params["only_without_ttl"], check_mode=check_mode)
    evictor = Evictor(client, plan, params["scan_count"], params["batch_pause_ms"])
    try:
        evictor.run()
    finally:
        result.update(plan.totals())
        result.update(
            per_pattern=plan.per_pattern,
            cap_reached=plan.cap_reached,
            batches=evictor.batches,
            slowest_batch_ms=evictor.slowest_batch_ms,
            actions=plan.actions(),
            changed=(plan.selected if check_mode else plan.totals()["deleted"]) > 0,
        )


def summary(result, params, check_mode):
    if params["flush"]:
        text = result["actions"][-1] if result["actions"] else "nothing flushed"
    else:
        patterns = len(result["per_pattern"])
        if check_mode:
            text = "would delete %d keys matching %d pattern%s" % (
                result["selected"], patterns, "" if patterns == 1 else "s")
        else:
            text = "deleted %d keys matching %d pattern%s" % (result["deleted"], patterns, "" if patterns == 1 else "s")
        if result["cap_reached"]:
            text += ", stopped at max_keys=%d" % params["max_keys"]
    if result["used_memory_before"] is not None and result["used_memory_after"] is not None:
        text += "; used_memory %d -> %d bytes" % (result["used_memory_before"], result["used_memory_after"])
    if result["error"]:
        text += "; stopped by an error: %s" % result["error"]
    return text


def evict(params, check_mode):
    """Run the eviction or flush; returns (result, refusal). Never raises for a server-side problem.

    refusal is a message when the options cannot be honoured on this server
    (nothing was changed); the module fails with it.
    """
    result = empty_result(params)
    client = redis_client(params)
    refusal = None
    try:
        memory = client.info("memory")
        result["is_available"] = True
        result["used_memory_before"] = memory.get("used_memory")
        refusal = refusal_for(params, memory.get("maxmemory_policy"))
        if refusal:
            raise OptionRefused(refusal)
        if params["flush"]:
            run_flush(client, params, check_mode, result)
        else:
            run_patterns(client, params, check_mode, result)
        result["used_memory_after"] = used_memory(client)
    except OptionRefused as exc:
        refusal = str(exc)
    except EvictionError as exc:
        result["error"] = str(exc)
    except redis.RedisError as exc:
        result["error"] = "%s: %s" % (type(exc).__name__, exc)
    finally:
        client.close()
    result["msg"] = summary(result, params, check_mode)
    return result, refusal


def main():
    argument_spec = redis_common_argument_spec()
    argument_spec.update(EVICT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    problems = validate_options(module.params)
    if problems:
        module.fail_json(msg="; ".join(problems))
    ensure_redis_library(module)
    clock = Stopwatch()
    result, refusal = evict(module.params, module.check_mode)
    result["elapsed_ms"] = clock.elapsed_ms()
    if refusal:
        result["msg"] = refusal
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
