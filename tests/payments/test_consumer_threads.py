"""A socket's handshake and first frame never wait for other sockets' slow sync work. Found by `make chaos`
(docs/reliability.md): channels ran every consumer's database work, and a `close_old_connections()` before every
message, in one thread per process, so one read waiting for a database connection made every handshake behind it
miss daphne's 5 s handshake timeout; most sockets then failed to connect for minutes."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from payments.selectors import payment_status_payload

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_handshake_and_its_first_frame_do_not_queue_behind_the_shared_sync_thread(make_payment):
    payment = make_payment()
    link = payment_status_payload(payment)["links"]["websocket"]

    async def scenario():
        # given: the process's one thread for thread-sensitive sync code is busy for 3 s, as when another
        # socket's database read waits for a connection from a busy pool
        busy = asyncio.ensure_future(sync_to_async(time.sleep)(3))
        await asyncio.sleep(0.1)
        socket = WebsocketCommunicator(application, link)
        started = time.monotonic()
        try:
            # when: a shopper's wait page opens its socket
            connected, _ = await socket.connect(timeout=2)
            frame = await socket.receive_json_from(timeout=2)
            return connected, frame, time.monotonic() - started
        finally:
            await socket.disconnect()
            await busy

    connected, frame, elapsed = asyncio.run(scenario())
    # then: it is accepted and gets the payment's state at once, not after the other work
    assert connected
    assert frame["payment"]["id"] == str(payment.pk)
    assert elapsed < 1.5


def test_every_socket_gives_its_database_connection_back(make_payment, settings):
    # given: more sockets, one after another, than the database pool has connections (PostgreSQL: a pool)
    payment = make_payment()
    link = payment_status_payload(payment)["links"]["websocket"]
    pool_size = settings.DATABASES["default"].get("OPTIONS", {}).get("pool", {}).get("max_size", 10)

    async def one():
        socket = WebsocketCommunicator(application, link)
        try:
            connected, _ = await socket.connect(timeout=2)
            return connected and (await socket.receive_json_from(timeout=2))["payment"]["id"]
        finally:
            await socket.disconnect()

    # when / then: each one's read finds a free connection at once (a read that kept its connection would leave
    # the later ones waiting for the pool's timeout)
    for _ in range(pool_size + 3):
        assert asyncio.run(one()) == str(payment.pk)
