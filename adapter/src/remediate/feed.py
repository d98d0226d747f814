"""The incident feed: the store's new timeline events as server-sent events
(docs/watching.md), for the incident page and `remediate watch`.

One poller per process reads the newest event id every ``interval`` seconds while
at least one client listens (the store can be written by other replicas, so a
poll of one indexed column, not an in-process signal); each stream looks at that
id as often and reads only the events it has not sent. Every wait is a sleep of
``interval``, so a stream ends within one when its client goes away or the server
stops (no wake-up to miss)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from remediate.store import Store

log = logging.getLogger("remediate.feed")
KEEPALIVE_SECONDS = 15.0
BATCH = 200


class Feed:
    def __init__(self, store: Store, interval: float = 0.5):
        self.store = store
        self.interval = interval
        # Set by `remediate serve`: True once the server is shutting down.
        self.stopping: Callable[[], bool] = lambda: False
        self._latest = 0
        self._listeners = 0
        self._poller: asyncio.Task | None = None

    def latest_id(self) -> int:
        with self.store.transaction() as tx:
            return tx.scalar("SELECT max(id) FROM events") or 0

    def events_between(self, after: int, upto: int, incident: str | None) -> list[dict]:
        sql = "SELECT id, at, incident_id, run_id, alert_id, kind, reason, data FROM events WHERE id > ? AND id <= ?"
        args: tuple = (after, upto)
        if incident:
            sql += " AND incident_id = ?"
            args += (incident,)
        with self.store.transaction() as tx:
            rows = tx.all(sql + " ORDER BY id LIMIT ?", (*args, BATCH))
        names = ("id", "at", "incident_id", "run_id", "alert_id", "kind", "reason")
        return [{**dict(zip(names, row[:7], strict=True)), "data": json.loads(row[7])} for row in rows]

    async def _poll(self) -> None:
        while self._listeners and not self.stopping():
            try:
                self._latest = await run_in_threadpool(self.latest_id)
            except Exception:  # the store's own errors vary by kind (SQLite, PostgreSQL)
                log.warning("the incident feed could not read the newest event; retrying", exc_info=True)
            await asyncio.sleep(self.interval)

    async def stream(self, request: Request, after: int | None, incident: str | None) -> AsyncIterator[str]:
        """SSE text: ``hello`` with the newest event id, then one ``incident`` event per
        timeline event (``id:`` its event id, so a reconnect resumes after it)."""
        self._listeners += 1
        try:
            if self._poller is None or self._poller.done():
                self._latest = await run_in_threadpool(self.latest_id)
                self._poller = asyncio.create_task(self._poll())
            sent = self._latest if after is None else after
            last_sent = time.monotonic()
            yield f"retry: 3000\nevent: hello\ndata: {json.dumps({'last_id': sent})}\n\n"
            while not self.stopping() and not await request.is_disconnected():
                if self._latest <= sent:
                    if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                        yield ": keepalive\n\n"
                        last_sent = time.monotonic()
                    await asyncio.sleep(self.interval)
                    continue
                upto = self._latest
                events = await run_in_threadpool(self.events_between, sent, upto, incident)
                for event in events:
                    yield f"id: {event['id']}\nevent: incident\ndata: {json.dumps(event)}\n\n"
                last_sent = time.monotonic()
                # Events of other incidents move the mark too.
                sent = events[-1]["id"] if len(events) == BATCH else upto
        finally:
            self._listeners -= 1
