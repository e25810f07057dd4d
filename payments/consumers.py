"""The WebSocket a waiting shopper (or an API client) holds open for one payment.

Correctness comes from the database, latency from the push: on connect and on every `resume` the consumer
reads the payment and sends it if the client has not seen that seq yet; pushes that arrive in between are
forwarded only when newer than what this client already has.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from payments.models import Payment
from payments.realtime import payment_group_name
from payments.selectors import payment_id_from_ws_token, payment_status_payload

CLOSE_NOT_FOUND = 4404


def _int_or_zero(raw) -> int:
    try:
        return max(0, int(raw))
    except (TypeError, ValueError):
        return 0


@database_sync_to_async
def _load_status_payload(payment_id: str) -> dict | None:
    payment = Payment.objects.filter(pk=payment_id).first()
    return payment_status_payload(payment) if payment else None


class PaymentStatusConsumer(AsyncJsonWebsocketConsumer):
    group_name: str | None = None

    async def connect(self):
        payment_id = str(self.scope["url_route"]["kwargs"]["payment_id"])
        query = parse_qs(self.scope.get("query_string", b"").decode())
        token = query.get("token", [""])[0]
        # The signed token is the credential: without a valid one for *this* payment, the socket behaves
        # as if the payment did not exist. Accepting before closing lets the client read the 4404 code (a
        # refused handshake would only say 403).
        if payment_id_from_ws_token(token, now=time.time()) != payment_id:
            await self.accept()
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.payment_id = payment_id
        self.last_seq = _int_or_zero(query.get("after_seq", ["0"])[0])
        self.group_name = payment_group_name(payment_id)
        # Join the group before reading the database, so a change committed in between is not missed.
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        await self._send_from_database()

    async def disconnect(self, code):
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "resume":
            self.last_seq = _int_or_zero(content.get("after_seq"))
            await self._send_from_database()

    async def payment_status(self, event):
        await self._send_if_newer(event["payment"])

    async def _send_from_database(self):
        payload = await _load_status_payload(self.payment_id)
        if payload is not None:
            await self._send_if_newer(payload)

    async def _send_if_newer(self, payload: dict):
        if payload["seq"] <= self.last_seq:
            return
        self.last_seq = payload["seq"]
        await self.send_json({"type": "payment.status", "payment": payload})
