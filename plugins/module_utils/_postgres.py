# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the incident.remediation collection: no compatibility promise
# outside it.
"""PostgreSQL connection options and connection factory for the collection's modules."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.incident.remediation.plugins.module_utils._redact import server_url

PSYCOPG2_IMPORT_ERROR = None
try:
    import psycopg2
    import psycopg2.extras
except ImportError:
    psycopg2 = None
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()

SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

# backend_type (and so a reliable "client backend" filter) exists from PostgreSQL 10.
MIN_SERVER_VERSION = 100000

# Phrases of the server's refusals when every connection slot is taken
# ("sorry, too many clients already", "remaining connection slots are reserved ...").
_SLOTS_EXHAUSTED = ("too many clients", "connection slots are reserved")


def postgres_common_argument_spec():
    """Connection options; keep in sync with the incident.remediation.postgres doc fragment."""
    return dict(
        login_host=dict(type="str", default="127.0.0.1"),
        login_port=dict(type="int", default=5432),
        login_user=dict(type="str", default="postgres"),
        login_password=dict(type="str", no_log=True, fallback=(env_fallback, ["PGPASSWORD"])),
        login_db=dict(type="str", default="postgres"),
        ssl_mode=dict(type="str", default="prefer", choices=list(SSL_MODES)),
        ca_cert=dict(type="path", aliases=["ssl_rootcert"]),
        connect_timeout=dict(type="int", default=5),
    )


class PostgresError(Exception):
    """A PostgreSQL problem, already phrased for a reason; kind is one of
    unreachable, timeout, auth, slots_exhausted, version, query."""

    def __init__(self, kind, message):
        super(PostgresError, self).__init__(message)
        self.kind = kind


def ensure_psycopg2(module):
    if psycopg2 is None:
        module.fail_json(msg=missing_required_lib("psycopg2"), exception=PSYCOPG2_IMPORT_ERROR)


def server_name(params):
    """host:port/database, for messages."""
    return "%s:%s/%s" % (params["login_host"], params["login_port"], params["login_db"])


def postgres_url(params):
    """The server, database and user the options reach, as postgresql://user@host:port/db (no password)."""
    return server_url("postgresql", params["login_host"], params["login_port"], params["login_user"],
                      params["login_db"])


def connection_kwargs(params, application_name):
    """psycopg2.connect() keywords for the common options.

    connect_timeout bounds the connection (libpq's own, at least 2 s) and each
    statement (statement_timeout), so a hung server is reported, not waited for.
    """
    kwargs = dict(
        host=params["login_host"],
        port=params["login_port"],
        user=params["login_user"],
        dbname=params["login_db"],
        sslmode=params["ssl_mode"],
        connect_timeout=params["connect_timeout"],
        application_name=application_name,
        options="-c statement_timeout=%d" % (max(1, params["connect_timeout"]) * 1000),
    )
    if params.get("login_password"):
        kwargs["password"] = params["login_password"]
    if params.get("ca_cert"):
        kwargs["sslrootcert"] = params["ca_cert"]
    return kwargs


def classify_error(exc, params):
    """A PostgresError for a psycopg2 error raised while connecting."""
    text = " ".join(str(exc).split())
    lowered = text.lower()
    where = server_name(params)
    if any(phrase in lowered for phrase in _SLOTS_EXHAUSTED):
        return PostgresError("slots_exhausted", "PostgreSQL at %s refused the connection because its "
                             "connection slots are exhausted (%s)" % (where, text))
    if "password authentication failed" in lowered or "no pg_hba.conf entry" in lowered \
            or "authentication failed" in lowered or "does not exist" in lowered:
        return PostgresError("auth", "PostgreSQL at %s refused the login: %s" % (where, text))
    if "timeout expired" in lowered:
        return PostgresError("timeout", "PostgreSQL at %s did not answer within %s s (%s)"
                             % (where, params["connect_timeout"], text))
    return PostgresError("unreachable", "PostgreSQL at %s is unreachable: %s" % (where, text))


def connect(params, application_name):
    """An autocommit connection; raises PostgresError when it cannot be made or the
    server is older than PostgreSQL 10."""
    try:
        conn = psycopg2.connect(**connection_kwargs(params, application_name))
    except psycopg2.Error as exc:
        raise classify_error(exc, params) from None
    conn.autocommit = True
    if conn.server_version < MIN_SERVER_VERSION:
        version = conn.server_version
        conn.close()
        raise PostgresError("version", "PostgreSQL at %s is version %s; 10 or later is required"
                            % (server_name(params), version_string(version)))
    return conn


def version_string(server_version):
    """150004 -> '15.4', 90624 -> '9.6.24'."""
    if server_version >= 100000:
        return "%d.%d" % (server_version // 10000, server_version % 10000)
    return "%d.%d.%d" % (server_version // 10000, server_version // 100 % 100, server_version % 100)


def fetch_dicts(conn, sql, args=None):
    """Rows of one statement as dicts; raises PostgresError for a failed statement."""
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
            cursor.execute(sql, args)
            return [dict(row) for row in cursor.fetchall()]
    except psycopg2.Error as exc:
        message = " ".join(str(exc).split())
        if isinstance(exc, psycopg2.extensions.QueryCanceledError):
            raise PostgresError("timeout", "the statement was cancelled by statement_timeout: %s" % message) from None
        if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
            raise PostgresError("unreachable", "the connection failed during the statement: %s" % message) from None
        raise PostgresError("query", "the statement failed: %s" % message) from None
