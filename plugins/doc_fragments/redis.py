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
    description:
      - Connect with TLS (a server started with C(--tls-port)).
    type: bool
    default: false
  validate_certs:
    description:
      - Verify the server certificate and that it names O(login_host) when O(tls=true).
      - With V(false) the connection is encrypted but the server is not authenticated.
    type: bool
    default: true
  ca_cert:
    description:
      - CA bundle (PEM) used to verify the server certificate when O(tls=true).
      - The system's trusted CAs are used when not set.
    type: path
    aliases: [ssl_ca_certs]
  client_cert:
    description:
      - Client certificate (PEM) presented to the server when O(tls=true), for servers
        that require one (C(tls-auth-clients yes)).
      - May also hold the private key, in which case O(client_key) can be left unset.
    type: path
    aliases: [ssl_certfile]
  client_key:
    description: Private key (PEM, unencrypted) of O(client_cert).
    type: path
    aliases: [ssl_keyfile]
  connect_timeout:
    description:
      - Seconds to wait for the connection and for each reply.
      - A server that does not answer within it is reported, not waited for.
    type: float
    default: 2.0
requirements:
  - redis (the redis-py library) on the host that runs the module
"""
