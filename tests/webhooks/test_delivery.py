"""Webhooks from the status change to a real receiver on 127.0.0.1: recorded with the change, signed, retried on
schedule, once more per retry with the same event id, never to a disabled endpoint or another merchant's."""

from __future__ import annotations

import json
import socket
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments.events import PAYMENT, StatusChange
from payments.models import PaymentStatus
from payments.services.refunds import refund_create, refund_process
from payments.timeline import payment_timeline
from tests.integration.openapi import merchant, paid_payment
from tests.webhooks.receiver_snippet import verify_webhook
from webhooks import addresses
from webhooks.delivery import webhook_deliver, webhook_deliveries_redrive, webhook_redeliver, webhooks_queue
from webhooks.events import webhook_deliveries_record
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from webhooks.services import endpoint_create, endpoint_secret_rotate, endpoint_update

pytestmark = pytest.mark.django_db(transaction=True)


def deliver_all() -> list[str]:
    """Every pending delivery once, oldest first, as the worker's jobs would."""
    ids = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).order_by("created_at", "pk")
    return [webhook_deliver(delivery_id=delivery_id) for delivery_id in ids.values_list("pk", flat=True)]


def events_of(receiver) -> list[dict]:
    return [json.loads(body) for body in receiver.bodies()]


def test_every_event_of_a_payments_life_arrives_signed_in_order(receiver):
    # given: a merchant with an endpoint for every event
    user = merchant()
    endpoint = endpoint_create(owner=user, url=receiver.url, events=["*"])
    # when: a payment of theirs succeeds and is refunded in part, and the deliveries' jobs run
    payment = paid_payment(user)
    refund_process(refund_id=refund_create(payment_id=payment.pk, actor="api", amount=100).pk, actor="api")
    assert deliver_all() == ["delivered"] * 3
    # then: processing, succeeded, refund.succeeded, in order of seq, each verified by the docs' snippet
    events = events_of(receiver)
    assert [event["type"] for event in events] == ["payment.processing", "payment.succeeded", "refund.succeeded"]
    assert [event["seq"] for event in events] == sorted(event["seq"] for event in events)
    assert events[1]["data"]["status"] == "succeeded" and events[1]["data"]["seq"] == events[1]["seq"]
    assert events[2]["data"]["status"] == "succeeded" and events[2]["payment_id"] == str(payment.pk)
    for request in receiver.received:
        assert verify_webhook(request.body, request.headers["Webhook-Signature"], endpoint.secret)
        assert request.headers["Webhook-Id"] == json.loads(request.body)["id"]
        assert request.headers["Content-Type"] == "application/json"


def test_a_tampered_body_a_wrong_secret_and_an_old_or_future_timestamp_fail_verification(receiver):
    user = merchant()
    endpoint = endpoint_create(owner=user, url=receiver.url, events=["payment.succeeded"])
    paid_payment(user)
    deliver_all()
    [request] = receiver.received
    header = request.headers["Webhook-Signature"]
    timestamp = int(header.split(",")[0][2:])
    assert verify_webhook(request.body, header, endpoint.secret)
    assert not verify_webhook(request.body.replace(b'"succeeded"', b'"failed"', 1), header, endpoint.secret)
    assert not verify_webhook(request.body + b" ", header, endpoint.secret)
    assert not verify_webhook(request.body, header, "whsec_another")
    # a replay 6 minutes later, or a timestamp 6 minutes ahead of the receiver's clock
    assert not verify_webhook(request.body, header, endpoint.secret, now=timestamp + 360)
    assert not verify_webhook(request.body, header, endpoint.secret, now=timestamp - 360)
    # a timestamp changed to look fresh breaks the signature it is inside of
    forged = header.replace(f"t={timestamp}", f"t={timestamp + 300}")
    assert not verify_webhook(request.body, forged, endpoint.secret, now=timestamp + 300)
    assert not verify_webhook(request.body, "garbage", endpoint.secret)


