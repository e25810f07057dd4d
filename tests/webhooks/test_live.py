"""On the real stack (daphne, a worker process, the reconciler): a merchant registers an endpoint over the API, and a
payment's whole life (processing, succeeded, a refund succeeded) reaches a real receiver, signed, through a forced
failure, each event once more per retry with the same id, and in order by seq once the receiver sorts them."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.conftest import wait_until
from tests.integration.openapi import merchant
from tests.webhooks.receiver_snippet import verify_webhook
from webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def test_a_payments_whole_life_reaches_the_receiver_through_a_failure(live_stack_factory, receiver):
    # given: the stack with a short retry schedule, a worker with webhook threads and the reconciler
    stack = live_stack_factory(WEBHOOK_RETRY_SCHEDULE="1,1,1", WEBHOOK_RETRY_JITTER="0", WEBHOOK_WORKER_THREADS="2")
    stack.start_worker(threads=4)
    stack.start_reconciler(interval=0.3)
    user = merchant()
    api = httpx.Client(base_url=stack.http_url, headers={"Authorization": f"Token {user.token}"}, timeout=30)
    # and: an endpoint registered over the API, the secret from its answer; a receiver that fails its first request
    registered = api.post("/api/v1/webhook-endpoints", json={"url": receiver.url, "events": ["*"]})
    assert registered.status_code == 201, registered.text
    secret = registered.json()["secret"]
    receiver.fail_first = 1

    # when: a payment is made and, once it succeeded, refunded in part
    created = api.post(
        "/api/v1/payments",
        json={"amount": 2400, "currency": "USD", "card": CARD},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert created.status_code == 202, created.text
    payment_id = created.json()["id"]
    wait_until(
        lambda: api.get(f"/api/v1/payments/{payment_id}").json()["status"] == "succeeded",
        timeout=30,
        message="the payment to succeed:\n" + stack.logs(),
    )
    refund = api.post(
        f"/api/v1/payments/{payment_id}/refunds", json={"amount": 400}, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert refund.status_code == 202, refund.text

    # then: every delivery is delivered
    wait_until(
        lambda: WebhookDelivery.objects.count() == 3 and not WebhookDelivery.objects.exclude(status="delivered"),
        timeout=60,
        message="every webhook delivered:\n" + stack.logs(),
    )
    # and: each request verifies with the docs' snippet; the failed one came again with the same id and bytes
    received = receiver.received
    assert len(received) == 4
    assert all(verify_webhook(r.body, r.headers["Webhook-Signature"], secret) for r in received)
    assert received[0].body in [r.body for r in received[1:]]
    events = {}
    for request in received:
        event = json.loads(request.body)
        events.setdefault(event["id"], event)
    # and: sorted by seq (as a receiver does: a retry may arrive after a newer event), the payment's whole life
    life = sorted(events.values(), key=lambda event: (event["seq"], event["type"].startswith("refund")))
    assert [event["type"] for event in life] == ["payment.processing", "payment.succeeded", "refund.succeeded"]
    assert all(event["payment_id"] == payment_id for event in life)
    assert life[1]["data"]["status"] == "succeeded" and life[2]["data"]["amount"] == 400
    api.close()
