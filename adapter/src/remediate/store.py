"""The durable store: alerts, decisions, runs, silences, breakers and escalations.

SQLite (WAL, synchronous=FULL) is the zero-configuration default for one adapter
process. PostgreSQL serves several replicas: decisions and queue claims are
serialised by transaction-scoped advisory locks and the queue is read with
``FOR UPDATE SKIP LOCKED``. On both, a partial unique index allows one active
run per (kind, route, target), so even a bug above this layer cannot queue the
same remediation twice.

SQL is written once with ``?`` placeholders; the PostgreSQL backend rewrites them.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACTIVE_STATES = ("queued", "awaiting_approval", "running")
# The partial unique index's predicate; ON CONFLICT must name the same one.
ACTIVE = "state IN ({})".format(", ".join(f"'{state}'" for state in ACTIVE_STATES))
FINAL_STATES = ("successful", "failed", "timeout", "canceled", "interrupted", "expired")
# Columns added after the first release: (table, column, definition), added to older stores on start.
ADDED_COLUMNS = (("runs", "result", "TEXT NOT NULL DEFAULT ''"),)
# Where the adapter's own events go (not an incident's): acknowledgements of failed notifications.
ADAPTER_EVENTS = "adapter"
# Advisory lock keys (PostgreSQL): one for intake decisions, one for queue claims.
DECISION_LOCK = 7_415_001
CLAIM_LOCK = 7_415_002

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
  id {serial} PRIMARY KEY,
  received_at DOUBLE PRECISION NOT NULL,
  source TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  alertname TEXT NOT NULL,
  status TEXT NOT NULL,
  incident_id TEXT NOT NULL,
  route TEXT,
  decision TEXT NOT NULL,
  reason TEXT NOT NULL,
  run_id BIGINT,
  body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_incident ON alerts (incident_id);
CREATE TABLE IF NOT EXISTS firing (
  fingerprint TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  since DOUBLE PRECISION NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
  id {serial} PRIMARY KEY,
  kind TEXT NOT NULL,
  route TEXT NOT NULL,
  target_key TEXT NOT NULL,
  incident_id TEXT NOT NULL,
  playbook TEXT NOT NULL,
  mode TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  extravars TEXT NOT NULL,
  created_at DOUBLE PRECISION NOT NULL,
  expires_at DOUBLE PRECISION,
  approved_by TEXT,
  started_at DOUBLE PRECISION,
  heartbeat_at DOUBLE PRECISION,
  finished_at DOUBLE PRECISION,
  owner TEXT,
  attempt INTEGER NOT NULL DEFAULT 1,
  outcome TEXT NOT NULL DEFAULT '',
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  host_stats TEXT,
  result TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_one_active ON runs (kind, route, target_key)
  WHERE {active};
CREATE INDEX IF NOT EXISTS runs_state ON runs (state, id);
CREATE INDEX IF NOT EXISTS runs_route_target ON runs (route, target_key, created_at);
CREATE INDEX IF NOT EXISTS runs_kind_finished ON runs (kind, finished_at);
CREATE TABLE IF NOT EXISTS run_counts (
  scope TEXT NOT NULL,
  minute BIGINT NOT NULL,
  runs INTEGER NOT NULL,
  PRIMARY KEY (scope, minute)
);
CREATE TABLE IF NOT EXISTS run_alerts (
  run_id BIGINT NOT NULL,
  fingerprint TEXT NOT NULL,
  PRIMARY KEY (run_id, fingerprint)
);
CREATE INDEX IF NOT EXISTS run_alerts_fingerprint ON run_alerts (fingerprint);
CREATE TABLE IF NOT EXISTS events (
  id {serial} PRIMARY KEY,
  at DOUBLE PRECISION NOT NULL,
  incident_id TEXT NOT NULL,
  run_id BIGINT,
  alert_id BIGINT,
  kind TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  data TEXT NOT NULL DEFAULT '{{}}'
);
CREATE INDEX IF NOT EXISTS events_incident ON events (incident_id, id);
CREATE INDEX IF NOT EXISTS events_run ON events (run_id, id);
CREATE TABLE IF NOT EXISTS breakers (
  route TEXT PRIMARY KEY,
  failures INTEGER NOT NULL DEFAULT 0,
  is_open INTEGER NOT NULL DEFAULT 0,
  changed_at DOUBLE PRECISION NOT NULL,
  changed_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS silences (
  id {serial} PRIMARY KEY,
  matchers TEXT NOT NULL,
  starts_at DOUBLE PRECISION NOT NULL,
  ends_at DOUBLE PRECISION NOT NULL,
  created_by TEXT NOT NULL,
  comment TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS escalations (
  id {serial} PRIMARY KEY,
  incident_id TEXT NOT NULL,
  route TEXT NOT NULL,
  target_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  step INTEGER NOT NULL,
  due_at DOUBLE PRECISION NOT NULL,
  state TEXT NOT NULL,
  extravars TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS escalations_step ON escalations (incident_id, route, step);
CREATE INDEX IF NOT EXISTS escalations_due ON escalations (state, due_at);
"""


