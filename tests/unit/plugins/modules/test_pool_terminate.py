"""Unit tests for plugins/modules/pool_terminate.py.

No PostgreSQL server is needed: the SQL is built by pure functions, and the guards, the
cap and the settling of the terminate statement's answer are decided on plain rows.
"""

import re

import pytest
import yaml
from ansible_collections.incident.remediation.plugins.module_utils._postgres import postgres_common_argument_spec
from ansible_collections.incident.remediation.plugins.modules import pool_terminate
from ansible_collections.incident.remediation.plugins.modules.pool_terminate import (
    CAP,
    ENTRY_KEYS,
    EXCLUDED_APPLICATION,
    EXCLUDED_CLIENT_ADDR,
    EXCLUDED_DATABASE,
    EXCLUDED_USER,
    FILTER_SPEC,
    GUARD_SPEC,
    NO_LONGER_MATCHES,
    NOT_CLIENT,
    NOT_FOUND,
    NOT_PERMITTED,
    NOT_VISIBLE,
    OWN_BACKEND,
    SELECTOR_SPEC,
    SUPERUSER,
    TERMINATE_FAILED,
    SelectorError,
    candidates_sql,
    guard_reason,
    match_sql,
    parse_client_addrs,
    plan,
    query_args,
    selector_clauses,
    settle,
    terminate_sql,
    termination_order,
    validate_selectors,
)

RETURN = yaml.safe_load(pool_terminate.RETURN)
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def default_params(**overrides):
    spec = {**postgres_common_argument_spec(), **SELECTOR_SPEC, **FILTER_SPEC, **GUARD_SPEC}
    params = {name: option.get("default") for name, option in spec.items()}
    params.update(overrides)
    return params


def row(pid=100, **overrides):
    """A candidate row as candidates_sql returns it: an idle client session of role app."""
    values = {
        "pid": pid,
        "backend_type": "client backend",
        "state": "idle",
        "user": "app",
        "application": "web",
        "database": "app",
        "client_addr": "10.0.0.5",
        "age_seconds": 900.0,
        "selector": "idle",
        "is_own": False,
        "is_superuser": False,
        "can_signal": True,
    }
    values.update(overrides)
    return values


# ---------------------------------------------------------------- selectors and SQL


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "give at least one selector"),
        ({"pids": []}, "give at least one selector"),
        ({"idle_minutes": -1.0}, "idle_minutes must not be negative"),
        ({"active_minutes": 5.0, "max_terminations": -1}, "max_terminations must not be negative"),
    ],
)
def test_unusable_selectors_are_refused(overrides, message):
    with pytest.raises(SelectorError, match=message):
        validate_selectors(default_params(**overrides))


@pytest.mark.parametrize(
    "overrides",
    [{"idle_minutes": 10.0}, {"active_minutes": 0.0}, {"idle_in_transaction_minutes": 1.0}, {"pids": [1]}],
)
def test_each_selector_alone_is_enough(overrides):
    validate_selectors(default_params(**overrides))


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"idle_minutes": 10.0}, ["idle"]),
        ({"active_minutes": 5.0}, ["active"]),
        ({"idle_in_transaction_minutes": 1.0}, ["idle_in_transaction"]),
        ({"pids": [7, 8]}, ["pids"]),
        ({"pids": [7], "active_minutes": 5.0, "idle_minutes": 10.0}, ["pids", "idle", "active"]),
        ({"idle_minutes": 0.0}, ["idle"]),  # zero is a selector, not "unset"
    ],
)
def test_selector_clauses(overrides, names):
    assert [name for name, _sql in selector_clauses(default_params(**overrides))] == names


