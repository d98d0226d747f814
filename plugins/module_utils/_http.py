# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the incident.remediation collection: no compatibility promise
# outside it.
"""HTTP requests (ansible.module_utils.urls) with millisecond timing that report instead of raising, and
URL redaction for results that must not carry credentials or API keys."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import socket
import ssl
import threading

from ansible.module_utils.six.moves import http_client
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import unquote, urlsplit, urlunsplit
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import Request, make_context

from ansible_collections.incident.remediation.plugins.module_utils._verdict import Stopwatch

REDACTED = "[REDACTED]"


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


# ---------------------------------------------------------------- redaction

_KEYLIKE = re.compile(r"[A-Za-z0-9._~-]+\Z")


def secret_path_segment(segment):
    """Whether a URL path segment looks like an API key (the /v3/<key> of hosted RPC providers):
    32 or more characters, or 16 or more letters and digits that include a digit."""
    text = unquote(segment)
    if len(text) >= 32:
        return True
    return (
        len(text) >= 16
        and bool(_KEYLIKE.match(text))
        and any(char.isdigit() for char in text)
        and any(char.isalpha() for char in text)
    )


def redact_url(url):
    """(redacted URL, secrets): the URL without user information, query and fragment, and with
    key-like path segments replaced by [REDACTED]; secrets are the removed pieces, longest first,
    for scrubbing messages. A URL with nothing to hide comes back unchanged with no secrets."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED, [url]
    secrets = []
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        secrets.extend([userinfo, unquote(userinfo)])
        for piece in userinfo.split(":", 1):
            secrets.extend([piece, unquote(piece)])
    segments = parts.path.split("/")
    for index, segment in enumerate(segments):
        if segment and secret_path_segment(segment):
            secrets.extend([segment, unquote(segment)])
            segments[index] = REDACTED
    if parts.query:
        secrets.append(parts.query)
        secrets.extend(unquote(value) for _key, _sep, value in
                       (pair.partition("=") for pair in parts.query.split("&")) if value)
    if parts.fragment:
        secrets.append(parts.fragment)
    redacted = urlunsplit((parts.scheme, netloc, "/".join(segments), "", ""))
    if not secrets:
        return url, []
    secrets.append(url)
    return redacted, sorted(set(secret for secret in secrets if secret), key=len, reverse=True)


def scrub(text, secrets, min_length=4):
    """text with every secret of at least min_length characters replaced by [REDACTED]."""
    if text is None:
        return None
    for secret in secrets:
        if len(secret) >= min_length:
            text = text.replace(secret, REDACTED)
    return text


def show_public_url(module, url):
    """A URL option is no_log because it may carry credentials or an API key. When it carries
    none, stop masking it, so the unchanged URL in the result is not shown as
    VALUE_SPECIFIED_IN_NO_LOG_PARAMETER; returns the redacted URL."""
    redacted, secrets = redact_url(url)
    if not secrets:
        module.no_log_values.discard(url)
    return redacted
