"""Receivers that answer what no HTTP server library would let them: raw sockets on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest

from tests.integration.openapi import merchant, paid_payment
from webhooks.delivery import webhook_deliver
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db(transaction=True)


def raw_receiver(answer) -> str:
    """A receiver that reads each request, then lets `answer(connection)` write whatever it likes."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve(connection):
        with connection:
            received = b""
            while b"\r\n\r\n" not in received:
                received += connection.recv(65536)
            head, _, body = received.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
            )
            while len(body) < length:
                body += connection.recv(65536)
            with contextlib.suppress(OSError):  # the sender gave up
                answer(connection)

    def accept():
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/hooks"


def one_delivery(url: str) -> WebhookDelivery:
    user = merchant()
    endpoint_create(owner=user, url=url, events=["payment.succeeded"])
    paid_payment(user)
    [delivery] = WebhookDelivery.objects.all()
    return delivery


def test_an_answer_with_nul_bytes_is_logged_and_the_delivery_delivered():
    # given: a receiver that takes the event (200) and answers with a NUL and invalid UTF-8 in its body
    delivery = one_delivery(
        raw_receiver(lambda c: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nok\x00\xff!!"))
    )
    # when: the delivery goes
    # then: it is delivered (not left pending, to be sent again and again), its excerpt kept without the NUL
    assert webhook_deliver(delivery_id=delivery.pk) == DeliveryStatus.DELIVERED
    [attempt] = WebhookAttempt.objects.all()
    assert attempt.response_excerpt == "ok\ufffd\ufffd!!"