@pytest.mark.parametrize(
    ("name", "fragments"),
    [
        ("idle", ["a.state = 'idle'", "now() - a.state_change > %(idle_s)s"]),
        ("idle_in_transaction", ["'idle in transaction', 'idle in transaction (aborted)'",
                                 "now() - a.state_change > %(idle_in_transaction_s)s"]),
        ("active", ["a.state = 'active'", "now() - a.query_start > %(active_s)s"]),
        ("pids", ["a.pid = ANY(%(pids)s::int[])"]),
    ],
)
def test_each_selector_condition(name, fragments):
    params = default_params(idle_minutes=10.0, idle_in_transaction_minutes=1.0, active_minutes=5.0, pids=[1])
    sql = dict(selector_clauses(params))[name]
    for fragment in fragments:
        assert fragment in sql


def test_selectors_are_alternatives_and_filters_narrow_them():
    sql = match_sql(default_params(idle_minutes=10.0, active_minutes=5.0))
    selected, filters = sql.split(") AND ", 1)
    assert " OR " in selected
    assert "%(users)s" in filters and "%(databases)s" in filters and "%(applications)s" in filters


def test_query_args_turn_minutes_into_seconds_and_split_addresses():
    args = query_args(default_params(idle_minutes=10.0, active_minutes=0.5, pids=[3, 4],
                                     exclude_client_addrs=["10.0.0.0/8", "local", "192.168.1.7"],
                                     exclude_users=["replicator"], allow_superuser=True))
    assert args["idle_s"] == 600.0
    assert args["active_s"] == 30.0
    assert args["idle_in_transaction_s"] is None
    assert args["pids"] == [3, 4]
    assert args["exclude_local"] is True
    assert args["exclude_networks"] == ["10.0.0.0/8", "192.168.1.7/32"]
    assert args["exclude_users"] == ["replicator"]
    assert args["allow_superuser"] is True


@pytest.mark.parametrize(
    "overrides",
    [
        {"idle_minutes": 10.0},
        {"pids": [1, 2], "active_minutes": 5.0, "idle_in_transaction_minutes": 2.0, "idle_minutes": 1.0},
    ],
)
def test_every_placeholder_has_an_argument(overrides):
    params = default_params(**overrides)
    args = query_args(params)
    assert set(PLACEHOLDER.findall(candidates_sql(params))) <= set(args)
    assert set(PLACEHOLDER.findall(terminate_sql(params))) <= set(args) | {"targets"}
    for sql in (candidates_sql(params), terminate_sql(params)):
        assert not re.search(r"%(?!\(\w+\)s)", sql), "a lone % breaks psycopg2's parameters"


def test_only_the_terminate_statement_signals_backends():
    params = default_params(idle_minutes=10.0, pids=[5])
    assert "pg_terminate_backend" not in candidates_sql(params)
    assert "pg_cancel_backend" not in candidates_sql(params)
    assert terminate_sql(params).count("pg_terminate_backend") == 1


def test_the_terminate_statement_rechecks_the_selector_and_every_guard():
    params = default_params(idle_minutes=10.0, active_minutes=5.0)
    sql = terminate_sql(params)
    assert "a.pid = ANY(%(targets)s::int[])" in sql
    assert match_sql(params) in sql
    for guard in (
        "a.pid <> pg_backend_pid()",
        "a.backend_type = 'client backend'",
        "%(allow_superuser)s OR NOT coalesce(r.rolsuper, true)",
        "= ANY(%(exclude_users)s::text[])",
        "= ANY(%(exclude_applications)s::text[])",
        "= ANY(%(exclude_databases)s::text[])",
        "a.client_addr IS NULL AND %(exclude_local)s",
        "a.client_addr <<= ANY(%(exclude_networks)s::inet[])",
        "pg_signal_backend",
    ):
        assert guard in sql, guard


def test_candidates_name_the_selector_that_chose_each_session():
    sql = candidates_sql(default_params(pids=[1], idle_minutes=10.0))
    assert re.search(r"CASE WHEN a\.pid = ANY\(%\(pids\)s::int\[\]\) THEN 'pids' WHEN .* THEN 'idle' END", sql)


