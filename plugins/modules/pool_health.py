#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pool_health
short_description: Check database connection pool saturation and return a verdict with reasons
version_added: 0.1.0
description:
  - With O(backend=postgresql), reads C(pg_stat_activity) in a single statement and
    judges the connections in use against the slots ordinary roles may use
    (C(max_connections) minus C(superuser_reserved_connections) and, from
    PostgreSQL 16, C(reserved_connections)). It also reports the sessions by state,
    client address, application, user and database, idle sessions older than
    O(idle_minutes), sessions idle in a transaction, and active queries running
    longer than O(long_query_minutes).
  - Only client backends are counted (C(backend_type = 'client backend')).
    Replication connections, autovacuum and other background workers have slots of
    their own. The module's own session is left out of every count and list, so
    the numbers are the load the applications make.
  - With O(backend=metrics), scrapes an application's Prometheus endpoint and judges
    the application-side pool (SQLAlchemy, Prisma and the like), connections checked
    out against the pool size. This answers C(SQLAlchemyPoolExhausted).
  - An unreachable server, refused credentials, a server whose slots are all taken,
    or an endpoint that does not answer are results, not failures. The module
    returns RV(is_available=false) and the reason, so a playbook decides with
    C(failed_when) or C(when).
  - Reads only; it never changes the server.
author:
  - incident.remediation contributors (@incident-remediation)
extends_documentation_fragment:
  - incident.remediation.postgres
  - incident.remediation.attributes
  - incident.remediation.attributes.read_only
options:
  backend:
    description:
      - V(postgresql) reads the server's sessions with the connection options.
      - V(metrics) reads an application's pool gauges from O(metrics_url); the
        connection options are then not used.
    type: str
    default: postgresql
    choices: [postgresql, metrics]
  saturation_warning:
    description: Pool saturation (in use / usable, 0 to 1) above which the verdict is C(warning).
    type: float
    default: 0.80
  saturation_critical:
    description: Pool saturation (in use / usable, 0 to 1) above which the verdict is C(critical).
    type: float
    default: 0.95
  idle_minutes:
    description:
      - Idle sessions in that state for longer than this many minutes are counted in
        RV(metrics.idle_over_threshold). They do not change the verdict (pools keep
        idle connections on purpose); saturation does.
    type: float
    default: 10
  idle_in_transaction_minutes:
    description:
      - Sessions idle in a transaction for longer than this many minutes make the
        verdict C(warning); they hold locks and a snapshot.
    type: float
    default: 5
  long_query_minutes:
    description:
      - Active queries running longer than this many minutes are listed in
        RV(long_queries) and make the verdict C(warning).
    type: float
    default: 5
  max_long_queries:
    description: Most queries listed in RV(long_queries), the longest running first.
    type: int
    default: 20
  query_text_length:
    description:
      - Characters of query text kept in RV(long_queries). Password literals
        (C(PASSWORD '...')) and C(name=value) secrets are masked.
    type: int
    default: 200
  max_groups:
    description:
      - Most entries kept in each of RV(metrics.by_client_addr), RV(metrics.by_application),
        RV(metrics.by_user) and RV(metrics.by_database), the largest first; the rest are
        summed under C((other)).
    type: int
    default: 20
  metrics_url:
    description:
      - The application's Prometheus endpoint. Required with O(backend=metrics).
      - Results show it without user information and query string; pass credentials
        in O(metrics_headers) rather than in the URL.
    type: str
  pool_in_use_metric:
    description:
      - Gauge of connections checked out of the application pool. Series matching
        O(metrics_labels) are summed (one per worker process, for example).
      - For Prisma, V(prisma_pool_connections_busy).
    type: str
    default: sqlalchemy_pool_checked_out
  pool_size_metric:
    description:
      - Gauge of the application pool size, summed like O(pool_in_use_metric).
        Not read when O(pool_size) is set.
    type: str
    default: sqlalchemy_pool_size
  pool_size:
    description:
      - Fixed pool size (for SQLAlchemy C(pool_size + max_overflow), for Prisma
        C(connection_limit) times the processes) used instead of O(pool_size_metric),
        for exporters that do not publish the size.
    type: int
  metrics_labels:
    description:
      - Label matchers that select the series of both gauges, as a mapping of label
        name to the value it must equal, or to a mapping with a C(regex) key whose
        pattern the value must fully match.
    type: dict
    default: {}
  metrics_timeout:
    description: Seconds to wait for O(metrics_url).
    type: float
    default: 5.0
  metrics_validate_certs:
    description: Verify the TLS certificate of O(metrics_url).
    type: bool
    default: true
  metrics_ca_cert:
    description: CA bundle used to verify the certificate of O(metrics_url).
    type: path
  metrics_headers:
    description:
      - Extra HTTP headers for O(metrics_url), for example an C(Authorization) header.
      - Their values are hidden from the output (C(no_log)).
    type: dict
    default: {}
