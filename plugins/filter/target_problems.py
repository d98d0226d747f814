# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: target_problems
short_description: Check a playbook's target against the input contract
version_added: 0.1.0
description:
  - Checks every value of a C(target) (docs/input-contract.md) against the contract's
    strict rules and returns what is wrong, one sentence per problem, each naming the
    key (C(target.endpoint.url), C(target.depends_on[0].target.service), ...). An empty
    list means the target is acceptable.
  - Unknown keys are problems at every level, so a misspelled key fails instead of
    being ignored. The targets of C(depends_on) are checked by the same rules; they
    cannot have dependencies of their own.
  - Values are never repeated in the messages (a URL could carry a secret); key names
    are, when they are plain names.
  - The role M(incident.remediation.incident_context) runs it once at the start of every
    playbook and fails with the problems before anything acts.
options:
  _input:
    description: The target.
    type: raw
    required: true
  platforms:
    description: Platforms the calling playbook supports (the target's own C(platform) must be one).
    type: list
    elements: str
    default: [compose, kubernetes, systemd]
  playbooks:
    description:
      - Short names of the playbooks a C(depends_on) entry may name (the collection's
        remediation playbooks). Empty accepts none.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Stop on a bad target
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "Rejected target: {{ problems | join('; ') }}. Nothing was run."
  vars:
    problems: "{{ target | incident.remediation.target_problems(platforms=['compose'], playbooks=['database_down']) }}"
"""

RETURN = r"""
_value:
  description: What is wrong with the target, one sentence per problem; empty when nothing is.
  type: list
  elements: str
"""

import ipaddress
import re
from collections.abc import Mapping

PLATFORMS = ("compose", "kubernetes", "systemd")
KINDS = ("Deployment", "StatefulSet")
DEPENDENCY_ROLES = ("database", "cache", "queue", "rpc", "ipfs", "monitoring", "service")
MAX_BACKUPS = 16
MAX_DEPENDENCIES = 8
MAX_URL = 2048
MAX_PATH = 1024

_SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,252}")
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")
_PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_ENDPOINT_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}")
_PATH = re.compile(r"/[A-Za-z0-9_./-]{0,%d}" % (MAX_PATH - 1))
_VOLUME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")
_DB_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,62}")
_VARIABLE = re.compile(r"[a-z_][a-z0-9_]{0,63}")
_PLAYBOOK = re.compile(r"[a-z][a-z0-9_]{0,63}")
_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")
_PORT = re.compile(r"[0-9]{1,5}")
_CERT_ENDPOINT = re.compile(r"(?P<host>[A-Za-z0-9][A-Za-z0-9_.-]{0,252}|\[[0-9A-Fa-f:.]{2,45}\]):(?P<port>[0-9]{1,5})")

# http(s)://host[:port][/path][?query]: no user info, no fragment, no characters that
# mean something to a shell or a template.
_URL = re.compile(
    r"(?P<scheme>[^:/?#]+)://(?P<authority>[^/?#]*)(?P<path>/[^?#]*)?(?:\?(?P<query>[^#]*))?(?P<fragment>#.*)?",
    re.DOTALL,
)
_AUTHORITY = re.compile(r"(?P<host>[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]{2,45}\])(?::(?P<port>[0-9]{1,5}))?")
_URL_PATH = re.compile(r"[A-Za-z0-9._~/:+-]*")
_URL_QUERY = re.compile(r"[A-Za-z0-9._~=&+-]*")
_URL_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f{}%`$;|<>\\\"'!*(),]")
_SECRET_PARAMETER = re.compile(r"(?i)(token|key|secret|pass|auth|sig|credential|session)")

URL_RULE = (
    "must be an http:// or https:// URL (host, optional port, path of letters, digits and ._~/:+-, optional "
    "query of letters, digits and ._~=&+-), at most %d characters, with no credentials, fragment, whitespace "
    "or template characters" % MAX_URL
)
PATH_RULE = "must be an absolute path of letters, digits and _./- without '..', at most %d characters" % MAX_PATH


def _string(value, pattern, rule):
    if isinstance(value, str) and pattern.fullmatch(value):
        return None
    return rule


def _port(value):
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not _PORT.fullmatch(str(value)):
        return "must be a TCP port, 1-65535"
    return None if 1 <= int(value) <= 65535 else "must be a TCP port, 1-65535"


def _path(value):
    if isinstance(value, str) and _PATH.fullmatch(value) and ".." not in value:
        return None
    return PATH_RULE


def url_problem(value):
    """Why a value is not an acceptable URL, or None."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL or _URL_FORBIDDEN.search(value):
        return URL_RULE
    match = _URL.fullmatch(value)
    if not match or match.group("scheme") not in ("http", "https"):
        return "must be an http:// or https:// URL (other schemes such as file: or javascript: are refused)"
    if "@" in match.group("authority"):
        return "must not carry credentials (user:password@): take them from inventory or vault variables"
    return _authority_problem(match.group("authority")) or _path_and_query_problem(match)


def _authority_problem(text):
    authority = _AUTHORITY.fullmatch(text)
    if not authority or (authority.group("port") is not None and _port(authority.group("port"))):
        return "must name a host (a DNS name, an IPv4 address or a bracketed IPv6 address) and an optional port 1-65535"
    if authority.group("host").startswith("["):
        try:
            ipaddress.IPv6Address(authority.group("host")[1:-1])
        except ValueError:
            return "must name a valid bracketed IPv6 address"
    return None


def _path_and_query_problem(match):
    path, query = match.group("path") or "", match.group("query")
    if not _URL_PATH.fullmatch(path) or "/../" in path + "/" or "/./" in path + "/":
        return URL_RULE + "; the path may not contain '.' or '..' segments"
    if match.group("fragment") is not None or (query is not None and not _URL_QUERY.fullmatch(query)):
        return URL_RULE
    if any(_SECRET_PARAMETER.search(pair.split("=", 1)[0]) for pair in (query or "").split("&")):
        return "must not carry credentials in its query (token, key, secret, password, ...): use vault variables"
    return None


def _certificate_endpoint(value):
    match = _CERT_ENDPOINT.fullmatch(value) if isinstance(value, str) else None
    if not match or _port(match.group("port")):
        return "must be host:port (a plain host name or a bracketed IPv6 address, port 1-65535)"
    return None


def _variable(value):
    if not isinstance(value, str) or not _VARIABLE.fullmatch(value) or value.startswith("ansible"):
        return (
            "must be the name of an inventory or vault variable that holds the secret (lower case letters, "
            "digits and _, at most 64 characters, not an ansible_ variable), never the secret itself"
        )
    return None


def _show(key):
    return key if isinstance(key, str) and _KEY.fullmatch(key) else "<a key that is not a plain name>"


def _mapping(value, where, checks, required=()):
    """Problems of a mapping whose keys are all in ``checks`` (key: check returning a rule or None)."""
    if not isinstance(value, Mapping):
        return ["%s: must be a mapping" % where]
    problems = [
        "%s.%s: unknown key (known: %s)" % (where, _show(key), ", ".join(checks)) for key in value if key not in checks
    ]
    problems += ["%s.%s: is required" % (where, key) for key in required if key not in value]
    for key, check in checks.items():
        if key in value:
            problem = check(value[key])
            problems += ["%s.%s: %s" % (where, key, problem)] if isinstance(problem, str) else problem or []
    return problems


def _list(value, where, limit, check):
    """Problems of a list of at most ``limit`` items; ``check(item, where)`` returns a list."""
    if not isinstance(value, list):
        return ["%s: must be a list" % where]
    problems = ["%s: at most %d entries" % (where, limit)] if len(value) > limit else []
    for index, item in enumerate(value[:limit]):
        problems += check(item, "%s[%d]" % (where, index))
    return problems


ENDPOINT_CHECKS = {
    "host": lambda value: _string(value, _ENDPOINT_HOST, "must be a host name or address, at most 253 characters"),
    "port": _port,
    "url": url_problem,
    "metrics_url": url_problem,
}
DATABASE_CHECKS = {
    "name": lambda value: _string(value, _DB_NAME, "must be a database name (letters, digits, _ and -, at most 63)"),
    "user": lambda value: _string(value, _DB_NAME, "must be a user name (letters, digits, _ and -, at most 63)"),
    "password_var": _variable,
}
CERTIFICATE_CHECKS = {
    "endpoint": _certificate_endpoint,
    "file": _path,
    "secret": lambda value: _string(value, _DNS_SUBDOMAIN, "must be a Kubernetes Secret name (a DNS subdomain)"),
}


def _certificate(value, where):
    problems = _mapping(value, where, CERTIFICATE_CHECKS)
    if isinstance(value, Mapping) and len([key for key in CERTIFICATE_CHECKS if key in value]) != 1:
        problems.append("%s: exactly one of endpoint, file or secret" % where)
    return problems


def _dependency(value, where, playbooks):
    def playbook(name):
        if isinstance(name, str) and _PLAYBOOK.fullmatch(name) and name in playbooks:
            return None
        return "must be the short name of one of the collection's playbooks (%s)" % (", ".join(playbooks) or "none")

    checks = {
        "role": lambda role: None if role in DEPENDENCY_ROLES else "must be one of %s" % ", ".join(DEPENDENCY_ROLES),
        "playbook": playbook,
        "target": lambda target: _target(target, where + ".target", PLATFORMS, playbooks, nested=True),
    }
    return _mapping(value, where, checks, required=("role", "target"))


def _target_checks(where, platforms, playbooks, nested):
    """The target's keys, each with its check (a rule it breaks, a list of problems, or None)."""
    checks = {
        "platform": lambda value: None if value in platforms else "must be one of %s" % ", ".join(platforms),
        "service": lambda value: _string(
            value, _SERVICE, "must be a plain name (letters, digits and _.@-, at most 253 characters)"
        ),
        "host": lambda value: _string(value, _HOST, "must be a plain host name (letters, digits and _.-)"),
        "project_src": _path,
        "project_name": lambda value: _string(
            value, _PROJECT_NAME, "must be a compose project name (lower case letters, digits, _ and -, at most 63)"
        ),
        "namespace": lambda value: _string(value, _DNS_LABEL, "must be a Kubernetes namespace name (a DNS label)"),
        "kind": lambda value: None if value in KINDS else "must be one of %s" % ", ".join(KINDS),
        "endpoint": lambda value: _mapping(value, where + ".endpoint", ENDPOINT_CHECKS),
        "database": lambda value: _mapping(value, where + ".database", DATABASE_CHECKS),
        "backups": lambda value: _list(value, where + ".backups", MAX_BACKUPS, _backup),
        "mount": _path,
        "volume": lambda value: _string(value, _VOLUME, "must be a plain volume name (letters, digits and _.-)"),
        "certificate": lambda value: _certificate(value, where + ".certificate"),
        "prometheus_url": url_problem,
        "alertmanager_url": url_problem,
        "depends_on": lambda value: _list(
            value, where + ".depends_on", MAX_DEPENDENCIES, lambda item, at: _dependency(item, at, playbooks)
        ),
    }
    if nested:
        checks["depends_on"] = lambda value: "a dependency's target cannot have dependencies of its own"
    return checks


def _target(target, where, platforms, playbooks, nested=False):
    checks = _target_checks(where, platforms, playbooks, nested)
    problems = _mapping(target, where, checks, required=("platform", "service"))
    if isinstance(target, Mapping) and target.get("platform") == "compose" and "project_src" not in target:
        problems.append("%s.project_src: is required on compose (the compose project's directory)" % where)
    return problems


def _backup(value, where):
    problem = url_problem(value)
    return ["%s: %s" % (where, problem)] if problem else []


TARGET_KEYS = tuple(_target_checks("target", PLATFORMS, (), nested=False))


def target_problems(target, platforms=PLATFORMS, playbooks=()):
    return _target(target, "target", tuple(platforms), tuple(playbooks))


class FilterModule(object):
    def filters(self):
        return {"target_problems": target_problems}
