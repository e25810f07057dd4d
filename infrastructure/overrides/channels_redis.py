"""channels-redis's `RedisChannelLayer`, with a fix for the push it loses when a consumer disconnects.

The consumers of one process share one blocking `BZPOPMIN` on the process's channel key: whichever consumer
holds the receive lock pops the next message for any of them. When that consumer goes away (a shopper closes
the wait page, a long-poll ends), Channels cancels its receive, and redis-py answers a cancelled command by
closing its connection. If Redis had already popped a message and written the reply, the reply dies with
the connection: a push meant for *another*, still-waiting consumer is gone (the mechanism of
django/channels_redis#366; `make bench` scenario 6 caught it, between 1 push in 300 and 1 in 2,000 when
shoppers leave in a burst, and `tests/payments/test_channel_layer.py` reproduces it).

The fix: a cancelled receive no longer cancels the `BZPOPMIN` itself. The pop runs to its end (a message,
or the layer's 5 s timeout) on its own task, and a message it took is put back at the head of the process's
channel key, where the next receive pops it at once. The consumer that went away still returns at once.

What it costs: at most one extra pop in flight per cancelled receive, for at most 5 s, and, if a
cancellation races another consumer's clean-up, a message delivered twice rather than never (our consumers
ignore a status document whose `seq` they have already seen).

Library: channels-redis. Private names touched: `RedisChannelLayer._brpop_with_clean` (overridden), and
`_backup_channel_name`, `receive_cleaners`, `connection(index)` and `expiry`, undocumented parts the override uses.
Pinned to the minor version they were written against, `channels-redis>=4.3,<4.4` (pyproject.toml).

Upstream: django/channels_redis#366 ("`RedisChannelLayer.receive()` drops events due to `asyncio.shield()` in
redis-py 4.5.4"), closed; the stock layer of channels-redis 4.3.0 still loses the message when the test runs it
through the race, which is the signal to drop this subclass the day a release fixes it.
"""

from __future__ import annotations

import asyncio
import time

from channels_redis.core import RedisChannelLayer

# Put a popped message back where it came from: out of the backup set the pop wrote it to, into the channel
# key with its original score (its send time, so it stays ahead of later messages), and keep the key's TTL.
_RESTORE_SCRIPT = """
local score = redis.call('ZSCORE', KEYS[2], ARGV[1]) or ARGV[2]
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], score, ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
"""


class CancelSafeRedisChannelLayer(RedisChannelLayer):
    async def _brpop_with_clean(self, index, channel, timeout):
        pop = asyncio.ensure_future(super()._brpop_with_clean(index, channel, timeout))
        try:
            # The shield keeps a cancellation of this receive from reaching redis-py mid-command.
            return await asyncio.shield(pop)
        except asyncio.CancelledError:
            self._finish_orphaned_pop(pop, index, channel)
            raise

    def _finish_orphaned_pop(self, pop: asyncio.Future, index: int, channel: str) -> None:
        async def restore() -> None:
            try:
                member = await pop
            except Exception:
                # The pop failed (Redis went away): nothing was taken, so nothing to put back. The next
                # receive meets the same error and reports it.
                return
            if member is not None:
                await self.connection(index).eval(
                    _RESTORE_SCRIPT, 2, channel, self._backup_channel_name(channel), member, time.time(), self.expiry
                )

        finishing = asyncio.ensure_future(restore())
        # `flush()` and `close_pools()` wait for the layer's receive clean-ups before closing connections;
        # this is one of them.
        self.receive_cleaners.append(finishing)
        finishing.add_done_callback(self.receive_cleaners.remove)
