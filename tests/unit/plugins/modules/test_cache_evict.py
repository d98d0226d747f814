"""Unit tests for plugins/modules/cache_evict.py: option validation, batch planning and
per-pattern accounting (pure logic), and main() against a closed loopback port.

The SCAN/UNLINK loop itself runs against a real Redis in tests/integration/test_cache_evict.py.
"""


import pytest
import yaml
from ansible_collections.incident.remediation.plugins.module_utils._redis import redis_common_argument_spec
from ansible_collections.incident.remediation.plugins.modules import cache_evict
from ansible_collections.incident.remediation.plugins.modules.cache_evict import (
    EVICT_SPEC,
    FILTERED,
    GONE,
    MAX_BATCH_SIZE,
    SELECT,
    EvictionPlan,
    chunks,
    empty_result,
    qualifies,
    refusal_for,
    summary,
    unique,
    validate_options,
)

RETURN = yaml.safe_load(cache_evict.RETURN)


def default_params(**overrides):
    """Module params as AnsibleModule fills them."""
    spec = dict(redis_common_argument_spec(), **EVICT_SPEC)
    params = {name: option.get("default") for name, option in spec.items()}
    params.update(overrides)
    return params


def keys(prefix, count, start=0):
    return [("%s:%d" % (prefix, index)).encode() for index in range(start, start + count)]


# ---------------------------------------------------------------- option validation


@pytest.mark.parametrize(
    "overrides",
    [
        {"patterns": ["*:expired:*"]},
        {"patterns": ["a:*", "b:?:*"], "max_keys": 1, "scan_count": 1, "batch_size": 1},
        {"patterns": ["a:*"], "min_idle_seconds": 0, "only_without_ttl": True, "batch_pause_ms": 0},
        {"patterns": ["a:*"], "batch_size": MAX_BATCH_SIZE},
        {"patterns": ["a:*"], "allow_flush": True},  # consent alone changes nothing
        {"flush": True, "allow_flush": True},
        {"flush": True, "allow_flush": True, "flush_scope": "db", "flush_async": False},
    ],
)
def test_valid_options(overrides):
    assert validate_options(default_params(**overrides)) == []


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({}, "patterns is required unless flush=true"),
        ({"patterns": []}, "patterns is required unless flush=true"),
        ({"flush": True}, "flush=true removes every key (FLUSHALL/FLUSHDB) and needs allow_flush=true"),
        ({"flush": True, "allow_flush": True, "patterns": ["a:*"]}, "give either patterns or flush=true, not both"),
        (
            {"flush": True, "allow_flush": True, "only_without_ttl": True},
            "min_idle_seconds and only_without_ttl do not apply to flush=true",
        ),
        (
            {"flush": True, "allow_flush": True, "min_idle_seconds": 60},
            "min_idle_seconds and only_without_ttl do not apply to flush=true",
        ),
        ({"patterns": [""]}, "patterns must not contain an empty string"),
        ({"patterns": ["*"]}, "pattern '*' matches every key; use flush=true with allow_flush=true for that"),
        ({"patterns": ["a:*", "**"]}, "pattern '**' matches every key; use flush=true with allow_flush=true for that"),
        ({"patterns": ["a:*"], "max_keys": 0}, "max_keys must be at least 1, got 0"),
        ({"patterns": ["a:*"], "scan_count": 0}, "scan_count must be at least 1, got 0"),
        ({"patterns": ["a:*"], "batch_size": 0}, "batch_size must be between 1 and 2000, got 0"),
        ({"patterns": ["a:*"], "batch_size": 2001}, "batch_size must be between 1 and 2000, got 2001"),
        ({"patterns": ["a:*"], "batch_pause_ms": -1}, "batch_pause_ms must be at least 0, got -1"),
        ({"patterns": ["a:*"], "min_idle_seconds": -5}, "min_idle_seconds must be at least 0, got -5"),
    ],
)
def test_invalid_options(overrides, problem):
    assert validate_options(default_params(**overrides)) == [problem]


def test_every_problem_is_reported_at_once():
    problems = validate_options(default_params(flush=True, patterns=["*"], max_keys=0))
    assert len(problems) == 4


