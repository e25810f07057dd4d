"""Property-based: the payments API answers what its own OpenAPI document (/api/v1/schema) says it answers.

schemathesis reads the document from the app itself and generates requests from it (positive and negative
data); every answer must not be a 5xx, must have a documented status code, content type, headers and body.
Three views of the API: anything the schema allows on random ids (mostly 404s, plus the list and create
operations), the same operations on real payments of the signed-in client in every state, and explicit
requests that walk the documented happy paths (202, 200, 303, 304, 409, 410, ...) through the same checks.
"""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from payments.api.throttling import ClientRateThrottle
from payments.cards import validate_card
from payments.models import Actor, Payment, PaymentStatus
from payments.services.cards import card_tokenize
from payments.services.payments import payment_cancel, payment_create, payment_process
from payments.services.refunds import refund_create, refund_process
from payments.services.transitions import payment_transition

# The document as any client gets it: from the running app (WSGI; Django adapts the async status view).
schema = schemathesis.openapi.from_wsgi("/api/v1/schema", application)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
import os  # EXPLORE
if os.environ.get("EXPLORE_NO_CT"):  # EXPLORE
    CHECKS.remove(content_type_conformance)  # EXPLORE


def _stat(case, r):  # EXPLORE
    with open("/tmp/fuzzstats.txt", "a") as f:  # EXPLORE
        f.write(f"{case.operation.label} {r.status_code} {case.meta.phase.name.value if case.meta else '-'}\n")


FUZZ = settings(max_examples=int(os.environ.get("EXPLORE_N", 40)), deadline=None, suppress_health_check=list(HealthCheck))
CARDS = {
    "visa": ("4242424242424242", "123"),
    "mastercard": ("5555555555554444", "123"),
    "amex": ("378282246310005", "1234"),
    "declined": ("4000000000000002", "123"),
}
CREATE_EXAMPLE = schema["/api/v1/payments"]["POST"].definition.raw["requestBody"]["content"]["application/json"][
    "examples"
]["AVisaTestCard"]["value"]


# --- steering generation towards requests that get past the first check ---------------------------------
# Generated strings almost never make a valid Idempotency-Key or a Luhn-valid card number, so without help
# every write would stop at its 400 or 422. These hooks offer a valid variant next to what was generated
# (Hypothesis picks either), so the fuzzed amounts, currencies, metadata and refund bodies reach the code
# behind the validation too.


@schema.hook
def flatmap_headers(context, headers):
    if context.operation is None or "Idempotency-Key" not in {
        p.name for p in context.operation.iter_parameters() if p.location == "header"
    }:
        return st.just(headers)
    valid = st.builds(lambda key: {**(headers or {}), "Idempotency-Key": str(key)}, st.uuids())
    return st.one_of(st.just(headers), valid)


@schema.hook
def flatmap_body(context, body):
    if context.operation is None or context.operation.label != "POST /api/v1/payments":
        return st.just(body)
    if not isinstance(body, dict) or not isinstance(body.get("card"), dict):
        return st.just(body)
    with_card = st.sampled_from(sorted(CARDS)).map(
        lambda name: {
            **body,
            "card": {"number": CARDS[name][0], "cvc": CARDS[name][1], "exp_month": 12, "exp_year": 2030},
        }
    )
    return st.one_of(st.just(body), with_card)


# --- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture
def merchant(transactional_db, monkeypatch, settings):
    """A real user with a DRF token. The rate limit is raised (configuration) so the fuzzer is not a 429 test,
    and a long-poll may hold at most 1 s, so `?wait=` on an unfinished payment costs one second, not 30."""
    monkeypatch.setattr(ClientRateThrottle, "THROTTLE_RATES", {"client": "1000000/min"})
    settings.PAYMENTS_MAX_LONG_POLL = 1
    user = get_user_model().objects.create_user(username="fuzz-merchant")
    user.auth_headers = {"Authorization": f"Token {Token.objects.create(user=user).key}"}
    return user


def _payment(owner, card: str = "visa", amount: int = 2400, currency: str = "USD") -> Payment:
    number, cvc = CARDS[card]
    details = validate_card(number=number, exp_month=12, exp_year=2030, cvc=cvc)
    return payment_create(
        amount=amount, currency=currency, card=card_tokenize(details), actor=Actor.API, owner_user=owner
    )


def _succeeded(owner, card: str) -> Payment:
    payment = payment_process(payment_id=_payment(owner, card).pk)
    assert payment.status == PaymentStatus.SUCCEEDED
    return payment


