# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the incident.remediation collection: no compatibility promise
# outside it.
"""HTTP requests (ansible.module_utils.urls) with millisecond timing that report instead of raising."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import ssl
import threading

from ansible.module_utils.six.moves import http_client
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import Request, make_context

from ansible_collections.incident.remediation.plugins.module_utils._verdict import Stopwatch


def http_common_argument_spec():
    """TLS, timeout and header options; keep in sync with the incident.remediation.http doc fragment."""
    return dict(
        timeout=dict(type="float", default=5.0),
        validate_certs=dict(type="bool", default=True),
        ca_cert=dict(type="path", aliases=["ca_path"]),
        client_cert=dict(type="path"),
        client_key=dict(type="path", no_log=False),
        headers=dict(type="dict", default={}),
        auth_headers=dict(type="dict", default={}, no_log=True),
    )


class HttpResult:
    """What one request gave: status (None without a response), body, headers, elapsed_ms,
    error (None for a 1xx/2xx answer), timed_out (no answer within the timeout)."""

    def __init__(self, status=None, body=b"", headers=None, elapsed_ms=None, error=None, *, timed_out=False):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.elapsed_ms = elapsed_ms
        self.error = error
        self.timed_out = timed_out

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        """The body as JSON; raises ValueError when it is not."""
        return json.loads(self.text)


def _is_timeout(exc):
    reason = getattr(exc, "reason", exc)
    return isinstance(reason, socket.timeout) or "timed out" in str(reason)


_CONTEXTS = {}
_CONTEXTS_LOCK = threading.Lock()


def ssl_context(params):
    """The TLS context for the common options, built once per process and shared: building one
    loads the system CA store (tens of milliseconds), which must not count as request latency.
    Raises ssl.SSLError or OSError for unusable certificate files."""
    key = (params["validate_certs"], params.get("ca_cert"), params.get("client_cert"), params.get("client_key"))
    with _CONTEXTS_LOCK:
        if key not in _CONTEXTS:
            _CONTEXTS[key] = make_context(cafile=key[1], validate_certs=key[0], client_cert=key[2], client_key=key[3])
        return _CONTEXTS[key]


def request(url, params, method="GET", body=None, headers=None):
    """One request with the common options in params; never raises for network or HTTP errors.

    Headers are params["headers"], then params["auth_headers"], then headers (later wins).
    Credentials in the URL (user:password@host) are sent as basic auth with the first request.
    elapsed_ms covers connecting, sending and reading the whole reply.

    Safe from several threads at once as long as they use the same TLS options: ansible's
    Request.open installs a process-wide urllib opener before each request, so concurrent
    requests may run on one another's opener, which is then built from the same settings."""
    all_headers = dict(params.get("headers") or {})
    all_headers.update(params.get("auth_headers") or {})
    all_headers.update(headers or {})
    try:
        context = ssl_context(params)
    except (ssl.SSLError, OSError, ValueError) as exc:
        return HttpResult(elapsed_ms=0.0, error="TLS options unusable: %s: %s" % (type(exc).__name__, exc))
    clock = Stopwatch()
    try:
        response = Request(context=context).open(
            method,
            url,
            data=body,
            headers=all_headers,
            timeout=params["timeout"],
            validate_certs=params["validate_certs"],
            follow_redirects="safe",
            force_basic_auth=True,
            use_proxy=False,
        )
        data = response.read()
        return HttpResult(response.status, data, dict(response.headers), clock.elapsed_ms())
    except HTTPError as exc:
        error = "HTTP %s %s" % (exc.code, exc.reason)
        try:
            data = exc.read() if exc.fp is not None else b""
        except (OSError, http_client.HTTPException) as read_error:  # the error body stalled or broke off
            data = b""
            error += " (body unreadable: %s)" % read_error
        return HttpResult(exc.code, data, dict(exc.headers or {}), clock.elapsed_ms(), error)
    except (URLError, socket.timeout, ssl.SSLError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        kind = type(exc if isinstance(reason, str) else reason).__name__
        return HttpResult(
            elapsed_ms=clock.elapsed_ms(),
            error="%s: %s" % (kind, reason),
            timed_out=_is_timeout(exc),
        )
    except (http_client.HTTPException, UrlsConnectionError, ValueError) as exc:
        # A reply that is not HTTP (BadStatusLine, IncompleteRead), or a URL urllib cannot open.
        return HttpResult(elapsed_ms=clock.elapsed_ms(), error="%s: %s" % (type(exc).__name__, exc))


def post_json(url, params, document, headers=None):
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    return request(url, params, method="POST", body=json.dumps(document).encode("utf-8"), headers=all_headers)
