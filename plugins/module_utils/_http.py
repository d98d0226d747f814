# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the incident.remediation collection: no compatibility promise
# outside it.
"""HTTP requests with millisecond timing that report instead of raising."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import ssl

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url

from ansible_collections.incident.remediation.plugins.module_utils._verdict import Stopwatch


def http_common_argument_spec():
    """TLS and timeout options; keep in sync with the incident.remediation.http doc fragment."""
    return dict(
        timeout=dict(type="float", default=5.0),
        validate_certs=dict(type="bool", default=True),
        ca_cert=dict(type="path", aliases=["ca_path"]),
        client_cert=dict(type="path"),
        client_key=dict(type="path", no_log=False),
        headers=dict(type="dict", default={}),
    )


class HttpResult:
    """What one request gave: status (None without a response), body, headers, elapsed_ms, error."""

    def __init__(self, status=None, body=b"", headers=None, elapsed_ms=None, error=None):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.elapsed_ms = elapsed_ms
        self.error = error

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        """The body as JSON; raises ValueError when it is not."""
        return json.loads(self.text)


def request(url, params, method="GET", body=None, headers=None):
    """One request with the common options in params; never raises for network or HTTP errors."""
    all_headers = dict(params.get("headers") or {})
    all_headers.update(headers or {})
    clock = Stopwatch()
    try:
        response = open_url(
            url,
            method=method,
            data=body,
            headers=all_headers,
            timeout=params["timeout"],
            validate_certs=params["validate_certs"],
            ca_path=params.get("ca_cert"),
            client_cert=params.get("client_cert"),
            client_key=params.get("client_key"),
            follow_redirects="safe",
            use_proxy=False,
        )
        data = response.read()
        return HttpResult(response.status, data, dict(response.headers), clock.elapsed_ms())
    except HTTPError as exc:
        data = exc.read() if exc.fp is not None else b""
        error = "HTTP %s %s" % (exc.code, exc.reason)
        return HttpResult(exc.code, data, dict(exc.headers or {}), clock.elapsed_ms(), error)
    except (URLError, socket.timeout, ssl.SSLError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return HttpResult(elapsed_ms=clock.elapsed_ms(), error="%s: %s" % (type(reason).__name__, reason))


def post_json(url, params, document, headers=None):
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    return request(url, params, method="POST", body=json.dumps(document).encode("utf-8"), headers=all_headers)
