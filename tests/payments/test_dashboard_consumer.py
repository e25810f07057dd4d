"""The staff dashboard's WebSocket (/ws/staff/dashboard): staff holding view_payment get the figures on connect
and again when a payment reaches an outcome; anyone else is closed with 4403; a socket with no Origin is refused.
Real session cookies, the real channel layer (Redis) and the real `status_changed` receiver."""

import asyncio
import contextlib
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client

from config.asgi import application
from payments import dashboard_live
from payments.services.payments import payment_process

pytestmark = pytest.mark.django_db(transaction=True)
PATH = "/ws/staff/dashboard"
ORIGIN = (b"origin", b"http://testserver")


def _session_cookie(*perms: str, is_staff: bool = True) -> tuple[bytes, bytes]:
    user = User.objects.create_user(username=f"u{User.objects.count()}", password="not-used-1234", is_staff=is_staff)
    for perm in perms:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="payments", codename=perm))
    client = Client()
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return (b"cookie", f"{name}={client.cookies[name].value}".encode())


async def _answer(headers: list) -> object:
    """The first frame's figures, or the close code."""
    socket = WebsocketCommunicator(application, PATH, headers=headers)
    connected, code = await socket.connect(timeout=5)
    if not connected:
        return f"refused {code}"
    frame = await socket.receive_output(timeout=5)
    if frame["type"] == "websocket.close":
        return frame["code"]
    await socket.disconnect()
    return "open"


def test_staff_with_view_payment_gets_the_figures_on_connect():
    cookie = _session_cookie("view_payment")

    async def scenario():
        socket = WebsocketCommunicator(application, PATH, headers=[ORIGIN, cookie])
        connected, _ = await socket.connect(timeout=5)
        assert connected
        frame = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return frame

    frame = asyncio.run(scenario())
    assert frame["type"] == "dashboard.figures"
    assert {"per_minute", "time_to_outcome", "unknown", "stuck", "queue"} <= set(frame["figures"])


def test_others_are_closed_with_4403_and_no_origin_is_refused():
    # given: one caller of each kind
    callers = {
        "anonymous": [ORIGIN],
        "not staff": [ORIGIN, _session_cookie("view_payment", is_staff=False)],
        "staff without view_payment": [ORIGIN, _session_cookie()],
        "staff, no Origin": [_session_cookie("view_payment")],
        "staff, another site": [(b"origin", b"https://evil.example"), _session_cookie("view_payment")],
    }
    allowed_hosts = django_settings.ALLOWED_HOSTS

    # when
    async def everyone():
        return {name: await _answer(headers) for name, headers in callers.items()}

    answers = asyncio.run(everyone())

    # then
    assert answers["anonymous"] == answers["not staff"] == answers["staff without view_payment"] == 4403
    # refused at the handshake: a session-authenticated socket needs a browser's Origin, of one of our hosts
    assert str(answers["staff, no Origin"]).startswith("refused")
    if "*" not in allowed_hosts:  # a wildcard host list lets every origin in, as it does for the payment sockets
        assert str(answers["staff, another site"]).startswith("refused")


def _worker_job(payment_id) -> None:
    try:
        payment_process(payment_id=payment_id)
    finally:
        connection.close()  # this thread's: the test database is dropped at the end


def test_a_payment_reaching_its_outcome_sends_fresh_figures(make_payment, settings):
    # given: a staff dashboard open on a pending payment, and no periodic refresh to mistake for the update
    settings.PAYMENTS_DASHBOARD_REFRESH = 3600
    cookie = _session_cookie("view_payment")
    payment = make_payment()

    async def scenario():
        socket = WebsocketCommunicator(application, PATH, headers=[ORIGIN, cookie])
        assert (await socket.connect(timeout=5))[0]
        first = await socket.receive_json_from(timeout=5)
        # when: a worker's job takes it to succeeded (its status_changed receiver runs after commit)
        await sync_to_async(_worker_job, thread_sensitive=False)(payment.pk)
        # then: a frame follows with it counted
        frame = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return first, frame

    first, frame = asyncio.run(scenario())
    succeeded = lambda figures: sum(row["succeeded"] for row in figures["per_minute"])  # noqa: E731
    assert succeeded(first["figures"]) == 0
    assert succeeded(frame["figures"]) == 1


def test_a_burst_of_changes_is_one_tick_now_and_one_when_the_second_is_up(monkeypatch):
    # given: a listener on the dashboards' group, and this process's throttle fresh (no tick sent yet)
    monkeypatch.setattr(dashboard_live, "_tick", dashboard_live._Throttle(dashboard_live._send_tick, 1.0))

    async def listen():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(dashboard_live.DASHBOARD_GROUP, channel)
        started = time.monotonic()
        # when: 200 status changes within a few milliseconds (the receiver as status_changed calls it)
        for _ in range(200):
            dashboard_live.dashboard_on_status_changed(sender=None, change=None)
        burst_took = time.monotonic() - started
        received = []
        with contextlib.suppress(TimeoutError):
            while True:
                await asyncio.wait_for(layer.receive(channel), 2.0)
                received.append(time.monotonic() - started)
        return burst_took, received

    burst_took, received = asyncio.run(listen())

    # then: the burst did not wait on Redis; one tick came at once, one (the burst's last change) a second later
    assert burst_took < 0.5
    assert len(received) == 2, received
    assert received[0] < 0.5 and 0.9 < received[1] < 2.0
