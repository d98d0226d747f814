"""What the deployment tests share: the remediate image (images/remediate) and its
build context, built from this checkout, and a docker CLI helper."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from tests.harness.ansible import REPO_ROOT

IMAGE = "incident-remediation/remediate:latest"
BUILD = REPO_ROOT / "images" / "remediate" / "build.sh"
# The image's user (images/remediate/Dockerfile): mounted secrets must be readable by it.
IMAGE_UID = 10001


def docker(*args: str, timeout: float = 120) -> str:
    """Run the docker CLI, fail with its error output, return its standard output."""
    run = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    assert run.returncode == 0, f"docker {' '.join(args)}: {run.stderr[-2000:]}"
    return run.stdout.strip()


@functools.cache
def remediate_image() -> str:
    """Build the image from the checkout as it is now (Docker's layer cache makes an
    unchanged checkout a few seconds) and return its tag."""
    _build(IMAGE)
    return IMAGE


def remediate_bundle(folder: Path) -> Path:
    """The image's build context in ``folder``: the dependency and adapter wheels for
    Debian bookworm's Python, the collection's tarball and the collections it needs."""
    _build("--context", str(folder))
    return folder


def _build(*args: str) -> None:
    build = subprocess.run([BUILD, *args], capture_output=True, text=True, timeout=1800, check=False)
    assert build.returncode == 0, build.stderr[-4000:]
