"""Fixtures for the adapter's tests: a real `remediate serve` process per test."""

import pytest

from tests.harness.adapter import adapter_process, record_route


@pytest.fixture
def adapter(tmp_path):
    """An adapter with one auto route (TestDown -> the record playbook)."""
    with adapter_process(tmp_path / "adapter", [record_route()]) as server:
        yield server
