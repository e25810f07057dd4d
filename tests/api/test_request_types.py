"""Strict where it matters (issue 13, item 3): a number sent as a string (or a float, a boolean, an exponent)
is a 422 naming the field, never read as the number it looks like; a string field takes a JSON string only."""

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