notes:
  - Thresholds default to the runbooks' values (C(DatabaseConnectionPoolExhaustion) above
    80%, C(DatabaseConnectionPoolCritical) above 95%, idle connections older than 10 minutes,
    active queries longer than 5 minutes).
  - The query is a single round trip; on a server with 500 sessions it takes a few milliseconds.
  - A O(login_user) without C(pg_monitor) sees other roles' sessions without their state,
    query and client address; those are counted as C((hidden)) and a reason says so.
  - Metric names default to the common SQLAlchemy exporter names C(sqlalchemy_pool_checked_out)
    and C(sqlalchemy_pool_size); set O(pool_in_use_metric) and O(pool_size_metric) for others.
seealso:
  - module: incident.remediation.pool_terminate
  - module: community.postgresql.postgresql_info
"""

EXAMPLES = r"""
- name: Check PostgreSQL connection saturation
  incident.remediation.pool_health:
    login_host: db.internal
    login_user: monitor
    login_password: "{{ vault_monitor_password }}"
  register: pool

- name: Page when the pool is critical
  ansible.builtin.debug:
    msg: "{{ pool.reasons | join('; ') }}"
  when: pool.status == 'critical'

- name: Application-side SQLAlchemy pool (SQLAlchemyPoolExhausted)
  incident.remediation.pool_health:
    backend: metrics
    metrics_url: http://api.internal:8000/metrics
  register: app_pool

- name: Prisma pool, whose size is not exported
  incident.remediation.pool_health:
    backend: metrics
    metrics_url: http://web.internal:9090/metrics
    pool_in_use_metric: prisma_pool_connections_busy
    pool_size: 17
"""

RETURN = r"""
status:
  description: Verdict, the worst of all findings.
  returned: always
  type: str
  choices: [ok, warning, critical, unknown]
  sample: warning
is_available:
  description: Whether the server (or the metrics endpoint) answered and was read.
  returned: always
  type: bool
  sample: true
reasons:
  description: Sentences that explain the verdict; empty when everything is within thresholds.
  returned: always
  type: list
  elements: str
  sample: ["connection pool saturation is 0.8235, above the warning threshold of 0.8"]