@pytest.mark.parametrize(
    ("policy", "refused"),
    [("allkeys-lfu", True), ("volatile-lfu", True), ("allkeys-lru", False), ("noeviction", False), (None, False)],
)
def test_idle_filter_is_refused_under_an_lfu_policy(policy, refused):
    message = refusal_for(default_params(patterns=["a:*"], min_idle_seconds=60), policy)
    assert (message is not None) is refused
    if refused:
        assert message.startswith("min_idle_seconds cannot be applied: maxmemory-policy is %s" % policy)
    assert refusal_for(default_params(patterns=["a:*"], only_without_ttl=True), policy) is None


# ---------------------------------------------------------------- helpers


def test_unique_keeps_the_first_of_each_pattern_in_order():
    assert unique(["b:*", "a:*", "b:*", "c:*", "a:*"]) == ["b:*", "a:*", "c:*"]


@pytest.mark.parametrize(
    ("count", "size", "lengths"),
    [(0, 3, []), (1, 3, [1]), (3, 3, [3]), (7, 3, [3, 3, 1]), (6, 1, [1] * 6), (5, 100, [5])],
)
def test_chunks(count, size, lengths):
    items = list(range(count))
    batches = chunks(items, size)
    assert [len(batch) for batch in batches] == lengths
    assert [item for batch in batches for item in batch] == items


@pytest.mark.parametrize(
    ("idle", "ttl", "min_idle", "without_ttl", "outcome"),
    [
        (None, None, None, False, SELECT),  # no filter: nothing looked up
        (100, None, 60, False, SELECT),
        (60, None, 60, False, SELECT),  # "at least"
        (59, None, 60, False, FILTERED),
        (None, None, 60, False, GONE),  # OBJECT IDLETIME of a vanished key is nil
        (None, -1, None, True, SELECT),
        (None, 30, None, True, FILTERED),
        (None, 0, None, True, FILTERED),
        (None, -2, None, True, GONE),
        (100, -1, 60, True, SELECT),
        (100, 30, 60, True, FILTERED),
        (10, -1, 60, True, FILTERED),
        (0, -1, 0, True, SELECT),
    ],
)
def test_qualifies(idle, ttl, min_idle, without_ttl, outcome):
    assert qualifies(idle, ttl, min_idle, without_ttl) == outcome


# ---------------------------------------------------------------- batch planning


def test_full_batches_are_released_as_soon_as_they_fill():
    plan = EvictionPlan(["a:*"], max_keys=100, batch_size=4)
    assert plan.offer("a:*", keys("a", 3)) == []
    batches = plan.offer("a:*", keys("a", 6, start=3))
    assert batches == [keys("a", 4), keys("a", 4, start=4)]
    assert plan.finish_pattern() == [keys("a", 1, start=8)]
    assert plan.finish_pattern() == []


def test_page_larger_than_several_batches():
    plan = EvictionPlan(["a:*"], max_keys=10**6, batch_size=500)
    batches = plan.offer("a:*", keys("a", 1750))
    assert [len(batch) for batch in batches] == [500, 500, 500]
    assert [len(batch) for batch in plan.finish_pattern()] == [250]


def test_batches_never_mix_patterns():
    plan = EvictionPlan(["a:*", "b:*"], max_keys=100, batch_size=4)
    assert plan.offer("a:*", keys("a", 2)) == []
    assert plan.finish_pattern() == [keys("a", 2)]
    assert plan.offer("b:*", keys("b", 2)) == []
    assert plan.finish_pattern() == [keys("b", 2)]


def test_check_mode_counts_but_plans_no_batch():
    plan = EvictionPlan(["a:*"], max_keys=100, batch_size=2, check_mode=True)
    assert plan.offer("a:*", keys("a", 5)) == []
    assert plan.finish_pattern() == []
    assert plan.per_pattern["a:*"] == {"matched": 5, "selected": 5, "deleted": 0, "skipped_by_filter": 0}


