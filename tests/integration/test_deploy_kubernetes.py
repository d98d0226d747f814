"""extensions/kubernetes on the project's real cluster (tests/harness/kube.py): rendered
with kustomize, applied, the adapter runs as a pod of the image and heals a Redis
Deployment scaled to 0 through its ServiceAccount; the ServiceAccount can do what
the playbooks need in the namespaces it was given and nothing in another one.

What the test cluster lacks is made up for in the test, never in the manifests:
no kube-proxy or DNS (the adapter's pod and Redis use the host's network, the
adapter reaches the API server on loopback), no storage provisioner (the state
volume is an emptyDir), no ServiceAccount admission plugin (the pod's token and
CA are mounted as that plugin would mount them)."""

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client, utils

from tests.harness.adapter import Adapter, alert, free_port, webhook
from tests.harness.ansible import REPO_ROOT, wait_for
from tests.harness.deploy import remediate_image
from tests.harness.docker import pings
from tests.harness.kube import deployment_manifest, find_bin_dir, pod_ready

pytestmark = pytest.mark.integration

MANIFESTS = REPO_ROOT / "extensions" / "kubernetes"
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def render(folder, token: str) -> list[dict]:
    """kubectl kustomize on a copy of the manifests with a token file."""
    shutil.copytree(MANIFESTS, folder)
    (folder / "token").write_text(token + "\n")
    rendered = subprocess.run(
        [str(find_bin_dir() / "kubectl"), "kustomize", str(folder)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return list(yaml.safe_load_all(rendered.stdout))


def renamed(documents: list[dict], namespaces: dict[str, str]) -> list[dict]:
    """The documents with the namespaces `remediate` and `apps` renamed for this test."""
    for doc in documents:
        meta = doc["metadata"]
        if doc["kind"] == "Namespace":
            meta["name"] = namespaces[meta["name"]]
        elif "namespace" in meta:
            meta["namespace"] = namespaces[meta["namespace"]]
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespaces[subject["namespace"]]
    return documents


def by_kind(documents: list[dict], kind: str) -> dict:
    (found,) = [doc for doc in documents if doc["kind"] == kind]
    return found


@pytest.fixture
def namespaces(kube_client):
    """Fresh names for the adapter's namespace, the one it is given and one it is not."""
    core = client.CoreV1Api(kube_client)
    suffix = uuid.uuid4().hex[:6]
    names = {"remediate": f"rem-{suffix}", "apps": f"apps-{suffix}", "other": f"other-{suffix}"}
    yield names
    for name in names.values():
        try:
            core.delete_namespace(name)
        except client.ApiException as error:
            if error.status != 404:
                raise


def create_namespaces(kube_client, names) -> None:
    for name in names:
        client.CoreV1Api(kube_client).create_namespace({"metadata": {"name": name}})


def redis_deployment(kube_client, namespace: str, port: int) -> None:
    """Redis on the host's network, on a free loopback port, as the Molecule platform runs it."""
    manifest = deployment_manifest(
        "redis",
        {
            "image": "incident-remediation/redis:latest",
            "args": ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""],
            "readinessProbe": {
                "exec": {"command": ["redis-cli", "-p", str(port), "ping"]},
                "periodSeconds": 1,
                "timeoutSeconds": 2,
            },
        },
        pod_spec={"hostNetwork": True, "terminationGracePeriodSeconds": 2},
        strategy={"type": "Recreate"},
    )
    client.AppsV1Api(kube_client).create_namespaced_deployment(namespace, manifest)


def for_this_cluster(documents, kube_cluster, namespaces, port: int, redis_port: int) -> list[dict]:
    """The environment changes listed in the module's docstring, and routes for this test's Redis."""
    config = by_kind(documents, "ConfigMap")
    settings = yaml.safe_load(config["data"]["settings.yml"])
    config["data"]["settings.yml"] = yaml.safe_dump({**settings, "listen_port": port, "notify_required": False})
    routes = yaml.safe_load(config["data"]["routes.yml"])
    target = routes["routes"][0]["target"]
    target["namespace"]["allow"] = [namespaces["apps"]]
    target["endpoint"] = {"host": {"value": "127.0.0.1"}, "port": {"value": redis_port}}
    config["data"]["routes.yml"] = yaml.safe_dump(routes)

    pod = by_kind(documents, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    api = kube_cluster.api_url.removeprefix("https://")
    host, api_port = api.rsplit(":", 1)
    container["imagePullPolicy"] = "Never"
    container["ports"][0]["containerPort"] = port
    container["env"] = [
        {"name": "KUBERNETES_SERVICE_HOST", "value": host},
        {"name": "KUBERNETES_SERVICE_PORT", "value": api_port},
        {"name": "REMEDIATE_HEALTHZ", "value": f"http://127.0.0.1:{port}/healthz"},
    ]
    container["volumeMounts"].append({"name": "serviceaccount", "mountPath": TOKEN_DIR, "readOnly": True})
    pod["hostNetwork"] = True
    pod["volumes"] = [
        {"name": "state", "emptyDir": {}} if volume["name"] == "state" else volume for volume in pod["volumes"]
    ]
    pod["volumes"].append(
        {
            "name": "serviceaccount",
            "projected": {
                "sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                    {"configMap": {"name": "cluster-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                ]
            },
        }
    )
    ca = yaml.safe_load(kube_cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["certificate-authority"]
    cluster_ca = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cluster-ca", "namespace": namespaces["remediate"]},
        "data": {"ca.crt": Path(ca).read_text()},
    }
    return [cluster_ca, *(doc for doc in documents if doc["kind"] not in ("PersistentVolumeClaim", "Namespace"))]


def test_the_adapter_pod_heals_a_deployment_scaled_to_zero(tmp_path, kube_cluster, kube_client, namespaces):
    remediate_image()
    token = uuid.uuid4().hex
    documents = renamed(render(tmp_path / "manifests", token), namespaces)
    assert {doc["kind"] for doc in documents} >= {
        "Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Secret", "Deployment", "Service",
    }  # fmt: skip
    create_namespaces(kube_client, namespaces.values())
    redis_port, port = free_port(), free_port()
    redis_deployment(kube_client, namespaces["apps"], redis_port)
    apps = client.AppsV1Api(kube_client)
    wait_for(lambda: apps.read_namespaced_deployment("redis", namespaces["apps"]).status.ready_replicas, bool, 90, 1)
    for document in for_this_cluster(documents, kube_cluster, namespaces, port, redis_port):
        utils.create_from_dict(kube_client, document)

    core = client.CoreV1Api(kube_client)

    def adapter_pod():
        pods = core.list_namespaced_pod(namespaces["remediate"]).items
        return pods[0] if pods else None

    pod = wait_for(adapter_pod, lambda found: found is not None and pod_ready(found), timeout=120, interval=1)
    assert pod.spec.service_account_name == "remediate"

    apps.patch_namespaced_deployment_scale("redis", namespaces["apps"], {"spec": {"replicas": 0}})
    wait_for(lambda: pings(redis_port, timeout=1), lambda answers: not answers, timeout=90, interval=1)
    adapter = Adapter(tmp_path, tmp_path / "settings.yml", port, token, tmp_path / "records")
    firing = alert("RedisDown", "redis", labels={"namespace": namespaces["apps"], "deployment": "redis"})
    response = adapter.post("/api/v1/alertmanager", webhook([firing]))
    assert response.status_code == 200, response.text
    assert response.json()["decisions"][0]["decision"] == "accepted", response.text
    runs = adapter.wait_runs_final(timeout=400)
    assert [(run["playbook"], run["state"], run["result"]) for run in runs] == [
        ("incident.remediation.redis_down", "successful", "healed")
    ], core.read_namespaced_pod_log(pod.metadata.name, namespaces["remediate"], tail_lines=200)
    assert apps.read_namespaced_deployment("redis", namespaces["apps"]).spec.replicas == 1
    assert pings(redis_port)
    (status,) = core.read_namespaced_pod(pod.metadata.name, namespaces["remediate"]).status.container_statuses
    assert status.restart_count == 0


def service_account_client(kube_client, kube_cluster, namespace: str) -> client.ApiClient:
    """An API client with a token of the remediate ServiceAccount (TokenRequest)."""
    request = client.CoreV1Api(kube_client).create_namespaced_service_account_token(
        "remediate", namespace, {"spec": {"expirationSeconds": 600}}
    )
    configuration = client.Configuration()
    configuration.host = kube_cluster.api_url
    configuration.ssl_ca_cert = kube_client.configuration.ssl_ca_cert
    configuration.api_key = {"authorization": f"Bearer {request.status.token}"}
    return client.ApiClient(configuration)


def test_the_service_account_reaches_only_the_namespaces_it_was_given(tmp_path, kube_cluster, kube_client, namespaces):
    documents = renamed(render(tmp_path / "manifests", uuid.uuid4().hex), namespaces)
    create_namespaces(kube_client, namespaces.values())
    for document in documents:
        if document["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
            utils.create_from_dict(kube_client, document)
    for namespace in (namespaces["apps"], namespaces["other"]):
        redis_deployment(kube_client, namespace, free_port())

    with service_account_client(kube_client, kube_cluster, namespaces["remediate"]) as account:

        def allowed(verb: str, resource: str, namespace: str, group: str = "apps", subresource: str = "") -> bool:
            review = {
                "spec": {
                    "resourceAttributes": {
                        "verb": verb,
                        "group": group,
                        "resource": resource,
                        "subresource": subresource,
                        "namespace": namespace,
                    }
                }
            }
            return client.AuthorizationV1Api(account).create_self_subject_access_review(review).status.allowed

        given, other = namespaces["apps"], namespaces["other"]
        for namespace, expected in ((given, True), (other, False)):
            assert allowed("patch", "deployments", namespace) is expected
            assert allowed("patch", "deployments", namespace, subresource="scale") is expected
            assert allowed("list", "replicasets", namespace) is expected
            assert allowed("get", "pods", namespace, group="", subresource="log") is expected
            assert allowed("list", "events", namespace, group="") is expected
        # Nothing the playbooks do not do, even where it acts.
        assert not allowed("delete", "deployments", given)
        assert not allowed("create", "pods", given, group="", subresource="exec")
        assert not allowed("get", "secrets", given, group="")
        assert not allowed("list", "deployments", namespaces["remediate"])

        # And a real patch: accepted where given, forbidden elsewhere.
        apps = client.AppsV1Api(account)
        apps.patch_namespaced_deployment_scale("redis", given, {"spec": {"replicas": 1}})
        with pytest.raises(client.ApiException) as refused:
            apps.patch_namespaced_deployment_scale("redis", other, {"spec": {"replicas": 0}})
        assert refused.value.status == 403
    assert client.AppsV1Api(kube_client).read_namespaced_deployment("redis", other).spec.replicas == 1