metrics:
  description:
    - The numbers behind the verdict. Keys are always present; null when not known
      (the PostgreSQL details are null with O(backend=metrics)).
    - Counts leave out the module's own session.
  returned: always
  type: dict
  contains:
    in_use:
      description: Client sessions (PostgreSQL) or checked-out connections (metrics).
      type: int
      sample: 14
    capacity:
      description: Slots ordinary roles may use, or the application pool size.
      type: int
      sample: 17
    saturation:
      description: C(in_use / capacity), rounded to four places; may exceed 1 when superusers use reserved slots.
      type: float
      sample: 0.8235
    free:
      description: C(capacity - in_use).
      type: int
      sample: 3
    max_connections:
      description: The server's C(max_connections).
      type: int
    superuser_reserved_connections:
      description: Slots reserved for superusers.
      type: int
    reserved_connections:
      description: Slots reserved for C(pg_use_reserved_connections) members (PostgreSQL 16+, else 0).
      type: int
    server_version:
      description: Server version.
      type: str
      sample: "15.8"
    by_state:
      description: Sessions per state (C(active), C(idle), C(idle in transaction), ..., C((hidden))).
      type: dict
      sample: {"active": 3, "idle": 10, "idle in transaction": 1}
    by_client_addr:
      description: Sessions per client address; C(local) for Unix-socket sessions.
      type: dict
      sample: {"10.0.3.7": 12, "local": 2}
    by_application:
      description: Sessions per C(application_name); C((unset)) for an empty one.
      type: dict
    by_user:
      description: Sessions per role.
      type: dict
    by_database:
      description: Sessions per database.
      type: dict
    idle:
      description: Idle sessions.
      type: int
    active:
      description: Active sessions.
      type: int
    idle_in_transaction:
      description: Sessions idle in a transaction (including aborted ones).
      type: int
    idle_over_threshold:
      description: Idle sessions idle for longer than O(idle_minutes).
      type: int
    oldest_idle_seconds:
      description: Longest time a session has been idle.
      type: float
    idle_in_transaction_over_threshold:
      description: Sessions idle in a transaction for longer than O(idle_in_transaction_minutes).
      type: int
    oldest_idle_in_transaction_seconds:
      description: Longest time a session has been idle in a transaction.
      type: float
    long_query_count:
      description: Active queries running longer than O(long_query_minutes) (all of them, not only those listed).
      type: int
    longest_query_seconds:
      description: Run time of the longest running active query.
      type: float
    hidden:
      description: Sessions O(login_user) may not inspect (no C(pg_monitor)).
      type: int
    query_ms:
      description: Milliseconds the single C(pg_stat_activity) statement took.
      type: float
long_queries:
  description:
    - Active queries running longer than O(long_query_minutes), longest first, at most
      O(max_long_queries). Only these columns are returned; the query text is truncated
      to O(query_text_length) characters and obvious secrets are masked.
  returned: always
  type: list
  elements: dict
  sample:
    - pid: 4242
      user: app
      database: app
      application: worker
      duration_seconds: 612.4
      query: "SELECT * FROM orders WHERE ..."
thresholds:
  description: The thresholds applied.
  returned: always
  type: dict
  sample: {"saturation_warning": 0.8, "saturation_critical": 0.95, "idle_minutes": 10.0}
elapsed_ms:
  description: Milliseconds the checks took, connection included.
  returned: always
  type: float
  sample: 7.42
backend:
  description: The backend used.
  returned: always
  type: str
  sample: postgresql
