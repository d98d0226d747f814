"""Throwaway PostgreSQL containers of the project's image, and real client sessions on them."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import docker
import psycopg2
import psycopg2.extras

from tests.harness.ansible import wait_for

POSTGRES_IMAGE = "incident-remediation/postgres:latest"
SUPERUSER = "postgres"
ADMIN_APPLICATION = "test-admin"


@dataclass
class PostgresServer:
    """A running container: connection details for tests and the modules' options."""

    container: docker.models.containers.Container
    port: int
    password: str
    host: str = "127.0.0.1"
    _admin: psycopg2.extensions.connection | None = field(default=None, repr=False)

    def dsn(self, user: str = SUPERUSER, password: str | None = None, dbname: str = "postgres", **extra) -> dict:
        return dict(
            host=self.host,
            port=self.port,
            user=user,
            password=self.password if password is None else password,
            dbname=dbname,
            connect_timeout=5,
            **extra,
        )

    def connect(self, user: str = SUPERUSER, password: str | None = None, dbname: str = "postgres", **extra):
        """A connection as the superuser (or as user), autocommit unless told otherwise."""
        autocommit = extra.pop("autocommit", True)
        conn = psycopg2.connect(**self.dsn(user, password, dbname, **extra))
        conn.autocommit = autocommit
        return conn

    def params(self, **overrides) -> dict:
        """The modules' connection options (postgres_common_argument_spec) for this server."""
        params = dict(
            login_host=self.host,
            login_port=self.port,
            login_user=SUPERUSER,
            login_password=self.password,
            login_db="postgres",
            ssl_mode="disable",
            ca_cert=None,
            connect_timeout=5,
        )
        params.update(overrides)
        return params

    @property
    def admin(self) -> psycopg2.extensions.connection:
        """One long-lived superuser session (application_name test-admin) for the harness'
        own statements, so tests see a steady count of sessions: this one, always idle."""
        if self._admin is None or self._admin.closed:
            self._admin = self.connect(application_name=ADMIN_APPLICATION)
        return self._admin

    def execute(self, sql: str, args=None) -> list[tuple]:
        """Run one statement on the admin session; rows when it returns any."""
        with self.admin.cursor() as cursor:
            cursor.execute(sql, args)
            return cursor.fetchall() if cursor.description else []

    def shell(self, command: str, environment: dict | None = None) -> str:
        """Run a shell command in the container as the postgres OS user; raise on failure."""
        code, output = self.container.exec_run(["su", "postgres", "-c", command], environment=environment or {})
        text = output.decode(errors="replace")
        if code != 0:
            raise RuntimeError(f"{command!r} exited {code}: {text}")
        return text

    def allow_replication(self) -> None:
        """Let physical replication connections log in with a password (the image's
        pg_hba.conf only has `host all all`), and reload the configuration."""
        self.shell(
            "echo 'host replication all 0.0.0.0/0 scram-sha-256' >> \"$PGDATA/pg_hba.conf\"",
            environment={"PGDATA": "/var/lib/postgresql/data"},
        )
        self.execute("SELECT pg_reload_conf()")

    def create_role(self, name: str, password: str = "role-pw", *attributes: str) -> str:
        self.execute(f'CREATE ROLE "{name}" LOGIN PASSWORD %s {" ".join(attributes)}', (password,))
        return name

    def client_backends(self) -> list[dict]:
        """Client sessions as pg_stat_activity shows them, the admin session left out."""
        with self.admin.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
            cursor.execute(
                "SELECT pid, usename::text AS user, application_name, state, backend_type,"
                " host(client_addr) AS client_addr, datname::text AS database"
                " FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
            return [dict(row) for row in cursor.fetchall()]

    def settings(self, *names: str) -> dict:
        """Current values of server settings, as ints where they are numbers."""
        rows = self.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(names),))
        return {name: int(value) if value.lstrip("-").isdigit() else value for name, value in rows}

    def alive(self, pids) -> set[int]:
        """Which of pids still have a backend."""
        rows = self.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),))
        return {pid for (pid,) in rows}

    def wait_gone(self, pids, timeout: float = 10) -> None:
        wait_for(lambda: self.alive(pids), lambda alive: not alive, timeout=timeout, interval=0.05)

    def wait_quiet(self, timeout: float = 10) -> None:
        """Wait until no client session is left but the harness' own."""
        wait_for(self.client_backends, lambda rows: rows == [], timeout=timeout, interval=0.05)


