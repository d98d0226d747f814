"""A real Kubernetes control plane on loopback for tests.

etcd, kube-apiserver and kube-controller-manager run detached, with their
logs, keys, pids and a kubeconfig in one state directory. There is no kubelet:
a watcher process marks new pods Running and Ready, except pods with an image
tagged ``:broken``, which it leaves waiting in ImagePullBackOff. Rollouts thus
complete or fail through the real deployment controller.

Command line (for shells and Molecule scenarios)::

    python -m tests.harness.kube start --state-dir DIR   # prints the kubeconfig path
    python -m tests.harness.kube stop --state-dir DIR
    python -m tests.harness.kube watch --kubeconfig FILE
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml
from kubernetes import client, config, watch

REPO_ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ("etcd", "kube-apiserver", "kube-controller-manager", "watcher")
CONTROLLERS = "deployment,replicaset,garbagecollector,namespace,serviceaccount"
DEFAULT_NS = "/api/v1/namespaces/default"
BROKEN_TAG = ":broken"
START_TIMEOUT = 90
STOP_TIMEOUT = 15
WATCH_SECONDS = 300  # the API server ends each pod watch after this; a silent connection is dropped 30 s later

log = logging.getLogger(__name__)


class KubeError(RuntimeError):
    """The control plane failed to start or stop."""


def find_bin_dir() -> Path:
    """Folder holding kube-apiserver and kube-controller-manager.

    ``$IR_KUBE_BIN_DIR`` if set, else the last line printed by
    scripts/build-kubernetes.sh (which builds the binaries once, then caches them).
    """
    if env := os.environ.get("IR_KUBE_BIN_DIR"):
        bin_dir = Path(env)
    else:
        script = REPO_ROOT / "scripts" / "build-kubernetes.sh"
        result = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False)
        if result.returncode != 0 or not result.stdout.strip():
            raise KubeError(f"{script} failed (exit {result.returncode}), see its output above")
        bin_dir = Path(result.stdout.strip().splitlines()[-1])
    for name in ("kube-apiserver", "kube-controller-manager"):
        if not os.access(bin_dir / name, os.X_OK):
            raise KubeError(f"{bin_dir / name} is missing or not executable")
    return bin_dir


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http_ok(url: str, token: str | None = None, cafile: Path | None = None) -> bool:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        context = ssl.create_default_context(cafile=cafile) if cafile else None
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), context=context, timeout=5) as resp:
            return resp.status == 200
    except OSError:  # refused, TLS not ready, HTTP error status, CA file not written yet
        return False


class KubeCluster:
    """etcd, kube-apiserver, kube-controller-manager and the pod watcher, run from ``state_dir``."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.kubeconfig = self.state_dir / "kubeconfig"
        self._pid_file = self.state_dir / "pids.json"
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def api_url(self) -> str:
        return self._kubeconfig()["clusters"][0]["cluster"]["server"]

    def start(self) -> None:
        """Start the control plane and wait until it serves; a no-op if it already runs from this state dir."""
        if self.running():
            return
        self.stop()  # leftovers of a crashed or half-started cluster
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the recorded processes, newest first (SIGKILL after a timeout), and forget their pids."""
        for name, pid in reversed(self._pids().items()):
            if not self._signal_and_wait(pid, signal.SIGTERM):
                log.warning("%s (pid %d) still runs %ss after SIGTERM; killing it", name, pid, STOP_TIMEOUT)
                if not self._signal_and_wait(pid, signal.SIGKILL):
                    raise KubeError(f"{name} (pid {pid}) survived SIGKILL")
        self._pid_file.unlink(missing_ok=True)
        self._procs.clear()

    def running(self) -> bool:
        """Whether all processes run from this state dir and the API server is ready."""
        pids = self._pids()
        return (
            set(pids) == set(PROCESSES) and all(self._alive(pid) for pid in pids.values()) and self._api_ok("/readyz")
        )

    def _start(self) -> None:
        bin_dir = find_bin_dir()
        etcd = shutil.which("etcd")
        if not etcd:
            raise KubeError("etcd not found on PATH (Debian package etcd-server)")
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        state = self.state_dir
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self._write_keys()
        self._write_credentials(f"https://127.0.0.1:{api_port}")

        shutil.rmtree(state / "etcd", ignore_errors=True)  # every start begins with an empty cluster
        etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
        self._spawn(
            "etcd",
            [
                etcd,
                "--name=harness",
                f"--data-dir={state / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=harness={peer_url}",
            ],
        )
        self._wait("etcd", lambda: _http_ok(f"{etcd_url}/health"))

        self._spawn(
            "kube-apiserver",
            [
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                # Only published in the kubernetes Service's endpoints (loopback is refused there), never dialled;
                # set so that start-up does not depend on the host having a default route.
                "--advertise-address=192.0.2.1",
                f"--secure-port={api_port}",
                "--insecure-port=0",
                f"--cert-dir={state / 'certs'}",
                f"--token-auth-file={state / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--disable-admission-plugins=ServiceAccount",
                f"--service-account-key-file={state / 'sa.pub'}",
                f"--service-account-signing-key-file={state / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=10.96.0.0/16",
            ],
        )
        self._wait("kube-apiserver", lambda: self._api_ok("/readyz"))

        self._spawn(
            "kube-controller-manager",
            [
                str(bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                f"--controllers={CONTROLLERS}",
                "--leader-elect=false",
                "--port=0",
                "--secure-port=0",
            ],
        )
        self._spawn("watcher", [sys.executable, "-m", "tests.harness.kube", "watch", f"--kubeconfig={self.kubeconfig}"])
        # The default service account shows both the default namespace and a working controller manager.
        self._wait("kube-controller-manager", lambda: self._api_ok(f"{DEFAULT_NS}/serviceaccounts/default"))

    def _write_keys(self) -> None:
        key, pub = self.state_dir / "sa.key", self.state_dir / "sa.pub"
        if not pub.exists():
            for cmd in (["genrsa", "-out", key, "2048"], ["rsa", "-in", key, "-pubout", "-out", pub]):
                subprocess.run(["openssl", *map(str, cmd)], check=True, capture_output=True)

    def _write_credentials(self, api_url: str) -> None:
        """A fresh admin token (group system:masters) and a kubeconfig using it."""
        token = secrets.token_hex(24)
        (self.state_dir / "tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            # kube-apiserver writes its self-signed serving certificate (with its CA) here when it starts.
            "clusters": [
                {"name": "harness", "cluster": {"server": api_url, "certificate-authority": str(self._ca_file)}}
            ],
            "users": [{"name": "admin", "user": {"token": token}}],
            "contexts": [{"name": "harness", "context": {"cluster": "harness", "user": "admin"}}],
            "current-context": "harness",
        }
        self.kubeconfig.write_text(yaml.safe_dump(kubeconfig, sort_keys=False))

    @property
    def _ca_file(self) -> Path:
        return self.state_dir / "certs" / "apiserver.crt"

    def _kubeconfig(self) -> dict:
        return yaml.safe_load(self.kubeconfig.read_text())

    def _api_ok(self, path: str) -> bool:
        token = self._kubeconfig()["users"][0]["user"]["token"]
        return _http_ok(self.api_url + path, token=token, cafile=self._ca_file)

    def _spawn(self, name: str, cmd: list[str]) -> None:
        with (self.state_dir / f"{name}.log").open("wb") as log_file:
            proc = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._procs[proc.pid] = proc
        self._pid_file.write_text(json.dumps({**self._pids(), name: proc.pid}))

    def _wait(self, name: str, ready: Callable[[], bool]) -> None:
        """Poll ``ready`` until true; raise with a log tail if a process exits or time runs out."""
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            for proc_name, pid in self._pids().items():
                if not self._alive(pid):
                    raise KubeError(f"{proc_name} exited during start\n{self._log_tail(proc_name)}")
            if time.monotonic() > deadline:
                raise KubeError(f"{name} not ready after {START_TIMEOUT}s\n{self._log_tail(name)}")
            time.sleep(0.2)

    def _log_tail(self, name: str, lines: int = 30) -> str:
        path = self.state_dir / f"{name}.log"
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join([f"--- last lines of {path}", *tail])

    def _pids(self) -> dict[str, int]:
        try:
            return json.loads(self._pid_file.read_text())
        except FileNotFoundError:
            return {}

    def _signal_and_wait(self, pid: int, sig: signal.Signals) -> bool:
        """Send ``sig`` unless the process is gone; whether it is gone within STOP_TIMEOUT."""
        if self._alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self._alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _alive(self, pid: int) -> bool:
        if proc := self._procs.get(pid):
            return proc.poll() is None
        # Started by another process (the CLI): alive if the pid still runs a command naming a file in this state dir.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return f"{self.state_dir}{os.sep}".encode() in cmdline


def _fake_status(pod: client.V1Pod) -> dict:
    """The status a kubelet would report: running and ready, or stuck pulling a ``:broken`` image."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    statuses = []
    for container in pod.spec.containers:
        broken = container.image.endswith(BROKEN_TAG)
        state = (
            {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{container.image}"'}}
            if broken
            else {"running": {"startedAt": now}}
        )
        statuses.append(
            {
                "name": container.name,
                "image": container.image,
                "imageID": "",
                "restartCount": 0,
                "ready": not broken,
                "started": not broken,
                "state": state,
            }
        )
    ready = "True" if all(status["ready"] for status in statuses) else "False"
    conditions = {"PodScheduled": "True", "Initialized": "True", "ContainersReady": ready, "Ready": ready}
    return {
        "phase": "Running" if ready == "True" else "Pending",
        "startTime": now,
        "conditions": [{"type": kind, "status": flag, "lastTransitionTime": now} for kind, flag in conditions.items()],
        "containerStatuses": statuses,
    }


def _sync_pod(api: client.CoreV1Api, pod: client.V1Pod) -> None:
    """Report a status for a pod not handled yet (new, or with a changed image)."""
    if pod.metadata.deletion_timestamp:
        return
    reported = {(status.name, status.image) for status in pod.status.container_statuses or []}
    if reported == {(container.name, container.image) for container in pod.spec.containers}:
        return
    status = _fake_status(pod)
    api.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, {"status": status})
    log.info("pod %s/%s: %s", pod.metadata.namespace, pod.metadata.name, status["phase"])