def test_a_receiver_that_fails_twice_then_succeeds_gets_the_same_event_each_time_and_it_is_delivered(receiver):
    user = merchant()
    endpoint_create(owner=user, url=receiver.url, events=["payment.succeeded"])
    receiver.fail_first = 2
    paid_payment(user)
    [delivery] = WebhookDelivery.objects.all()
    # when: its job runs, and again each time its next try is due
    assert webhook_deliver(delivery_id=delivery.pk) == "pending"
    assert webhook_deliver(delivery_id=delivery.pk) == "pending"
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"
    # then: three identical requests (same event id, same bytes), and the log says so
    bodies = receiver.bodies()
    assert len(bodies) == 3 and len(set(bodies)) == 1
    assert {request.headers["Webhook-Id"] for request in receiver.received} == {delivery.event_id}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 200)
    log = list(WebhookAttempt.objects.filter(delivery=delivery).values_list("number", "status_code", "delivered"))
    assert log == [(1, 500, False), (2, 500, False), (3, 200, True)]
    assert WebhookAttempt.objects.get(number=1).response_excerpt == "not now"
    # and: nothing more goes out for it
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered" and len(receiver.bodies()) == 3


def test_a_receiver_that_never_answers_is_retried_on_schedule_then_failed(receiver, settings):
    settings.WEBHOOK_TIMEOUT = 0.3
    settings.WEBHOOK_RETRY_SCHEDULE = [60, 600]
    settings.WEBHOOK_RETRY_JITTER = 0
    receiver.hang_seconds = 2
    user = merchant()
    endpoint_create(owner=user, url=receiver.url, events=["payment.succeeded"])
    paid_payment(user)
    [delivery] = WebhookDelivery.objects.all()

    for attempt, delay in ((1, 60), (2, 600)):
        started = timezone.now()
        assert webhook_deliver(delivery_id=delivery.pk) == "pending"
        delivery.refresh_from_db()
        assert delivery.attempts == attempt and delivery.last_status_code is None
        assert "Timeout" in delivery.last_error
        # the next try is due after the schedule's delay, and not before: the reconciler leaves it until then
        assert abs((delivery.next_attempt_at - started).total_seconds() - delay) < 2
        webhooks_queue().empty()  # (no worker here: the job queued at commit, or by the last pass, is dropped)
        assert webhook_deliveries_redrive() == {"webhook_deliveries_requeued": 0}
        # (the clock moves on)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        assert webhook_deliveries_redrive() == {"webhook_deliveries_requeued": 1}
    # then: the third try is the schedule's last; it fails for good
    assert webhook_deliver(delivery_id=delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.attempts == 3 and delivery.next_attempt_at is None
    assert len(receiver.received) == 3
    # each try waited no longer than the timeout: a hanging receiver holds a thread that long, no more
    assert all(latency < 1500 for latency in WebhookAttempt.objects.values_list("latency_ms", flat=True))


def test_a_disabled_endpoint_gets_nothing(receiver):
    user = merchant()
    endpoint = endpoint_create(owner=user, url=receiver.url, events=["*"])
    endpoint_update(endpoint=endpoint, enabled=False)
    paid_payment(user)
    assert WebhookDelivery.objects.count() == 0
    # and one disabled after its events were recorded gets them not either
    endpoint_update(endpoint=endpoint, enabled=True)
    paid_payment(user)
    endpoint_update(endpoint=endpoint, enabled=False)
    assert set(deliver_all()) == {"failed"}
    assert receiver.received == []
    assert set(WebhookDelivery.objects.values_list("last_error", flat=True)) == {"the endpoint is disabled"}


def test_another_merchants_payment_never_reaches_my_endpoint_and_a_shop_payment_owes_none(receiver, make_payment):
    me, other = merchant("me"), merchant("other")
    mine = endpoint_create(owner=me, url=receiver.url, events=["*"])
    paid_payment(other)
    make_payment()  # a guest's
    assert WebhookDelivery.objects.count() == 0
    paid_payment(me)
    assert set(WebhookDelivery.objects.values_list("endpoint", flat=True)) == {mine.pk}


def test_only_the_events_an_endpoint_asked_for_are_recorded(receiver):
    user = merchant()
    endpoint_create(owner=user, url=receiver.url, events=["payment.failed", "refund.succeeded"])
    paid_payment(user)
    assert WebhookDelivery.objects.count() == 0


def test_after_a_rotation_both_secrets_sign_until_the_grace_ends(receiver):
    user = merchant()
    endpoint = endpoint_create(owner=user, url=receiver.url, events=["payment.succeeded"])
    old = endpoint.secret
    rotated = endpoint_secret_rotate(endpoint=endpoint)
    assert rotated.secret != old and rotated.secret.startswith("whsec_")
    paid_payment(user)
    deliver_all()
    [request] = receiver.received
    header = request.headers["Webhook-Signature"]
    assert header.count("v1=") == 2
    assert verify_webhook(request.body, header, old) and verify_webhook(request.body, header, rotated.secret)
    # after the grace: the new one alone
    type(rotated).objects.filter(pk=rotated.pk).update(previous_secret_expires_at=timezone.now())
    webhook_deliveries_redrive()
    paid_payment(user)
    deliver_all()
    header = receiver.received[-1].headers["Webhook-Signature"]
    assert header.count("v1=") == 1 and not verify_webhook(receiver.received[-1].body, header, old)


def test_a_delivery_to_a_private_address_is_refused_at_delivery_too(receiver, settings):
    # given: an endpoint registered while private addresses were allowed (or whose name now resolves to one)
    user = merchant()
    endpoint_create(owner=user, url=receiver.url, events=["payment.succeeded"])
    paid_payment(user)
    # when: it is delivered in production
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    assert deliver_all() == ["pending"]
    # then: nothing was sent; the try is logged and will be retried (DNS may change), signed nowhere
    assert receiver.received == []
    assert WebhookAttempt.objects.get().error.startswith("refused: Webhook URLs must use https")


def test_the_request_goes_to_the_address_that_was_checked_under_its_own_name(receiver, monkeypatch):
    # given: a name that resolves to the receiver's address at registration and at the delivery's check, and
    # anywhere else on any later look-up (DNS rebinding: a short TTL and another answer)
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]] * 2)
    lookups = []

    real_dns = socket.getaddrinfo

    def rebinding_dns(host, *args, **kwargs):
        if host != "hooks.merchant.test":
            return real_dns(host, *args, **kwargs)
        lookups.append(host)
        return next(answers, [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port))])

    monkeypatch.setattr(addresses.socket, "getaddrinfo", rebinding_dns)
    user = merchant()
    endpoint_create(owner=user, url=f"http://hooks.merchant.test:{port}/hooks", events=["payment.succeeded"])
    paid_payment(user)
    lookups.clear()
    # when: it is delivered
    assert deliver_all() == ["delivered"]
    # then: the name was resolved once, by the check, and the connection went to that address, with the name in Host
    assert lookups == ["hooks.merchant.test"]
    assert receiver.received[0].headers["Host"] == f"hooks.merchant.test:{port}"


