"""Stand-in for pip's get-pip.py bootstrap script used by ansible-test.

ansible-test bootstraps pip into each sanity virtual environment with a
get-pip.py it downloads from a host these machines cannot reach; it first
looks in ~/.ansible/test/cache/get_pip_<version>.py (scripts/test.sh puts
this file there). Same contract: install the interpreter's bundled pip, then
`pip install` whatever the caller passed.
"""

import ensurepip
import os
import runpy
import sys

# get-pip.py's own flags; pip install does not know them.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

# ensurepip blanks pip's configuration in os.environ; the install below needs it.
saved_environ = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
os.environ.clear()
os.environ.update(saved_environ)
sys.argv = ["pip", "install", *(arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY)]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
