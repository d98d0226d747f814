"""Running a module's main() in process, as Ansible would run it on the target."""

import contextlib
import json
from typing import NamedTuple
from unittest import mock

import pytest
from ansible.module_utils import basic

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19

    @contextlib.contextmanager
    def patch_module_args(args=None):
        serialized = json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode()
        with mock.patch.object(basic, "_ANSIBLE_ARGS", serialized):
            yield


class ModuleRun(NamedTuple):
    """One run of main(): its exit code, its JSON result, and stdout exactly as printed
    (to check that no secret shows anywhere in it)."""

    code: int
    result: dict
    stdout: str


@pytest.fixture
def run_module(capsys):
    """run_module(module, args, check_mode=False) -> ModuleRun: module.main() run with args as
    the task's arguments; main() must end with exit_json or fail_json."""

    def run(module, args, check_mode=False):
        with patch_module_args(dict(args, _ansible_check_mode=check_mode)), pytest.raises(SystemExit) as exit_info:
            module.main()
        stdout = capsys.readouterr().out
        return ModuleRun(exit_info.value.code, json.loads(stdout), stdout)

    return run