def test_redeliver_sends_the_same_event_again(receiver):
    user = merchant()
    endpoint_create(owner=user, url=receiver.url, events=["payment.succeeded"])
    paid_payment(user)
    deliver_all()
    delivery = WebhookDelivery.objects.get()
    assert webhook_redeliver(delivery=delivery) is True
    assert webhook_redeliver(delivery=delivery) is False  # already pending: goes anyway
    assert deliver_all() == ["delivered"]
    bodies = receiver.bodies()
    assert len(bodies) == 2 and bodies[0] == bodies[1]


def test_the_flight_recorder_shows_the_webhook_tries(receiver):
    user = merchant()
    endpoint_create(owner=user, url=receiver.url, events=["payment.succeeded"])
    receiver.fail_first = 1
    payment = paid_payment(user)
    deliver_all()
    deliver_all()
    titles = [entry.title for entry in payment_timeline(payment=payment) if entry.kind == "webhook"]
    assert titles == [
        "Webhook payment.succeeded try 1: answered 500, not delivered",
        "Webhook payment.succeeded try 2: answered 200, delivered",
    ]


def _change(payment, order_id=None) -> StatusChange:
    return StatusChange(
        kind=PAYMENT,
        object_id=str(payment.pk),
        payment_id=str(payment.pk),
        order_id=order_id,
        from_status=PaymentStatus.PROCESSING,
        to_status=PaymentStatus.SUCCEEDED,
        seq=99,
        actor="worker",
        document={},
    )


