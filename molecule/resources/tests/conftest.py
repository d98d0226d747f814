"""What the checks of every runbook scenario share: the scenario (SCENARIO_* in
its molecule.yml), the platform's target (IR_MOLECULE_PLATFORMS/<platform>/
target.json, written by molecule/resources/<platform>/up.yml) and the records
the playbook under test wrote under records/ in the scenario's ephemeral folder:
incidents/ for the converge and the idempotence run, dry-run/ for the check step."""

import json
import os
from pathlib import Path

import pytest

RECORDS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "records"


def read_timeline(kind):
    """The events of the one incident under RECORDS/kind (incidents or dry-run)."""
    (folder,) = (RECORDS / kind).iterdir()
    return [json.loads(line) for line in (folder / "timeline.jsonl").read_text().splitlines()]


@pytest.fixture(scope="session")
def target():
    folder = Path(os.environ["IR_MOLECULE_PLATFORMS"]) / os.environ["SCENARIO_PLATFORM"]
    return json.loads((folder / "target.json").read_text())["target"]


@pytest.fixture(scope="session")
def incident_dir():
    """The converge's incident folder (the idempotence run writes to the same one)."""
    (folder,) = (RECORDS / "incidents").iterdir()
    return folder


@pytest.fixture(scope="session")
def timeline():
    return read_timeline("incidents")


@pytest.fixture(scope="session")
def dry_run_timeline():
    return read_timeline("dry-run")
