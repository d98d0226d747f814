# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the incident.remediation collection: no compatibility promise
# outside it.
"""Keep secrets out of results, incident records and evidence: the one place that
decides what a secret looks like and how it is replaced."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.module_utils.six.moves.urllib.parse import quote, unquote, urlsplit, urlunsplit

REDACTED = "[REDACTED]"

DEFAULT_SECRET_NAMES = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "private_key",
    "credentials",
)

# ---------------------------------------------------------------- mappings and text


def _name_pattern(secret_names):
    return "|".join(re.escape(name).replace("_", "[_-]?") for name in secret_names)


def secret_key_matcher(secret_names=DEFAULT_SECRET_NAMES):
    """Predicate: is this mapping key the name of a secret?"""
    pattern = re.compile("(%s)" % _name_pattern(secret_names), re.IGNORECASE)
    return lambda key: bool(pattern.search(str(key)))


def secret_text_pattern(secret_names=DEFAULT_SECRET_NAMES):
    """Matches `name=value`, `name: value`, `"name": "value"` and `Authorization: Bearer x`;
    group 1 is what stays."""
    return re.compile(
        r"""((?:%s)["']?\s*[:=]\s*["']?(?:(?:Bearer|Basic|Token)\s+)?)[^\s"',;&]+""" % _name_pattern(secret_names),
        re.IGNORECASE,
    )


def redact(value, secret_names=DEFAULT_SECRET_NAMES):
    """A copy of value with secrets replaced: values of secret-named keys in
    mappings, and secret assignments inside strings."""
    is_secret_key = secret_key_matcher(secret_names)
    text_pattern = secret_text_pattern(secret_names)

    def walk(item):
        if isinstance(item, dict):
            return dict(
                (key, REDACTED if is_secret_key(key) and sub not in (None, "") else walk(sub))
                for key, sub in item.items()
            )
        if isinstance(item, (list, tuple)):
            return [walk(sub) for sub in item]
        if isinstance(item, str):
            return text_pattern.sub(lambda match: match.group(1) + REDACTED, item)
        return item

    return walk(value)


# PASSWORD 'literal' (or E'literal', with backslash escapes) of CREATE/ALTER ROLE; group 1 is what stays.
_SQL_PASSWORD_LITERAL = re.compile(r"(\bPASSWORD\s+)(?:E'(?:[^'\\]|\\.|'')*'?|'(?:[^']|'')*'?)", re.IGNORECASE)


def redact_sql(text):
    """SQL text with password literals and name=value secrets replaced."""
    return redact(_SQL_PASSWORD_LITERAL.sub(lambda match: match.group(1) + "'%s'" % REDACTED, text))


def scrub(text, secrets, min_length=4):
    """text with every secret of at least min_length characters replaced by [REDACTED]."""
    if text is None:
        return None
    for secret in secrets:
        if len(secret) >= min_length:
            text = text.replace(secret, REDACTED)
    return text


# ---------------------------------------------------------------- URLs

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
    for scrub(). A URL with nothing to hide comes back unchanged with no secrets."""
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
        secrets.extend(
            unquote(value) for _key, _sep, value in (pair.partition("=") for pair in parts.query.split("&")) if value
        )
    if parts.fragment:
        secrets.append(parts.fragment)
    if not secrets:
        return url, []
    secrets.append(url)
    redacted = urlunsplit((parts.scheme, netloc, "/".join(segments), "", ""))
    return redacted, sorted(set(secret for secret in secrets if secret), key=len, reverse=True)


def show_public_url(module, url):
    """A URL option is no_log because it may carry credentials or an API key. When it carries
    none, stop masking it, so the unchanged URL in the result is not shown as
    VALUE_SPECIFIED_IN_NO_LOG_PARAMETER; returns the redacted URL."""
    redacted, secrets = redact_url(url)
    if not secrets:
        module.no_log_values.discard(url)
    return redacted


def server_url(scheme, host, port, user=None, database=None):
    """scheme://user@host:port/database naming a server without any password, for a
    result's `checked`; an IPv6 address is bracketed, the user and database quoted."""
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    elif host.startswith("/"):  # a Unix socket directory (libpq)
        host = quote(host, safe="")
    userinfo = "" if not user else quote(user, safe="") + "@"
    path = "" if database is None else "/" + quote(str(database), safe="")
    return "%s://%s%s:%s%s" % (scheme, userinfo, host, port, path)
