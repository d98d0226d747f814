#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pool_terminate
short_description: Terminate PostgreSQL sessions chosen by a selector, behind guards and a cap
version_added: 0.1.0
description:
  - Selects sessions in C(pg_stat_activity) that are idle longer than O(idle_minutes),
    idle in a transaction longer than O(idle_in_transaction_minutes), running a query
    longer than O(active_minutes), or named in O(pids). A session matching any of the
    given selectors is selected; O(users), O(databases) and O(applications) narrow the
    selection.
  - Selected sessions pass the guards before they are terminated with
    C(pg_terminate_backend). It never terminates its own session; nor anything but a
    client backend (C(backend_type = 'client backend'); WAL senders, replication
    connections, autovacuum and other background workers are left alone); nor a
    superuser's session unless O(allow_superuser=true); nor sessions of the users,
    applications, databases and client addresses in the exclusion lists; nor a session
    O(login_user) may not signal. At most O(max_terminations) are terminated, oldest
    first (sessions named in O(pids) before the others); the rest are skipped with the
    reason C(cap).
  - The termination is race-safe. The statement that calls C(pg_terminate_backend)
    re-checks the selector and every guard on the live C(pg_stat_activity), so a session
    that finished its query, became busy again or changed in any way that no longer
    matches between selection and termination is not terminated; it is reported as
    skipped with the reason C(no longer matches).
  - Check mode lists what would be terminated and terminates nothing (no statement that
    signals a backend is sent, not even in a rolled-back transaction).
author:
  - incident.remediation contributors (@incident-remediation)
extends_documentation_fragment:
  - incident.remediation.postgres
  - incident.remediation.attributes
attributes:
  check_mode:
    support: full
    details: Selects and applies the guards, reports what would be terminated, terminates nothing.
  diff_mode:
    support: full
    details: The pids of the selected sessions before, and those still running after.
options:
  idle_minutes:
    description: Select sessions in state C(idle) for longer than this many minutes (runbook 000 uses 10).
    type: float
  idle_in_transaction_minutes:
    description: Select sessions C(idle in transaction) (or aborted) for longer than this many minutes.
    type: float
  active_minutes:
    description:
      - Select sessions whose current query has run for longer than this many minutes
        (runbooks 002 and 003 use 5).
    type: float
  pids:
    description: Select these backend process ids. The guards still apply.
    type: list
    elements: int
    default: []
  users:
    description: Only select sessions of these roles. Empty selects any role.
    type: list
    elements: str
    default: []
  databases:
    description: Only select sessions connected to these databases. Empty selects any database.
    type: list
    elements: str
    default: []
  applications:
    description: Only select sessions with one of these C(application_name) values. Empty selects any.
    type: list
    elements: str
    default: []
  exclude_users:
    description: Never terminate sessions of these roles.
    type: list
    elements: str
    default: []
  exclude_applications:
    description: Never terminate sessions with one of these C(application_name) values.
    type: list
    elements: str
    default: []
  exclude_databases:
    description: Never terminate sessions connected to these databases.
    type: list
    elements: str
    default: []
  exclude_client_addrs:
    description:
      - Never terminate sessions from these client addresses. Each entry is an address,
        a network in CIDR notation (V(10.0.0.0/8)), or V(local) for Unix-socket sessions.
    type: list
    elements: str
    default: []
  allow_superuser:
    description: Also terminate sessions of superusers.
    type: bool
    default: false
  max_terminations:
    description:
      - Most sessions terminated in one run. Those beyond it are skipped with the reason C(cap).
    type: int
    default: 50
