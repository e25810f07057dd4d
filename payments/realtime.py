"""Pushing status documents to waiting browsers and API clients over Channels.

A push is a hint, not the record: channels-redis drops messages for a channel over capacity and a socket
can drop at any time, so every client also reads the database (on connect, on resume, or by polling).
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

STATUS_MESSAGE_TYPE = "payment.status"


def payment_group_name(payment_id) -> str:
    return f"payment.{payment_id}"


def payment_push_status(payload: dict) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(
            payment_group_name(payload["id"]), {"type": STATUS_MESSAGE_TYPE, "payment": payload}
        )
    except Exception:
        logger.warning(
            "push for payment %s seq %s failed; clients catch up from the database",
            payload["id"],
            payload["seq"],
            exc_info=True,
        )
