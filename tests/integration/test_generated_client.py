"""A client generated from our OpenAPI document works for every operation (issue 13, item 2).

The suite generates the client with openapi-python-client from the document the live server serves (into the
test's temporary directory; nothing generated is committed), and drives it against daphne and a real RQ worker,
as a merchant's integration would: with `raise_on_unexpected_status=True`, so an answer whose status code the
document does not list for its operation raises `errors.UnexpectedStatus`. Each parsed result is checked field by
field against the generated models (tests/integration/generated_client.py). The operations come from the
document: one it lists that the first test does not call fails it.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from payments.models import Actor, PaymentStatus
from payments.services.transitions import payment_transition
from tests.integration.generated_client import GeneratedApi, generate_client, unload_client
from tests.integration.openapi import api_document, merchant, paid_payment

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
DECLINED = {**CARD, "number": "4000 0000 0000 0002"}
UNKNOWN_ID = uuid.UUID("00000000-0000-4000-8000-000000000000")


@pytest.fixture
def generated(live_stack, tmp_path):
    """The live stack, the client generated from the document it serves, and a merchant's client of it."""
    document = api_document(live_stack.http_url)
    package = generate_client(document, tmp_path)
    user = merchant()
    client = package.AuthenticatedClient(
        base_url=live_stack.http_url,
        token=user.token,
        prefix="Token",
        raise_on_unexpected_status=True,
        timeout=httpx.Timeout(60),
    )
    api = GeneratedApi(package, document, client)
    api.package, api.stack, api.user = package, live_stack, user
    yield api
    client.get_httpx_client().close()
    unload_client(tmp_path)


def key() -> str:
    return str(uuid.uuid4())


def new_payment(api, card=CARD, amount: int = 2400, **fields):
    body = api.models.PaymentCreateRequest.from_dict({"amount": amount, "currency": "USD", "card": card, **fields})
    return api("payments_create", expect=202, body=body, idempotency_key=key()).parsed


def not_final(api) -> set[int]:
    """What the status URL answers while a payment is not final: its documented 2xx codes."""
    return {status for status in api.operations["payments_status"].documented if 200 <= status < 300}


