"""One long-lived event loop per process, on a daemon thread, for the pushes sent from synchronous code.

Library: channels-redis (`RedisChannelLayer`), reached through Channels' public `get_channel_layer()`. No
private name is touched; what this works around is how the layer keeps its connections: one pool per event
loop. Pinned with channels-redis, `>=4.3,<4.4` (pyproject.toml).

Upstream: django/channels_redis#125 ("Redis connections keep increasing when used with async_to_sync",
closed): `async_to_sync` runs a fresh event loop per call from a thread that has none, and a connection is
tied to the loop that opened it, so every push paid for a new loop and a new Redis connection (3.9 ms against
0.3 ms here; bench/findings.md). This follows the advice given in django/channels_redis#130, the pull request
that stopped the leak: send from where an event loop already runs. Any thread (a worker's job threads, daphne's
request threads) submits to this loop, which keeps one connection pool warm.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading


class PushLoop:
    """An event loop on a daemon thread that any thread can run a coroutine on, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def submit(self, coroutine) -> concurrent.futures.Future:
        """Start the coroutine on the loop and return at once (its future tells how it ended)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._running_loop())

    def run(self, coroutine, *, timeout: float):
        future = self.submit(coroutine)
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            future.cancel()
            raise

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            # After a fork the thread is gone but the loop object is not: the child starts its own.
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="channel-layer-pushes", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop
