"""Inputs that once reached a 500 or slipped past a check (found by fuzzing and by hand); each is a clear
4xx now, and nothing is recorded."""

import json
import re
import time
import uuid
from urllib.parse import urlencode

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from checkout.models import CheckoutAttempt, Order, OrderLine, Product
from payments.models import Actor, IdempotencyRecord, Payment, PaymentEvent, Refund
from payments.services.payments import payment_process
from payments.services.refunds import refund_create
from tests.api.helpers import BODY, CARD, PROBLEM, assert_problem, create
from tests.integration.shop import checkout_form

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize(
    "number",
    [
        "424242424242424²",  # a superscript digit
        "4" + "100000000000019".translate(ARABIC_INDIC),  # the blocked test card, spelt with other digits
        "４２４２４２４２４２４２４２４２",  # fullwidth digits
    ],
)
def test_card_numbers_must_be_ascii_digits(api, number):
    problem = assert_problem(create(api, {**BODY, "card": {**CARD, "number": number}}), 422, "validation_error")
    assert problem["param"] == "card.number"
    assert not Payment.objects.exists()


def test_a_cvc_must_be_ascii_digits(api):
    assert_problem(create(api, {**BODY, "card": {**CARD, "cvc": "١٢٣"}}), 422, "validation_error")


@pytest.mark.parametrize(
    "change",
    [
        {"metadata": {"\ud800": "x"}},
        {"metadata": {"note": "\ud800"}},
        {"metadata": {"a\x00b": "x"}},
        {"description": "tab\tok but nul \x00 is not"},
        {"currency": "\ud800"},
    ],
)
def test_lone_surrogates_and_control_characters_are_refused(api, change):
    assert_problem(create(api, {**BODY, **change}), 422, "validation_error")
    assert not Payment.objects.exists()


def test_a_post_to_an_unknown_api_path_is_a_problem_404_not_a_csrf_page(api):
    assert_problem(api.post("/api/v1/payments/not-a-uuid/cancel"), 404, "not_found")


def test_odd_wait_and_etag_values_are_handled(api):
    status_url = create(api).json()["links"]["status"]
    assert_problem(api.get(status_url + "?wait=%C2%B2"), 400, "invalid_wait")
    assert api.get(status_url, HTTP_IF_NONE_MATCH='"x.²", W/"nonsense"').status_code == 202


@pytest.mark.django_db(transaction=True)
def test_a_guest_write_needs_the_pages_csrf_token(product):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/")
    csrf = page.cookies["csrftoken"].value
    browser.post("/cart/add", {"product_id": product.pk, "csrfmiddlewaretoken": csrf})
    accepted = browser.post(
        "/checkout", {**checkout_form("4242424242424242"), "csrfmiddlewaretoken": csrf}, HTTP_ACCEPT="application/json"
    ).json()
    cancel = accepted["payment"]["links"]["cancel"]
    # as the page's fetch would send it: JSON, and the CSRF token in a header
    assert_problem(browser.post(cancel, content_type="application/json"), 403, "permission_denied")
    assert browser.post(cancel, content_type="application/json", HTTP_X_CSRFTOKEN=csrf).status_code == 202


@pytest.mark.django_db(transaction=True)
def test_a_long_poll_outlives_a_redis_read_timeout(api):
    # redis-py 8 times reads out after 5 s unless told otherwise; the long-poll must simply wait
    status_url = create(api).json()["links"]["status"]
    started = time.monotonic()
    response = api.get(status_url + "?wait=7")
    assert response.status_code == 202
    assert time.monotonic() - started >= 6.5


# --- every operation of the OpenAPI document, and every form, against each kind of hostile body (issue 11, item 5) --
# The operations are read from the OpenAPI document the app generates, so a new endpoint is covered the day it is
# added. A write (POST) given a hostile body answers a 4xx problem document and writes nothing. A read (GET) has no
# body to read: it answers exactly what it answers without one, and writes nothing either. test_protocol_edges.py
# goes deeper into create and refund; these are the same kinds of body, across everything.

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def _schema_operations() -> list[str]:
    document = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(f"{m.upper()} {path}" for path, item in document["paths"].items() for m in item if m in HTTP_METHODS)


def _deep(depth: int = 100_000) -> str:
    return "[" * depth + "]" * depth


HOSTILE_API_BODIES = {
    # past the 2.5 MB the API reads
    "oversized": (lambda: json.dumps({**BODY, "description": "x" * 3_000_000}), JSON),
    "deep": (lambda: '{"amount": 2400, "reason": "r", "x": ' + _deep() + "}", JSON),
    "wrong-type-array": (lambda: json.dumps([BODY]), JSON),
    "wrong-type-string": (lambda: json.dumps(json.dumps(BODY)), JSON),
    "wrong-type-fields": (
        lambda: '{"amount": "2400", "currency": 840, "card": [], "reason": 7, "metadata": "x"}',
        JSON,
    ),
    "wrong-content-type-form": (lambda: "amount=2400&currency=USD&reason=r", FORM),
    "wrong-content-type-multipart": (
        lambda: '--b\r\nContent-Disposition: form-data; name="amount"\r\n\r\n2400\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
    ),
    "wrong-content-type-text": (lambda: json.dumps(BODY), "text/plain"),
    "wrong-content-type-xml": (lambda: "<payment><amount>2400</amount></payment>", "application/xml"),
    "control-characters": (
        lambda: json.dumps(
            {**BODY, "amount": 100, "description": "a\u0000\u202eb\u001b[31m", "reason": "\u0000\u202e"}
        ),
        JSON,
    ),
    "raw-control-bytes": (lambda: b'{"amount": 100, "description": "a\x00\x07b", "reason": "\x1b[31m"}', JSON),
    "invalid-utf-8": (lambda: b'{"amount": 100, "description": "\xff\xfe\xc0\xaf", "reason": "\xed\xa0\x80"}', JSON),
}


