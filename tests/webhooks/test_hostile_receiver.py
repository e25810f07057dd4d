"""Receivers that answer what no HTTP server library would let them: raw sockets on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
from django.db import connection

from tests.integration.openapi import merchant, paid_payment
from webhooks import addresses
from webhooks import delivery as delivery_module
from webhooks.delivery import webhook_deliver
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.sending import DEADLINE_TIMEOUTS
from webhooks.services import endpoint_create, endpoint_delete

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


def dripping(where: str):
    """An answer that sends a byte (of its headers, or of its body) every 0.2 s: each read is inside the timeout."""

    def answer(connection):
        if where == "body":
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        else:
            connection.sendall(b"HTTP/1.1 200 OK\r\n")
        for _ in range(100):
            connection.sendall(b"a" if where == "body" else b"X-Drip: a\r\n")
            time.sleep(0.2)

    return answer


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_deadline(settings, where):
    # given: a receiver that would take 20 s to answer, a byte every 0.2 s, with a timeout of 0.5 s per read
    settings.WEBHOOK_TIMEOUT = 0.5
    delivery = one_delivery(raw_receiver(dripping(where)))
    # when: the delivery goes
    started = time.monotonic()
    status = webhook_deliver(delivery_id=delivery.pk)
    # then: the thread is back within the deadline (3 timeouts), well inside the endpoint's lease, and the attempt
    # is a timeout (the body's excerpt is cut short: the status code came, and is kept)
    assert time.monotonic() - started < settings.WEBHOOK_TIMEOUT * DEADLINE_TIMEOUTS + 1
    [attempt] = WebhookAttempt.objects.all()
    if where == "headers":
        assert status == DeliveryStatus.PENDING and "Timeout" in attempt.error
    else:
        assert attempt.status_code == 200 and attempt.response_excerpt.startswith("a")


def test_an_endpoint_deleted_while_its_delivery_is_out_ends_the_job_quietly(receiver):
    # given: a delivery out to a receiver that takes a second to answer
    receiver.hang_seconds = 1.0
    user = merchant()
    endpoint = endpoint_create(owner=user, url=receiver.url, events=["payment.succeeded"])
    paid_payment(user)
    [delivery] = WebhookDelivery.objects.all()

    # when: its client deletes the endpoint meanwhile
    def delete():
        endpoint_delete(endpoint=endpoint)
        connection.close()  # (this thread's own)

    deleting = threading.Timer(0.3, delete)
    deleting.start()
    # then: the job ends without an error (it was an IntegrityError: the attempt's delivery is gone)
    assert webhook_deliver(delivery_id=delivery.pk) == "missing"
    deleting.join()
    assert not WebhookDelivery.objects.exists() and not WebhookAttempt.objects.exists()


def test_a_host_only_old_idna_can_spell_is_refused_at_registration_and_a_stored_one_fails_its_tries(
    receiver, monkeypatch, settings
):
    # given: a name that the resolver spells (IDNA 2003: ☃ is xn--n3h) but the HTTP client does not (IDNA 2008)
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    monkeypatch.setattr(
        addresses.socket,
        "getaddrinfo",
        lambda host, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))],
    )
    url = f"http://\u2603.example:{port}/hooks"
    # then: it is refused at registration
    with pytest.raises(addresses.AddressRefused):
        endpoint_create(owner=merchant("early"), url=url, events=["*"])
    # and: one stored before this check was made fails its tries, each logged (it was an exception in the job,
    # which left the delivery pending to be tried again and again, no try ever logged)
    settings.WEBHOOK_RETRY_SCHEDULE = [1]
    delivery = one_delivery(receiver.url)
    WebhookEndpoint.objects.update(url=url)
    assert webhook_deliver(delivery_id=delivery.pk) == DeliveryStatus.PENDING
    WebhookDelivery.objects.update(next_attempt_at=None)
    assert webhook_deliver(delivery_id=delivery.pk) == DeliveryStatus.FAILED
    assert [attempt.error[:8] for attempt in WebhookAttempt.objects.all()] == ["refused:"] * 2


def test_a_send_that_raises_is_a_failed_try_on_the_schedule(receiver, monkeypatch, settings):
    # given: a send that raises (a bug, or a URL no check foresaw)
    settings.WEBHOOK_RETRY_SCHEDULE = [1]
    delivery = one_delivery(receiver.url)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(delivery_module, "post_pinned", broken)
    # then: each try is logged as failed, and the schedule ends (not re-driven forever)
    assert webhook_deliver(delivery_id=delivery.pk) == DeliveryStatus.PENDING
    WebhookDelivery.objects.update(next_attempt_at=None)
    assert webhook_deliver(delivery_id=delivery.pk) == DeliveryStatus.FAILED
    assert [attempt.error for attempt in WebhookAttempt.objects.all()] == ["not sent: RuntimeError"] * 2
