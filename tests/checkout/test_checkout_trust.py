"""What the shopper's pages promise an attacker cannot break: a checkout form belongs to the shopper it was rendered
for, no page that holds a form token or a payment is cached, the card page runs only our own scripts, the card
number is never rendered back, and free text holds neither hidden formatting nor a card number."""

import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client

from checkout.models import CheckoutAttempt, Order
from payments.models import Payment
from payments.selectors import payment_ws_token
from payments.services.payments import payment_process
from payments.text import CARD_NUMBER_MESSAGE, UNPRINTABLE_MESSAGE
from tests.integration.shop import checkout_form

CARD_NUMBER = "4242 4242 4242 4242"
JSON = {"HTTP_ACCEPT": "application/json"}
TOKEN = re.compile(r'name="checkout_token" value="([0-9a-f-]{36})"')


def _shopper(product) -> Client:
    client = Client()
    client.post("/cart/add", {"product_id": product.pk})
    return client


def _rendered_token(client) -> str:
    page = client.get("/checkout")
    assert page.status_code == 200
    return TOKEN.search(page.text).group(1)


def _form(token=None, card_number=CARD_NUMBER, **fields) -> dict:
    return {**checkout_form(card_number, cvc="123", token=token), **fields}


def _assert_reveals_nothing_of(payment: Payment, text: str) -> None:
    # Whole phrases: a bare "4444" or "07" turns up by chance in a CSRF token or a form's token.
    for secret in (str(payment.pk), payment_ws_token(payment), f"•••• {payment.card_last4}", '"last4"', "exp_month"):
        assert secret not in text, f"{secret!r} of someone else's payment is in the answer"


# --- 6: a checkout form belongs to its shopper ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_someone_elses_checkout_token_starts_a_fresh_form_and_reveals_nothing(product):
    # given: a shopper paid with the form rendered for them (a card whose last 4 and expiry are not the attacker's)
    victim = _shopper(product)
    victims_token = _rendered_token(victim)
    paid = victim.post("/checkout", _form(victims_token, "5555 5555 5555 4444", expiry="07/31"), **JSON)
    assert paid.status_code == 202
    payment = Payment.objects.get(pk=paid.json()["payment_id"])
    # and: an attacker (another session, with a cart of their own) has seen that form's token
    attacker = _shopper(product)
    _rendered_token(attacker)

    # when: the attacker submits it, as a page and as checkout.js does
    page = attacker.post("/checkout", _form(victims_token))
    api = attacker.post("/checkout", _form(victims_token), **JSON)

    # then: no redirect to the shopper's wait page, nothing of the payment; a form with a token of their own
    assert page.status_code == 409 and "Location" not in page
    _assert_reveals_nothing_of(payment, page.content.decode())
    fresh_token = TOKEN.search(page.text).group(1)
    assert fresh_token != victims_token
    assert "opened in another browser session" in page.text
    assert 'value="Ada Lovelace"' in page.text  # what the attacker typed stays, except the card
    assert api.status_code == 409 and api["Content-Type"] == "application/problem+json"
    _assert_reveals_nothing_of(payment, api.content.decode())
    assert api.json()["code"] == "foreign_checkout_form"
    assert api.json()["checkout_token"] not in (victims_token, fresh_token)
    assert Payment.objects.count() == 1 and Order.objects.count() == 1
    # and: the fresh form is theirs to pay with, a payment of their own
    own = attacker.post("/checkout", _form(api.json()["checkout_token"]), **JSON)
    assert own.status_code == 202 and own.json()["payment_id"] != str(payment.pk)


