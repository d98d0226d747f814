"""cache_evict through Ansible against a real Redis (the project's image, in Docker).

Each playbook run registers every task's result and writes them to a JSON file,
so one ansible-playbook run covers a scenario's check-mode run, real run and re-run.
"""

import json

import pytest
import redis

from tests.harness import ansible
from tests.harness.docker import redis_server

pytestmark = pytest.mark.integration

EXPIRED = [f"sess:expired:{index}".encode() for index in range(1200)] + [
    f"job:expired:{index}".encode() for index in range(300)
]
LIVE = [f"sess:live:{index}".encode() for index in range(200)] + [b"expired:not-this-one", b"app:config"]


def run_tasks(tmp_path, port, tasks, name):
    """Run cache_evict tasks [(register_name, args, check_mode, ignore_errors)] in one play; return their results."""
    out = tmp_path / f"{name}.json"
    play_tasks = [
        {
            "name": register,
            "incident.remediation.cache_evict": {"login_port": port, **args},
            "check_mode": check_mode,
            "ignore_errors": ignore_errors,
            "register": register,
        }
        for register, args, check_mode, ignore_errors in tasks
    ]
    results = "{" + ", ".join(f"'{register}': {register}" for register, *_ in tasks) + "}"
    play_tasks.append(
        {
            "name": "Save the results",
            "ansible.builtin.copy": {"content": "{{ %s | to_json }}" % results, "dest": str(out), "mode": "0600"},
        }
    )
    playbook = tmp_path / f"{name}.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": play_tasks}], indent=1))
    run = ansible.run_playbook(playbook, {}, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(out.read_text())


def load(client, names, **kwargs):
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.set(name, b"v" * 64, **kwargs)
    pipe.execute()


def remaining(client, pattern):
    return sorted(client.scan_iter(match=pattern, count=1000))


@pytest.fixture(scope="module")
def pattern_runs(tmp_path_factory):
    """One Redis; db 0 for pattern runs, db 1 for the cap, db 2 for the filters; one playbook run."""
    tmp_path = tmp_path_factory.mktemp("evict")
    with redis_server() as (port, _):
        main, capped, filtered = (redis.Redis(port=port, db=db) for db in (0, 1, 2))
        load(main, EXPIRED + LIVE)
        load(capped, [f"cache:{index}".encode() for index in range(50)])
        # Idle for an hour (RESTORE ... IDLETIME sets the LRU clock), with and without a TTL;
        # then keys used just now, with and without a TTL.
        filtered.set("seed", b"v" * 64)
        payload = filtered.dump("seed")
        for name, ttl_ms in (("old:persistent", 0), ("old:expiring", 3_600_000)):
            for index in range(20):
                filtered.restore(f"{name}:{index}", ttl_ms, payload, idletime=3600)
        filtered.delete("seed")
        load(filtered, [f"new:persistent:{index}" for index in range(20)])
        load(filtered, [f"new:expiring:{index}" for index in range(20)], ex=3600)

        expired = {"patterns": ["sess:expired:*", "*:expired:*"], "batch_size": 100, "scan_count": 200}
        results = run_tasks(
            tmp_path,
            port,
            [
                ("counted", expired, True, False),
                ("deleted", expired, False, False),
                ("again", expired, False, False),
                ("cap_counted", {"db": 1, "patterns": ["cache:*"], "max_keys": 20}, True, False),
                ("capped", {"db": 1, "patterns": ["cache:*"], "max_keys": 20, "batch_pause_ms": 1}, False, False),
                ("idle_counted", {"db": 2, "patterns": ["old:*", "new:*"], "min_idle_seconds": 600}, True, False),
                ("idle", {"db": 2, "patterns": ["old:*", "new:*"], "min_idle_seconds": 600}, False, False),
                ("no_ttl", {"db": 2, "patterns": ["old:*", "new:*"], "only_without_ttl": True}, False, False),
            ],
            "patterns",
        )
        yield results, main, capped, filtered
        for client in (main, capped, filtered):
            client.close()


def test_check_mode_counts_and_deletes_nothing(pattern_runs):
    results = pattern_runs[0]
    counted = results["counted"]
    assert counted["changed"] is True
    assert counted["error"] is None
    assert counted["selected"] == 1500
    assert counted["deleted"] == 0
    assert counted["batches"] == 0
    assert counted["per_pattern"]["sess:expired:*"]["selected"] == 1200
    assert counted["per_pattern"]["*:expired:*"]["selected"] == 300, "sess:expired:* keys are counted once"
    assert counted["msg"].startswith("would delete 1500 keys matching 2 patterns")
    # The real run that followed still found every key: check mode deleted none.
    assert results["deleted"]["matched"] == len(EXPIRED)


def test_real_run_deletes_exactly_what_check_mode_counted(pattern_runs):
    results, main, _, _ = pattern_runs
    counted, deleted = results["counted"], results["deleted"]
    assert deleted["changed"] is True
    assert deleted["error"] is None
    assert deleted["deleted"] == counted["selected"]
    for pattern, tally in deleted["per_pattern"].items():
        assert tally["deleted"] == counted["per_pattern"][pattern]["selected"], pattern
        assert tally["matched"] == counted["per_pattern"][pattern]["matched"], pattern
    assert deleted["batches"] >= deleted["deleted"] / 100
    assert deleted["slowest_batch_ms"] > 0
    assert deleted["used_memory_after"] < deleted["used_memory_before"]
    assert remaining(main, "*:expired:*") == []
    assert remaining(main, "*") == sorted(LIVE)


def test_second_run_changes_nothing(pattern_runs):
    again = pattern_runs[0]["again"]
    assert again["changed"] is False
    assert again["deleted"] == again["matched"] == 0


def test_cap_is_honoured(pattern_runs):
    results, _, capped, _ = pattern_runs
    for name in ("cap_counted", "capped"):
        assert results[name]["cap_reached"] is True, name
        assert results[name]["selected"] == 20, name
    assert results["capped"]["deleted"] == 20
    assert len(remaining(capped, "cache:*")) == 30


def test_idle_filter_leaves_recently_used_keys(pattern_runs):
    results = pattern_runs[0]
    assert results["idle_counted"]["selected"] == 40, "check mode does not reset idle times"
    idle = results["idle"]
    assert idle["deleted"] == 40
    assert idle["per_pattern"]["old:*"] == {"matched": 40, "selected": 40, "deleted": 40, "skipped_by_filter": 0}
    assert idle["per_pattern"]["new:*"] == {"matched": 40, "selected": 0, "deleted": 0, "skipped_by_filter": 40}
    # The next run (only_without_ttl) still finds every recently used key: they survived.
    assert results["no_ttl"]["per_pattern"]["new:*"]["matched"] == 40


def test_no_ttl_filter_leaves_expiring_keys(pattern_runs):
    results, _, _, filtered = pattern_runs
    no_ttl = results["no_ttl"]
    assert no_ttl["per_pattern"]["new:*"] == {"matched": 40, "selected": 20, "deleted": 20, "skipped_by_filter": 20}
    assert no_ttl["per_pattern"]["old:*"]["matched"] == 0, "the idle run deleted them"
    assert remaining(filtered, "*") == sorted(f"new:expiring:{index}".encode() for index in range(20))


def test_idle_filter_is_refused_under_lfu(tmp_path):
    with redis_server("--maxmemory-policy", "allkeys-lfu") as (port, _):
        client = redis.Redis(port=port)
        client.set("a:1", "v")
        out = tmp_path / "lfu.yml"
        out.write_text(
            json.dumps(
                [
                    {
                        "hosts": "localhost",
                        "gather_facts": False,
                        "tasks": [
                            {
                                "incident.remediation.cache_evict": {
                                    "login_port": port,
                                    "patterns": ["a:*"],
                                    "min_idle_seconds": 60,
                                }
                            }
                        ],
                    }
                ]
            )
        )
        run = ansible.run_playbook(out, {}, timeout=120)
        assert client.exists("a:1") == 1
        client.close()
    assert run.returncode != 0
    assert "maxmemory-policy is allkeys-lfu" in run.stdout


def test_flush_refused_without_allow_flush_then_check_mode_then_flush(tmp_path):
    with redis_server() as (port, _):
        client, other_db = redis.Redis(port=port), redis.Redis(port=port, db=3)
        load(client, [f"k:{index}" for index in range(100)])
        load(other_db, [f"k:{index}" for index in range(10)])
        results = run_tasks(
            tmp_path,
            port,
            [
                ("refused", {"flush": True}, False, True),
                ("refused_check", {"flush": True}, True, True),
                ("would_flush", {"flush": True, "allow_flush": True}, True, False),
                ("flushed", {"flush": True, "allow_flush": True}, False, False),
                ("flushed_again", {"flush": True, "allow_flush": True}, False, False),
            ],
            "flush",
        )
        left = client.dbsize() + other_db.dbsize()
        client.close()
        other_db.close()
    for name in ("refused", "refused_check"):
        assert results[name]["failed"] is True, name
        assert "needs allow_flush=true" in results[name]["msg"], name
    would = results["would_flush"]
    assert would["changed"] is True
    assert would["flushed"] is False
    assert would["selected"] == 110
    assert would["actions"] == ["would run FLUSHALL ASYNC, removing 110 keys in every database"]
    flushed = results["flushed"]
    assert flushed["changed"] is True
    assert flushed["flushed"] is True
    assert flushed["deleted"] == 110
    assert results["flushed_again"]["changed"] is False
    assert left == 0
