# -*- coding: utf-8 -*-
# Copyright (c) incident.remediation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # metrics_source_argument_spec(). The HTTP options that go with it (timeout, TLS,
    # headers) are the incident.remediation.http fragment's.
    DOCUMENTATION = r"""
options:
  url:
    description:
      - URL of a Prometheus text exposition endpoint to scrape, usually the
        service's own C(/metrics).
      - Mutually exclusive with O(prometheus_url); one of them is required.
      - C(no_log) when it carries credentials or a query string; results only hold a
        redacted URL.
    type: str
  prometheus_url:
    description:
      - Base URL of a Prometheus server, queried over its HTTP API
        (C(/api/v1/query)), for example C(http://prometheus:9090).
      - Mutually exclusive with O(url); one of them is required.
      - C(no_log) when it carries credentials or a query string; results only hold a
        redacted URL.
    type: str
requirements:
  - prometheus-client (the Python library) on the host that runs the module, to
    parse what O(url) serves; not needed with O(prometheus_url)
"""
