"""`remediate watch` in a real terminal (tmux, 120x45) during a real heal: a stopped
Redis in a compose project, RedisDown posted as Alertmanager posts it, redis_down
run by the adapter; the view follows it live, and Ctrl-C ends it with exit code 0
and the terminal as it was."""

import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.harness.adapter import adapter_process, alert, redis_down_route
from tests.harness.ansible import REPO_ROOT, wait_for
from tests.harness.docker import CacheApp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/setup.sh browser)"),
]
REMEDIATE = Path(sys.executable).with_name("remediate")


def tmux(socket: str, *args: str) -> str:
    """tmux on a server of this test's own (-L), whatever else runs tmux here."""
    return subprocess.run(["tmux", "-L", socket, *args], check=True, capture_output=True, text=True, timeout=30).stdout


def test_watch_follows_a_real_heal_and_exits_cleanly_on_ctrl_c(tmp_path):
    folder = tmp_path / "cache-app"
    folder.mkdir()
    session = f"ir-test-watch-{uuid.uuid4().hex[:8]}"
    with CacheApp(folder, "ir-test-watch") as app:
        subprocess.run(["docker", "stop", app.redis_container()], check=True, capture_output=True, timeout=60)
        with adapter_process(tmp_path / "adapter", [redis_down_route(app.folder, app.name, app.redis_port)]) as adapter:
            rc, modes = tmp_path / "rc", tmp_path / "stty"
            # The token comes from a file, never the command line; what the shell does after: the exit code
            # and the terminal's modes once watch is gone.
            watch = [str(REMEDIATE), "watch", "--url", adapter.url, "--token-file", str(adapter.folder / "token")]
            script = f"{shlex.join(watch)}; echo $? > {rc}; stty -a > {modes}"
            # A shell in a fixed-size terminal, and the command typed into it, as a person would.
            shell = ["bash", "--norc", "--noprofile"]
            tmux(session, "new-session", "-d", "-s", session, "-x", "120", "-y", "45", "-c", str(REPO_ROOT), *shell)
            tmux(session, "send-keys", "-t", session, script, "Enter")
            try:
                screen = lambda: tmux(session, "capture-pane", "-p", "-t", session)  # noqa: E731
                wait_for(screen, lambda text: "● live" in text and "No incidents yet" in text, timeout=30)

                adapter.fire([alert("RedisDown", "redis", annotations={"summary": "Redis unreachable \x1b[2J"})])
                running = wait_for(screen, lambda text: "● running" in text or "✓ healed" in text, timeout=60)
                final = wait_for(
                    screen,
                    lambda text: all(
                        seen in text for seen in ("tier start ✓ verified", "outcome ✓ healed", "run 1 finished: healed")
                    ),
                    timeout=180,
                    interval=0.5,
                )
                (tmp_path / "screens.txt").write_text(running + "\n----\n" + final)
                assert "RedisDown" in final and "redis (compose, localhost)" in final
                assert "Redis unreachable ?[2J" in final  # the escape sequence is shown, not obeyed
                assert "Incidents: 0 open" in final

                tmux(session, "send-keys", "-t", session, "C-c")
                wait_for(rc.exists, bool, timeout=15)
                assert wait_for(rc.read_text, lambda text: text.strip() != "", timeout=5).strip() == "0"
                settings = wait_for(modes.read_text, lambda text: "icanon" in text, timeout=5).split()
                assert "icanon" in settings and "echo" in settings  # cbreak mode undone
                assert "live" not in screen()  # the alternate screen is gone
            finally:
                subprocess.run(["tmux", "-L", session, "kill-server"], capture_output=True, check=False)
