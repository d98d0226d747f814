"""A real single-node Kubernetes on loopback for tests.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and a kubelet run
detached, with their logs, keys, pids and kubeconfigs in one state directory.
The kubelet runs pods as containers of this machine's Docker engine (dockershim),
so pods use the project's locally built images (``imagePullPolicy: Never``).
It never garbage-collects images. One harness kubelet at a time may run on the
engine (a lock file enforces it): two would remove each other's pods.

Command line (for shells and Molecule scenarios)::

    python -m tests.harness.kube start --state-dir DIR   # prints the kubeconfig path
    python -m tests.harness.kube stop --state-dir DIR
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import docker
import yaml

from tests.harness.adapter import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet")
PROCESSES = ("etcd", *BINARIES)
# nodelifecycle removes the node's not-ready taint; without it every pod stays Pending.
CONTROLLERS = "deployment,replicaset,garbagecollector,namespace,serviceaccount,nodelifecycle"
NODE_NAME = "127.0.0.1"
PAUSE_IMAGE = "incident-remediation/pause:latest"
# The kubelet names every container it makes k8s_<container>_<pod>_...
POD_CONTAINER_PREFIX = "k8s_"
KUBELET_LOCK = Path(tempfile.gettempdir()) / "incident-remediation-kubelet.lock"
DEFAULT_NS = "/api/v1/namespaces/default"
START_TIMEOUT = 90
STOP_TIMEOUT = 15
# CI stages, Molecule scenarios and test sessions on one machine queue for the kubelet.
LOCK_TIMEOUT = 900

log = logging.getLogger(__name__)


class KubeError(RuntimeError):
    """The cluster failed to start or stop."""


def find_bin_dir() -> Path:
    """Folder holding the Kubernetes binaries.

    ``$IR_KUBE_BIN_DIR`` if set, else the last line printed by
    scripts/build-kubernetes.sh (which builds the binaries and the pause image once, then caches them).
    """
    if env := os.environ.get("IR_KUBE_BIN_DIR"):
        bin_dir = Path(env)
    else:
        script = REPO_ROOT / "scripts" / "build-kubernetes.sh"
        result = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False)
        if result.returncode != 0 or not result.stdout.strip():
            raise KubeError(f"{script} failed (exit {result.returncode}), see its output above")
        bin_dir = Path(result.stdout.strip().splitlines()[-1])
    for name in BINARIES:
        if not os.access(bin_dir / name, os.X_OK):
            raise KubeError(f"{bin_dir / name} is missing or not executable")
    return bin_dir


def _http_ok(url: str, token: str | None = None, cafile: Path | None = None) -> bool:
    return _http_get(url, token, cafile) is not None


def _http_get(url: str, token: str | None = None, cafile: Path | None = None) -> bytes | None:
    """The body of a 200 answer, else None."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        context = ssl.create_default_context(cafile=cafile) if cafile else None
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), context=context, timeout=5) as resp:
            return resp.read() if resp.status == 200 else None
    except OSError:  # refused, TLS not ready, HTTP error status, CA file not written yet
        return None


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root``, outermost first."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Field 5 is the mount point, with spaces and the like octal-escaped.
        point = line.split()[4].encode().decode("unicode_escape")
        if point == str(root) or point.startswith(f"{root}{os.sep}"):
            found.append(point)
    return sorted(found, key=len)


def _node_ready(node: dict) -> bool:
    """Ready, and without the not-ready taint that keeps pods off it."""
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))
    taints = {taint["key"] for taint in node.get("spec", {}).get("taints", [])}
    return ready and "node.kubernetes.io/not-ready" not in taints