def watch_pods(kubeconfig: str) -> None:
    """Stand in for the kubelet until killed; relist and rewatch after timeouts and errors."""
    api = client.CoreV1Api(config.new_client_from_config(kubeconfig))
    while True:
        try:
            pods = api.list_pod_for_all_namespaces()
            for pod in pods.items:
                _sync_pod(api, pod)
            events = watch.Watch().stream(
                api.list_pod_for_all_namespaces,
                resource_version=pods.metadata.resource_version,
                timeout_seconds=WATCH_SECONDS,
                _request_timeout=WATCH_SECONDS + 30,
            )
            for event in events:
                if event["type"] in ("ADDED", "MODIFIED"):
                    _sync_pod(api, event["object"])
        except Exception as exc:  # the API server restarting, a 410 Gone, a pod deleted under us
            log.warning("pod watch interrupted (%s); relisting", exc)
            time.sleep(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.kube", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("start", "start detached and print the kubeconfig path"), ("stop", "stop")):
        commands.add_parser(name, help=help_text).add_argument("--state-dir", required=True)
    commands.add_parser("watch", help="fake the kubelet's pod status").add_argument("--kubeconfig", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    if args.command == "watch":
        watch_pods(args.kubeconfig)
    cluster = KubeCluster(args.state_dir)
    if args.command == "stop":
        cluster.stop()
        return
    try:
        cluster.start()
    except KubeError as exc:
        sys.exit(f"error: {exc}")
    print(cluster.kubeconfig)


if __name__ == "__main__":
    main()