def _written() -> tuple:
    """Everything a request could write: counted, and every status, so a change in place shows too."""
    return (
        Payment.objects.count(),
        PaymentEvent.objects.count(),
        Refund.objects.count(),
        IdempotencyRecord.objects.count(),
        Order.objects.count(),
        OrderLine.objects.count(),
        CheckoutAttempt.objects.count(),
        LogEntry.objects.count(),
        sorted(Payment.objects.values_list("status", "seq", "amount_refunded")),
        sorted(Refund.objects.values_list("status", flat=True)),
        sorted(Product.objects.values_list("stock", flat=True)),
    )


@pytest.fixture
def own_payments(api):
    """The client's payments in the states the operations act on: pending (cancel), paid with a refund (the rest)."""
    pending = create(api).json()["id"]
    paid = payment_process(payment_id=create(api).json()["id"])
    refund = refund_create(payment_id=paid.pk, actor=Actor.API, requested_by=api.user, amount=100)
    return {"pending": pending, "paid": str(paid.pk), "refund": str(refund.pk)}


def _each_kind(kinds: dict, ask) -> dict[str, str]:
    """{kind: what went wrong} for every kind whose answer `ask(kind, data, content_type)` finds wrong ("" when
    right), each asked in a savepoint rolled back afterwards: every kind meets the same data, and a request that
    wrongly wrote cannot hide the next one's answer."""
    wrong = {}
    for kind, (data, content_type) in kinds.items():
        rollback = transaction.savepoint()
        before = _written()
        problem = ask(kind, data() if callable(data) else data, content_type)
        if _written() != before:
            problem = f"{problem}; wrote {before} -> {_written()}".lstrip("; ")
        transaction.savepoint_rollback(rollback)
        if problem:
            wrong[kind] = problem
    return wrong


