"""Scenario 5's floor on the WebSocket side: a bench-only consumer that waits for a floor job's push.

It is the product's consumer (payments/consumers.py) with the work taken out: no token to check, and instead
of reading the payment from the database after joining the group, one Redis GET of the floor job's "done"
key. Like the product, it joins the group before looking, so a push sent before the socket joined is not
missed: the job writes the key before it pushes, and whichever comes first, the key or the push, sends the
one outcome frame. A `resume` (the wait page's heartbeat) looks at the key again, as the product's consumer
reads the database again.
"""

from __future__ import annotations

import asyncio

import redis.asyncio
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from bench.jobs import floor_done_key, floor_status_document
from payments.realtime import payment_group_name

_redis_by_loop: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}


def _redis() -> redis.asyncio.Redis:
    """One client (one connection pool) per event loop: daphne runs one loop, a test may run several."""
    loop = asyncio.get_running_loop()
    if loop not in _redis_by_loop:
        _redis_by_loop[loop] = redis.asyncio.Redis.from_url(settings.REDIS_URL)
    return _redis_by_loop[loop]


class FloorConsumer(AsyncJsonWebsocketConsumer):
    group_name: str | None = None
    sent = False

    async def connect(self):
        self.floor_id = str(self.scope["url_route"]["kwargs"]["floor_id"])
        self.group_name = payment_group_name(self.floor_id)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        await self._send_if_done()

    async def disconnect(self, code):
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "resume":
            await self._send_if_done()

    async def payment_status(self, event):
        await self._send_outcome()

    async def _send_if_done(self):
        if not self.sent and await _redis().exists(floor_done_key(self.floor_id)):
            await self._send_outcome()

    async def _send_outcome(self):
        if self.sent:
            return
        self.sent = True
        await self.send_json({"type": "payment.status", "payment": floor_status_document(self.floor_id)})