checked:
  description:
    - V(postgresql) the server, database and user checked, as C(postgresql://user@host:port/db);
      never a password.
    - V(metrics) O(metrics_url) without user information, query, fragment or key-like path segments.
    - Every module of the collection names what it checked or acted on in this key.
  returned: always
  type: str
  sample: postgresql://postgres@127.0.0.1:5432/postgres
error:
  description: The connection, query or scrape error, null when none.
  returned: always
  type: str
  sample: null
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.incident.remediation.plugins.module_utils._metrics import (
    PROMETHEUS_CLIENT_IMPORT_ERROR,
    MetricsError,
    scrape,
    text_string_to_metric_families,
    total,
)
from ansible_collections.incident.remediation.plugins.module_utils._postgres import (
    PostgresError,
    connect,
    ensure_psycopg2,
    fetch_dicts,
    postgres_common_argument_spec,
    postgres_url,
    version_string,
)
from ansible_collections.incident.remediation.plugins.module_utils._redact import redact_sql, redact_url
from ansible_collections.incident.remediation.plugins.module_utils._verdict import (
    CRITICAL,
    UNKNOWN,
    WARNING,
    Stopwatch,
    Verdict,
)

APPLICATION_NAME = "incident.remediation.pool_health"

# The verdict's thresholds, with the runbooks' defaults.
THRESHOLD_SPEC = dict(
    saturation_warning=dict(type="float", default=0.80),
    saturation_critical=dict(type="float", default=0.95),
    idle_minutes=dict(type="float", default=10.0),
    idle_in_transaction_minutes=dict(type="float", default=5.0),
    long_query_minutes=dict(type="float", default=5.0),
)

OPTION_SPEC = dict(
    backend=dict(type="str", default="postgresql", choices=["postgresql", "metrics"]),
    max_long_queries=dict(type="int", default=20),
    query_text_length=dict(type="int", default=200),
    max_groups=dict(type="int", default=20),
    metrics_url=dict(type="str"),
    pool_in_use_metric=dict(type="str", default="sqlalchemy_pool_checked_out"),
    pool_size_metric=dict(type="str", default="sqlalchemy_pool_size"),
    pool_size=dict(type="int"),
    metrics_labels=dict(type="dict", default={}),
    metrics_timeout=dict(type="float", default=5.0),
    metrics_validate_certs=dict(type="bool", default=True),
    metrics_ca_cert=dict(type="path"),
    metrics_headers=dict(type="dict", default={}, no_log=True),
)

GROUPS = ("by_client_addr", "by_application", "by_user", "by_database")
OTHER = "(other)"
HIDDEN = "(hidden)"

_COUNT_KEYS = (
    "in_use", "capacity", "saturation", "free",
    "max_connections", "superuser_reserved_connections", "reserved_connections", "server_version",
    "by_state", "by_client_addr", "by_application", "by_user", "by_database",
    "idle", "active", "idle_in_transaction",
    "idle_over_threshold", "oldest_idle_seconds",
    "idle_in_transaction_over_threshold", "oldest_idle_in_transaction_seconds",
    "long_query_count", "longest_query_seconds", "hidden", "query_ms",
)

# One statement, one round trip. The CTE reads pg_stat_activity once (the view is
# a per-transaction snapshot anyway); every figure is an aggregate over it.
# Client backends only; a role without pg_monitor sees other roles' sessions with
# backend_type and state NULL, and those connected to a database are counted as
# hidden sessions (close to right: autovacuum and parallel workers have a database
# too, but are few and short-lived).
ACTIVITY_SQL = """
WITH a AS (
  SELECT pid,
         state,
         backend_type IS NULL AS hidden,
         usename::text AS usename,
         datname::text AS datname,
         application_name,
         client_addr,
         extract(epoch FROM now() - state_change)::float8 AS in_state_s,
         extract(epoch FROM now() - query_start)::float8 AS running_s,
         query
    FROM pg_stat_activity
   WHERE pid <> pg_backend_pid()
     AND (backend_type = 'client backend' OR (backend_type IS NULL AND datid IS NOT NULL))
)
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved_connections,
       coalesce(current_setting('reserved_connections', true), '0')::int AS reserved_connections,
       (SELECT count(*) FROM a)::int AS in_use,
       (SELECT count(*) FROM a WHERE hidden)::int AS hidden,
       (SELECT coalesce(json_object_agg(k, n), '{}') FROM
          (SELECT CASE WHEN hidden THEN '(hidden)' ELSE coalesce(state, '(unknown)') END AS k, count(*) AS n
             FROM a GROUP BY 1) s) AS by_state,
       (SELECT coalesce(json_object_agg(k, n), '{}') FROM
          (SELECT CASE WHEN hidden THEN '(hidden)' WHEN client_addr IS NULL THEN 'local' ELSE host(client_addr) END
                  AS k, count(*) AS n
             FROM a GROUP BY 1) s) AS by_client_addr,
       (SELECT coalesce(json_object_agg(k, n), '{}') FROM
          (SELECT CASE WHEN coalesce(application_name, '') = '' THEN '(unset)' ELSE application_name END AS k,
                  count(*) AS n
             FROM a GROUP BY 1) s) AS by_application,
       (SELECT coalesce(json_object_agg(k, n), '{}') FROM
          (SELECT coalesce(usename, '(unknown)') AS k, count(*) AS n FROM a GROUP BY 1) s) AS by_user,
       (SELECT coalesce(json_object_agg(k, n), '{}') FROM
          (SELECT coalesce(datname, '(unknown)') AS k, count(*) AS n FROM a GROUP BY 1) s) AS by_database,
       (SELECT count(*) FROM a WHERE state = 'idle' AND in_state_s > %(idle_s)s)::int AS idle_over_threshold,
       (SELECT max(in_state_s) FROM a WHERE state = 'idle') AS oldest_idle_seconds,
       (SELECT count(*) FROM a WHERE state LIKE 'idle in transaction%%' AND in_state_s > %(iit_s)s)::int
          AS idle_in_transaction_over_threshold,
       (SELECT max(in_state_s) FROM a WHERE state LIKE 'idle in transaction%%')
          AS oldest_idle_in_transaction_seconds,
       (SELECT count(*) FROM a WHERE state = 'active' AND running_s > %(long_s)s)::int AS long_query_count,
       (SELECT max(running_s) FROM a WHERE state = 'active') AS longest_query_seconds,
       (SELECT coalesce(json_agg(q ORDER BY q.duration_seconds DESC), '[]') FROM
          (SELECT pid, usename AS "user", datname AS database, application_name AS application,
                  round(running_s::numeric, 1) AS duration_seconds, left(query, %(text_len)s) AS query
             FROM a
            WHERE state = 'active' AND running_s > %(long_s)s
            ORDER BY running_s DESC
            LIMIT %(max_long)s) q) AS long_queries
"""


def empty_metrics():
    return dict.fromkeys(_COUNT_KEYS)


def saturation(in_use, capacity):
    """C(in_use / capacity) to four places; None when either is unknown or capacity is not positive."""
    if in_use is None or capacity is None or capacity <= 0:
        return None
    return round(float(in_use) / capacity, 4)


def usable_slots(max_connections, superuser_reserved, reserved=0):
    """Slots an ordinary role may use: max_connections minus the reserved ones."""
    return max_connections - superuser_reserved - (reserved or 0)


def top_groups(counts, limit):
    """The largest `limit` entries of counts; the rest summed under '(other)'."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ordered[:max(limit, 0)])
    rest = sum(count for _name, count in ordered[max(limit, 0):])
    if rest:
        kept[OTHER] = kept.get(OTHER, 0) + rest
    return kept


def scrub_query(text, length):
    """Query text cut to length, with password literals and name=value secrets masked."""
    if text is None:
        return None
    return redact_sql(text)[:length]


def _seconds(value):
    return None if value is None else round(float(value), 1)


def metrics_from_row(row, max_groups, query_ms=None, server_version=None):
    """Reported metrics from the ACTIVITY_SQL row."""
    metrics = empty_metrics()
    capacity = usable_slots(row["max_connections"], row["superuser_reserved_connections"],
                            row["reserved_connections"])
    by_state = dict(row["by_state"] or {})
    metrics.update(
        in_use=row["in_use"],
        capacity=capacity,
        saturation=saturation(row["in_use"], capacity),
        free=capacity - row["in_use"],
        max_connections=row["max_connections"],
        superuser_reserved_connections=row["superuser_reserved_connections"],
        reserved_connections=row["reserved_connections"],
        server_version=version_string(server_version) if server_version else None,
        by_state=by_state,
        idle=by_state.get("idle", 0),
        active=by_state.get("active", 0),
        idle_in_transaction=by_state.get("idle in transaction", 0)
        + by_state.get("idle in transaction (aborted)", 0),
        idle_over_threshold=row["idle_over_threshold"],
        oldest_idle_seconds=_seconds(row["oldest_idle_seconds"]),
        idle_in_transaction_over_threshold=row["idle_in_transaction_over_threshold"],
        oldest_idle_in_transaction_seconds=_seconds(row["oldest_idle_in_transaction_seconds"]),
        long_query_count=row["long_query_count"],
        longest_query_seconds=_seconds(row["longest_query_seconds"]),
        hidden=row["hidden"],
        query_ms=query_ms,
    )
    for group in GROUPS:
        metrics[group] = top_groups(dict(row[group] or {}), max_groups)
    return metrics


def long_queries_from_row(row, text_length):
    return [
        dict(
            pid=entry["pid"],
            user=entry["user"],
            database=entry["database"],
            application=entry["application"],
            duration_seconds=_seconds(entry["duration_seconds"]),
            query=scrub_query(entry["query"], text_length),
        )
        for entry in row["long_queries"] or []
    ]


def judge(metrics, thresholds, name="connection pool saturation"):
    """Verdict for a pool that was read."""
    verdict = Verdict()
    verdict.check_above(name, metrics["saturation"],
                        thresholds["saturation_warning"], thresholds["saturation_critical"])
    if metrics["long_query_count"]:
        verdict.add(WARNING, "%d active %s running longer than %s min (the longest for %s s)"
                    % (metrics["long_query_count"],
                       "query has been" if metrics["long_query_count"] == 1 else "queries have been",
                       _minutes(thresholds["long_query_minutes"]), _minutes(metrics["longest_query_seconds"])))
    if metrics["idle_in_transaction_over_threshold"]:
        count = metrics["idle_in_transaction_over_threshold"]
        verdict.add(WARNING, "%d %s idle in a transaction for longer than %s min (the oldest for %s s)"
                    % (count, "session has been" if count == 1 else "sessions have been",
                       _minutes(thresholds["idle_in_transaction_minutes"]),
                       _minutes(metrics["oldest_idle_in_transaction_seconds"])))
    if metrics["hidden"]:
        # Not a finding about the pool: the status stays, the reason tells what was not seen.
        verdict.reasons.append("%d sessions of other roles could not be inspected (state, query and "
                               "client address hidden); grant pg_monitor to the login user" % metrics["hidden"])
    return verdict


def _minutes(value):
    """10.0 -> '10', 7.5 -> '7.5'."""
    if value is None:
        return "?"
    return ("%.1f" % value).rstrip("0").rstrip(".")


def read_activity(conn, options):
    """The ACTIVITY_SQL row and the milliseconds the statement took."""
    args = dict(
        idle_s=options["idle_minutes"] * 60.0,
        iit_s=options["idle_in_transaction_minutes"] * 60.0,
        long_s=options["long_query_minutes"] * 60.0,
        text_len=max(options["query_text_length"], 0) * 2,  # room for scrub_query to mask, then cut
        max_long=max(options["max_long_queries"], 0),
    )
    clock = Stopwatch()
    (row,) = fetch_dicts(conn, ACTIVITY_SQL, args)
    return row, clock.elapsed_ms()


def check_postgresql(params):
    """Run the PostgreSQL checks; never raises for a server-side problem."""
    metrics = empty_metrics()
    long_queries = []
    verdict = Verdict()
    error = None
    is_available = False
    conn = None
    try:
        conn = connect(params, APPLICATION_NAME)
        is_available = True
        row, query_ms = read_activity(conn, params)
        metrics = metrics_from_row(row, params["max_groups"], query_ms, conn.server_version)
        long_queries = long_queries_from_row(row, params["query_text_length"])
        verdict = judge(metrics, params)
    except PostgresError as exc:
        error = str(exc)
        if exc.kind == "slots_exhausted":
            verdict.add(CRITICAL, "%s; the pool is exhausted for this login" % exc)
        elif exc.kind in ("unreachable", "timeout") and not is_available:
            verdict.add(CRITICAL, str(exc))
        else:
            verdict.add(UNKNOWN, str(exc))
        is_available = False
    finally:
        if conn is not None:
            conn.close()
    return dict(
        status=verdict.status,
        is_available=is_available,
        reasons=verdict.reasons,
        metrics=metrics,
        long_queries=long_queries,
        checked=postgres_url(params),
        error=error,
    )


def http_params(params):
    """The options _http.request expects, from this module's metrics_* options."""
    return dict(
        timeout=params["metrics_timeout"],
        validate_certs=params["metrics_validate_certs"],
        ca_cert=params["metrics_ca_cert"],
        client_cert=None,
        client_key=None,
        headers=params["metrics_headers"] or {},
    )


def pool_from_samples(samples, params):
    """(in_use, capacity, problems) of the application pool from scraped samples."""
    labels = params["metrics_labels"] or None
    problems = []
    in_use = total(samples, params["pool_in_use_metric"], labels)
    if in_use is None:
        problems.append("metric %s is not exposed" % params["pool_in_use_metric"])
    if params["pool_size"] is not None:
        capacity = params["pool_size"]
    else:
        capacity = total(samples, params["pool_size_metric"], labels)
        if capacity is None:
            problems.append("metric %s is not exposed (set pool_size for exporters without it)"
                            % params["pool_size_metric"])
    return (None if in_use is None else round(in_use),
            None if capacity is None else round(capacity),
            problems)


def check_metrics(params):
    """Run the application-pool checks; never raises for an endpoint problem."""
    metrics = empty_metrics()
    verdict = Verdict()
    error = None
    is_available = False
    url = redact_url(params["metrics_url"])[0]
    try:
        samples = scrape(params["metrics_url"], http_params(params))
        is_available = True
        in_use, capacity, problems = pool_from_samples(samples, params)
        metrics.update(in_use=in_use, capacity=capacity, saturation=saturation(in_use, capacity))
        if in_use is not None and capacity is not None:
            metrics["free"] = capacity - in_use
        for problem in problems:
            verdict.add(UNKNOWN, "%s at %s" % (problem, url))
        if capacity is not None and capacity <= 0:
            verdict.add(UNKNOWN, "the pool size at %s is %s; saturation cannot be judged" % (url, capacity))
        verdict.check_above("application pool saturation", metrics["saturation"],
                            params["saturation_warning"], params["saturation_critical"])
    except MetricsError as exc:
        error = str(exc)
        verdict.add(UNKNOWN, "the application pool could not be read: %s" % error)
    return dict(
        status=verdict.status,
        is_available=is_available,
        reasons=verdict.reasons,
        metrics=metrics,
        long_queries=[],
        checked=url,
        error=error,
    )


def main():
    argument_spec = postgres_common_argument_spec()
    argument_spec.update(THRESHOLD_SPEC)
    argument_spec.update(OPTION_SPEC)
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[("backend", "metrics", ["metrics_url"])],
        supports_check_mode=True,
    )
    if module.params["backend"] == "metrics":
        if text_string_to_metric_families is None:
            module.fail_json(msg=missing_required_lib("prometheus-client"), exception=PROMETHEUS_CLIENT_IMPORT_ERROR)
    else:
        ensure_psycopg2(module)
    thresholds = dict((name, module.params[name]) for name in THRESHOLD_SPEC)
    clock = Stopwatch()
    if module.params["backend"] == "metrics":
        result = check_metrics(module.params)
    else:
        result = check_postgresql(module.params)
    module.exit_json(changed=False, thresholds=thresholds, elapsed_ms=clock.elapsed_ms(),
                     backend=module.params["backend"], **result)


if __name__ == "__main__":
    main()
