"""Pushing status documents to waiting browsers and API clients over Channels.

A push is a hint, not the record: channels-redis drops messages for a channel over capacity and a socket
can drop at any time, so every client also reads the database (on connect, on resume, or by polling).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

STATUS_MESSAGE_TYPE = "payment.status"
# A push that takes longer than this is given up: the client reads the database anyway.
PUSH_TIMEOUT_SECONDS = 5.0


def payment_group_name(payment_id) -> str:
    return f"payment.{payment_id}"


class _PushLoop:
    """One event loop per process, on a daemon thread, that every push from synchronous code goes through.

    Why not `async_to_sync(group_send)`: from a thread with no loop it runs a fresh event loop per call, and
    channels-redis keeps its connections per loop, so every push paid for a new loop and a new Redis
    connection (3.9 ms against 0.3 ms here; bench/findings.md). A long-lived loop keeps one connection pool
    warm, and any thread (a worker's job threads, daphne's request threads) can submit to it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def run(self, coroutine, *, timeout: float):
        future = asyncio.run_coroutine_threadsafe(coroutine, self._running_loop())
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


_push_loop = _PushLoop()


def payment_push_status(payload: dict) -> None:
    try:
        _push_loop.run(
            get_channel_layer().group_send(
                payment_group_name(payload["id"]), {"type": STATUS_MESSAGE_TYPE, "payment": payload}
            ),
            timeout=PUSH_TIMEOUT_SECONDS,
        )
    except Exception:
        logger.warning(
            "push for payment %s seq %s failed; clients catch up from the database",
            payload["id"],
            payload["seq"],
            exc_info=True,
        )


def payment_push_on_status_changed(sender, change, **kwargs) -> None:
    """A `status_changed` receiver (payments/events.py): after commit, every payment change is pushed to its
    waiters. A refund's own change is not: the payment's change that a successful refund makes is."""
    if change.kind == "payment":
        payment_push_status(change.document)