def test_the_generated_client_pays_follows_lists_cancels_and_refunds(generated):
    api, models = generated, generated.models

    # given: a payment made through the client, and its retry with the same key (quoted, as the draft sends it)
    body = models.PaymentCreateRequest.from_dict(
        {"amount": 2400, "currency": "USD", "card": CARD, "description": "Order 1042", "metadata": {"order": "1042"}}
    )
    sent_key = key()
    created = api("payments_create", expect=202, body=body, idempotency_key=sent_key)
    payment = created.parsed
    assert created.headers["Location"].endswith(f"/api/v1/payments/{payment.id}/status")
    replay = api("payments_create", expect=202, body=body, idempotency_key=f'"{sent_key}"')
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.parsed.id == payment.id

    # when: the client follows it before any worker runs
    polled = api("payments_status", expect=not_final(api), payment_id=payment.id)
    assert polled.parsed.id == payment.id and not polled.parsed.has_outcome
    api("payments_status", expect=304, payment_id=payment.id, if_none_match=polled.headers["ETag"])

    # and: cancels another while it is pending, and makes one with a card the bank declines
    pending = new_payment(api, amount=1000)
    canceled = api("payments_cancel", expect=202, payment_id=pending.id).parsed
    assert canceled.status == models.PaymentStatusEnum.CANCELED and canceled.has_outcome
    assert api("payments_cancel", expect=410, payment_id=pending.id).parsed.code == "payment_final"
    declined = new_payment(api, card=DECLINED, amount=500)

    # and: a real worker takes the queue
    api.stack.run_worker_burst()

    # then: the status URL sends the client to each payment, with its outcome
    final = api("payments_status", expect=303, payment_id=payment.id, wait=5)
    assert final.parsed.status == models.PaymentStatusEnum.SUCCEEDED and final.parsed.failure is None
    assert final.headers["Location"].endswith(f"/api/v1/payments/{payment.id}")
    refused = api("payments_status", expect=303, payment_id=declined.id).parsed
    assert refused.status == models.PaymentStatusEnum.FAILED and refused.failure.code == "card_declined"

    # and: the payment reads back whole
    detail = api("payments_retrieve", expect=200, payment_id=payment.id).parsed
    assert detail.metadata.additional_properties == {"order": "1042"} and detail.description == "Order 1042"
    assert detail.amount_captured == 2400 and detail.events[-1].to_status == "succeeded"

    # and: the list filters and pages
    succeeded = api(
        "payments_list", expect=200, status=models.PaymentsListStatus.SUCCEEDED, created_after=payment.created_at
    ).parsed
    assert [p.id for p in succeeded.results] == [payment.id]
    first = api("payments_list", expect=200, limit=2).parsed
    cursor = parse_qs(urlsplit(first.next_).query)["cursor"][0]
    rest = api("payments_list", expect=200, limit=2, cursor=cursor).parsed
    assert rest.next_ is None
    assert {p.id for p in first.results + rest.results} == {payment.id, pending.id, declined.id}

    # and: a partial refund goes through the worker too
    asked = api(
        "refunds_create",
        expect=202,
        payment_id=payment.id,
        body=models.RefundCreateRequest.from_dict({"amount": 400, "reason": "one cup broken"}),
        idempotency_key=key(),
    )
    refund = asked.parsed
    assert asked.headers["Location"].endswith(f"/api/v1/payments/{payment.id}/refunds/{refund.id}")
    assert [r.id for r in api("refunds_list", expect=200, payment_id=payment.id).parsed.results] == [refund.id]
    api.stack.run_worker_burst()
    done = api("refunds_retrieve", expect=200, payment_id=payment.id, refund_id=refund.id).parsed
    assert done.status == models.RefundStatusEnum.SUCCEEDED and done.amount == 400
    after = api("payments_retrieve", expect=200, payment_id=payment.id).parsed
    assert after.status == models.PaymentStatusEnum.PARTIALLY_REFUNDED and after.amount_refunded == 400

    # and: a webhook endpoint is registered (its secret in that answer only), read, listed, changed, rotated, deleted
    body = models.WebhookEndpointCreateRequest.from_dict(
        {"url": "http://127.0.0.1:9/hooks", "events": ["payment.succeeded", "refund.succeeded"]}
    )
    endpoint = api("webhook_endpoints_create", expect=201, body=body).parsed
    assert endpoint.secret.startswith("whsec_") and endpoint.enabled
    read = api("webhook_endpoints_retrieve", expect=200, endpoint_id=endpoint.id).parsed
    assert read.url == "http://127.0.0.1:9/hooks" and not hasattr(read, "secret")
    assert [e.id for e in api("webhook_endpoints_list", expect=200).parsed.results] == [endpoint.id]
    disabled = api(
        "webhook_endpoints_update",
        expect=200,
        endpoint_id=endpoint.id,
        body=models.PatchedWebhookEndpointUpdateRequest.from_dict({"enabled": False, "events": ["*"]}),
    ).parsed
    assert disabled.enabled is False
    rotated = api("webhook_endpoints_rotate_secret", expect=200, endpoint_id=endpoint.id).parsed
    assert rotated.secret != endpoint.secret and rotated.previous_secret_expires_at is not None
    api("webhook_endpoints_delete", expect=204, endpoint_id=endpoint.id)
    api("webhook_endpoints_retrieve", expect=404, endpoint_id=endpoint.id)

    # and: that was every operation the document lists (one added to it fails here until it is driven above)
    assert api.called == set(api.operations), sorted(set(api.operations) - api.called)


