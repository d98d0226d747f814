"""`remediate watch`: a running adapter's incidents, live, in a terminal (docs/watching.md).

It follows the adapter's feed (server-sent events, /api/v1/events) and, on each
change, reads the incident list and the incident in focus from the same read API
as the incident page. rich redraws the screen in place, so nothing flickers; the
terminal is given back as it was on q or Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import re
import select
import sys
import termios
import threading
import time
import tty
from pathlib import Path

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from remediate.display import clock, duration

# Terminal control characters in untrusted text (alert labels) could move the cursor or retitle the window.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
STYLES = {"ok": "bold green", "bad": "bold red", "warn": "bold yellow", "active": "bold cyan", "muted": "grey62"}
SYMBOLS = {"ok": "✓", "bad": "✕", "warn": "!", "active": "●", "muted": "·"}
LISTED = 9
RETRY_SECONDS = 2.0


class Refused(Exception):
    """The adapter refused the token."""


def clean(value) -> str:
    return CONTROL.sub("?", str(value if value is not None else ""))


def state_text(tone: str, words: str) -> Text:
    return Text(f"{SYMBOLS.get(tone, '·')} {clean(words)}", style=STYLES.get(tone, ""))


class Watch:
    def __init__(self, url: str, token: str, verify: bool | str = True):
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, verify=verify, timeout=10
        )
        self.changed = threading.Event()
        self.stop = threading.Event()
        self.feed_state = "connecting"
        self.refused = False
        self.board: list[dict] = []
        self.focus: str | None = None
        self.chosen = False
        self.incident: dict | None = None
        self.problem = ""
        self.height = 45

    # The feed, in a thread: it only says that something changed.
    def follow(self) -> None:
        last_id = ""
        while not self.stop.is_set():
            try:
                headers = {"Last-Event-ID": last_id} if last_id else {}
                timeout = httpx.Timeout(10, read=60)  # the feed sends a keepalive every 15 s
                with self.http.stream("GET", "/api/v1/events", headers=headers, timeout=timeout) as answer:
                    if answer.status_code == 401:
                        self.refused = True
                        self.changed.set()
                        return
                    answer.raise_for_status()
                    for line in answer.iter_lines():
                        if self.stop.is_set():
                            return
                        if line.startswith("id:"):
                            last_id = line[3:].strip()
                        elif line.startswith("event:"):
                            self.feed_state = "live"
                            self.changed.set()
            except httpx.HTTPError:
                pass
            self.feed_state = "reconnecting"
            self.changed.set()
            self.stop.wait(RETRY_SECONDS)

    # Keys, in a thread: arrows or a number move the focus, q quits.
    def keys(self) -> None:
        while not self.stop.is_set():
            readable, _, _ = select.select([sys.stdin], [], [], 0.5)
            if not readable:
                continue
            key = os.read(sys.stdin.fileno(), 8).decode(errors="ignore")
            if key in ("q", "Q"):
                self.stop.set()
            elif key.isdigit() and key != "0":
                self.move(index=int(key) - 1)
            elif key in ("\x1b[A", "k"):
                self.move(step=-1)
            elif key in ("\x1b[B", "j"):
                self.move(step=1)
            self.changed.set()

    def move(self, *, index: int | None = None, step: int = 0) -> None:
        ids = [item["id"] for item in self.listed()]
        if not ids:
            return
        if index is None:
            current = ids.index(self.focus) if self.focus in ids else 0
            index = min(max(current + step, 0), len(ids) - 1)
        if index < len(ids):
            self.focus, self.chosen = ids[index], True

    def listed(self) -> list[dict]:
        """Open incidents first, then the latest closed ones."""
        return sorted(self.board, key=lambda item: not item["open"])[:LISTED]

    def read(self) -> None:
        try:
            board = self.http.get("/api/v1/board")
            if board.status_code == 401:
                self.refused = True
                return
            board.raise_for_status()
            self.board = board.json()
            listed = self.listed()
            if listed and (not self.chosen or self.focus not in {item["id"] for item in listed}):
                self.focus = listed[0]["id"]
            self.incident = None
            if self.focus:
                detail = self.http.get(f"/api/v1/incidents/{self.focus}/view")
                self.incident = detail.json() if detail.status_code == 200 else None
            self.problem = ""
        except (httpx.HTTPError, ValueError) as error:
            self.problem = f"cannot read the adapter: {type(error).__name__}"

    # Drawing.
    def render(self) -> Group:
        live = {"live": ("● live", "green"), "reconnecting": ("○ reconnecting", "yellow")}.get(
            self.feed_state, ("○ connecting", "grey62")
        )
        head = Text.assemble(
            ("remediate watch", "bold"), f"  {clean(self.url)}  ", live, f"  {clock(time.time())} UTC", style=""
        )
        parts = [head]
        if self.problem:
            parts.append(Text(self.problem, style="bold red"))
        parts.append(self.render_board())
        if self.incident:
            parts.append(self.render_incident(self.incident))
        parts.append(Text("↑/↓ or 1-9: focus   q or Ctrl-C: quit", style="grey62"))
        return Group(*parts)

    def render_board(self) -> Panel:
        table = Table(expand=True, box=None, pad_edge=False)
        for name, ratio in (("#", 0), ("state", 2), ("alert", 3), ("target", 3), ("started", 1), ("heal", 2)):
            table.add_column(name, ratio=ratio or None, no_wrap=name in ("#", "started"), overflow="fold")
        listed = self.listed()
        for number, item in enumerate(listed, 1):
            heal = (
                duration(item["time_to_heal"])
                if item["time_to_heal"] is not None
                else f"{duration(time.time() - item['started_at'])} so far"
                if item["open"]
                else "-"
            )
            marker = "▶" if item["id"] == self.focus else " "
            table.add_row(
                f"{marker}{number}",
                state_text(item["tone"], item["state_words"]),
                Text(clean(item["alertname"]), style="bold"),
                Text(clean(item["target"])),
                clock(item["started_at"]),
                heal,
                style="" if item["open"] else "grey70",
            )
        opened = sum(1 for item in self.board if item["open"])
        title = f"Incidents: {opened} open"
        body = table if listed else Text("No incidents yet. Watching.", style="grey62")
        return Panel(body, title=title, title_align="left", border_style="grey42")

    def render_incident(self, incident: dict) -> Panel:
        rows = Table(expand=True, box=None, pad_edge=False, show_header=False)
        rows.add_column("at", no_wrap=True)
        rows.add_column("offset", no_wrap=True, style="grey62", justify="right")
        rows.add_column("what", ratio=2, overflow="fold")
        rows.add_column("detail", ratio=3, overflow="fold", style="grey70")
        # The newest events that fit the terminal (a row can wrap to two lines).
        room = max(4, (self.height - 14 - 2 * len(self.listed()) - len(incident["tiers"])) // 2)
        for item in incident["timeline"][-room:]:
            title = state_text(item["tone"], item["title"])
            if item.get("duration") is not None:
                title.append(f" {duration(item['duration'])}", style="grey62")
            rows.add_row(clock(item["at"]), f"+{duration(item['offset'])}", title, Text(clean(item["detail"])))
        parts = [
            Text.assemble(
                state_text(incident["tone"], incident["state_words"]),
                "  ",
                (clean(incident["alertname"]), "bold"),
                "  ",
                clean(incident["target"]),
            )
        ]
        if incident.get("summary"):
            parts.append(Text(clean(incident["summary"])))
        if incident.get("current_task"):
            parts.append(Text.assemble(("now: ", "cyan"), clean(incident["current_task"])))
        for tier in incident["tiers"]:
            line = Text.assemble(("tier ", "grey62"), (clean(tier["tier"]), "bold"), " ")
            line.append_text(state_text(tier["tone"], tier["result_words"]))
            line.append(f"  {duration(tier['duration'])}  {clean(tier['why'])}", style="grey70")
            parts.append(line)
        if incident.get("outcome"):
            outcome = incident["outcome"]
            line = Text("outcome ", style="grey62")
            line.append_text(state_text(outcome["tone"], outcome["result_words"]))
            line.append(f"  {clean(outcome['summary'])}")
            if incident.get("time_to_heal") is not None:
                line.append(f"  (healed in {duration(incident['time_to_heal'])})", style="green")
            parts.append(line)
        parts.append(rows)
        title = f"{clean(incident['id'])} · started {clock(incident['started_at'])} UTC"
        return Panel(Group(*parts), title=title, title_align="left", border_style="grey42")

    def run(self, console: Console, refresh_per_second: float) -> int:
        self.read()
        if self.refused:
            console.print("remediate watch: the adapter refused the token (401)", style="red")
            return 2
        threading.Thread(target=self.follow, name="feed", daemon=True).start()
        interactive = sys.stdin.isatty()
        saved = termios.tcgetattr(sys.stdin) if interactive else None
        try:
            if interactive:
                tty.setcbreak(sys.stdin.fileno())  # keys one by one; Ctrl-C still interrupts
                threading.Thread(target=self.keys, name="keys", daemon=True).start()
            with Live(self.render(), console=console, screen=True, auto_refresh=False) as live:
                while not self.stop.is_set() and not self.refused:
                    # Redraw on a change, and each second for the clocks; never faster than asked.
                    changed = self.changed.wait(1.0)
                    self.changed.clear()
                    if changed:
                        self.read()
                    self.height = console.size.height
                    live.update(self.render(), refresh=True)
                    time.sleep(1 / refresh_per_second)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop.set()
            if saved is not None:
                termios.tcsetattr(sys.stdin, termios.TCSADRAIN, saved)
            with contextlib.suppress(Exception):
                self.http.close()
        if self.refused:
            console.print("remediate watch: the adapter refused the token (401)", style="red")
            return 2
        return 0


def read_token(token_file: Path | None, fallback: Path | None) -> str | None:
    """--token-file, else $REMEDIATE_TOKEN, else the first line of the settings' bearer_token_file."""
    if token_file is None and os.environ.get("REMEDIATE_TOKEN"):
        return os.environ["REMEDIATE_TOKEN"].strip()
    path = token_file or fallback
    if path is None:
        return None
    lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    return lines[0] if lines else None