@pytest.mark.django_db(transaction=True)
def test_a_token_seen_before_its_shopper_pays_cannot_be_paid_on_by_anyone_else(product):
    # given: a form rendered for a shopper who has not paid yet, whose token an attacker has seen
    shopper = _shopper(product)
    token = _rendered_token(shopper)
    attacker = _shopper(product)

    # when: the attacker pays first on it
    assert attacker.post("/checkout", _form(token), **JSON).status_code == 409

    # then: nothing was made; the shopper's own submit makes the shopper's own payment, which only they can see
    assert not Payment.objects.exists()
    answer = shopper.post("/checkout", _form(token), **JSON)
    assert answer.status_code == 202
    assert shopper.get(answer.json()["wait_url"]).status_code == 200
    assert attacker.get(answer.json()["wait_url"]).status_code == 404
    assert attacker.post("/checkout", _form(token), **JSON).status_code == 409


@pytest.mark.django_db(transaction=True)
def test_a_signed_in_shopper_may_submit_their_form_from_another_session(product):
    # given: a form rendered for a signed-in shopper
    user = get_user_model().objects.create_user("ada")
    first = _shopper(product)
    first.force_login(user)
    token = _rendered_token(first)
    # when: the same shopper, signed in elsewhere (another session, another guest id), submits it twice
    elsewhere = _shopper(product)
    elsewhere.force_login(user)
    answers = [elsewhere.post("/checkout", _form(token), **JSON) for _ in range(2)]
    # then: it is theirs: one payment, shown to them
    assert [answer.status_code for answer in answers] == [202, 202]
    assert answers[0].json()["payment_id"] == answers[1].json()["payment_id"]
    assert Payment.objects.get().owner_user == user


@pytest.mark.django_db(transaction=True)
def test_signing_in_between_rendering_and_paying_keeps_the_form(product):
    shopper = _shopper(product)
    token = _rendered_token(shopper)
    shopper.force_login(get_user_model().objects.create_user("ada"))  # the session key rotates, the guest id stays
    assert shopper.post("/checkout", _form(token), **JSON).status_code == 202


def test_every_rendered_form_is_bound_to_the_shopper_it_was_rendered_for(client, product):
    client.post("/cart/add", {"product_id": product.pk})
    tokens = {_rendered_token(client) for _ in range(2)}
    attempts = CheckoutAttempt.objects.filter(token__in=tokens)
    assert len(tokens) == 2 and attempts.count() == 2  # a fresh token for every render
    assert {str(attempt.owner_guest_id) for attempt in attempts} == {client.session["payments_guest_id"]}


# --- 12: no cache, a strict CSP, the card number never rendered back -----------------------------------------


def _no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "")


@pytest.mark.django_db(transaction=True)
def test_checkout_and_wait_pages_are_no_store(product):
    shopper = _shopper(product)
    assert _no_store(shopper.get("/cart"))
    form_page = shopper.get("/checkout")
    refused = shopper.post("/checkout", _form(_rendered_token(shopper), expiry="13/30"))
    paid = shopper.post("/checkout", _form(_rendered_token(shopper)), **JSON)
    wait_page = shopper.get(paid.json()["wait_url"])
    assert (form_page.status_code, refused.status_code, paid.status_code, wait_page.status_code) == (200, 422, 202, 200)
    for response in (form_page, refused, paid, wait_page):
        assert _no_store(response), response.get("Cache-Control")
        assert "private" in response["Cache-Control"]


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


@pytest.mark.django_db(transaction=True)
def test_card_page_has_a_strict_content_security_policy(product):
    shopper = _shopper(product)
    card_page = shopper.get("/checkout")
    paid = shopper.post("/checkout", _form(TOKEN.search(card_page.text).group(1)), **JSON)
    wait_page = shopper.get(paid.json()["wait_url"])
    for page in (card_page, wait_page):
        policy = _policy(page)
        assert policy["default-src"] == ["'self'"]
        assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no nonce: our pages have no inline script
        assert policy["style-src"] == ["'self'"]
        assert policy["connect-src"][0] == "'self'"
        assert all(re.fullmatch(r"wss?://[^*\s]\S*", source) for source in policy["connect-src"][1:])
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["form-action"] == ["'self'"]
        assert policy["base-uri"] == ["'none'"]
        assert policy["object-src"] == ["'none'"]
        # and the pages keep to it: every script is a file or a JSON data block, nothing styles inline
        html = page.content.decode()
        for script in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in script or 'type="application/json"' in script, script
        assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=|javascript:", html)