notes:
  - At least one selector (O(idle_minutes), O(idle_in_transaction_minutes), O(active_minutes)
    or a non-empty O(pids)) is required.
  - Ages are measured from C(state_change) for idle sessions and from C(query_start) for
    active ones.
  - Terminating sessions as a role other than a superuser needs C(pg_signal_backend)
    (and never reaches superusers' sessions); sessions it may not signal are skipped with
    the reason C(not permitted).
  - Unlike M(community.postgresql.postgresql_query), whose check mode still executes the
    statement and rolls back (which does not undo C(pg_terminate_backend)), check mode here
    sends no termination.
seealso:
  - module: incident.remediation.pool_health
  - module: community.postgresql.postgresql_query
"""

EXAMPLES = r"""
- name: Terminate connections idle for more than 10 minutes (runbook 000)
  incident.remediation.pool_terminate:
    login_host: db.internal
    login_password: "{{ vault_postgres_password }}"
    idle_minutes: 10
    exclude_users: [replicator, monitor]
    max_terminations: 50
  register: terminated

- name: See what terminating queries longer than 5 minutes would do
  incident.remediation.pool_terminate:
    login_host: db.internal
    active_minutes: 5
    databases: [app]
  check_mode: true
  register: would

- name: Terminate the pids found by pool_health
  incident.remediation.pool_terminate:
    login_host: db.internal
    pids: "{{ pool.long_queries | map(attribute='pid') | list }}"
"""

RETURN = r"""
terminated:
  description:
    - Sessions terminated, or in check mode those that would be, as they were when selected.
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: Backend process id.
      type: int
    user:
      description: Role of the session.
      type: str
    application:
      description: Its C(application_name).
      type: str
    state:
      description: Its state when selected.
      type: str
    age_seconds:
      description: Seconds in that state (idle) or running the current query (active).
      type: float
    database:
      description: Database it was connected to.
      type: str
    client_addr:
      description: Client address; null for Unix-socket sessions.
      type: str
    backend_type:
      description: C(client backend), or what else it was.
      type: str
    selector:
      description: The selector that chose it (C(pids), C(idle), C(idle_in_transaction) or C(active)).
      type: str
  sample:
    - pid: 4242
      user: app
      application: worker
      state: idle
      age_seconds: 901.3
      database: app
      client_addr: 10.0.3.7
      backend_type: client backend
      selector: idle
skipped:
  description:
    - Selected sessions left alone, with the same keys as RV(terminated) plus C(reason)
      (C(own backend), C(backend type not visible), C(not a client backend), C(superuser),
      C(excluded user), C(excluded application), C(excluded database), C(excluded client address),
      C(not permitted), C(cap), C(no longer matches), C(terminate failed), or C(not found) for a pid
      in O(pids) that matches no selectable session).
  returned: always
  type: list
  elements: dict
  sample:
    - pid: 77
      user: replicator
      application: walreceiver
      state: streaming
      age_seconds: 86000.2
      database: null
      client_addr: 10.0.3.9
      backend_type: walsender
      selector: active
      reason: not a client backend
matched:
  description: How many sessions the selectors matched (terminated plus skipped, without C(not found)).
  returned: always
  type: int
  sample: 3
checked:
  description:
    - The server, database and user connected to, as C(postgresql://user@host:port/db); never a password.
    - Every module of the collection names what it checked or acted on in this key.
  returned: always
  type: str
  sample: postgresql://postgres@127.0.0.1:5432/postgres
elapsed_ms:
  description: Milliseconds the module took, connection included.
  returned: always
  type: float
  sample: 12.5
"""

import ipaddress

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.remediation.plugins.module_utils._postgres import (
    PostgresError,
    connect,
    ensure_psycopg2,
    fetch_dicts,
    postgres_common_argument_spec,
    postgres_url,
)
from ansible_collections.incident.remediation.plugins.module_utils._verdict import Stopwatch

APPLICATION_NAME = "incident.remediation.pool_terminate"

SELECTOR_SPEC = dict(
    idle_minutes=dict(type="float"),
    idle_in_transaction_minutes=dict(type="float"),
    active_minutes=dict(type="float"),
    pids=dict(type="list", elements="int", default=[]),
)

FILTER_SPEC = dict(
    users=dict(type="list", elements="str", default=[]),
    databases=dict(type="list", elements="str", default=[]),
    applications=dict(type="list", elements="str", default=[]),
)

GUARD_SPEC = dict(
    exclude_users=dict(type="list", elements="str", default=[]),
    exclude_applications=dict(type="list", elements="str", default=[]),
    exclude_databases=dict(type="list", elements="str", default=[]),
    exclude_client_addrs=dict(type="list", elements="str", default=[]),
    allow_superuser=dict(type="bool", default=False),
    max_terminations=dict(type="int", default=50),
)

LOCAL = "local"
CLIENT_BACKEND = "client backend"

# Skip reasons, stable strings playbooks may test.
OWN_BACKEND = "own backend"
NOT_VISIBLE = "backend type not visible"
NOT_CLIENT = "not a client backend"
SUPERUSER = "superuser"
EXCLUDED_USER = "excluded user"
EXCLUDED_APPLICATION = "excluded application"
EXCLUDED_DATABASE = "excluded database"
EXCLUDED_CLIENT_ADDR = "excluded client address"
NOT_PERMITTED = "not permitted"
CAP = "cap"
NO_LONGER_MATCHES = "no longer matches"
TERMINATE_FAILED = "terminate failed"
NOT_FOUND = "not found"

ENTRY_KEYS = ("pid", "user", "application", "state", "age_seconds", "database", "client_addr",
              "backend_type", "selector")

# The state conditions of the time-based selectors, in the order a session's
# selector is named when several match.
_STATE_SELECTORS = (
    ("idle", "idle_minutes", "a.state = 'idle' AND now() - a.state_change > %(idle_s)s * interval '1 second'"),
    ("idle_in_transaction", "idle_in_transaction_minutes",
     "a.state IN ('idle in transaction', 'idle in transaction (aborted)')"
     " AND now() - a.state_change > %(idle_in_transaction_s)s * interval '1 second'"),
    ("active", "active_minutes",
     "a.state = 'active' AND now() - a.query_start > %(active_s)s * interval '1 second'"),
)

# Whether the login role may signal the session (pg_signal_backend's own rules:
# superusers may signal anything; others only non-superuser sessions of roles whose
# privileges they have, or any non-superuser session with pg_signal_backend).
_CAN_SIGNAL_SQL = """coalesce(
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       OR (a.usesysid IS NOT NULL AND NOT coalesce(r.rolsuper, true)
           AND (pg_has_role(current_user, a.usesysid, 'USAGE')
                OR pg_has_role(current_user, 'pg_signal_backend', 'USAGE'))),
       false)"""

_GUARDS_SQL = """a.pid <> pg_backend_pid()
   AND a.backend_type = 'client backend'
   AND (%(allow_superuser)s OR NOT coalesce(r.rolsuper, true))
   AND NOT coalesce(a.usename::text, '') = ANY(%(exclude_users)s::text[])
   AND NOT coalesce(a.application_name, '') = ANY(%(exclude_applications)s::text[])
   AND NOT coalesce(a.datname::text, '') = ANY(%(exclude_databases)s::text[])
   AND NOT (a.client_addr IS NULL AND %(exclude_local)s)
   AND NOT coalesce(a.client_addr <<= ANY(%(exclude_networks)s::inet[]), false)
   AND """ + _CAN_SIGNAL_SQL

_FROM_SQL = "pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid"


class SelectorError(ValueError):
    """The selector or guard options are not usable; the message says why."""


def parse_client_addrs(entries):
    """(exclude_local, [networks as CIDR strings]) from exclude_client_addrs."""
    exclude_local = False
    networks = []
    for entry in entries or []:
        text = str(entry).strip()
        if text.lower() == LOCAL:
            exclude_local = True
            continue
        try:
            networks.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise SelectorError("exclude_client_addrs: %r is neither an address, a CIDR network nor 'local'"
                                % entry) from None
    return exclude_local, networks


def validate_selectors(params):
    """Raise SelectorError unless at least one usable selector is given."""
    given = [name for _label, name, _sql in _STATE_SELECTORS if params.get(name) is not None]
    for name in given:
        if params[name] < 0:
            raise SelectorError("%s must not be negative" % name)
    if not given and not params.get("pids"):
        raise SelectorError("give at least one selector: idle_minutes, idle_in_transaction_minutes, "
                            "active_minutes or pids")
    if params.get("max_terminations") is not None and params["max_terminations"] < 0:
        raise SelectorError("max_terminations must not be negative")


def selector_clauses(params):
    """[(selector name, SQL condition over pg_stat_activity a)] for the given selectors."""
    clauses = []
    if params.get("pids"):
        clauses.append(("pids", "a.pid = ANY(%(pids)s::int[])"))
    for label, name, sql in _STATE_SELECTORS:
        if params.get(name) is not None:
            clauses.append((label, sql))
    return clauses


def filter_sql():
    """Conditions of the narrowing filters (users, databases, applications); empty lists select all."""
    return ("(cardinality(%(users)s::text[]) = 0 OR a.usename::text = ANY(%(users)s::text[]))"
            " AND (cardinality(%(databases)s::text[]) = 0 OR a.datname::text = ANY(%(databases)s::text[]))"
            " AND (cardinality(%(applications)s::text[]) = 0"
            " OR a.application_name = ANY(%(applications)s::text[]))")


def match_sql(params):
    """The WHERE condition of "matches a selector and the filters"."""
    clauses = selector_clauses(params)
    selected = " OR ".join("(%s)" % sql for _label, sql in clauses)
    return "(%s) AND %s" % (selected, filter_sql())


def query_args(params):
    """Named arguments of every statement built here."""
    exclude_local, networks = parse_client_addrs(params.get("exclude_client_addrs"))

    def seconds(name):
        return None if params.get(name) is None else float(params[name]) * 60.0

    return dict(
        pids=list(params.get("pids") or []),
        idle_s=seconds("idle_minutes"),
        idle_in_transaction_s=seconds("idle_in_transaction_minutes"),
        active_s=seconds("active_minutes"),
        users=list(params.get("users") or []),
        databases=list(params.get("databases") or []),
        applications=list(params.get("applications") or []),
        allow_superuser=bool(params.get("allow_superuser")),
        exclude_users=list(params.get("exclude_users") or []),
        exclude_applications=list(params.get("exclude_applications") or []),
        exclude_databases=list(params.get("exclude_databases") or []),
        exclude_local=exclude_local,
        exclude_networks=networks,
    )


def candidates_sql(params):
    """Every session matching a selector and the filters, with what the guards need."""
    selector_case = " ".join("WHEN %s THEN '%s'" % (sql, label) for label, sql in selector_clauses(params))
    return """
SELECT a.pid,
       a.backend_type,
       a.state,
       a.usename::text AS "user",
       a.application_name AS application,
       a.datname::text AS database,
       host(a.client_addr) AS client_addr,
       round(extract(epoch FROM now() - CASE WHEN a.state = 'active' THEN a.query_start
                                             ELSE a.state_change END)::numeric, 1)::float8 AS age_seconds,
       CASE %(case)s END AS selector,
       a.pid = pg_backend_pid() AS is_own,
       coalesce(r.rolsuper, true) AS is_superuser,
       %(can_signal)s AS can_signal
  FROM %(from)s
 WHERE %(match)s
""" % {"case": selector_case, "can_signal": _CAN_SIGNAL_SQL, "from": _FROM_SQL, "match": match_sql(params)}


def terminate_sql(params):
    """Terminate the target pids that still match the selectors, the filters and every guard,
    all in the one statement that signals them."""
    return """
SELECT a.pid, pg_terminate_backend(a.pid) AS terminated
  FROM %s
 WHERE a.pid = ANY(%%(targets)s::int[])
   AND %s
   AND %s
""" % (_FROM_SQL, match_sql(params), _GUARDS_SQL)


def guard_reason(row, params, exclude_local=None, networks=None):
    """Why a selected session must be left alone, or None when it may be terminated.
    The checks run in order; the first that holds names the reason."""
    if exclude_local is None or networks is None:
        exclude_local, networks = parse_client_addrs(params.get("exclude_client_addrs"))
    checks = (
        (OWN_BACKEND, lambda: row["is_own"]),
        (NOT_VISIBLE, lambda: row["backend_type"] is None),
        (NOT_CLIENT, lambda: row["backend_type"] != CLIENT_BACKEND),
        (SUPERUSER, lambda: row["is_superuser"] and not params.get("allow_superuser")),
        (EXCLUDED_USER, lambda: (row["user"] or "") in (params.get("exclude_users") or [])),
        (EXCLUDED_APPLICATION, lambda: (row["application"] or "") in (params.get("exclude_applications") or [])),
        (EXCLUDED_DATABASE, lambda: (row["database"] or "") in (params.get("exclude_databases") or [])),
        (EXCLUDED_CLIENT_ADDR, lambda: client_addr_excluded(row["client_addr"], exclude_local, networks)),
        (NOT_PERMITTED, lambda: not row["can_signal"]),
    )
    for reason, holds in checks:
        if holds():
            return reason
    return None


def client_addr_excluded(client_addr, exclude_local, networks):
    if client_addr is None:
        return exclude_local
    address = ipaddress.ip_address(client_addr)
    return any(address in ipaddress.ip_network(network) for network in networks)


def termination_order(rows):
    """Sessions named in pids first, then the oldest first; pid breaks ties."""
    return sorted(rows, key=lambda row: (row["selector"] != "pids", -(row["age_seconds"] or 0.0), row["pid"]))


def plan(rows, params):
    """(to terminate, skipped) from the candidate rows: guards first, then the cap."""
    exclude_local, networks = parse_client_addrs(params.get("exclude_client_addrs"))
    allowed, skipped = [], []
    for row in termination_order(rows):
        reason = guard_reason(row, params, exclude_local, networks)
        if reason is None:
            allowed.append(entry(row))
        else:
            skipped.append(entry(row, reason))
    cap = params.get("max_terminations")
    if cap is not None and len(allowed) > cap:
        skipped.extend(dict(over, reason=CAP) for over in allowed[cap:])
        allowed = allowed[:cap]
    found = set(row["pid"] for row in rows)
    for pid in params.get("pids") or []:
        if pid not in found:
            found.add(pid)
            skipped.append(dict(dict.fromkeys(ENTRY_KEYS), pid=pid, reason=NOT_FOUND))
    return allowed, skipped


def entry(row, reason=None):
    result = dict((key, row.get(key)) for key in ENTRY_KEYS)
    if reason is not None:
        result["reason"] = reason
    return result


def settle(planned, signalled):
    """(terminated, skipped) given the planned entries and {pid: pg_terminate_backend result}
    of the terminate statement; pids it did not return no longer matched."""
    terminated, skipped = [], []
    for item in planned:
        outcome = signalled.get(item["pid"])
        if outcome is None:
            skipped.append(dict(item, reason=NO_LONGER_MATCHES))
        elif outcome:
            terminated.append(item)
        else:
            skipped.append(dict(item, reason=TERMINATE_FAILED))
    return terminated, skipped


def select(conn, params, args=None):
    """(candidate rows, to terminate, skipped) for the selectors, guards and cap."""
    args = query_args(params) if args is None else args
    rows = fetch_dicts(conn, candidates_sql(params), args)
    planned, skipped = plan(rows, params)
    return rows, planned, skipped


def terminate(conn, params, planned, args=None):
    """Terminate the planned sessions that still match, in one statement;
    (terminated, skipped as no longer matching or failed)."""
    if not planned:
        return [], []
    args = query_args(params) if args is None else args
    targets = [item["pid"] for item in planned]
    rows = fetch_dicts(conn, terminate_sql(params), dict(args, targets=targets))
    return settle(planned, dict((row["pid"], row["terminated"]) for row in rows))


def run(params, check_mode, conn=None):
    """Select, guard, cap and (unless check_mode) terminate; raises PostgresError.
    A given conn is used (and left open) instead of a new connection."""
    args = query_args(params)
    own = conn is None
    if own:
        conn = connect(params, APPLICATION_NAME)
    try:
        rows, planned, skipped = select(conn, params, args)
        if check_mode:
            terminated = planned
        else:
            terminated, lost = terminate(conn, params, planned, args)
            skipped.extend(lost)
    finally:
        if own:
            conn.close()
    matched = sorted(row["pid"] for row in rows)
    return dict(terminated=terminated, skipped=skipped, matched=len(matched), matched_pids=matched)


def main():
    argument_spec = postgres_common_argument_spec()
    argument_spec.update(SELECTOR_SPEC)
    argument_spec.update(FILTER_SPEC)
    argument_spec.update(GUARD_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_psycopg2(module)
    clock = Stopwatch()
    result = dict(changed=False, terminated=[], skipped=[], matched=0, checked=postgres_url(module.params))
    try:
        validate_selectors(module.params)
        parse_client_addrs(module.params["exclude_client_addrs"])
    except SelectorError as exc:
        module.fail_json(msg=str(exc), elapsed_ms=clock.elapsed_ms(), **result)
    try:
        outcome = run(module.params, module.check_mode)
    except PostgresError as exc:
        module.fail_json(msg="nothing was terminated: %s" % exc, elapsed_ms=clock.elapsed_ms(), **result)
    matched_pids = outcome.pop("matched_pids")
    result.update(outcome)
    result["changed"] = bool(result["terminated"])
    if module._diff:
        gone = set(item["pid"] for item in result["terminated"])
        result["diff"] = dict(
            before=dict(pids=matched_pids),
            after=dict(pids=[pid for pid in matched_pids if pid not in gone]),
        )
    module.exit_json(elapsed_ms=clock.elapsed_ms(), **result)


if __name__ == "__main__":
    main()
