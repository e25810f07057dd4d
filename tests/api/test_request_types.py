"""Liberal where it is harmless, strict where it matters (issue 13, item 3): a currency code in any case is the
same currency, answered upper case everywhere; a number sent as a string (or a float, a boolean, an exponent)
is a 422 naming the field, never read as the number it looks like."""

import json
import uuid

import pytest

from payments.models import Payment, Refund
from tests.api.helpers import BODY, CARD, assert_problem, create


def _key() -> str:
    return str(uuid.uuid4())


def _refund(api, payment_id: str, body: dict | str):
    raw = body if isinstance(body, str) else json.dumps(body)
    return api.post(
        f"/api/v1/payments/{payment_id}/refunds", raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY=_key()
    )


def _succeeded(payment_id: str) -> Payment:
    """The payment as a worker leaves it once the bank said yes (refunds need a captured amount)."""
    Payment.objects.filter(pk=payment_id).update(status="succeeded", amount_captured=2400, seq=3)
    return Payment.objects.get(pk=payment_id)


# --- currency codes: any case in, upper case out -------------------------------------------------------------


@pytest.mark.parametrize("currency", ["usd", "Usd", "uSD", "USD"])
def test_a_currency_code_in_any_case_is_accepted_stored_and_answered_upper_case(api, currency):
    # when
    response = create(api, {**BODY, "currency": currency})
    # then: the 202's document, the stored payment, and every other answer about it say USD
    assert response.status_code == 202, response.content
    document = response.json()
    assert document["currency"] == "USD"
    payment = Payment.objects.get(pk=document["id"])
    assert payment.currency == "USD"
    assert api.get(document["links"]["self"]).json()["currency"] == "USD"
    assert api.get(document["links"]["status"]).json()["currency"] == "USD"
    assert [p["currency"] for p in api.get("/api/v1/payments").json()["results"]] == ["USD"]
    # and a refund of it too
    _succeeded(document["id"])
    refund = _refund(api, document["id"], {"amount": 100})
    assert refund.status_code == 202, refund.content
    assert refund.json()["currency"] == "USD"
    assert Refund.objects.get().payment.currency == "USD"


def test_a_lower_case_currency_is_the_same_request_for_its_idempotency_key(api):
    # given: a payment made in "usd"
    first = create(api, {**BODY, "currency": "usd"}, key="order-7")
    # when: the client retries it with the code upper case
    again = create(api, {**BODY, "currency": "USD"}, key="order-7")
    # then: the same request, replayed, and one payment
    assert (first.status_code, again.status_code) == (202, 202)
    assert again["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1


NOT_OUR_CURRENCY = {
    "unknown": "xyz",  # not ours, in any case
    "long-s": "u\u017fd",  # "uſd": a long s, which str.upper() turns into "S"
    "trailing-space": "usd ",
    "leading-space": " USD",
    "inner-space": "US D",
    "four-letters": "USDD",
    "empty": "",
    "number": 840,  # ISO 4217's number for USD
    "null": None,
    "boolean": True,
    "list": ["USD"],
    "object": {"code": "USD"},
}


@pytest.mark.parametrize("kind", NOT_OUR_CURRENCY)
def test_a_currency_that_is_not_one_of_ours_in_some_case_is_a_422(api, kind):
    problem = assert_problem(create(api, {**BODY, "currency": NOT_OUR_CURRENCY[kind]}), 422, "validation_error")
    assert problem["param"] == "currency"
    assert not Payment.objects.exists()


# --- JSON types are strict -----------------------------------------------------------------------------------

# What a lenient parser (DRF's IntegerField, for one) would read as a number or turn into text.
NOT_AN_INTEGER = {
    "string": '"{n}"',
    "float": "{n}.0",
    "fraction": "{n}.5",
    "exponent": "{n}e0",
    "true": "true",
    "false": "false",
    "null": "null",
    "list": "[{n}]",
    "object": '{{"value": {n}}}',
}
NOT_A_STRING = {"integer": "123", "float": "123.0", "true": "true", "null": "null", "list": '["123"]', "object": "{}"}


def _payment_body_with(path: str, raw_value: str) -> str:
    """The valid payment body with the member at `path` ("amount", "card.exp_month") replaced by raw JSON."""
    marker = "__value__"
    body = json.loads(json.dumps(BODY))
    *parents, name = path.split(".")
    target = body
    for parent in parents:
        target = target[parent]
    target[name] = marker
    return json.dumps(body).replace(f'"{marker}"', raw_value)


@pytest.mark.parametrize("kind", NOT_AN_INTEGER)
@pytest.mark.parametrize(
    ("path", "good"), [("amount", 2400), ("card.exp_month", 12), ("card.exp_year", 2030)], ids=lambda v: str(v)
)
def test_an_integer_field_of_a_payment_takes_a_json_integer_only(api, path, good, kind):
    raw = _payment_body_with(path, NOT_AN_INTEGER[kind].format(n=good))
    response = api.post("/api/v1/payments", raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY=_key())
    problem = assert_problem(response, 422, "validation_error")
    assert problem["param"] == path
    assert not Payment.objects.exists()


@pytest.mark.parametrize("kind", NOT_A_STRING)
@pytest.mark.parametrize("path", ["card.number", "card.cvc", "description", "metadata.order"])
def test_a_string_field_of_a_payment_takes_a_json_string_only(api, path, kind):
    raw = _payment_body_with(path, NOT_A_STRING[kind])
    response = api.post("/api/v1/payments", raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY=_key())
    problem = assert_problem(response, 422, "validation_error")
    assert problem["param"] == path
    assert not Payment.objects.exists()


@pytest.mark.parametrize("kind", NOT_AN_INTEGER)
def test_a_refund_amount_takes_a_json_integer_only(api, kind):
    payment = _succeeded(create(api).json()["id"])
    raw = '{"amount": ' + NOT_AN_INTEGER[kind].format(n=100) + "}"
    problem = assert_problem(_refund(api, str(payment.pk), raw), 422, "validation_error")
    assert problem["param"] == "amount"
    assert not Refund.objects.exists()


@pytest.mark.parametrize("kind", NOT_A_STRING)
def test_a_refund_reason_takes_a_json_string_only(api, kind):
    payment = _succeeded(create(api).json()["id"])
    problem = assert_problem(
        _refund(api, str(payment.pk), '{"reason": ' + NOT_A_STRING[kind] + "}"), 422, "validation_error"
    )
    assert problem["param"] == "reason"
    assert not Refund.objects.exists()


def test_the_integers_a_client_means_are_taken(api):
    # the strictness is about types, not values: the plain JSON integers still work
    response = create(api, {**BODY, "card": {**CARD, "exp_month": 1, "exp_year": 2031}, "amount": 1})
    assert response.status_code == 202, response.content
