# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  login_host:
    description: Host name or address of the Redis server.
    type: str
    default: 127.0.0.1
  login_port:
    description: Port of the Redis server.
    type: int
    default: 6379
  login_user:
    description: ACL user name (Redis 6 and later). Leave unset for the default user.
    type: str
  login_password:
    description:
      - Password of O(login_user), or the C(requirepass) password.
      - Taken from the E(REDIS_PASSWORD) environment variable when not set.
    type: str
  db:
    description: Database number to select.
    type: int
    default: 0
  tls:
    description: Connect with TLS.
    type: bool
    default: false
  validate_certs:
    description: Verify the server certificate when O(tls=true).
    type: bool
    default: true
  ca_cert:
    description: CA bundle used to verify the server certificate when O(tls=true).
    type: path
    aliases: [ssl_ca_certs]
  connect_timeout:
    description:
      - Seconds to wait for the connection and for each reply.
      - A server that does not answer within it is reported, not waited for.
    type: float
    default: 2.0
requirements:
  - redis (the redis-py library) on the host that runs the module
"""