# ---------------------------------------------------------------- client addresses


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], (False, [])),
        (["local"], (True, [])),
        (["LOCAL", "10.1.2.3"], (True, ["10.1.2.3/32"])),
        (["10.1.2.3/16"], (False, ["10.1.0.0/16"])),
        (["::1", "fd00::/8"], (False, ["::1/128", "fd00::/8"])),
    ],
)
def test_parse_client_addrs(entries, expected):
    assert parse_client_addrs(entries) == expected


@pytest.mark.parametrize("entry", ["db.internal", "10.0.0.300", "10.0.0.0/40", ""])
def test_parse_client_addrs_refuses_what_is_not_an_address(entry):
    with pytest.raises(SelectorError, match="exclude_client_addrs"):
        parse_client_addrs([entry])


# ---------------------------------------------------------------- guards


@pytest.mark.parametrize(
    ("overrides", "options", "reason"),
    [
        ({}, {}, None),
        ({"is_own": True}, {"allow_superuser": True}, OWN_BACKEND),
        ({"backend_type": None, "state": None}, {}, NOT_VISIBLE),
        ({"backend_type": "walsender"}, {}, NOT_CLIENT),
        ({"backend_type": "autovacuum launcher", "user": None}, {"allow_superuser": True}, NOT_CLIENT),
        ({"backend_type": "logical replication launcher"}, {}, NOT_CLIENT),
        ({"backend_type": "background worker"}, {}, NOT_CLIENT),
        ({"is_superuser": True}, {}, SUPERUSER),
        ({"is_superuser": True}, {"allow_superuser": True}, None),
        ({}, {"exclude_users": ["app"]}, EXCLUDED_USER),
        ({}, {"exclude_users": ["other"]}, None),
        ({}, {"exclude_applications": ["web"]}, EXCLUDED_APPLICATION),
        ({"application": ""}, {"exclude_applications": [""]}, EXCLUDED_APPLICATION),
        ({}, {"exclude_databases": ["app"]}, EXCLUDED_DATABASE),
        ({}, {"exclude_client_addrs": ["10.0.0.5"]}, EXCLUDED_CLIENT_ADDR),
        ({}, {"exclude_client_addrs": ["10.0.0.0/24"]}, EXCLUDED_CLIENT_ADDR),
        ({}, {"exclude_client_addrs": ["10.0.1.0/24", "local"]}, None),
        ({"client_addr": None}, {"exclude_client_addrs": ["local"]}, EXCLUDED_CLIENT_ADDR),
        ({"client_addr": None}, {"exclude_client_addrs": ["0.0.0.0/0"]}, None),
        ({"client_addr": "::1"}, {"exclude_client_addrs": ["::1"]}, EXCLUDED_CLIENT_ADDR),
        ({"can_signal": False}, {}, NOT_PERMITTED),
    ],
)
def test_guard_reason(overrides, options, reason):
    assert guard_reason(row(**overrides), default_params(**options)) == reason


def test_guards_apply_in_order():
    everything = row(is_own=True, backend_type="walsender", is_superuser=True, can_signal=False)
    options = default_params(exclude_users=["app"], exclude_applications=["web"])
    assert guard_reason(everything, options) == OWN_BACKEND
    assert guard_reason(dict(everything, is_own=False), options) == NOT_CLIENT
    assert guard_reason(dict(everything, is_own=False, backend_type="client backend"), options) == SUPERUSER
    assert guard_reason(dict(everything, is_own=False, backend_type="client backend", is_superuser=False),
                        options) == EXCLUDED_USER


# ---------------------------------------------------------------- order, cap and plan


def test_termination_order_is_named_pids_first_then_oldest():
    rows = [
        row(1, age_seconds=100.0),
        row(2, age_seconds=900.0),
        row(3, age_seconds=5.0, selector="pids"),
        row(4, age_seconds=900.0),
        row(5, age_seconds=None, selector="pids"),
    ]
    assert [item["pid"] for item in termination_order(rows)] == [3, 5, 2, 4, 1]


