# pylint: disable=unused-import
# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# The disable above is for pylint only: this file's module name is "http", and astroid
# extends every module of that name with the imports of its model of the standard
# library's http package (enum.IntEnum, collections.namedtuple), reported as unused
# here. The file imports nothing.

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  timeout:
    description:
      - Seconds to wait for the connection and for each read of the reply.
      - An endpoint that does not answer within it is reported, not waited for.
    type: float
    default: 5.0
  validate_certs:
    description:
      - Verify the server certificate of C(https) URLs.
      - A certificate that does not verify is reported as an error of the endpoint.
    type: bool
    default: true
  ca_cert:
    description: PEM file of the CA certificates used to verify the server certificate.
    type: path
    aliases: [ca_path]
  client_cert:
    description:
      - PEM file of the client certificate for mutual TLS.
      - May also hold the private key, then O(client_key) is not needed.
    type: path
  client_key:
    description: PEM file of the private key of O(client_cert).
    type: path
  headers:
    description:
      - Headers sent with every request, for values that are not secret (C(Accept), C(User-Agent)).
      - Shown in the task's invocation; put credentials in O(auth_headers).
    type: dict
    default: {}
  auth_headers:
    description:
      - Headers sent with every request whose values are secrets, for example
        C(Authorization) or C(X-Api-Key). They win over O(headers) with the same name.
      - Every value is hidden from the module's output and logs (C(no_log)), so use them
        for secrets only.
    type: dict
    default: {}
"""