def test_the_generated_client_parses_every_refusal_as_a_problem(generated):
    api, models = generated, generated.models
    problem = models.ProblemDocument

    def refused(operation_id, status, code, **arguments):
        parsed = api(operation_id, expect=status, **arguments).parsed
        assert isinstance(parsed, problem) and (parsed.status, parsed.code) == (status, code), parsed
        return parsed

    # invalid fields: 422, naming the field, with every field's messages
    for number in ("4242 4242 4242 4241", "4242\t4242\t4242\t4242"):
        body = models.PaymentCreateRequest.from_dict(
            {"amount": 2400, "currency": "USD", "card": {**CARD, "number": number}}
        )
        invalid = refused("payments_create", 422, "validation_error", body=body, idempotency_key=key())
        assert invalid.param == "card.number" and "number" in invalid.errors.additional_properties["card"]
    # an Idempotency-Key outside the document's pattern: 400, before the body is read
    body = models.PaymentCreateRequest.from_dict({"amount": 2400, "currency": "USD", "card": CARD})
    for bad_key in ("k" * 256, '"a"b"', '""'):
        refused("payments_create", 400, "idempotency_key_missing", body=body, idempotency_key=bad_key)
    # who is asking, and whose payment it is
    stranger = api.package.AuthenticatedClient(
        base_url=api.stack.http_url, token="not-a-token", prefix="Token", raise_on_unexpected_status=True
    )
    refused("payments_retrieve", 401, "authentication_failed", client=stranger, payment_id=UNKNOWN_ID)
    refused("payments_retrieve", 404, "not_found", payment_id=UNKNOWN_ID)
    refused("refunds_retrieve", 404, "not_found", payment_id=UNKNOWN_ID, refund_id=UNKNOWN_ID)
    # the list's query: an empty filter is a 400 like any other bad one (the typed signature cannot send one)
    for name in ("status", "created_after", "created_before", "limit"):
        empty = api.send("payments_list", expect=400, method="get", url="/api/v1/payments", params={name: ""})
        assert empty.parsed.code == "validation_error" and empty.parsed.param == name
    refused("payments_list", 400, "validation_error", limit=101)
    refused("payments_list", 404, "not_found", cursor="")
    # the status URL's wait
    payment = paid_payment(api.user)
    refused("payments_status", 400, "invalid_wait", payment_id=payment.pk, wait=31)
    # cancel: a worker has it (409); it has an outcome (410)
    taken = new_payment(api)
    payment_transition(payment_id=taken.id, to_status=PaymentStatus.PROCESSING, actor=Actor.WORKER)
    refused("payments_cancel", 409, "payment_processing", payment_id=taken.id)
    refused("payments_cancel", 410, "payment_final", payment_id=payment.pk)
    # refunds: more than was captured (422), a payment that cannot be refunded (409), a client that may not (403)
    too_much = models.RefundCreateRequest.from_dict({"amount": 10**6})
    refused(
        "refunds_create", 422, "refund_exceeds_capture", payment_id=payment.pk, body=too_much, idempotency_key=key()
    )
    refused("refunds_create", 409, "payment_not_refundable", payment_id=taken.id, idempotency_key=key())
    payer = merchant("payer", can_refund=False)
    theirs = paid_payment(payer)
    payer_client = api.package.AuthenticatedClient(
        base_url=api.stack.http_url, token=payer.token, prefix="Token", raise_on_unexpected_status=True
    )
    refused(
        "refunds_create", 403, "permission_denied", client=payer_client, payment_id=theirs.pk, idempotency_key=key()
    )
    # webhook endpoints: an unknown event type (the typed signature cannot send one), and another client's endpoint
    invalid = api.send(
        "webhook_endpoints_create",
        expect=422,
        method="post",
        url="/api/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/", "events": ["payment.exploded"]},
    ).parsed
    assert invalid.code == "validation_error" and invalid.param.startswith("events")
    theirs_endpoint = api(
        "webhook_endpoints_create",
        expect=201,
        client=payer_client,
        body=models.WebhookEndpointCreateRequest.from_dict({"url": "http://127.0.0.1:9/", "events": ["*"]}),
    ).parsed
    refused("webhook_endpoints_retrieve", 404, "not_found", endpoint_id=theirs_endpoint.id)
    refused("webhook_endpoints_rotate_secret", 404, "not_found", endpoint_id=theirs_endpoint.id)
