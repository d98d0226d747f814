# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the incident.remediation collection: no compatibility promise
# outside it.
"""Keep secrets out of incident records and evidence."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

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
