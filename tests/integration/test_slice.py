"""The whole path on real parts: HTTP submit on daphne → Redis → a real RQ worker → status URL → WebSocket."""

import asyncio
import json
import zlib
from urllib.parse import urljoin

import pytest
import websockets
from django.db import connection
from websockets.exceptions import ConnectionClosed

from tests.conftest import VISA_DECLINED, VISA_OK
from tests.integration.shop import Shopper

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CVC = "737"  # what Shopper types for Visa


async def receive_until_outcome(ws_url: str, timeout: float = 30) -> list[dict]:
    frames = []
    async with asyncio.timeout(timeout), websockets.connect(ws_url) as socket:
        async for raw in socket:
            frame = json.loads(raw)
            frames.append(frame)
            if frame["payment"]["has_outcome"]:
                return frames
    return frames


def pay_and_follow(live_stack, product, card_number):
    shopper = Shopper(live_stack.http_url, product.pk)
    client = shopper.client
    try:
        # when: the shopper pays
        accepted = shopper.submit(card_number)
        assert accepted.status_code == 202, accepted.text
        body = accepted.json()
        assert accepted.headers["Location"] == body["status_url"]

        # and a WebSocket client subscribes before any worker runs
        async def scenario():
            listener = asyncio.create_task(
                receive_until_outcome(body["payment"]["links"]["websocket"])  # absolute: ws://host/ws/…
            )
            await asyncio.sleep(0.5)  # let it connect and receive the current state
            await asyncio.to_thread(live_stack.run_worker_burst)
            return await listener

        frames = asyncio.run(scenario())
        status = client.get(body["status_url"])

    finally:
        shopper.close()
    return frames, status


def test_an_approved_card_flows_from_submit_to_a_pushed_success(live_stack, product):
    frames, status = pay_and_follow(live_stack, product, VISA_OK)

    # then: the socket saw pending first, then the worker's pushes, in seq order, ending in success
    statuses = [f["payment"]["status"] for f in frames]
    assert statuses[0] == "pending"
    assert statuses[-1] == "succeeded"
    seqs = [f["payment"]["seq"] for f in frames]
    assert seqs == sorted(set(seqs))
    # and the status URL agrees with the push, and (the payment being final) points at the payment itself
    assert status.status_code == 303
    assert status.headers["Location"] == f"{live_stack.http_url}/api/v1/payments/{frames[-1]['payment']['id']}"
    answered, pushed = status.json(), frames[-1]["payment"]
    assert {**answered, "links": None} == {**pushed, "links": None}
    # the same links: absolute in the HTTP answer, paths in the frame (the worker that pushes has no request)
    origin = {"websocket": live_stack.ws_url}
    resolved = {name: urljoin(origin.get(name, live_stack.http_url), path) for name, path in pushed["links"].items()}
    assert answered["links"] == resolved


def test_a_declined_card_ends_in_a_clear_decline(live_stack, product):
    frames, status = pay_and_follow(live_stack, product, VISA_DECLINED)
    final = frames[-1]["payment"]
    assert final["status"] == "failed"
    assert final["failure"]["decline_code"] == "card_declined"
    assert final["failure"]["message"] == "Your card was declined by your bank."
    assert status.json()["status"] == "failed"


def test_a_websocket_without_a_valid_token_is_refused(live_stack, product):
    body = Shopper(live_stack.http_url, product.pk).pay(VISA_OK)
    ws_link = body["payment"]["links"]["websocket"]
    forged = ws_link.split("?token=")[0] + "?token=forged"

    async def attempt():
        async with websockets.connect(forged) as socket:
            await socket.recv()

    # the payment is "not found" for this socket: it is closed with 4404 before any frame is sent
    with pytest.raises(ConnectionClosed) as closed:
        asyncio.run(attempt())
    assert closed.value.rcvd.code == 4404


def _all_database_text() -> str:
    """Every row of every table of ours, as text."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - our table names
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def _all_redis_bytes(redis_client) -> bytes:
    chunks = []
    for key in redis_client.scan_iter(count=1000):
        chunks.append(key)
        dumped = redis_client.dump(key)
        if dumped:
            chunks.append(dumped)
        kind = redis_client.type(key)
        if kind == b"hash":
            for field_name, value in redis_client.hgetall(key).items():
                chunks.append(b"%s=%s" % (field_name, value))
                if field_name == b"data":  # RQ keeps the job's function and arguments zlib-compressed
                    chunks.append(zlib.decompress(value))
        elif kind == b"list":
            chunks.extend(redis_client.lrange(key, 0, -1))
        elif kind == b"string":
            chunks.append(redis_client.get(key) or b"")
    return b"\n".join(chunks)


def test_card_number_and_cvc_are_stored_nowhere(live_stack, product, redis_client):
    # given: two payments have gone all the way through
    pay_and_follow(live_stack, product, VISA_OK)
    pay_and_follow(live_stack, product, VISA_DECLINED)

    # then: no trace of the numbers or the CVC in the database, Redis (job payloads included) or the logs
    database, redis_dump, logs = _all_database_text(), _all_redis_bytes(redis_client), live_stack.logs()
    # the jobs are there to be searched, their arguments readable
    assert b"payments.jobs.payment_process_job" in redis_dump
    for secret in (VISA_OK, VISA_DECLINED, "4242 4242 4242 4242", "4000 0000 0000 0002"):
        assert secret not in database
        assert secret.encode() not in redis_dump
        assert secret not in logs
    assert f"'{CVC}'" not in database and f'"cvc": "{CVC}"' not in logs


def test_an_idle_websocket_stays_open_past_a_redis_read_timeout_and_gets_the_outcome(live_stack, product):
    # redis-py 8 times reads out after 5 s unless told otherwise; a shopper may wait longer than that
    body = Shopper(live_stack.http_url, product.pk).pay(VISA_OK)

    async def scenario():
        async with websockets.connect(body["payment"]["links"]["websocket"]) as socket:
            assert json.loads(await socket.recv())["payment"]["status"] == "pending"
            await asyncio.sleep(6.5)
            await asyncio.to_thread(live_stack.run_worker_burst)
            async with asyncio.timeout(20):
                while True:
                    frame = json.loads(await socket.recv())
                    if frame["payment"]["has_outcome"]:
                        return frame

    assert asyncio.run(scenario())["payment"]["status"] == "succeeded"