@pytest.mark.parametrize("operation", _schema_operations())
def test_hostile_bodies_on_every_api_operation_are_4xx_problems_and_write_nothing(api, own_payments, operation):
    # given: the operation on one of the client's own payments, in a state where a good request would act
    method, template = operation.split(" ", 1)
    payment = own_payments["pending"] if template.endswith("/cancel") else own_payments["paid"]
    path = template.replace("{payment_id}", payment).replace("{refund_id}", own_payments["refund"])
    api.raise_request_exception = False
    without_a_body = api.generic(method, path).status_code if method == "GET" else None

    # when: each kind of hostile body is sent
    def ask(kind, body, content_type) -> str:
        response = api.generic(method, path, body, content_type=content_type, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
        if method == "GET":  # a read has no body to read: the same answer as without one
            return "" if response.status_code == without_a_body else f"{response.status_code}, not {without_a_body}"
        if 400 <= response.status_code < 500 and response["Content-Type"] == PROBLEM:
            return ""
        return f"{response.status_code} {response['Content-Type']}"

    # then: a 4xx problem (a read: its usual answer), and nothing written
    assert _each_kind(HOSTILE_API_BODIES, ask) == {}


# --- the forms: checkout, cart, the admin's refund action ------------------------------------------------------------

MAX_FORM_FIELDS = 1000  # Django's DATA_UPLOAD_MAX_NUMBER_FIELDS


def _hostile_forms(good: dict, poison: tuple[str, ...], wrong_types: dict) -> dict[str, tuple]:
    """Each kind of hostile form body, made from a good one: {kind: (data, content type)}; `poison` names the
    fields that get control characters (one kind each), `wrong_types` the values of the wrong kind."""
    encoded = urlencode(good, doseq=True)
    return {
        "oversized": ({**good, poison[0]: "x" * 3_000_000}, None),
        "too-many-fields": ({**good, **{f"f{n}": "1" for n in range(MAX_FORM_FIELDS + 1)}}, None),
        "wrong-content-type-json": (json.dumps(good), JSON),
        "wrong-content-type-text": (encoded, "text/plain"),
        "wrong-content-type-xml": ("<form/>", "application/xml"),
        "broken-multipart": ("--b\r\nContent-Disposition: form-data; name=", "multipart/form-data; boundary=b"),
        "invalid-utf-8": ((encoded + f"&{poison[0]}=").encode() + b"\xff\xfe\xc0\xaf", FORM),
        "wrong-types": ({**good, **wrong_types}, None),
        **{
            f"control-characters-in-{field}": ({**good, field: f"{good.get(field, '')}\x00\u202e\x1b[2J"}, None)
            for field in poison
        },
    }


def _post(client, path: str, data, content_type, **extra):
    return client.post(path, data, **({"content_type": content_type} if content_type else {}), **extra)


@pytest.fixture
def shopper(product):
    """A guest with the product in the cart and the checkout form open (the form's token kept on the client)."""
    browser = Client(raise_request_exception=False)
    browser.post("/cart/add", {"product_id": product.pk})
    page = browser.get("/checkout")
    browser.checkout_token = re.search(r'name="checkout_token" value="([0-9a-f-]{36})"', page.text).group(1)
    return browser


CHECKOUT_CARD = "5555555555554444"  # not the test card the page itself suggests


def _checkout_forms(token: str) -> dict[str, tuple]:
    good = checkout_form(CHECKOUT_CARD, cvc="123", token=token)
    return _hostile_forms(
        good,
        ("card_number", "expiry", "cvc", "checkout_token", "shipping_country", "email"),
        {"expiry": "ab/cd", "checkout_token": "not-a-uuid", "shipping_country": ["GB", "XX"], "cvc": "12.5"},
    )


def test_hostile_checkout_form_bodies_are_4xx_and_write_nothing(shopper):
    def ask(kind, data, content_type) -> str:
        for accept in ("text/html", JSON):  # as the page posts it, and as checkout.js does
            response = _post(shopper, "/checkout", data, content_type, HTTP_ACCEPT=accept)
            if not 400 <= response.status_code < 500:
                return f"{accept}: {response.status_code}"
            if CHECKOUT_CARD.encode() in response.content:
                return f"{accept}: the card number was rendered back"
        return ""

    assert _each_kind(_checkout_forms(shopper.checkout_token), ask) == {}


def _cart_forms(product_id: str) -> dict[str, tuple]:
    return {
        **_hostile_forms({"product_id": product_id, "quantity": "1"}, ("product_id",), {"product_id": "one"}),
        "no-product": ({"quantity": "1"}, None),
        "product-id-empty": ({"product_id": "", "quantity": "1"}, None),
        "product-id-not-whole": ({"product_id": "1.5", "quantity": "1"}, None),
        "product-id-huge": ({"product_id": "9" * 30, "quantity": "1"}, None),
    }


@pytest.mark.parametrize("path", ["/cart/add", "/cart/update"])
def test_hostile_cart_form_bodies_are_4xx_and_change_nothing(shopper, product, path):
    cart = dict(shopper.session["cart"])

    def ask(kind, data, content_type) -> str:
        response = _post(shopper, path, data, content_type)
        if dict(shopper.session["cart"]) != cart:
            return f"{response.status_code}, and the cart changed"
        return "" if 400 <= response.status_code < 500 else str(response.status_code)

    assert _each_kind(_cart_forms(str(product.pk)), ask) == {}


@pytest.fixture
def refunder(db):
    """A staff user who may refund and cancel, signed in."""
    user = get_user_model().objects.create_user("refunder", is_staff=True)
    for codename in ("view_payment", "refund_payment", "cancel_payment"):
        user.user_permissions.add(Permission.objects.get(content_type__app_label="payments", codename=codename))
    browser = Client(raise_request_exception=False)
    browser.force_login(user)
    return browser


def _admin_forms(payment_id: str, step: str) -> dict[str, tuple]:
    good = {"action": "refund_in_full", "index": "0", "_selected_action": payment_id}
    poison = ["_selected_action", "action"]
    wrong_types = {"_selected_action": ["1 OR 1=1", payment_id[:8]]}
    if step == "confirmation":
        # the page's own "Yes, refund": what it promised, per payment
        good |= {"post": "yes", f"confirmed_amount-{payment_id}": "2400"}
        poison.append(f"confirmed_amount-{payment_id}")
        wrong_types[f"confirmed_amount-{payment_id}"] = "2400.0"
    kinds = _hostile_forms(good, tuple(poison), wrong_types)
    return {kind.replace(f"-{payment_id}", ""): body for kind, body in kinds.items()}


@pytest.mark.parametrize("step", ["action", "confirmation"])
def test_hostile_admin_action_bodies_are_refused_and_move_no_money(refunder, make_payment, step):
    # given: a paid payment the staff user may refund in full
    paid = payment_process(payment_id=make_payment(amount=2400).pk)

    # when: each kind of hostile body is posted as the changelist's action (or its confirmation)
    def ask(kind, data, content_type) -> str:
        response = _post(refunder, "/admin/payments/payment/", data, content_type)
        if 400 <= response.status_code < 500:
            return ""
        # else the admin's own refusal: back to the list (or the list again), saying why; never the
        # confirmation page
        back_to_the_list = response.status_code == 302 and response["Location"].startswith("/admin/payments/payment/")
        the_list = [t.name for t in response.templates][:1] == ["admin/change_list.html"]
        return (
            "" if back_to_the_list or the_list else f"{response.status_code} {[t.name for t in response.templates][:1]}"
        )

    # then: refused, and no money moved
    assert _each_kind(_admin_forms(str(paid.pk), step), ask) == {}
