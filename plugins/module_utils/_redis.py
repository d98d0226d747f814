# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the incident.remediation collection: no compatibility promise
# outside it.
"""Redis connection options and client factory for the collection's modules."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import inspect
import ssl
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.incident.remediation.plugins.module_utils._redact import server_url

REDIS_IMPORT_ERROR = None
try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:
    redis = None
    REDIS_IMPORT_ERROR = traceback.format_exc()


def redis_common_argument_spec():
    """Connection options; keep in sync with the incident.remediation.redis doc fragment."""
    return dict(
        login_host=dict(type="str", default="127.0.0.1"),
        login_port=dict(type="int", default=6379),
        login_user=dict(type="str"),
        login_password=dict(type="str", no_log=True, fallback=(env_fallback, ["REDIS_PASSWORD"])),
        db=dict(type="int", default=0),
        tls=dict(type="bool", default=False),
        validate_certs=dict(type="bool", default=True),
        ca_cert=dict(type="path", aliases=["ssl_ca_certs"]),
        client_cert=dict(type="path", aliases=["ssl_certfile"]),
        client_key=dict(type="path", aliases=["ssl_keyfile"]),
        connect_timeout=dict(type="float", default=2.0),
    )


def ensure_redis_library(module):
    if redis is None:
        module.fail_json(msg=missing_required_lib("redis"), exception=REDIS_IMPORT_ERROR)


def _quiet_connect_kwargs():
    """Arguments that stop redis-py from sending CLIENT SETINFO on every connection.

    Those two extra round trips cost time, and with a least-privilege ACL user each
    refused CLIENT SETINFO lands in the server's ACL LOG. redis-py 8 takes
    driver_info=None; 5.x to 7.x take lib_name/lib_version=None; older ones never
    send it.
    """
    try:
        parameters = inspect.signature(redis.Redis.__init__).parameters
    except (TypeError, ValueError):
        return {}
    if "driver_info" in parameters:
        return dict(driver_info=None)
    if "lib_name" in parameters:
        return dict(lib_name=None, lib_version=None)
    return {}


def redis_client(params):
    """A client built from the common options; no connection is made yet.

    Options added after the first release (client_cert, client_key) are read with
    .get() so callers that build params by hand keep working.
    """
    kwargs = dict(
        host=params["login_host"],
        port=params["login_port"],
        db=params["db"],
        username=params["login_user"],
        password=params["login_password"],
        socket_timeout=params["connect_timeout"],
        socket_connect_timeout=params["connect_timeout"],
        # A health check reports what it sees: no silent reconnect-and-retry.
        retry=Retry(NoBackoff(), 0),
    )
    kwargs.update(_quiet_connect_kwargs())
    if params["tls"]:
        kwargs.update(
            ssl=True,
            ssl_cert_reqs="required" if params["validate_certs"] else "none",
            ssl_check_hostname=bool(params["validate_certs"]),
            ssl_ca_certs=params["ca_cert"],
        )
        if params.get("client_cert"):
            kwargs["ssl_certfile"] = params["client_cert"]
        if params.get("client_key"):
            kwargs["ssl_keyfile"] = params["client_key"]
    return redis.Redis(**kwargs)


def redis_url(params):
    """The server and database the options reach, as redis[s]://user@host:port/db (no password)."""
    scheme = "rediss" if params["tls"] else "redis"
    return server_url(scheme, params["login_host"], params["login_port"], params["login_user"], params["db"])


def tls_error(exc):
    """The ssl.SSLError behind a redis-py connection error, or None.

    redis-py wraps handshake failures (unknown CA, wrong host name, a client
    certificate the server refused) in ConnectionError; the SSL error stays in
    the exception chain.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ssl.SSLError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