class KubeCluster:
    """etcd, the control plane and one kubelet node named 127.0.0.1, run from ``state_dir``."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.kubeconfig = self.state_dir / "kubeconfig"
        self.start_seconds: float | None = None
        self._node_kubeconfig = self.state_dir / "kubelet.kubeconfig"
        self._kubelet_root = self.state_dir / "kubelet"
        self._pid_file = self.state_dir / "pids.json"
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def api_url(self) -> str:
        return self._kubeconfig()["clusters"][0]["cluster"]["server"]

    def start(self) -> None:
        """Start the cluster and wait until its node is Ready; a no-op if it already runs from this state dir."""
        if self.running():
            return
        self.stop()  # leftovers of a crashed or half-started cluster
        try:
            # Taken first, so that a second cluster waits before starting anything.
            with self._kubelet_lock(wait=LOCK_TIMEOUT) as lock:
                began = time.monotonic()
                self._start(lock)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        log.info("kubernetes node ready %.1fs after start", self.start_seconds)

    def stop(self) -> None:
        """Stop the recorded processes, kubelet first (SIGKILL after a timeout), and forget their pids;
        then unmount the kubelet's folder and remove the containers it left."""
        for name, pid in reversed(self._pids().items()):
            if not self._signal_and_wait(pid, signal.SIGTERM):
                log.warning("%s (pid %d) still runs %ss after SIGTERM; killing it", name, pid, STOP_TIMEOUT)
                if not self._signal_and_wait(pid, signal.SIGKILL):
                    raise KubeError(f"{name} (pid {pid}) survived SIGKILL")
        self._pid_file.unlink(missing_ok=True)
        self._procs.clear()
        # The kubelet bind-mounts its root folder onto itself (and pod volumes below it), maybe more than once.
        for _ in range(10):
            points = _mounts_under(self._kubelet_root)
            if not points:
                break
            subprocess.run(["umount", "-R", points[0]], check=True, capture_output=True)
        else:
            raise KubeError(f"{self._kubelet_root} is still mounted: {points}")
        # Not while another cluster's kubelet runs: those containers are its pods.
        with contextlib.suppress(BlockingIOError), self._kubelet_lock(wait=0):
            _remove_pod_containers()

    def running(self) -> bool:
        """Whether all processes run from this state dir, the API server is ready and the node is Ready."""
        pids = self._pids()
        return (
            set(pids) == set(PROCESSES)
            and all(self._alive(pid) for pid in pids.values())
            and self._api_ok("/readyz")
            and self._node_is_ready()
        )

    def _start(self, kubelet_lock: int) -> None:
        bin_dir = find_bin_dir()
        etcd = shutil.which("etcd")
        if not etcd:
            raise KubeError("etcd not found on PATH (Debian package etcd-server)")
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        state = self.state_dir
        etcd_port, peer_port, api_port, kubelet_port, healthz_port = (free_port() for _ in range(5))
        self._write_keys()
        self._write_credentials(f"https://127.0.0.1:{api_port}")

        # Every start begins with an empty cluster, hence no stale node status.
        for folder in ("etcd", "kubelet", "dockershim"):
            shutil.rmtree(state / folder, ignore_errors=True)
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
                "--advertise-address=127.0.0.1",
                # The kubernetes Service's endpoints are left alone: loopback is refused there.
                "--endpoint-reconciler-type=none",
                f"--secure-port={api_port}",
                "--insecure-port=0",
                f"--cert-dir={state / 'certs'}",
                f"--token-auth-file={state / 'tokens.csv'}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--disable-admission-plugins=ServiceAccount",
                f"--service-account-key-file={state / 'sa.pub'}",
                f"--service-account-signing-key-file={state / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.0.0.0/24",
            ],
        )
        self._wait("kube-apiserver", lambda: self._api_ok("/readyz"))

        off = ["--leader-elect=false", "--port=0", "--secure-port=0"]  # no extra listeners on 0.0.0.0
        self._spawn(
            "kube-controller-manager",
            [
                str(bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                f"--controllers={CONTROLLERS}",
                *off,
            ],
        )
        self._spawn("kube-scheduler", [str(bin_dir / "kube-scheduler"), f"--kubeconfig={self.kubeconfig}", *off])

        _remove_pod_containers()  # left by a kubelet that crashed
        self._spawn("kubelet", self._kubelet_command(bin_dir, kubelet_port, healthz_port), keep_fd=kubelet_lock)
        self._wait("kubelet", lambda: _http_ok(f"http://127.0.0.1:{healthz_port}/healthz"))
        # The default service account shows both the default namespace and a working controller manager.
        self._wait("kube-controller-manager", lambda: self._api_ok(f"{DEFAULT_NS}/serviceaccounts/default"))
        self._wait("kubelet", self._node_is_ready)

    def _kubelet_command(self, bin_dir: Path, port: int, healthz_port: int) -> list[str]:
        state = self.state_dir
        shim_socket = f"unix://{state / 'dockershim.sock'}"
        return [
            str(bin_dir / "kubelet"),
            # Named 127.0.0.1, the node is reachable from the API server (logs, exec).
            f"--hostname-override={NODE_NAME}",
            f"--kubeconfig={self._node_kubeconfig}",
            f"--root-dir={self._kubelet_root}",
            f"--cert-dir={state / 'kubelet-pki'}",
            f"--volume-plugin-dir={state / 'volume-plugins'}",
            "--container-runtime=docker",
            "--docker-endpoint=unix:///var/run/docker.sock",
            f"--container-runtime-endpoint={shim_socket}",
            f"--image-service-endpoint={shim_socket}",
            f"--experimental-dockershim-root-directory={state / 'dockershim'}",
            f"--pod-infra-container-image={PAUSE_IMAGE}",
            # This kernel refuses negative OOM scores (the build patched the kubelet's own to 0).
            "--oom-score-adj=0",
            "--cgroup-driver=cgroupfs",
            "--cgroups-per-qos=false",
            "--enforce-node-allocatable=",
            "--fail-swap-on=false",
            "--make-iptables-util-chains=false",
            "--address=127.0.0.1",
            f"--port={port}",
            f"--healthz-port={healthz_port}",
            "--read-only-port=0",
            # Never delete the machine's images (100 turns image GC off) nor evict pods for a fairly full disk;
            # naming only some eviction signals would drop the defaults of the others.
            "--image-gc-high-threshold=100",
            "--image-gc-low-threshold=99",
            "--eviction-hard=memory.available<1%,nodefs.available<1%,nodefs.inodesFree<1%,imagefs.available<1%",
        ]

    @contextlib.contextmanager
    def _kubelet_lock(self, wait: float):
        """The machine-wide right to run a harness kubelet on this Docker engine, as an open fd.

        Raises BlockingIOError (wait=0) or KubeError once ``wait`` seconds pass while another holds it.
        """
        fd = os.open(KUBELET_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not wait:
                        raise
                    holder = KUBELET_LOCK.read_text().strip()
                    if time.monotonic() >= deadline:
                        raise KubeError(f"another test kubelet ({holder}) still runs after {wait}s") from None
                    log.info("waiting for another test kubelet (%s) to stop", holder)
                    time.sleep(5)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"state dir {self.state_dir}\n".encode(), 0)
            yield fd
        finally:
            os.close(fd)

    def _node_is_ready(self) -> bool:
        body = _http_get(f"{self.api_url}/api/v1/nodes/{NODE_NAME}", self._token(), self._ca_file)
        return body is not None and _node_ready(json.loads(body))

    def _write_keys(self) -> None:
        key, pub = self.state_dir / "sa.key", self.state_dir / "sa.pub"
        if not pub.exists():
            for cmd in (["genrsa", "-out", key, "2048"], ["rsa", "-in", key, "-pubout", "-out", pub]):
                subprocess.run(["openssl", *map(str, cmd)], check=True, capture_output=True)

    def _write_credentials(self, api_url: str) -> None:
        """Fresh tokens for an admin (group system:masters) and the node, and a kubeconfig for each."""
        admin, node = secrets.token_hex(24), secrets.token_hex(24)
        (self.state_dir / "tokens.csv").write_text(
            f'{admin},admin,admin,"system:masters"\n{node},system:node:{NODE_NAME},node,"system:nodes"\n'
        )
        for path, user, token in ((self.kubeconfig, "admin", admin), (self._node_kubeconfig, "node", node)):
            kubeconfig = {
                "apiVersion": "v1",
                "kind": "Config",
                # kube-apiserver writes its self-signed serving certificate (with its CA) here when it starts.
                "clusters": [
                    {"name": "harness", "cluster": {"server": api_url, "certificate-authority": str(self._ca_file)}}
                ],
                "users": [{"name": user, "user": {"token": token}}],
                "contexts": [{"name": "harness", "context": {"cluster": "harness", "user": user}}],
                "current-context": "harness",
            }
            path.write_text(yaml.safe_dump(kubeconfig, sort_keys=False))

    @property
    def _ca_file(self) -> Path:
        return self.state_dir / "certs" / "apiserver.crt"

    def _kubeconfig(self) -> dict:
        return yaml.safe_load(self.kubeconfig.read_text())

    def _token(self) -> str:
        return self._kubeconfig()["users"][0]["user"]["token"]

    def _api_ok(self, path: str) -> bool:
        return _http_ok(self.api_url + path, token=self._token(), cafile=self._ca_file)

    def _spawn(self, name: str, cmd: list[str], keep_fd: int | None = None) -> None:
        """Start ``cmd`` detached, logging to <name>.log; ``keep_fd`` stays open in it (the kubelet's lock)."""
        with (self.state_dir / f"{name}.log").open("wb") as log_file:
            proc = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=() if keep_fd is None else (keep_fd,),
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


def deployment_manifest(name: str, container: dict, *, replicas: int = 1, pod_spec: dict | None = None, **spec) -> dict:
    """A Deployment of ``replicas`` pods labelled app=<name> with one container, ``container`` named ``name``
    and never pulled (pods run the project's local images); ``pod_spec`` and ``spec`` add to the pod's and
    the Deployment's spec."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "imagePullPolicy": "Never", **container}], **(pod_spec or {})},
            },
            **spec,
        },
    }


def pod_ready(pod) -> bool:
    """Whether a pod (kubernetes client object) has the Ready condition."""
    return any(cond.type == "Ready" and cond.status == "True" for cond in pod.status.conditions or [])


def rolled_out(deployment) -> bool:
    """kubectl rollout status's test on a Deployment (kubernetes client object): the latest spec seen,
    every wanted replica updated, ready and available, no old one left."""
    status = deployment.status
    wanted = deployment.spec.replicas
    return (status.observed_generation or 0) >= deployment.metadata.generation and (
        (status.replicas or 0)
        == (status.updated_replicas or 0)
        == (status.ready_replicas or 0)
        == (status.available_replicas or 0)
        == wanted
    )


def _remove_pod_containers() -> None:
    """Remove the containers a harness kubelet made; call only while holding the kubelet lock."""
    engine = docker.from_env()
    try:
        for container in engine.containers.list(all=True, filters={"name": POD_CONTAINER_PREFIX}):
            if container.name.startswith(POD_CONTAINER_PREFIX):
                container.remove(force=True)
    finally:
        engine.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.kube", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("start", "start detached and print the kubeconfig path"), ("stop", "stop")):
        commands.add_parser(name, help=help_text).add_argument("--state-dir", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

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
