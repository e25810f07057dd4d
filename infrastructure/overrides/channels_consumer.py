"""Channels' consumer dispatch without its `close_old_connections()` in the process's shared sync thread.

Library: channels. `AsyncConsumer.dispatch` is a public method, but what it does inside is not a promise:
this is its body as channels 4.3 has it (`get_handler_name`, then the handler) minus the
`await aclose_old_connections()` it runs before every message. Copied code goes stale silently, so channels
is pinned to the minor version it was copied from, `channels>=4.3,<4.4` (pyproject.toml).

Why: `aclose_old_connections()` is thread-sensitive `sync_to_async`, so it runs in the one thread a process
keeps for all thread-sensitive sync code, behind whatever else waits there. One read waiting for a database
connection (a busy pool, a locked table) held up every handshake behind it past daphne's 5 s handshake
timeout (`make chaos`, docs/reliability.md; tests/payments/test_consumer_threads.py). A consumer that uses
this mixin must give its database connections back itself, as payments/consumers.py does.

Upstream: no issue found about dispatch's `close_old_connections()` itself. django/channels#2132 (open,
"SyncConsumer blocking all other consumers on Django ORM access") reports the same mechanism: thread-sensitive
sync code of every consumer of a process shares one thread.
"""

from __future__ import annotations

from channels.consumer import get_handler_name


class DispatchWithoutCloseOldConnections:
    """Put before the Channels consumer class: `class C(DispatchWithoutCloseOldConnections, AsyncConsumer)`."""

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
