"""The staff dashboard's WebSocket (/ws/staff/dashboard): staff holding payments.view_payment only.

Authenticated by the admin's session cookie (channels' AuthMiddlewareStack, on this route alone), so unlike the
payment sockets, whose credential is a token in the URL, a socket without an Origin or from another site is
refused at the handshake (payments/routing.py). Anyone else is accepted then closed with 4403, so a page can
tell "not allowed" from a network fault.

Frames: `{"type": "dashboard.figures", "figures": {...}}` (payments/dashboard.py), on connect, after each tick
of the `staff-dashboard` group (at most one read a second per socket) and every PAYMENTS_DASHBOARD_REFRESH
seconds (the queue and the workers change without a status change).
"""

from __future__ import annotations

import asyncio
import contextlib

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from infrastructure.overrides.channels_consumer import DispatchWithoutCloseOldConnections
from payments.dashboard import staff_dashboard_figures
from payments.dashboard_live import DASHBOARD_GROUP
from payments.gateway import release_database_connection

CLOSE_FORBIDDEN = 4403
DASHBOARD_PERMISSION = "payments.view_payment"
READ_MIN_INTERVAL = 1.0


def may_watch_dashboard(user) -> bool:
    """Staff, active, holding payments.view_payment (superusers hold every permission)."""
    try:
        return bool(
            user is not None
            and user.is_authenticated
            and user.is_active
            and user.is_staff
            and user.has_perm(DASHBOARD_PERMISSION)
        )
    finally:
        release_database_connection()


def _figures_read() -> dict:
    try:
        return staff_dashboard_figures()
    finally:
        release_database_connection()


# Off the thread-sensitive thread, giving connections back themselves (payments/consumers.py says why).
_may_watch = sync_to_async(may_watch_dashboard, thread_sensitive=False)
_load_figures = sync_to_async(_figures_read, thread_sensitive=False)


class StaffDashboardConsumer(DispatchWithoutCloseOldConnections, AsyncJsonWebsocketConsumer):
    joined = False
    refresher: asyncio.Task | None = None
    deferred_read: asyncio.Task | None = None
    next_read_at = 0.0

    async def connect(self):
        if not await _may_watch(self.scope.get("user")):
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        # Join before the first read, so a change committed in between is not missed.
        await self.channel_layer.group_add(DASHBOARD_GROUP, self.channel_name)
        self.joined = True
        await self.accept()
        await self._send_figures()
        self.refresher = asyncio.ensure_future(self._refresh_forever())

    async def disconnect(self, code):
        for task in (self.refresher, self.deferred_read):
            if task is not None:
                task.cancel()
        if self.joined:
            self.joined = False
            await self.channel_layer.group_discard(DASHBOARD_GROUP, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        return  # the page sends nothing; whatever comes is ignored

    async def dashboard_tick(self, event):
        if self.deferred_read is not None and not self.deferred_read.done():
            return  # the read already due shows this change too
        delay = self.next_read_at - asyncio.get_running_loop().time()
        if delay <= 0:
            await self._send_figures()
        else:
            self.deferred_read = asyncio.ensure_future(self._send_figures(after=delay))

    async def _refresh_forever(self):
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await asyncio.sleep(settings.PAYMENTS_DASHBOARD_REFRESH)
                await self._send_figures()

    async def _send_figures(self, after: float = 0):
        if after:
            await asyncio.sleep(after)
        self.next_read_at = asyncio.get_running_loop().time() + READ_MIN_INTERVAL
        figures = await _load_figures()
        await self.send_json({"type": "dashboard.figures", "figures": figures})