def test_recording_costs_one_query_without_endpoints_none_for_a_shop_payment_and_two_with(receiver):
    user = merchant()
    payment = paid_payment(user)

    def statements(change) -> list[str]:
        with transaction.atomic(), CaptureQueriesContext(connection) as queries:  # the change's transaction
            webhook_deliveries_record(sender=None, change=change)
        return [query["sql"] for query in queries]

    assert len(statements(_change(payment))) == 1
    assert statements(_change(payment, order_id=1)) == []
    endpoint_create(owner=user, url=receiver.url, events=["*"])
    assert len(statements(_change(payment))) == 2
    assert len(statements(_change(payment))) == 2  # the same change again owes nothing more
    assert WebhookDelivery.objects.filter(event_key=f"payment:{payment.pk}:99").count() == 1


def test_the_docs_snippet_is_the_one_tested():
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    snippet = (Path(__file__).parent / "receiver_snippet.py").read_text()
    assert f"```python\n{snippet}```" in docs


def test_the_jitter_spreads_the_schedule(settings):
    from webhooks.delivery import retry_delay

    settings.WEBHOOK_RETRY_SCHEDULE = [100]
    settings.WEBHOOK_RETRY_JITTER = 0.2
    delays = {retry_delay(1) for _ in range(20)}
    assert all(80 <= delay <= 120 for delay in delays) and len(delays) > 1
    assert retry_delay(2) is None
    time.sleep(0)


def test_the_webhook_threads_are_others_than_the_email_threads():
    from infrastructure.overrides.rq_worker import side_queue_threads

    sides = (("emails", 2), ("webhooks", 4))
    assert side_queue_threads(8, sides) == [["emails"]] * 2 + [["webhooks"]] * 4 + [[]] * 2
    # fewer threads than both want: some take both, none is left out
    assert side_queue_threads(3, sides) == [["emails", "webhooks"], ["emails", "webhooks"], ["webhooks"]]
    # a burst: every thread takes both
    assert side_queue_threads(2, (("emails", 2), ("webhooks", 2))) == [["emails", "webhooks"]] * 2


def test_a_slow_receiver_holds_one_delivery_at_a_time_and_the_others_go_on(receiver, settings):
    import threading

    from prometheus_client import REGISTRY

    from tests.webhooks.receiver import receiver_start

    settings.WEBHOOK_TIMEOUT = 2
    fast, fast_server = receiver_start()
    try:
        slow_user, fast_user = merchant("slow"), merchant("fast")
        endpoint_create(owner=slow_user, url=receiver.url, events=["*"])
        endpoint_create(owner=fast_user, url=fast.url, events=["*"])
        receiver.hang_seconds = 1.5
        paid_payment(slow_user)  # two events for the slow endpoint
        paid_payment(fast_user)  # two for the fast one
        slow_ids = list(
            WebhookDelivery.objects.filter(endpoint__owner=slow_user).order_by("pk").values_list("pk", flat=True)
        )
        fast_ids = list(
            WebhookDelivery.objects.filter(endpoint__owner=fast_user).order_by("pk").values_list("pk", flat=True)
        )
        delivered_before = REGISTRY.get_sample_value("webhooks_attempts_total", {"outcome": "delivered"}) or 0

        # when: the slow endpoint's first delivery is in flight on one thread
        def deliver_on_a_thread():
            try:
                webhook_deliver(delivery_id=slow_ids[0])
            finally:
                connection.close()  # the thread's own connection

        first = threading.Thread(target=deliver_on_a_thread)
        first.start()
        time.sleep(0.5)
        # then: its second waits (busy, tried again shortly), and the fast endpoint's go through meanwhile
        assert webhook_deliver(delivery_id=slow_ids[1]) == "busy"
        started = time.monotonic()
        assert [webhook_deliver(delivery_id=delivery_id) for delivery_id in fast_ids] == ["delivered"] * 2
        assert time.monotonic() - started < 1
        first.join()
        assert WebhookDelivery.objects.get(pk=slow_ids[0]).status == DeliveryStatus.DELIVERED
        # and: once the first is done, the second goes (the lease is free again)
        assert webhook_deliver(delivery_id=slow_ids[1]) == "delivered"
        delivered_after = REGISTRY.get_sample_value("webhooks_attempts_total", {"outcome": "delivered"})
        assert delivered_after - delivered_before == 4
    finally:
        fast_server.shutdown()
        fast_server.server_close()