@pytest.mark.parametrize(
    ("min_idle", "without_ttl", "lookups"),
    [(None, False, ()), (60, False, ("idletime",)), (None, True, ("ttl",)), (0, True, ("idletime", "ttl"))],
)
def test_lookups_follow_the_filters(min_idle, without_ttl, lookups):
    plan = EvictionPlan(["a:*"], 10, 10, min_idle_seconds=min_idle, only_without_ttl=without_ttl)
    assert plan.lookups == lookups


# ---------------------------------------------------------------- per-pattern accounting


def test_filters_skip_and_count_and_vanished_keys_are_ignored():
    plan = EvictionPlan(["s:*"], max_keys=100, batch_size=100, min_idle_seconds=60, only_without_ttl=True)
    page = keys("s", 5)
    replies = [
        {"idletime": 100, "ttl": -1},  # selected
        {"idletime": 10, "ttl": -1},  # too recent
        {"idletime": 100, "ttl": 50},  # expires anyway
        {"idletime": None, "ttl": -2},  # gone since SCAN
        {"idletime": 61, "ttl": -1},  # selected
    ]
    plan.offer("s:*", page, replies)
    assert plan.finish_pattern() == [[page[0], page[4]]]
    assert plan.per_pattern["s:*"] == {"matched": 4, "selected": 2, "deleted": 0, "skipped_by_filter": 2}


def test_cap_stops_at_max_keys_across_patterns_and_says_so():
    plan = EvictionPlan(["a:*", "b:*"], max_keys=5, batch_size=10)
    plan.offer("a:*", keys("a", 3))
    assert plan.finish_pattern() == [keys("a", 3)]
    assert not plan.stopped
    plan.offer("b:*", keys("b", 4))
    assert plan.stopped
    assert plan.cap_reached is True
    assert plan.finish_pattern() == [keys("b", 2)]
    assert plan.selected == 5
    assert plan.per_pattern["b:*"] == {"matched": 2, "selected": 2, "deleted": 0, "skipped_by_filter": 0}


def test_exactly_max_keys_is_not_a_cap_hit():
    plan = EvictionPlan(["a:*"], max_keys=3, batch_size=10)
    plan.offer("a:*", keys("a", 3))
    assert plan.cap_reached is False
    plan.offer("a:*", [])  # the scan goes on and finds nothing more
    assert plan.cap_reached is False


def test_filtered_keys_after_the_cap_do_not_trip_it():
    plan = EvictionPlan(["a:*"], max_keys=1, batch_size=10, only_without_ttl=True)
    plan.offer("a:*", keys("a", 3), [{"ttl": -1}, {"ttl": 5}, {"ttl": 9}])
    assert plan.cap_reached is False
    assert plan.per_pattern["a:*"]["skipped_by_filter"] == 2
    plan.offer("a:*", keys("a", 1, start=3), [{"ttl": -1}])
    assert plan.cap_reached is True


def test_a_key_returned_twice_by_scan_is_counted_once():
    plan = EvictionPlan(["a:*"], max_keys=100, batch_size=100)
    plan.offer("a:*", keys("a", 3))
    plan.offer("a:*", keys("a", 4))  # rehashing: a:0..a:2 again, plus a:3
    assert plan.finish_pattern() == [keys("a", 4)]
    assert plan.per_pattern["a:*"]["selected"] == 4


def test_overlapping_patterns_count_a_key_once_under_the_first_in_check_mode():
    plan = EvictionPlan(["sess:*", "*:expired:*"], max_keys=100, batch_size=100, check_mode=True)
    shared = [b"sess:expired:1", b"sess:expired:2"]
    plan.offer("sess:*", [*shared, b"sess:live:1"])
    plan.finish_pattern()
    assert plan.fresh([*shared, b"job:expired:9"]) == [b"job:expired:9"]
    plan.offer("*:expired:*", [*shared, b"job:expired:9"])
    assert plan.per_pattern["sess:*"]["selected"] == 3
    assert plan.per_pattern["*:expired:*"] == {"matched": 1, "selected": 1, "deleted": 0, "skipped_by_filter": 0}
    assert plan.selected == 4


def test_record_deleted_accounts_per_pattern_and_forgets_unlinked_keys():
    plan = EvictionPlan(["a:*"], max_keys=100, batch_size=2)
    (batch,) = plan.offer("a:*", keys("a", 2))
    plan.record_deleted("a:*", batch, 1)  # one expired between SCAN and UNLINK
    assert plan.per_pattern["a:*"]["deleted"] == 1
    assert plan.fresh(batch) == batch  # a recreated key is a new key