@dataclass
class Run:
    id: int
    kind: str
    route: str
    target_key: str
    incident_id: str
    playbook: str
    mode: str
    state: str
    extravars: dict
    attempt: int

    @classmethod
    def from_row(cls, row) -> Run:
        return cls(
            id=row[0],
            kind=row[1],
            route=row[2],
            target_key=row[3],
            incident_id=row[4],
            playbook=row[5],
            mode=row[6],
            state=row[7],
            extravars=json.loads(row[8]),
            attempt=row[9],
        )


RUN_COLUMNS = "id, kind, route, target_key, incident_id, playbook, mode, state, extravars, attempt"


class Tx:
    """One transaction: the queries the safety rules and the workers need."""

    def __init__(self, cursor, placeholder: str):
        self._cursor = cursor
        self._placeholder = placeholder

    def execute(self, sql: str, args: tuple = ()) -> Any:
        if self._placeholder != "?":
            sql = sql.replace("?", self._placeholder)
        self._cursor.execute(sql, args)
        return self._cursor

    def one(self, sql: str, args: tuple = ()):
        return self.execute(sql, args).fetchone()

    def all(self, sql: str, args: tuple = ()) -> list:
        return self.execute(sql, args).fetchall()

    def scalar(self, sql: str, args: tuple = ()):
        row = self.one(sql, args)
        return row[0] if row else None

    # Alerts and the firing state of each fingerprint.
    def insert_alert(
        self,
        *,
        source: str,
        alert: dict,
        incident_id: str,
        now: float,
        route: str | None,
        decision: str,
        reason: str,
        run_id: int | None,
    ) -> int:
        return self.scalar(
            "INSERT INTO alerts (received_at, source, fingerprint, alertname, status, incident_id, route,"
            " decision, reason, run_id, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                now,
                source,
                alert["fingerprint"],
                alert["labels"].get("alertname", ""),
                alert["status"],
                incident_id,
                route,
                decision,
                reason,
                run_id,
                json.dumps(alert),
            ),
        )

    def set_firing(self, fingerprint: str, status: str, now: float) -> float:
        """Record the alert's latest status; returns since when it has had that status."""
        return self.scalar(
            "INSERT INTO firing (fingerprint, status, since, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (fingerprint) DO UPDATE SET"
            " since = CASE WHEN firing.status = excluded.status THEN firing.since ELSE excluded.since END,"
            " status = excluded.status, updated_at = excluded.updated_at RETURNING since",
            (fingerprint, status, now, now),
        )

    def any_firing(self, run_id: int) -> bool:
        return bool(
            self.scalar(
                "SELECT count(*) FROM run_alerts r JOIN firing f ON f.fingerprint = r.fingerprint"
                " WHERE r.run_id = ? AND f.status = 'firing'",
                (run_id,),
            )
        )

    # Runs.
    def active_run(self, kind: str, route: str, target_key: str) -> int | None:
        return self.scalar(
            f"SELECT id FROM runs WHERE kind = ? AND route = ? AND target_key = ? AND {ACTIVE}",
            (kind, route, target_key),
        )

    def create_run(
        self,
        *,
        kind: str,
        route: str,
        target_key: str,
        incident_id: str,
        playbook: str,
        mode: str,
        state: str,
        extravars: dict,
        now: float,
        expires_at: float | None = None,
        reason: str = "",
    ) -> int | None:
        """A new active run, or None when one is already active for (kind, route, target)."""
        return self.scalar(
            "INSERT INTO runs (kind, route, target_key, incident_id, playbook, mode, state, reason, extravars,"
            " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            f" ON CONFLICT (kind, route, target_key) WHERE {ACTIVE}"
            " DO NOTHING RETURNING id",
            (
                kind,
                route,
                target_key,
                incident_id,
                playbook,
                mode,
                state,
                reason,
                json.dumps(extravars),
                now,
                expires_at,
            ),
        )

    def add_member(self, run_id: int, fingerprint: str) -> None:
        self.execute(
            "INSERT INTO run_alerts (run_id, fingerprint) VALUES (?, ?) ON CONFLICT DO NOTHING", (run_id, fingerprint)
        )

    def last_finished(self, route: str, target_key: str) -> float | None:
        return self.scalar(
            "SELECT max(finished_at) FROM runs WHERE kind = 'remediate' AND route = ? AND target_key = ?"
            " AND state IN ('successful', 'failed', 'timeout', 'interrupted')",
            (route, target_key),
        )

    def count_runs(self, scopes: tuple[str, ...], since: float) -> dict[str, int]:
        """Remediation runs created in each scope (``total``, ``route:R``, ``target:R:K``) since
        then, from per-minute counts: the window starts at its minute, so a cap errs safe."""
        marks = ", ".join("?" for _ in scopes)
        counts = dict.fromkeys(scopes, 0)
        counts.update(
            self.all(
                f"SELECT scope, sum(runs) FROM run_counts WHERE scope IN ({marks}) AND minute >= ? GROUP BY scope",
                (*scopes, int(since // 60)),
            )
        )
        return counts

    def count_run(self, scopes: tuple[str, ...], now: float) -> None:
        sql = (
            "INSERT INTO run_counts (scope, minute, runs) VALUES (?, ?, 1)"
            " ON CONFLICT (scope, minute) DO UPDATE SET runs = run_counts.runs + 1"
        )
        if self._placeholder != "?":
            sql = sql.replace("?", self._placeholder)
        self._cursor.executemany(sql, [(scope, int(now // 60)) for scope in scopes])

    def runs_of_fingerprint(self, fingerprint: str, states: tuple[str, ...]) -> list[int]:
        marks = ", ".join("?" for _ in states)
        return [
            row[0]
            for row in self.all(
                "SELECT r.id FROM runs r JOIN run_alerts m ON m.run_id = r.id"
                f" WHERE m.fingerprint = ? AND r.state IN ({marks})",
                (fingerprint, *states),
            )
        ]

    def get_run(self, run_id: int) -> Run | None:
        if not -(2**63) <= run_id < 2**63:  # no such run, and a number both databases refuse
            return None
        row = self.one(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return Run.from_row(row) if row else None

    def finish_run(
        self, run_id: int, state: str, outcome: str, now: float, host_stats: dict | None = None, *, result: str
    ) -> None:
        """``state`` is how the process ended, ``result`` what the run ended with (outcomes.py)."""
        self.execute(
            "UPDATE runs SET state = ?, outcome = ?, finished_at = ?, host_stats = ?, result = ? WHERE id = ?",
            (state, outcome, now, json.dumps(host_stats) if host_stats is not None else None, result, run_id),
        )

    def end_run(self, run: Run, state: str, outcome: str, now: float) -> None:
        """End a run that did not finish by itself (canceled, expired, interrupted) and
        record that in its incident's timeline, the outcome as the reason."""
        self.finish_run(run.id, state, outcome, now, result=state)
        self.event(run.incident_id, state, outcome, now=now, run_id=run.id)

    def handovers(self, incident_id: str) -> int:
        """Hand-over runs created for an incident so far."""
        return self.scalar(
            "SELECT count(*) FROM runs WHERE incident_id = ? AND kind = 'remediate' AND reason LIKE 'hand-over%'",
            (incident_id,),
        )

    def failing_notification(self) -> dict | None:
        """The last notify run, when it failed and no person acknowledged that since; else None."""
        row = self.one(
            "SELECT id, result, finished_at FROM runs WHERE kind = 'notify' AND result IN ('notified', 'failed',"
            " 'timeout') ORDER BY finished_at DESC, id DESC LIMIT 1"
        )
        if row is None or row[1] == "notified":
            return None
        acknowledged = self.scalar(
            "SELECT max(at) FROM events WHERE incident_id = ? AND kind = 'notifications_acknowledged'",
            (ADAPTER_EVENTS,),
        )
        if acknowledged is not None and acknowledged >= row[2]:
            return None
        return {"run_id": row[0], "result": row[1], "finished_at": row[2]}

    def queue_depth(self) -> int:
        return self.scalar("SELECT count(*) FROM runs WHERE state IN ('queued', 'awaiting_approval')")

    def escalated_incidents(self, now: float) -> tuple[int, int]:
        """(incidents escalated whose alert still fires, those of them past a later
        escalation step's due time: unhealed past their escalation time)."""
        row = self.one(
            "SELECT count(DISTINCT e.incident_id),"
            " count(DISTINCT CASE WHEN e.step > 0 AND e.due_at <= ? THEN e.incident_id END)"
            " FROM escalations e JOIN firing f ON f.fingerprint = e.fingerprint"
            " WHERE e.state IN ('pending', 'sent') AND f.status = 'firing'",
            (now,),
        )
        return row[0], row[1]

    # Events: every decision and every step of a run, with its reason.
    def event(
        self,
        incident_id: str,
        kind: str,
        reason: str = "",
        *,
        now: float,
        run_id: int | None = None,
        alert_id: int | None = None,
        data: dict | None = None,
    ) -> None:
        self.execute(
            "INSERT INTO events (at, incident_id, run_id, alert_id, kind, reason, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (now, incident_id, run_id, alert_id, kind, reason, json.dumps(data or {})),
        )

    # Circuit breakers.
    def open_breakers(self) -> set[str]:
        return {route for (route,) in self.all("SELECT route FROM breakers WHERE is_open = 1")}

    def breaker(self, route: str) -> tuple[int, bool]:
        row = self.one("SELECT failures, is_open FROM breakers WHERE route = ?", (route,))
        return (row[0], bool(row[1])) if row else (0, False)

    def set_breaker(self, route: str, failures: int, is_open: bool, now: float, by: str = "") -> None:
        self.execute(
            "INSERT INTO breakers (route, failures, is_open, changed_at, changed_by) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (route) DO UPDATE SET failures = excluded.failures, is_open = excluded.is_open,"
            " changed_at = excluded.changed_at, changed_by = excluded.changed_by",
            (route, failures, int(is_open), now, by),
        )

    # Silences.
    def active_silences(self, now: float) -> list[dict]:
        return [
            {"id": row[0], "matchers": json.loads(row[1]), "ends_at": row[2], "comment": row[3]}
            for row in self.all(
                "SELECT id, matchers, ends_at, comment FROM silences WHERE starts_at <= ? AND ends_at > ?", (now, now)
            )
        ]


class Store:
    """Base of both backends: transactions and the read queries of the API and CLI."""

    placeholder = "?"

    @contextlib.contextmanager
    def transaction(self, lock: int | None = None, *, write: bool = False) -> Iterator[Tx]:
        """A transaction; ``lock`` serialises it with others holding the same lock (an
        advisory lock on PostgreSQL), ``write`` says it writes without needing one."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def init(self) -> None:
        with self.transaction(DECISION_LOCK) as tx:
            for statement in self.schema().split(";"):
                if statement.strip():
                    tx.execute(statement)
            for table, column, definition in ADDED_COLUMNS:
                present = {item[0] for item in tx.execute(f"SELECT * FROM {table} LIMIT 0").description}
                if column not in present:
                    tx.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def schema(self) -> str:
        return SCHEMA.format(serial=self.serial, active=ACTIVE)

    # Reads for the API and the CLI.
    def incidents(self, limit: int = 100) -> list[dict]:
        with self.transaction() as tx:
            rows = tx.all(
                "SELECT incident_id, min(at), max(at), count(*) FROM events GROUP BY incident_id"
                " ORDER BY max(at) DESC LIMIT ?",
                (limit,),
            )
            incidents = []
            for incident_id, first, last, count in rows:
                latest = tx.one(
                    "SELECT kind, reason FROM events WHERE incident_id = ? ORDER BY id DESC LIMIT 1", (incident_id,)
                )
                incidents.append(
                    {
                        "id": incident_id,
                        "first_at": first,
                        "last_at": last,
                        "events": count,
                        "last_event": latest[0],
                        "last_reason": latest[1],
                    }
                )
            return incidents

    def timeline(self, incident_id: str) -> list[dict]:
        with self.transaction() as tx:
            return [
                {"at": at, "kind": kind, "reason": reason, "run_id": run_id, "alert_id": alert_id, **_data(data)}
                for at, kind, reason, run_id, alert_id, data in tx.all(
                    "SELECT at, kind, reason, run_id, alert_id, data FROM events WHERE incident_id = ? ORDER BY id",
                    (incident_id,),
                )
            ]

    def runs(
        self, *, states: tuple[str, ...] | None = None, incidents: tuple[str, ...] | None = None, limit: int = 1000
    ) -> list[dict]:
        sql = (
            "SELECT id, kind, route, target_key, incident_id, playbook, mode, state, reason, created_at,"
            " started_at, finished_at, attempt, host_stats, approved_by, outcome, result FROM runs WHERE 1 = 1"
        )
        args: tuple = ()
        for column, values in (("state", states), ("incident_id", incidents)):
            if values:
                sql += f" AND {column} IN (%s)" % ", ".join("?" for _ in values)
                args += tuple(values)
        sql += " ORDER BY id LIMIT ?"
        names = (
            "id kind route target_key incident_id playbook mode state reason created_at started_at finished_at"
            " attempt host_stats approved_by outcome result"
        ).split()
        with self.transaction() as tx:
            return [
                {**dict(zip(names, row, strict=True)), "host_stats": json.loads(row[13]) if row[13] else None}
                for row in tx.all(sql, (*args, limit))
            ]

    def queue_depth(self) -> int:
        with self.transaction() as tx:
            return tx.queue_depth()

    def health(self) -> tuple[int, dict | None]:
        """(queue depth, the failing notification or None), in one transaction."""
        with self.transaction() as tx:
            return tx.queue_depth(), tx.failing_notification()


def _data(text: str) -> dict:
    data = json.loads(text)
    return {"data": data} if data else {}


class SQLiteStore(Store):
    """One file, WAL journal, every commit synced: an answered alert survives a crash."""

    serial = "INTEGER"

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._writer = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA busy_timeout=60000")
            self._local.connection = connection
            with self._guard:
                self._connections.append(connection)
        return connection

    @contextlib.contextmanager
    def transaction(self, lock: int | None = None, *, write: bool = False) -> Iterator[Tx]:
        connection = self._connection()
        if lock is None and not write:
            yield from self._run(connection, "BEGIN")
            return
        # Writers take the database's write lock at BEGIN (no upgrade deadlocks), one
        # thread at a time: threads wait on a lock, not in SQLite's busy-retry sleeps.
        with self._writer:
            yield from self._run(connection, "BEGIN IMMEDIATE")

    @staticmethod
    def _run(connection: sqlite3.Connection, begin: str) -> Iterator[Tx]:
        connection.execute(begin)
        try:
            yield Tx(connection.cursor(), "?")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def close(self) -> None:
        with self._guard:
            for connection in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
            self._connections.clear()


class PostgresStore(Store):
    """PostgreSQL for several replicas; the decision and claim steps are serialised
    across processes by transaction-scoped advisory locks."""

    serial = "BIGSERIAL"
    placeholder = "%s"

    def __init__(self, dsn: str, max_connections: int = 20):
        import psycopg2.pool  # noqa: PLC0415 - only needed with PostgreSQL

        self._pool = psycopg2.pool.ThreadedConnectionPool(1, max_connections, dsn)
        # The pool raises when every connection is out (say, a storm waiting on the
        # decision lock): a thread waits for a free connection instead.
        self._free = threading.BoundedSemaphore(max_connections)

    @contextlib.contextmanager
    def transaction(self, lock: int | None = None, *, write: bool = False) -> Iterator[Tx]:
        with self._free:
            connection = self._pool.getconn()
            try:
                with connection.cursor() as cursor:
                    tx = Tx(cursor, "%s")
                    if lock is not None:
                        tx.execute("SELECT pg_advisory_xact_lock(?)", (lock,))
                    try:
                        yield tx
                    except BaseException:
                        connection.rollback()
                        raise
                    connection.commit()
            finally:
                self._pool.putconn(connection)

    def close(self) -> None:
        self._pool.closeall()


def open_store(url: str) -> Store:
    """``sqlite:///path/to/file.db`` or a PostgreSQL URL (``postgresql://...``)."""
    if url.startswith("sqlite:///"):
        return SQLiteStore(Path(url.removeprefix("sqlite://")))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    raise ValueError("store must be sqlite:///<path> or postgresql://...")


def now() -> float:
    return time.time()
