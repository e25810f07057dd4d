"""The payment WebSocket at its protocol edges (issue 10, item 9): any frame but a well-formed `resume` is ignored
and the socket stays open; resumes cannot make a socket read the database more than once a second; a socket on
an unknown path is refused at the handshake, without a 500 or a traceback."""

import asyncio
import json

import pytest
import websockets
from channels.testing import WebsocketCommunicator
from websockets.exceptions import InvalidStatus

from config.asgi import application
from payments.selectors import payment_status_payload

pytestmark = pytest.mark.django_db(transaction=True)


async def _open(payment) -> tuple[WebsocketCommunicator, dict]:
    """A socket on the payment's link, and the frame it sends on connect."""
    socket = WebsocketCommunicator(application, payment_status_payload(payment)["links"]["websocket"])
    connected, _ = await socket.connect()
    assert connected
    return socket, await socket.receive_json_from(timeout=5)


async def _still_answers(socket, seq: int) -> None:
    """The socket is open and serving: a resume after seq 0 gets the current document back."""
    await socket.send_json_to({"type": "resume", "after_seq": 0})
    frame = await socket.receive_json_from(timeout=5)
    assert frame["payment"]["seq"] == seq


def _ignored_then_answers(payment, send) -> None:
    async def scenario():
        socket, first = await _open(payment)
        await send(socket)
        assert await socket.receive_nothing(timeout=0.5)
        await _still_answers(socket, first["payment"]["seq"])
        await socket.disconnect()

    asyncio.run(scenario())


def test_binary_websocket_frame_is_ignored_and_socket_stays_open(make_payment):
    _ignored_then_answers(make_payment(), lambda socket: socket.send_to(bytes_data=b"\x00\xff\x00binary"))


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "",
        "\x00",
        "[" * 100_000 + "]" * 100_000,  # past the recursion limit of the JSON decoder
        '{"type": "resume", "after_seq": 1' + "0" * 5000 + "}",  # past Python's int-parsing limit
        "null",
        '["resume", 0]',
        '{"type": "hello"}',
    ],
    ids=["not-json", "empty", "nul", "deeply-nested", "huge-integer", "null", "array", "unknown-type"],
)
def test_non_json_or_unknown_websocket_frames_are_ignored(make_payment, text):
    frame = {"type": "websocket.receive", "text": text}  # sent as is: the communicator's send_to refuses ""
    _ignored_then_answers(make_payment(), lambda socket: socket.send_input(frame))


@pytest.mark.parametrize("after_seq", ["1e999", "-1e999", "NaN", '"7"', "true", "null", "2.5"])
def test_resume_with_huge_after_seq_is_ignored(make_payment, after_seq):
    text = '{"type": "resume", "after_seq": ' + after_seq + "}"
    _ignored_then_answers(make_payment(), lambda socket: socket.send_to(text_data=text))


def test_a_resume_flood_reads_the_database_once_a_second(make_payment):
    payment = make_payment()

    async def scenario():
        socket, first = await _open(payment)
        for _ in range(50):
            await socket.send_json_to({"type": "resume", "after_seq": 0})
        frames = []
        while not await socket.receive_nothing(timeout=1.5):
            frames.append(await socket.receive_json_from())
        await socket.disconnect()
        return first, frames

    first, frames = asyncio.run(scenario())
    # the 50 resumes were answered together, by one read, once the second since connect was up
    assert [frame["payment"]["seq"] for frame in frames] == [first["payment"]["seq"]]


def test_a_refused_sockets_frames_are_ignored(make_payment):
    payment = make_payment()
    link = payment_status_payload(payment)["links"]["websocket"].split("?token=")[0] + "?token=forged"

    async def scenario():
        socket = WebsocketCommunicator(application, link)
        connected, _ = await socket.connect()
        await socket.send_json_to({"type": "resume", "after_seq": 0})
        closed = await socket.receive_output(timeout=5)
        assert await socket.receive_nothing(timeout=0.3)
        await socket.disconnect()
        return connected, closed

    connected, closed = asyncio.run(scenario())
    assert connected and closed == {"type": "websocket.close", "code": 4404}


@pytest.mark.parametrize("path", ["/ws/nothing", "/ws/payments/not-a-uuid", "/api/v1/payments"])
def test_unknown_websocket_path_is_refused_at_the_handshake(path):
    async def scenario():
        socket = WebsocketCommunicator(application, path)
        return await socket.connect()

    connected, _ = asyncio.run(scenario())
    assert connected is False


@pytest.mark.integration
def test_unknown_websocket_path_is_refused_without_a_500(live_stack):
    async def attempt(path: str) -> int:
        try:
            async with websockets.connect(live_stack.ws_url + path):
                return 101
        except InvalidStatus as refused:
            return refused.response.status_code

    for path in ("/ws/nothing", "/ws/payments/not-a-uuid", "/ws/payments/00000000-0000-0000-0000-000000000000/x"):
        assert asyncio.run(attempt(path)) == 403, path
    logs = live_stack.logs()
    assert "Traceback" not in logs and "No route found" not in logs, logs


@pytest.mark.integration
def test_hostile_frames_on_a_live_socket_leave_it_open(live_stack, make_payment):
    """What a real client sends over daphne, to a real consumer: nothing closes the socket, nothing is logged."""
    payment = make_payment()
    url = live_stack.ws_url + payment_status_payload(payment)["links"]["websocket"]

    async def scenario():
        async with websockets.connect(url) as socket:
            first = json.loads(await socket.recv())
            for frame in (b"\x00\xffbinary", "not json", '{"type":"resume","after_seq":1e999}', "[" * 50_000):
                await socket.send(frame)
            await socket.send(json.dumps({"type": "resume", "after_seq": 0}))
            again = json.loads(await asyncio.wait_for(socket.recv(), timeout=5))
            return first, again

    first, again = asyncio.run(scenario())
    assert again["payment"]["seq"] == first["payment"]["seq"]
    assert "Traceback" not in live_stack.logs()
