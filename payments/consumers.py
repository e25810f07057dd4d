"""The WebSocket a waiting shopper (or an API client) holds open for one payment.

Correctness comes from the database, latency from the push: on connect and on every `resume` the consumer
reads the payment and sends it if the client has not seen that seq yet; pushes that arrive in between are
forwarded only when newer than what this client already has.

A client sends nothing but `{"type": "resume", "after_seq": N}`; every other frame (binary, not JSON, not
that shape, an `after_seq` that is not a whole number) is ignored, as docs/api.md promises, never a reason to
drop the socket. Resumes read the database at most once a second per socket: more often only loads it.

Nothing a socket does waits for another socket's database read. Channels runs thread-sensitive sync code of
every consumer of a process in one shared thread, and its `dispatch` sends `close_old_connections()` there
before every message, the handshake's included; so one read waiting for a database connection (a busy pool,
a locked table) held up every handshake behind it past daphne's 5 s handshake timeout. Under `make chaos`
(docs/reliability.md) most sockets then failed to connect for minutes, their retries kept the queue full, and
shoppers never learned their outcome. Reads here run on the event loop's executor threads instead, and give
their database connection back themselves, in the thread and context that used it.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from infrastructure.overrides.channels_consumer import DispatchWithoutCloseOldConnections
from payments.metrics import websocket_closed, websocket_opened
from payments.realtime import payment_group_name
from payments.selectors import payment_document_for_watcher, payment_status_document_read, payment_ws_token_read

CLOSE_NOT_FOUND = 4404
# The least time between two database reads one socket's resumes may cause.
RESUME_MIN_INTERVAL = 1.0


def _int_or_zero(raw) -> int:
    try:
        return max(0, int(raw))
    except (TypeError, ValueError):
        return 0


def _resume_after_seq(content) -> int | None:
    """The seq a `resume` message asks after (0 when it names none), or None for anything else."""
    if not isinstance(content, dict) or content.get("type") != "resume":
        return None
    after_seq = content.get("after_seq", 0)
    if isinstance(after_seq, bool) or not isinstance(after_seq, int):
        return None  # 1e999 (inf), "7", null, true: not a seq
    return max(0, after_seq)


# Not thread-sensitive: the ORM needs no particular thread, and a slow read must not queue the others. The
# selector gives its connection back itself, in the thread that used it (channels' DatabaseSyncToAsync, off the
# thread-sensitive thread, missed it: each read kept a pooled connection for good, found on PostgreSQL).
_load_status_payload = sync_to_async(payment_status_document_read, thread_sensitive=False)


# Channels' dispatch without its `close_old_connections()` in the process's shared sync thread: this consumer's
# only database access (`_load_status_payload`) gives its connection back itself.
class PaymentStatusConsumer(DispatchWithoutCloseOldConnections, AsyncJsonWebsocketConsumer):
    group_name: str | None = None  # set once the token is checked: nothing is answered before that
    next_read_at = 0.0
    deferred_read: asyncio.Task | None = None
    counted = False  # in payments_websocket_connections: an accepted socket of a payment, until it disconnects
    watcher_socket: str | None = None  # a watch-only token's own socket path (payments.selectors.SocketGrant)

    async def connect(self):
        payment_id = str(self.scope["url_route"]["kwargs"]["payment_id"])
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        token = query.get("token", [""])[0]
        # The signed token is the credential: without a valid one for *this* payment, the socket behaves
        # as if the payment did not exist. Accepting before closing lets the client read the 4404 code (a
        # refused handshake would only say 403).
        grant = payment_ws_token_read(token, now=time.time())
        if grant is None or grant.payment_id != payment_id:
            await self.accept()
            await self.close(code=CLOSE_NOT_FOUND)
            return
        # A watcher's token (an order page opened from its link): every document it is sent leaves out the bank's
        # page and names this socket, not the payer's.
        self.watcher_socket = f"/ws/payments/{payment_id}?token={token}" if grant.watch_only else None
        self.payment_id = payment_id
        self.last_seq = _int_or_zero(query.get("after_seq", ["0"])[0])
        self.group_name = payment_group_name(payment_id)
        # Join the group before reading the database, so a change committed in between is not missed.
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        self.counted = True
        websocket_opened()
        await self._send_from_database()

    async def disconnect(self, code):
        if self.counted:
            self.counted = False
            websocket_closed()
        if self.deferred_read is not None:
            self.deferred_read.cancel()
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if self.group_name is None or not text_data:
            return  # not (yet) a socket of a payment, or a binary or empty frame
        try:
            content = await self.decode_json(text_data)
        except (ValueError, RecursionError):  # not JSON, an integer of 5,000 digits, [[[[…]]]]
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        after_seq = _resume_after_seq(content)
        if after_seq is None:
            return
        self.last_seq = after_seq
        if self.deferred_read is not None and not self.deferred_read.done():
            return  # the read already due answers this resume too
        delay = self.next_read_at - asyncio.get_running_loop().time()
        if delay <= 0:
            await self._send_from_database()
        else:
            self.deferred_read = asyncio.ensure_future(self._send_from_database(after=delay))

    async def payment_status(self, event):
        await self._send_if_newer(event["payment"])

    async def _send_from_database(self, after: float = 0):
        if after:
            await asyncio.sleep(after)
        self.next_read_at = asyncio.get_running_loop().time() + RESUME_MIN_INTERVAL
        payload = await _load_status_payload(self.payment_id)
        if payload is not None:
            await self._send_if_newer(payload)

    async def _send_if_newer(self, payload: dict):
        if payload["seq"] <= self.last_seq:
            return
        self.last_seq = payload["seq"]
        if self.watcher_socket is not None:
            payload = payment_document_for_watcher(payload, socket_path=self.watcher_socket)
        await self.send_json({"type": "payment.status", "payment": payload})
