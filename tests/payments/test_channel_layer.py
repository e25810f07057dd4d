"""The channel layer must not lose a push for one consumer when another consumer of the same process goes
away (infrastructure/overrides/channels_redis.py), on the real Redis.

The race, made deterministic: consumer A holds the process's shared `BZPOPMIN`; a message for consumer B
arrives, Redis pops it and writes the reply to A's connection; A is cancelled (its shopper left) before its
event loop reads that reply. Blocking the loop while the message is sent is what opens that window.

The stock layer is run through the same steps and must lose the message: that proves the test reproduces
the race, and it is the signal to drop our subclass the day channels-redis fixes it upstream.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from infrastructure.overrides.channels_redis import CancelSafeRedisChannelLayer


def _layer(layer_class, prefix: str):
    return layer_class(hosts=settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"], prefix=prefix, expiry=30)


def _send_from_another_process_like_a_worker(layer_class, prefix: str, channel: str, message: dict) -> None:
    sender = _layer(layer_class, prefix)
    thread = threading.Thread(target=asyncio.run, args=(sender.send(channel, message),))
    thread.start()
    thread.join()


async def _push_while_the_popping_consumer_leaves(layer_class) -> dict | None:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    layer = _layer(layer_class, prefix)
    leaving, waiting = await layer.new_channel(), await layer.new_channel()
    leaving_receive = asyncio.ensure_future(layer.receive(leaving))
    await asyncio.sleep(0.05)  # the first receiver takes the receive lock and blocks in BZPOPMIN
    waiting_receive = asyncio.ensure_future(layer.receive(waiting))
    await asyncio.sleep(0.2)

    # Without yielding to the event loop: the message is sent and popped by the leaving consumer's command,
    # whose reply now sits unread on its socket, and that consumer is cancelled.
    _send_from_another_process_like_a_worker(layer_class, prefix, waiting, {"type": "payment.status", "seq": 3})
    time.sleep(0.1)
    leaving_receive.cancel()

    try:
        return await asyncio.wait_for(waiting_receive, timeout=3)
    except TimeoutError:
        return None
    finally:
        await asyncio.gather(leaving_receive, return_exceptions=True)
        await layer.flush()


@pytest.mark.integration
def test_a_consumer_leaving_mid_pop_does_not_take_another_consumers_push():
    received = asyncio.run(_push_while_the_popping_consumer_leaves(CancelSafeRedisChannelLayer))

    assert received == {"type": "payment.status", "seq": 3}


@pytest.mark.integration
def test_the_stock_layer_loses_that_push_so_the_race_is_really_reproduced():
    received = asyncio.run(_push_while_the_popping_consumer_leaves(RedisChannelLayer))

    assert received is None


def test_the_configured_layer_is_the_cancel_safe_one():
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    assert backend == "infrastructure.overrides.channels_redis.CancelSafeRedisChannelLayer"
