"""Unit tests for the log text of plugins/modules/kubernetes_snapshot.py: the headers and bodies the
service_control role's Kubernetes logs produced before the module (docs/incident-records.md).
The reads themselves run on a real cluster: tests/integration/test_kubernetes_snapshot.py."""

from ansible_collections.incident.remediation.plugins.modules.kubernetes_snapshot import log_body, read_logs

ENDED = "2026-01-01T00:00:00Z"
PODS = [
    {
        "name": "p1",
        "containers": [
            {
                "name": "a",
                "state": "running",
                "last_state": {"reason": "OOMKilled", "exit_code": 137, "finished_at": ENDED},
            },
            {
                "name": "b",
                "state": "waiting",
                "reason": "CrashLoopBackOff",
                "last_state": {"reason": "Error", "exit_code": 3},
            },
            {
                "name": "c",
                "state": "terminated",
                "reason": "Completed",
                "exit_code": 0,
                "finished_at": ENDED,
                "last_state": {"reason": "Error", "exit_code": 1},
            },
            {"name": "d", "state": "waiting", "reason": "ContainerCreating", "last_state": None},
        ],
    },
    {"name": "p2", "containers": []},
]
CURRENT = {"a": log_body("line1\nline2\n"), "c": log_body("  \n"), "d": log_body(None, "Unable to\n  retrieve   log")}
PREVIOUS = {"a": log_body("old1\n"), "b": log_body("crash\n")}


def test_each_container_current_log_and_a_restarted_one_previous_log():
    reads = []

    def read(pod, container, previous):
        reads.append((pod, container, previous))
        return (PREVIOUS if previous else CURRENT)[container]

    assert read_logs(read, PODS).splitlines() == [
        "==> pod p1, container a (running) <==",
        "line1",
        "line2",
        f"==> pod p1, container a, previous instance (exit 137, OOMKilled, ended {ENDED}) <==",
        "old1",
        # Waiting to restart: its current log is the previous instance's, read once.
        "==> pod p1, container b, previous instance (exit 3, Error) <==",
        "crash",
        # Just ended: it is its own last instance.
        f"==> pod p1, container c (terminated: exit 0, Completed, ended {ENDED}) <==",
        "(no log lines)",
        "==> pod p1, container d (waiting: ContainerCreating) <==",
        "(logs unavailable: Unable to retrieve log)",
        "==> pod p2 <==",
        "(no container has started)",
    ]
    assert reads == [("p1", "a", False), ("p1", "a", True), ("p1", "b", True), ("p1", "c", False), ("p1", "d", False)]
