"""Property-based: the payments API answers what its own OpenAPI document (/api/v1/schema) says it answers.

schemathesis loads the document from the app itself and generates requests from it (positive and negative
data, through its examples, coverage and fuzzing phases). Every answer must not be a 5xx and must have a
documented status code, content type, headers and body. Four views of the API:

1. every operation with whatever the schema allows (random ids: mostly 404s; list and create really run);
2. the operations on a payment id on the signed-in client's real payments, in every state (and a stranger's);
3. explicit requests that walk every documented outcome (202, replay, 200, 303, 304, 400, 401, 404, 409,
   410, 422, 429, 503) through the same checks, so a run never passes on 4xx alone;
4. hostile inputs the generators rarely or never produce (NUL, lone surrogates, Unicode digits);
5. stateful: sequences of calls chained by the document's links (those schemathesis infers from it: a payment's id
   from a 202 or a list into every operation on that payment, a refund's id into the refund), so calls reach
   payments and refunds the sequence itself made, in whatever states it drove them to.

It fails when the product is wrong; it is not relaxed to pass.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qsl, urlsplit

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

from config.wsgi import application
from payments.api.throttling import ClientRateThrottle
from payments.cards import validate_card
from payments.models import Actor, IdempotencyRecord, Payment, PaymentEvent, PaymentStatus, Refund
from payments.services.cards import card_tokenize
from payments.services.dispatch import payment_enqueue
from payments.services.payments import payment_cancel, payment_create, payment_process
from payments.services.refunds import refund_create, refund_process
from payments.services.transitions import payment_transition

# The document as any client gets it, from the app itself (WSGI: Django adapts the async status view).
schema = schemathesis.openapi.from_wsgi("/api/v1/schema", application)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 50
FUZZ = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
CARDS = {
    "visa": ("4242424242424242", "123"),
    "mastercard": ("5555555555554444", "123"),
    "amex": ("378282246310005", "1234"),
    "declined": ("4000000000000002", "123"),
    "three_d_secure": ("4000002760003184", "123"),
}
PAYMENTS = "/api/v1/payments"
PAYMENT = "/api/v1/payments/{payment_id}"
STATUS = "/api/v1/payments/{payment_id}/status"
CANCEL = "/api/v1/payments/{payment_id}/cancel"
REFUNDS = "/api/v1/payments/{payment_id}/refunds"
REFUND = "/api/v1/payments/{payment_id}/refunds/{refund_id}"
# The request example the schema itself documents for POST /payments.
CREATE_EXAMPLE = schema[PAYMENTS]["POST"].definition.raw["requestBody"]["content"]["application/json"]["examples"][
    "AVisaTestCard"
]["value"]


# --- steering generation past the first check ----------------------------------------------------------
# A generated string is almost never a valid Idempotency-Key or a Luhn-valid card number, so every write
# would stop at its 400 or 422. These hooks offer a valid variant next to what was generated (Hypothesis
# draws either), so fuzzed amounts, currencies, metadata and refund bodies reach the code behind validation.


def _takes_idempotency_key(operation) -> bool:
    return any(p.location == "header" and p.name == "Idempotency-Key" for p in operation.iter_parameters())


@schema.hook
def flatmap_headers(context, headers):
    if context.operation is None or not _takes_idempotency_key(context.operation):
        return st.just(headers)
    valid = st.builds(lambda key: {**(headers or {}), "Idempotency-Key": str(key)}, st.uuids())
    return st.one_of(st.just(headers), valid)


@schema.hook
def flatmap_body(context, body):
    if context.operation is None or context.operation.label != f"POST {PAYMENTS}":
        return st.just(body)
    if not isinstance(body, dict) or not isinstance(body.get("card"), dict):
        return st.just(body)
    with_test_card = st.sampled_from(sorted(CARDS)).map(
        lambda name: {
            **body,
            "card": {"number": CARDS[name][0], "cvc": CARDS[name][1], "exp_month": 12, "exp_year": 2030},
        }
    )
    return st.one_of(st.just(body), with_test_card)


# --- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture
def merchant(transactional_db, monkeypatch, settings):
    """A real user with a DRF token.

    Configuration, not mocking: the rate limit is raised so the fuzzer does not turn into a 429 test (the
    429 is exercised on its own below), and a long-poll holds at most 1 s, so a generated `?wait=` on an
    unfinished payment costs one second instead of up to 30.
    """
    monkeypatch.setattr(ClientRateThrottle, "THROTTLE_RATES", {"client": "1000000/min"})
    settings.PAYMENTS_MAX_LONG_POLL = 1
    user = get_user_model().objects.create_user(username="fuzz-merchant")
    # A merchant: it may refund the payments it made (a payer may not, see test_authorization).
    user.user_permissions.add(Permission.objects.get(codename="refund_payment", content_type__app_label="payments"))
    user.auth_headers = {"Authorization": f"Token {Token.objects.create(user=user).key}"}
    return user


def _payment(owner, card: str = "visa", amount: int = 2400) -> Payment:
    number, cvc = CARDS[card]
    details = validate_card(number=number, exp_month=12, exp_year=2030, cvc=cvc)
    return payment_create(amount=amount, currency="USD", card=card_tokenize(details), actor=Actor.API, owner_user=owner)


def _processing(owner, card: str = "visa") -> Payment:
    return payment_transition(
        payment_id=_payment(owner, card).pk, to_status=PaymentStatus.PROCESSING, actor=Actor.WORKER
    )


def _succeeded(owner, card: str = "visa") -> Payment:
    payment = payment_process(payment_id=_payment(owner, card).pk)
    assert payment.status == PaymentStatus.SUCCEEDED
    return payment


@pytest.fixture
def payments_in_every_state(merchant):
    """The merchant's payments in every status (and one of another client's, which must be a 404)."""
    unknown = payment_transition(
        payment_id=_processing(merchant, "mastercard").pk, to_status=PaymentStatus.UNKNOWN, actor=Actor.WORKER
    )
    with_refund_in_flight = _succeeded(merchant, "mastercard")
    refund_create(payment_id=with_refund_in_flight.pk, actor=Actor.API, amount=100, reason="in flight")
    partially_refunded = _succeeded(merchant, "amex")
    refund_process(
        refund_id=refund_create(payment_id=partially_refunded.pk, actor=Actor.API, amount=400).pk, actor=Actor.API
    )
    refunded = _succeeded(merchant, "visa")
    refund_process(refund_id=refund_create(payment_id=refunded.pk, actor=Actor.API).pk, actor=Actor.API)
    ids = [
        _payment(merchant).pk,  # pending
        _processing(merchant).pk,
        unknown.pk,
        payment_cancel(payment_id=_payment(merchant, "amex").pk, actor=Actor.API).pk,
        payment_process(payment_id=_payment(merchant, "declined").pk).pk,  # failed
        payment_process(payment_id=_payment(merchant, "three_d_secure").pk).pk,  # requires_action
        _succeeded(merchant, "visa").pk,
        with_refund_in_flight.pk,
        partially_refunded.pk,
        refunded.pk,
        _payment(get_user_model().objects.create_user(username="someone-else")).pk,
    ]
    payments = list(Payment.objects.filter(pk__in=ids))
    assert {p.status for p in payments} == set(PaymentStatus.values)
    return payments


# --- 1. every operation, with whatever the schema allows ----------------------------------------------------


@schema.parametrize()
@FUZZ
def test_every_operation_answers_as_documented(case, merchant):
    case.call_and_validate(headers=merchant.auth_headers, checks=CHECKS)


# --- 2. the operations on a payment, on the client's real payments in every state ---------------------------


@schema.include(path_regex=r"\{payment_id\}").parametrize()
@schema.given(data=st.data())
@settings(FUZZ, phases=[Phase.generate, Phase.target, Phase.shrink])  # the schema's examples ran in test 1
def test_operations_on_real_payments_answer_as_documented(case, data, merchant, payments_in_every_state):
    payment = data.draw(st.sampled_from(payments_in_every_state), label="payment")
    case.path_parameters["payment_id"] = str(payment.pk)
    if "refund_id" in case.path_parameters:
        refund_ids = sorted(str(refund.pk) for refund in payment.refunds.all())
        case.path_parameters["refund_id"] = data.draw(st.sampled_from([*refund_ids, str(uuid.uuid4())]), label="refund")
    case.call_and_validate(headers=merchant.auth_headers, checks=CHECKS)


# --- 3. every documented outcome, on purpose -----------------------------------------------------------------


def send(merchant, path: str, method: str, expected: int, *, auth: dict | None = None, checks=CHECKS, **request):
    """One explicit request through the same checks; `expected` proves the outcome was really reached."""
    case = schema[path][method].Case(**request)
    response = case.call(headers=merchant.auth_headers if auth is None else auth)
    assert response.status_code == expected, response.content[:500]
    case.validate_response(response, checks=checks)
    return response


def key() -> dict:
    return {"Idempotency-Key": f'"{uuid.uuid4()}"'}


def test_create_replay_and_idempotency_outcomes(merchant):
    headers = key()
    first = send(merchant, PAYMENTS, "POST", 202, body=CREATE_EXAMPLE, headers=headers)
    replay = send(merchant, PAYMENTS, "POST", 202, body=CREATE_EXAMPLE, headers=headers)
    assert replay.headers["idempotent-replayed"] == ["true"] and replay.json() == first.json()
    send(merchant, PAYMENTS, "POST", 422, body={**CREATE_EXAMPLE, "amount": 1}, headers=headers)  # key reused
    send(merchant, PAYMENTS, "POST", 400, body=CREATE_EXAMPLE, headers={})  # no key
    send(merchant, PAYMENTS, "POST", 400, body=CREATE_EXAMPLE, headers={"Idempotency-Key": "k" * 256})
    send(merchant, PAYMENTS, "POST", 422, body={**CREATE_EXAMPLE, "currency": "XXX"}, headers=key())


def test_status_detail_and_list_outcomes(merchant):
    created = send(merchant, PAYMENTS, "POST", 202, body=CREATE_EXAMPLE, headers=key()).json()
    path = {"payment_id": created["id"]}
    polled = send(merchant, STATUS, "GET", 202, path_parameters=path)
    etag = polled.headers["etag"][0]
    send(merchant, STATUS, "GET", 304, path_parameters=path, headers={"If-None-Match": etag})
    send(merchant, STATUS, "GET", 202, path_parameters=path, query={"wait": 1})  # a long-poll that times out
    send(merchant, STATUS, "GET", 400, path_parameters=path, query={"wait": 31})
    payment_process(payment_id=created["id"])
    final = send(merchant, STATUS, "GET", 303, path_parameters=path, headers={"If-None-Match": etag})
    assert final.headers["location"] == [created["links"]["self"]]
    send(merchant, PAYMENT, "GET", 200, path_parameters=path)
    send(merchant, PAYMENTS, "POST", 202, body=CREATE_EXAMPLE, headers=key())
    page = send(merchant, PAYMENTS, "GET", 200, query={"limit": 1}).json()
    following = dict(parse_qsl(urlsplit(page["next"]).query))  # two payments, one per page: there is a next
    send(merchant, PAYMENTS, "GET", 200, query=following)
    send(merchant, PAYMENTS, "GET", 200, query={"status": "succeeded", "created_after": created["created_at"]})
    send(merchant, PAYMENTS, "GET", 400, query={"status": "lost"})
    send(merchant, PAYMENTS, "GET", 404, query={"cursor": "not-a-cursor"})


def test_cancel_outcomes(merchant):
    send(merchant, CANCEL, "POST", 202, path_parameters={"payment_id": str(_payment(merchant).pk)})
    send(merchant, CANCEL, "POST", 409, path_parameters={"payment_id": str(_processing(merchant).pk)})
    send(merchant, CANCEL, "POST", 410, path_parameters={"payment_id": str(_succeeded(merchant).pk)})


def test_refund_outcomes(merchant):
    payment = _succeeded(merchant)
    path = {"payment_id": str(payment.pk)}
    partial = send(
        merchant, REFUNDS, "POST", 202, path_parameters=path, body={"amount": 400, "reason": "one"}, headers=key()
    )
    send(merchant, REFUNDS, "POST", 422, path_parameters=path, body={"amount": 10**6}, headers=key())  # too much
    send(merchant, REFUNDS, "POST", 202, path_parameters=path, body={}, headers=key())  # the rest
    send(merchant, REFUNDS, "POST", 422, path_parameters=path, body={}, headers=key())  # nothing left
    send(merchant, REFUNDS, "POST", 400, path_parameters=path, body={})  # no key
    send(merchant, REFUNDS, "GET", 200, path_parameters=path)
    send(merchant, REFUND, "GET", 200, path_parameters={**path, "refund_id": partial.json()["id"]})
    send(merchant, REFUND, "GET", 404, path_parameters={**path, "refund_id": str(uuid.uuid4())})
    failed = payment_process(payment_id=_payment(merchant, "declined").pk)
    send(merchant, REFUNDS, "POST", 409, path_parameters={"payment_id": str(failed.pk)}, body={}, headers=key())


def test_who_may_ask_outcomes(merchant):
    theirs = {"payment_id": str(_payment(get_user_model().objects.create_user(username="someone-else")).pk)}
    send(merchant, PAYMENT, "GET", 404, path_parameters=theirs)
    send(merchant, STATUS, "GET", 404, path_parameters=theirs)
    mine = {"payment_id": str(_payment(merchant).pk)}
    for bad in ({}, {"Authorization": "Token not-a-token"}):
        send(merchant, PAYMENTS, "GET", 401, auth=bad)
        send(merchant, PAYMENT, "GET", 401, auth=bad, path_parameters=mine)
        send(merchant, STATUS, "GET", 401, auth=bad, path_parameters=mine)
        send(merchant, PAYMENTS, "POST", 401, auth=bad, body=CREATE_EXAMPLE, headers=key())


def test_throttled_outcomes(merchant, monkeypatch):
    monkeypatch.setattr(ClientRateThrottle, "THROTTLE_RATES", {"client": "1/min"})
    path = {"payment_id": str(_payment(merchant).pk)}
    send(merchant, PAYMENT, "GET", 200, path_parameters=path)
    send(merchant, PAYMENT, "GET", 429, path_parameters=path)
    send(merchant, STATUS, "GET", 429, path_parameters=path)
    send(merchant, PAYMENTS, "POST", 429, body=CREATE_EXAMPLE, headers=key())


def test_load_shedding_outcome(merchant, settings):
    settings.PAYMENTS_MAX_BACKLOG = 0
    payment_enqueue(payment_id=uuid.uuid4())  # one job waiting: over the backlog limit
    # A documented, deliberate 503: every check but "no 5xx".
    checks = [check for check in CHECKS if check is not not_a_server_error]
    send(merchant, PAYMENTS, "POST", 503, body=CREATE_EXAMPLE, headers=key(), checks=checks)
    assert not Payment.objects.exists()


# --- 4. hostile inputs -------------------------------------------------------------------------------------
# Strings the generators rarely or never produce (Hypothesis' text excludes lone surrogates), sent as any
# client can: a JSON escape, a percent-encoded query, a Latin-1 header. None may be a 5xx.


HOSTILE_BODIES = {
    "nul-in-a-metadata-key": {**CREATE_EXAMPLE, "metadata": {"order\u0000id": "1042"}},
    "surrogate-metadata-key": {**CREATE_EXAMPLE, "metadata": {"\ud800": "1042"}},
    "surrogate-currency": {**CREATE_EXAMPLE, "currency": "\ud800"},
    "surrogate-description": {**CREATE_EXAMPLE, "description": "\ud800"},
    "nul-description": {**CREATE_EXAMPLE, "description": "a\u0000b"},
    # SUPERSCRIPT TWO: str.isdigit() says yes, int() says no.
    "superscript-digit-in-card-number": {
        **CREATE_EXAMPLE,
        "card": {**CREATE_EXAMPLE["card"], "number": "424242424242424\u00b2"},
    },
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hostile_create_bodies_answer_as_documented(merchant, name):
    # Sent as JSON with \u escapes (json.dumps' default), which any JSON parser accepts, lone surrogates too.
    case = schema[PAYMENTS]["POST"].Case(body=HOSTILE_BODIES[name], headers=key())
    response = case.call(headers=merchant.auth_headers)
    case.validate_response(response, checks=CHECKS)
    if response.status_code == 202:  # what was accepted must be readable afterwards
        send(merchant, PAYMENT, "GET", 200, path_parameters={"payment_id": response.json()["id"]})


@pytest.mark.parametrize(
    ("query", "if_none_match"),
    [
        ({"wait": "\u00b2"}, None),  # SUPERSCRIPT TWO: str.isdigit() says yes, int() says no
        ({}, "\u00b2"),  # the same in the seq of an ETag sent back (Latin-1, so a header may carry it)
    ],
    ids=["wait-superscript-two", "if-none-match-superscript-seq"],
)
def test_unicode_digits_on_the_status_url_answer_as_documented(merchant, query, if_none_match):
    payment = _payment(merchant)
    headers = {"If-None-Match": f'"{payment.pk}.{if_none_match}"'} if if_none_match else {}
    case = schema[STATUS]["GET"].Case(path_parameters={"payment_id": str(payment.pk)}, query=query, headers=headers)
    case.call_and_validate(headers=merchant.auth_headers, checks=CHECKS)


# --- 5. stateful: sequences chained by the document's links ------------------------------------------------------
# schemathesis 4 infers OpenAPI links from the document (an `id` answered by one operation feeding the
# `{payment_id}` of another) and drives them as a Hypothesis state machine. Bounded: a few dozen short scenarios.

STATEFUL = settings(
    max_examples=20,
    stateful_step_count=10,
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def test_stateful_links_reach_every_operation_on_a_payment():
    # given: the links schemathesis finds in (or infers from) the document
    schema.as_state_machine()
    linked = schema.operations_with_incoming_links()
    # then: every operation that names a payment (or a refund) can be reached with an id a scenario obtained
    on_a_resource = {operation.ok().label for operation in schema.get_all_operations() if "{" in operation.ok().path}
    assert on_a_resource and on_a_resource <= linked, on_a_resource - linked


def test_stateful_sequences_answer_as_documented(merchant):
    made = []

    class Scenarios(schema.as_state_machine()):
        def setup(self):
            # Each scenario starts from the same (empty) account: Hypothesis replays choices, and answers that
            # depend on what earlier scenarios left behind would make its generation non-deterministic.
            Refund.objects.filter(payment__owner_user=merchant).delete()
            PaymentEvent.objects.filter(payment__owner_user=merchant).delete()
            IdempotencyRecord.objects.filter(owner_user=merchant).delete()
            Payment.objects.filter(owner_user=merchant).delete()

        def get_call_kwargs(self, case):
            return {"headers": merchant.auth_headers}

        def after_call(self, response, case):
            super().after_call(response, case)
            # A worker that takes payments of an even amount at once (the sandbox bank charges them); odd ones
            # stay pending. So the links reach cancelable payments and refundable ones alike.
            if case.operation.label == f"POST {PAYMENTS}" and response.status_code == 202:
                made.append(response.json()["id"])
                if response.json()["amount"] % 2 == 0:
                    payment_process(payment_id=response.json()["id"])

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            checks = [*CHECKS, use_after_free, ensure_resource_availability]
            case.validate_response(response, checks=checks, recorder=self.recorder)

    Scenarios.run(settings=STATEFUL)
    # and the scenarios really made payments (not only refused requests)
    assert made
