"""``GET /mlx/events``: run status changes and live progress as server-sent events.

Filters: ``?run=<id>``, ``?sweep=<id>``, ``?notebook=<path>`` (any of them, combined with AND).
Each event is ``event: run`` (the run's JSON, on every status change) or ``event: progress``
(``{"run_id", "ref", "sweep_id", "cell", "cells", "elapsed"}``). A comment line every 15 s
keeps proxies from closing an idle stream.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from .handlers import MLXHandler

KEEPALIVE_SECONDS = 15.0
MAX_BACKLOG = 10_000


def _matches(event: dict[str, Any], filters: dict[str, str]) -> bool:
    subject = event.get("run") or event
    run_id = subject.get("id") if "run" in event else subject.get("run_id")
    checks = {
        "run": run_id,
        "sweep": subject.get("sweep_id"),
        "notebook": subject.get("notebook") or (subject.get("ref") or "").rsplit("@", 1)[0],
    }
    return all(checks[name] == value for name, value in filters.items())


class EventsHandler(MLXHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        filters = {name: self.get_argument(name) for name in ("run", "sweep", "notebook") if self.get_argument(name, None)}
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_BACKLOG)

        def deliver(event: dict[str, Any]) -> None:
            if _matches(event, filters):
                loop.call_soon_threadsafe(_put, queue, event)

        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        unsubscribe = self.service.events.subscribe(deliver)
        try:
            self.write(": jupyter_mlx events\n\n")
            await self.flush()
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except asyncio.TimeoutError:
                    self.write(": keepalive\n\n")
                else:
                    self.write(f"event: {event['type']}\ndata: {json.dumps(event.get('run') or event)}\n\n")
                await self.flush()
        except StreamClosedError:
            pass
        finally:
            unsubscribe()


def _put(queue: asyncio.Queue[dict[str, Any]], event: dict[str, Any]) -> None:
    try:
        queue.put_nowait(event)
    except asyncio.QueueFull:  # a stalled reader loses events, never the server's memory
        pass