@contextlib.contextmanager
def postgres_server(*args: str, password: str | None = None) -> Iterator[PostgresServer]:
    """A PostgreSQL container (postgres ARGS..., e.g. "-c", "max_connections=20") on a free
    127.0.0.1 port; yields a PostgresServer once the superuser can run a query, and removes
    the container afterwards."""
    password = password or f"pw-{uuid.uuid4().hex[:12]}"
    engine = docker.from_env()
    container = engine.containers.run(
        POSTGRES_IMAGE,
        list(args),
        name=f"ir-test-postgres-{uuid.uuid4().hex[:8]}",
        environment={"POSTGRES_PASSWORD": password},
        ports={"5432/tcp": ("127.0.0.1", None)},
        detach=True,
        labels={"incident-remediation.test": "1"},
    )
    server = None
    try:
        container.reload()
        port = int(container.ports["5432/tcp"][0]["HostPort"])
        server = PostgresServer(container=container, port=port, password=password)
        wait_for(lambda: _answers(server), bool, timeout=60, interval=0.2)
        yield server
    finally:
        if server is not None and server._admin is not None:
            with contextlib.suppress(psycopg2.Error):
                server._admin.close()
        container.remove(force=True)


def _answers(server: PostgresServer) -> bool:
    try:
        server.execute("SELECT 1")
    except psycopg2.Error:
        server._admin = None
        return False
    return True


@dataclass
class Session:
    """One real client session: its connection, backend pid and, for an active one, the thread running it."""

    conn: psycopg2.extensions.connection
    pid: int
    application_name: str
    thread: threading.Thread | None = None
    errors: list = field(default_factory=list)


class Sessions:
    """Opens real sessions in the states the modules look at, and closes them all afterwards."""

    def __init__(self, server: PostgresServer):
        self.server = server
        self.opened: list[Session] = []

    def open(
        self,
        state: str = "idle",
        *,
        user: str = SUPERUSER,
        password: str | None = None,
        application_name: str = "",
        dbname: str = "postgres",
        sql: str = "SELECT pg_sleep(600)",
    ) -> Session:
        """A session left idle, idle in transaction, or active (running sql in a thread)."""
        conn = self.server.connect(user, password, dbname, application_name=application_name)
        session = Session(conn=conn, pid=conn.get_backend_pid(), application_name=application_name)
        self.opened.append(session)
        if state == "idle in transaction":
            conn.autocommit = False
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1")
        elif state == "active":
            session.thread = threading.Thread(target=_run, args=(session, sql), daemon=True)
            session.thread.start()
            self.wait_state(session.pid, "active")
        elif state != "idle":
            raise ValueError(state)
        return session

    def many(self, count: int, state: str = "idle", **kwargs) -> list[Session]:
        return [self.open(state, **kwargs) for _ in range(count)]

    def wait_state(self, pid: int, state: str, timeout: float = 10) -> None:
        wait_for(
            lambda: self.server.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)),
            lambda rows: rows == [(state,)],
            timeout=timeout,
            interval=0.05,
        )

    def close_all(self) -> None:
        for session in self.opened:
            if session.thread is not None and session.thread.is_alive():
                with contextlib.suppress(psycopg2.Error):
                    session.conn.cancel()
                session.thread.join(timeout=10)
            with contextlib.suppress(psycopg2.Error):
                session.conn.close()
        self.opened.clear()


def _run(session: Session, sql: str) -> None:
    """Body of an active session's thread: the statement ends when cancelled or terminated."""
    try:
        with session.conn.cursor() as cursor:
            cursor.execute(sql)
    except psycopg2.Error as exc:
        session.errors.append(exc)


@contextlib.contextmanager
def sessions(server: PostgresServer) -> Iterator[Sessions]:
    """Sessions on server, all closed (and gone from pg_stat_activity) afterwards."""
    opened = Sessions(server)
    try:
        yield opened
    finally:
        opened.close_all()
        server.wait_quiet()