@pytest.fixture
def payments_in_every_state(merchant):
    """The merchant's payments in every state (and one of another client's), as the fuzzer's path ids."""
    pending = _payment(merchant)
    processing = payment_transition(
        payment_id=_payment(merchant).pk, to_status=PaymentStatus.PROCESSING, actor=Actor.WORKER
    )
    unknown = payment_transition(
        payment_id=payment_transition(
            payment_id=_payment(merchant, "mastercard").pk, to_status=PaymentStatus.PROCESSING, actor=Actor.WORKER
        ).pk,
        to_status=PaymentStatus.UNKNOWN,
        actor=Actor.WORKER,
    )
    canceled = payment_cancel(payment_id=_payment(merchant, "amex").pk, actor=Actor.API)
    failed = payment_process(payment_id=_payment(merchant, "declined").pk)
    succeeded = _succeeded(merchant, "visa")
    with_refund_in_flight = _succeeded(merchant, "mastercard")
    refund_create(payment_id=with_refund_in_flight.pk, actor=Actor.API, amount=100, reason="in flight")
    partially_refunded = _succeeded(merchant, "amex")
    refund_process(
        refund_id=refund_create(payment_id=partially_refunded.pk, actor=Actor.API, amount=400).pk, actor=Actor.API
    )
    refunded = _succeeded(merchant, "visa")
    refund_process(refund_id=refund_create(payment_id=refunded.pk, actor=Actor.API).pk, actor=Actor.API)
    strangers = _payment(get_user_model().objects.create_user(username="someone-else"))
    payments = [
        pending,
        processing,
        unknown,
        canceled,
        failed,
        succeeded,
        with_refund_in_flight,
        partially_refunded,
        refunded,
        strangers,
    ]
    statuses = {Payment.objects.get(pk=p.pk).status for p in payments}
    assert statuses == set(PaymentStatus.values), statuses
    return [Payment.objects.get(pk=p.pk) for p in payments]


# --- 1. everything the schema allows, on generated ids ------------------------------------------------------


@schema.parametrize()
@FUZZ
def test_every_operation_answers_as_documented(case, merchant):
    _stat(case, case.call_and_validate(headers=merchant.auth_headers, checks=CHECKS))


# --- 2. the same operations on the client's real payments, in every state --------------------------------


@schema.include(path_regex=r"\{payment_id\}").parametrize()
@schema.given(data=st.data())
@FUZZ
def test_operations_on_real_payments_answer_as_documented(case, data, merchant, payments_in_every_state):
    payment = data.draw(st.sampled_from(payments_in_every_state), label="payment")
    case.path_parameters["payment_id"] = str(payment.pk)
    if "refund_id" in case.path_parameters:
        refund_ids = [str(r.pk) for r in payment.refunds.all()]
        case.path_parameters["refund_id"] = data.draw(
            st.sampled_from([*refund_ids, str(uuid.uuid4())]), label="refund_id"
        )
    _stat(case, case.call_and_validate(headers=merchant.auth_headers, checks=CHECKS))


def test_probe_tmp(merchant, payments_in_every_state):  # EXPLORE
    import json as _j

    from rest_framework.test import APIClient

    c = APIClient(raise_request_exception=False)
    c.credentials(HTTP_AUTHORIZATION=merchant.auth_headers["Authorization"])
    body = dict(CREATE_EXAMPLE)
    for patch in ({"currency": "\ud800"}, {"metadata": {"\ud800": "x" * 501}}, {"card": {**body["card"], "number": "\ud800"}}, {"metadata": {"\u0000": "x"}}):
        r = c.post("/api/v1/payments", _j.dumps({**body, **patch}), content_type="application/json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
        print("PROBE", repr(patch)[:60], r.status_code, r.content[:150])
    pending = payments_in_every_state[0]
    for q in ("wait=%C2%B2", "wait=%D9%A3", "wait=1%C2%B2"):
        r = c.get(f"/api/v1/payments/{pending.pk}/status?{q}")
        print("WAIT", q, r.status_code, r.content[:150])
    r = c.get(f"/api/v1/payments/{pending.pk}/status", HTTP_IF_NONE_MATCH=f'"{pending.pk}.\u00b2"')
    print("INM", r.status_code, r.content[:150])
    r = c.get("/api/v1/payments?status=\u00b2&created_after=%C2%B2")
    print("LIST", r.status_code, r.content[:200])