@pytest.mark.parametrize(("cap", "terminated", "capped"), [(50, 5, 0), (5, 5, 0), (2, 2, 3), (0, 0, 5)])
def test_cap(cap, terminated, capped):
    rows = [row(pid, age_seconds=float(pid)) for pid in range(1, 6)]
    planned, skipped = plan(rows, default_params(idle_minutes=0.0, max_terminations=cap))
    assert len(planned) == terminated
    assert [item["reason"] for item in skipped] == [CAP] * capped
    assert [item["pid"] for item in planned] == [5, 4, 3, 2, 1][:terminated], "the oldest go first"


def test_guarded_sessions_do_not_use_up_the_cap():
    rows = [row(1, is_superuser=True, age_seconds=999.0), row(2), row(3), row(4, application="keep")]
    planned, skipped = plan(rows, default_params(idle_minutes=0.0, max_terminations=2,
                                                 exclude_applications=["keep"]))
    assert sorted(item["pid"] for item in planned) == [2, 3]
    assert {item["pid"]: item["reason"] for item in skipped} == {1: SUPERUSER, 4: EXCLUDED_APPLICATION}


def test_plan_reports_named_pids_that_match_nothing():
    planned, skipped = plan([row(7, selector="pids")], default_params(pids=[7, 8, 8]))
    assert [item["pid"] for item in planned] == [7]
    assert skipped == [dict(dict.fromkeys(ENTRY_KEYS), pid=8, reason=NOT_FOUND)]


def test_plan_entries_carry_only_the_documented_keys():
    planned, skipped = plan([row(1), row(2, is_superuser=True)], default_params(idle_minutes=0.0))
    documented = set(RETURN["terminated"]["contains"])
    assert set(planned[0]) == documented == set(ENTRY_KEYS)
    assert set(skipped[0]) == documented | {"reason"}


def test_settle_reports_sessions_that_changed_in_between():
    planned = [dict(dict.fromkeys(ENTRY_KEYS), pid=pid) for pid in (1, 2, 3)]
    terminated, skipped = settle(planned, {1: True, 3: False})
    assert [item["pid"] for item in terminated] == [1]
    assert [(item["pid"], item["reason"]) for item in skipped] == [(2, NO_LONGER_MATCHES), (3, TERMINATE_FAILED)]


# ---------------------------------------------------------------- main() in process


def test_main_needs_a_selector(run_module):
    code, result, _out = run_module(pool_terminate, {"exclude_users": ["x"]})
    assert code == 1
    assert "give at least one selector" in result["msg"]
    assert result["terminated"] == [] and result["skipped"] == []
    assert result["changed"] is False


def test_main_refuses_a_bad_client_address(run_module):
    code, result, _out = run_module(pool_terminate, {"idle_minutes": 10, "exclude_client_addrs": ["not-an-ip"]})
    assert code == 1
    assert "not-an-ip" in result["msg"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_main_fails_without_terminating_when_the_server_is_unreachable(run_module, closed_port, check_mode):
    code, result, out = run_module(pool_terminate, {"login_port": closed_port, "login_password": "pw-xyz",
                                                    "idle_minutes": 10}, check_mode=check_mode)
    assert code == 1
    assert result["msg"].startswith("nothing was terminated: PostgreSQL at 127.0.0.1:%d/postgres" % closed_port)
    assert set(RETURN) <= set(result)
    assert result["checked"] == "postgresql://postgres@127.0.0.1:%d/postgres" % closed_port
    assert result["terminated"] == [] and result["skipped"] == [] and result["matched"] == 0
    assert result["changed"] is False
    assert "pw-xyz" not in out


def test_main_rejects_an_unknown_option(run_module):
    code, result, _out = run_module(pool_terminate, {"idle_minutes": 10, "max_termination": 3})
    assert code == 1
    assert "max_termination" in result["msg"]
