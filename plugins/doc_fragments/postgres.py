# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  login_host:
    description: Host name or address of the PostgreSQL server.
    type: str
    default: 127.0.0.1
  login_port:
    description: Port of the PostgreSQL server.
    type: int
    default: 5432
  login_user:
    description:
      - Role to log in as.
      - To see every session in full (state, query, client address) it must be a
        superuser or a member of C(pg_monitor) (or C(pg_read_all_stats)); to terminate
        sessions of other roles, a superuser or a member of C(pg_signal_backend).
    type: str
    default: postgres
  login_password:
    description:
      - Password of O(login_user).
      - Taken from the E(PGPASSWORD) environment variable when not set; libpq's
        C(~/.pgpass) also works.
    type: str
  login_db:
    description: Database to connect to. The modules look at every database of the server, whichever this is.
    type: str
    default: postgres
  ssl_mode:
    description:
      - libpq's C(sslmode). V(verify-ca) and V(verify-full) check the server
        certificate against O(ca_cert).
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ca_cert:
    description: CA bundle used to verify the server certificate (libpq's C(sslrootcert)).
    type: path
    aliases: [ssl_rootcert]
  connect_timeout:
    description:
      - Seconds to wait for the connection (libpq treats values below 2 as 2), and
        the C(statement_timeout) of every statement the module runs.
      - A server that does not answer within it is reported, not waited for.
    type: int
    default: 5
requirements:
  - psycopg2 (or psycopg2-binary) on the host that runs the module
notes:
  - PostgreSQL 10 or later is required (the modules tell client sessions from
    replication connections and background workers by C(backend_type)).
"""