@pytest.mark.django_db(transaction=True)
def test_failed_submit_never_renders_the_card_number_back(product):
    shopper = _shopper(product)
    form = _form(_rendered_token(shopper), card_number="5555 5555 5555 4444", expiry="13/30", cvc="123")

    page = shopper.post("/checkout", form)

    assert page.status_code == 422
    html = page.content.decode()
    assert "5555 5555 5555 4444" not in html and "5555555555554444" not in html
    inputs = {name: re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group() for name in ("card_number", "cvc")}
    assert all("value=" not in tag for tag in inputs.values()), inputs
    # the other fields keep their values, and the error is shown beside its field
    assert 'value="ada@example.com"' in html and 'value="12 St James&#x27;s Square"' in html
    assert 'value="13/30"' in html
    assert re.search(r'data-error-for="expiry"\s*>The expiry month must be between 01 and 12.', html)
    assert not Payment.objects.exists()


# --- 13: free text holds no hidden formatting and no card number ---------------------------------------------

SHIPPING_FIELDS = ("shipping_name", "shipping_address", "shipping_city", "shipping_postcode")
HOSTILE_TEXT = {
    "right-to-left override": "Ada \u202eecalevoL",
    "left-to-right embedding": "\u202aAda",
    "first-strong isolate": "Ada \u2068Lovelace\u2069",
    "right-to-left mark": "Ada\u200f",
    "arabic letter mark": "Ada\u061c",
    "zero-width space": "Ada\u200bLovelace",
    "escape sequence": "Ada \x1b[31mLovelace",
    "newline": "Ada\nLovelace",
    "line separator": "Ada\u2028Lovelace",
    "byte order mark": "\ufeffAda",
}


def _refused_inline(page, field: str, message: str) -> bool:
    pattern = rf'data-error-for="{field}"\s*>{re.escape(message)}'
    return page.status_code == 422 and re.search(pattern, page.content.decode()) is not None


@pytest.mark.parametrize("field", SHIPPING_FIELDS)
@pytest.mark.parametrize("text", list(HOSTILE_TEXT.values()), ids=list(HOSTILE_TEXT))
def test_shipping_fields_refuse_control_and_bidi_characters(client, product, field, text):
    client.post("/cart/add", {"product_id": product.pk})
    form = _form(_rendered_token(client), **{field: text[:20]})

    page = client.post("/checkout", form)
    api = client.post("/checkout", form, **JSON)

    assert _refused_inline(page, field, UNPRINTABLE_MESSAGE), page.content.decode()[:2000]
    assert api.status_code == 422 and api.json()["errors"][field] == [UNPRINTABLE_MESSAGE]
    assert not Order.objects.exists() and not Payment.objects.exists()


