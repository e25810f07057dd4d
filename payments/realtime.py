"""Pushing status documents to waiting browsers and API clients over Channels.

A push is a hint, not the record: channels-redis drops messages for a channel over capacity and a socket
can drop at any time, so every client also reads the database (on connect, on resume, or by polling).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future

import structlog
from channels.layers import get_channel_layer
from django.utils import timezone

from infrastructure.overrides.push_loop import PushLoop
from payments.metrics import push_count
from payments.services.recording import status_push_record

logger = structlog.get_logger(__name__)

STATUS_MESSAGE_TYPE = "payment.status"
# A push that takes longer than this is given up: the client reads the database anyway.
PUSH_TIMEOUT_SECONDS = 5.0


def payment_group_name(payment_id) -> str:
    return f"payment.{payment_id}"


# Every push from synchronous code runs on this process's one long-lived loop, not on a new loop and a new Redis
# connection per push as `async_to_sync(group_send)` would (infrastructure/overrides/push_loop.py).
_push_loop = PushLoop()


def payment_push_status(payload: dict) -> bool:
    """Send the document to the payment's group; True if the channel layer took it. The line is written here, on
    the pushing thread, not on the push loop's: this thread's context holds the ids of the job or request that
    made the change (infrastructure/logs.py)."""
    fields = {"payment_id": str(payload["id"]), "seq": payload["seq"], "status": payload["status"]}
    try:
        _push_loop.run(
            get_channel_layer().group_send(
                payment_group_name(payload["id"]), {"type": STATUS_MESSAGE_TYPE, "payment": payload}
            ),
            timeout=PUSH_TIMEOUT_SECONDS,
        )
    except Exception:
        push_count(sent=False)
        logger.warning("push failed; clients catch up from the database", exc_info=True, **fields)
        return False
    push_count(sent=True)
    logger.info("push sent", **fields)
    return True


def payment_push_on_status_changed(sender, change, **kwargs) -> None:
    """A `status_changed` receiver (payments/events.py): after commit, every payment change is pushed to its
    waiters. A refund's own change is not: the payment's change that a successful refund makes is."""
    if change.kind == "payment":
        at, started = timezone.now(), time.monotonic()
        ok = payment_push_status(change.document)
        # On the flight recorder: on the job's attempt if a job pushed (no statement), else a row of its own.
        status_push_record(
            payment_id=change.payment_id,
            seq=change.seq,
            actor=change.actor,
            at=at,
            duration_ms=(time.monotonic() - started) * 1000,
            ok=ok,
        )


def group_send_soon(group: str, message: dict, *, timeout: float = PUSH_TIMEOUT_SECONDS) -> Future:
    """Start sending one message to a group from synchronous code, on the process's push loop, and return at once:
    for hints nobody waits for (a slow or absent Redis must not hold the caller). The future holds the outcome."""
    return _push_loop.submit(asyncio.wait_for(get_channel_layer().group_send(group, message), timeout))