def test_totals_and_actions():
    plan = EvictionPlan(["a:*", "b:*"], max_keys=3, batch_size=10, only_without_ttl=True)
    plan.offer("a:*", keys("a", 2), [{"ttl": -1}, {"ttl": 10}])
    for batch in plan.finish_pattern():
        plan.record_deleted("a:*", batch, len(batch))
    plan.offer("b:*", keys("b", 3), [{"ttl": -1}] * 3)
    for batch in plan.finish_pattern():
        plan.record_deleted("b:*", batch, len(batch))
    assert plan.totals() == {"matched": 4, "selected": 3, "deleted": 3, "skipped_by_filter": 1}
    assert plan.actions() == [
        "deleted 1 of 2 keys matching 'a:*' (1 skipped by filters)",
        "deleted 2 of 2 keys matching 'b:*'",
        "stopped at max_keys=3 with more matching keys left",
    ]


def test_check_mode_actions_say_would():
    plan = EvictionPlan(["*:expired:*"], max_keys=10, batch_size=10, check_mode=True)
    plan.offer("*:expired:*", keys("x:expired", 2))
    assert plan.actions() == ["would delete 2 of 2 keys matching '*:expired:*'"]


def test_duplicate_patterns_are_scanned_once():
    plan = EvictionPlan(["a:*", "a:*"], max_keys=10, batch_size=10)
    assert plan.patterns == ["a:*"]
    assert list(plan.per_pattern) == ["a:*"]


# ---------------------------------------------------------------- result shape


def test_empty_result_has_every_documented_key_but_elapsed_ms():
    assert set(empty_result(default_params(patterns=["a:*"]))) == set(RETURN) - {"elapsed_ms"}


@pytest.mark.parametrize(
    ("check_mode", "updates", "text"),
    [
        (True, {"selected": 5}, "would delete 5 keys matching 1 pattern"),
        (False, {"deleted": 5}, "deleted 5 keys matching 1 pattern"),
        (False, {"deleted": 5, "cap_reached": True}, "deleted 5 keys matching 1 pattern, stopped at max_keys=100000"),
        (
            False,
            {"deleted": 5, "used_memory_before": 2000, "used_memory_after": 1000},
            "deleted 5 keys matching 1 pattern; used_memory 2000 -> 1000 bytes",
        ),
        (False, {"error": "ConnectionError: gone"}, "deleted 0 keys matching 1 pattern; stopped by an error: "),
    ],
)
def test_summary(check_mode, updates, text):
    params = default_params(patterns=["a:*"])
    result = dict(empty_result(params), per_pattern={"a:*": {}}, **updates)
    assert summary(result, params, check_mode).startswith(text)


# ---------------------------------------------------------------- main() in process


@pytest.mark.parametrize("check_mode", [False, True])
def test_flush_without_allow_flush_fails_before_connecting(run_module, closed_port, check_mode):
    code, result, _out = run_module(cache_evict, {"login_port": closed_port, "flush": True}, check_mode=check_mode)
    assert code == 1
    assert result["failed"] is True
    assert "needs allow_flush=true" in result["msg"]


def test_unreachable_server_is_reported_not_failed(run_module, closed_port):
    code, result, out = run_module(
        cache_evict, {"login_port": closed_port, "patterns": ["*:expired:*"], "login_password": "pw-never-shown"}
    )
    assert code == 0
    assert "failed" not in result
    assert result["changed"] is False
    assert result["is_available"] is False
    assert result["error"].startswith("ConnectionError")
    assert set(RETURN) <= set(result)
    assert result["checked"] == "redis://127.0.0.1:%d/0" % closed_port
    assert result["per_pattern"] == {}
    assert result["deleted"] == 0
    assert "pw-never-shown" not in out


def test_unknown_option_is_rejected(run_module):
    code, result, _out = run_module(cache_evict, {"patterns": ["a:*"], "max_key": 5})
    assert code == 1
    assert "max_key" in result["msg"]