# Not the test card the page itself shows as a hint (4242…), so that "not on the page" means something.
CARD_NUMBERS_TYPED = {
    "grouped": "4000 0566 5566 5556",
    "dashed": "4000-0566-5566-5556",
    "in a sentence": "Flat 2, card 4000056655665556",
    "with its expiry": "4000 0566 5566 5556 12/30",
    "amex": "3782 822463 10005",
    "arabic-indic digits": "٤٠٠٠٠٥٦٦٥٥٦٦٥٥٥٦",
    "fullwidth digits": "４０００ ０５６６ ５５６６ ５５５６",
    "non-breaking spaces": "4000\u00a00566\u00a05566\u00a05556",
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("field", SHIPPING_FIELDS)
@pytest.mark.parametrize("typed", list(CARD_NUMBERS_TYPED.values()), ids=list(CARD_NUMBERS_TYPED))
def test_card_number_typed_into_a_free_text_field_is_refused(product, field, typed):
    shopper = _shopper(product)

    page = shopper.post("/checkout", _form(_rendered_token(shopper), **{field: typed}))

    assert _refused_inline(page, field, CARD_NUMBER_MESSAGE)
    assert re.search(rf'<input[^>]*name="{field}"[^>]*>', page.content.decode()).group().count("value=") == 0
    html = page.content.decode()
    assert typed not in html and "4000056655665556" not in html and "378282246310005" not in html
    assert not Order.objects.exists() and not Payment.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("email", ["4000056655665556@example.com", "4000-0566-5566-5556@example.com"])
def test_card_number_typed_as_an_email_is_refused(product, email):
    shopper = _shopper(product)

    page = shopper.post("/checkout", _form(_rendered_token(shopper), email=email))

    assert _refused_inline(page, "email", CARD_NUMBER_MESSAGE)
    assert email not in page.content.decode()
    assert not Order.objects.exists() and not Payment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_shipping_details_in_any_script_with_ordinary_numbers_are_kept(product):
    shopper = _shopper(product)
    details = {
        "shipping_name": "میر\u200cرضا Łukasiewicz-O’Brien",  # a Persian name needs its zero-width non-joiner
        "shipping_address": "רחוב הרצל 12, דירה 4",  # right-to-left text as typed, without controls
        "shipping_city": "Saint-Étienne",
        "shipping_postcode": "SW1Y 4JH",
        "email": "ada+shop@example.com",
    }

    answer = shopper.post("/checkout", _form(_rendered_token(shopper), **details), **JSON)

    assert answer.status_code == 202, answer.content
    order = Payment.objects.get().order
    assert (order.shipping_name, order.shipping_address) == (details["shipping_name"], details["shipping_address"])


def test_staff_cannot_store_hostile_text_on_an_order_either(db):
    """The admin's change form validates through the model's fields: the same check as the checkout's."""
    order = Order(email="ada@example.com", total=100, currency="USD", shipping_name="Ada \u202eecalevoL")
    with pytest.raises(ValidationError) as refused:
        order.full_clean()
    assert refused.value.message_dict == {"shipping_name": [UNPRINTABLE_MESSAGE]}
    order.shipping_name, order.shipping_address = "Ada Lovelace", "4242 4242 4242 4242"
    with pytest.raises(ValidationError) as refused:
        order.full_clean()
    assert refused.value.message_dict == {"shipping_address": [CARD_NUMBER_MESSAGE]}


@pytest.mark.django_db(transaction=True)
def test_a_token_the_shop_never_rendered_belongs_to_its_first_submitter(product):
    """It carries nothing to reveal; whoever submits it first owns it from then on, as if it had been rendered
    for them."""
    token = uuid.uuid4()
    first, second = _shopper(product), _shopper(product)
    answer = first.post("/checkout", _form(token), **JSON)
    assert answer.status_code == 202
    assert second.post("/checkout", _form(token), **JSON).status_code == 409
    assert first.post("/checkout", _form(token), **JSON).json()["payment_id"] == answer.json()["payment_id"]


def test_the_reconciler_forgets_checkout_forms_never_paid_on_after_a_day(client, product):
    from datetime import timedelta

    from django.utils import timezone

    from checkout.models import CheckoutAttempt
    from payments.services.reconcile import payments_reconcile

    # given: forms rendered two days ago (one paid on) and one rendered now
    client.post("/cart/add", {"product_id": product.pk})
    for _ in range(3):
        client.get("/checkout")
    paid_token = CheckoutAttempt.objects.order_by("pk").first().token
    client.post("/checkout", checkout_form("4242 4242 4242 4242", token=paid_token))
    CheckoutAttempt.objects.update(created_at=timezone.now() - timedelta(days=2))
    payment_process(payment_id=Payment.objects.get().pk)  # while it is under way, /checkout renders no form
    client.post("/cart/add", {"product_id": product.pk})
    client.get("/checkout")
    # when
    done = payments_reconcile()
    # then: only the stale, unpaid ones are gone
    assert done["checkout_attempts_purged"] == 2
    assert CheckoutAttempt.objects.count() == 2
    assert CheckoutAttempt.objects.filter(token=paid_token, order__isnull=False).exists()
