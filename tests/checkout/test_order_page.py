"""The order page behind its signed link (issue 15): who can open it, what it shows in every state, its JSON."""

import asyncio
import json
import re
import time

import pytest
from channels.testing import WebsocketCommunicator
from django.core import signing
from django.test import Client

from checkout.models import Order, OrderLine
from checkout.order_links import order_link_key, order_page_path
from config.asgi import application
from payments.guests import SESSION_KEY as GUEST_SESSION_KEY
from payments.models import Actor, Payment, PaymentStatus, Refund, RefundStatus
from payments.selectors import payment_id_from_ws_token, payment_status_payload, payment_ws_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def order_with_payment(make_payment, product):
    """A paid-for order as the checkout records one, its payment in whatever state a test sets."""

    def make(status=PaymentStatus.SUCCEEDED, *, refunded=0, **changes):
        payment = make_payment()
        order = Order.objects.create(
            email="ada@example.com",
            shipping_name="Ada Lovelace",
            shipping_address="12 St James's Square",
            shipping_city="London",
            shipping_postcode="SW1Y 4JH",
            shipping_country="GB",
            total=2400,
            currency="USD",
        )
        OrderLine.objects.create(order=order, product=product, name="Espresso beans", unit_price=2400, quantity=1)
        captured = 2400 if status in (PaymentStatus.SUCCEEDED, "partially_refunded", "refunded") else 0
        Payment.objects.filter(pk=payment.pk).update(
            order=order, status=status, amount_captured=captured, amount_refunded=refunded, seq=5, **changes
        )
        return order

    return make


def _status_of(html: str) -> str:
    return re.search(r'id="payment-status"[^>]*data-payment-status="([a-z_]+)"', html)[1]


def _shown_sections(html: str) -> list[str]:
    return re.findall(r'<div data-when="([a-z_ ]+)" >', html)


def test_the_link_opens_the_order_in_a_browser_with_no_session(order_with_payment):
    order = order_with_payment()
    response = Client().get(order_page_path(order))
    assert response.status_code == 200
    html = response.text
    assert f"Order {order.number}" in html
    assert "Espresso beans" in html and "$24.00" in html
    assert _status_of(html) == "succeeded"
    assert "Visa •••• 4242" in html
    assert response["Cache-Control"].startswith("max-age=0") and "no-store" in response["Cache-Control"]


def test_a_forwarded_link_shows_name_city_and_country_but_not_the_street_postcode_or_email(order_with_payment):
    html = Client().get(order_page_path(order_with_payment())).text
    assert "Ada Lovelace" in html and "London, United Kingdom" in html
    for private in ("St James", "SW1Y", "ada@example.com", "2030"):
        assert private not in html.replace('"exp_year": 2030', ""), private


@pytest.mark.parametrize(
    "key",
    [
        "ABCD1234",  # a number alone
        "ABCD1234.forged-signature",
        "ABCD1234.",  # an empty signature
    ],
)
def test_a_key_we_did_not_sign_is_404_on_the_page_and_on_its_json(order_with_payment, key):
    order_with_payment()
    client = Client()
    assert client.get(f"/orders/{key}").status_code == 404
    json_answer = client.get(f"/orders/{key}/status")
    assert json_answer.status_code == 404
    assert json_answer["Content-Type"] == "application/problem+json"


def test_a_tampered_link_is_404_and_one_orders_key_never_opens_another(order_with_payment):
    first, second = order_with_payment(), order_with_payment()
    number, signature = order_link_key(first).split(".")
    client = Client()
    # the other order's number with this order's signature, and a signature with one character changed
    assert client.get(f"/orders/{second.number}.{signature}").status_code == 404
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    assert client.get(f"/orders/{number}.{flipped}").status_code == 404
    assert client.get(f"/orders/{second.number}.{signature}/status").status_code == 404
    # a signature of the number under another salt (another signed value of the app) is no key either
    other_salt = signing.Signer(salt="payments.websocket", sep=".").sign(first.number)
    assert client.get(f"/orders/{other_salt}").status_code == 404
    # and the right key shows its own order only
    html = client.get(order_page_path(first)).text
    assert first.number in html and second.number not in html


def test_a_key_for_an_order_that_is_gone_is_404(order_with_payment):
    order = order_with_payment()
    path = order_page_path(order)
    Payment.objects.filter(order=order).update(order=None)
    Order.objects.filter(pk=order.pk).delete()
    assert Client().get(path).status_code == 404


def test_the_pages_change_nothing_and_take_get_only(order_with_payment):
    order = order_with_payment()
    client = Client(enforce_csrf_checks=False)
    assert client.post(order_page_path(order)).status_code == 405
    assert client.post(order_page_path(order) + "/status").status_code == 405
    html = client.get(order_page_path(order)).text
    assert "<form" not in html and "<button" not in html


# Every state in words, as the shopper reads it on the order page and on the wait page.
STATE_WORDS = {
    "pending": ("Processing", "Please wait, your payment is being processed"),
    "processing": ("Processing", "Please wait, your payment is being processed"),
    "unknown": ("Confirming with your bank", "We're confirming with your bank"),
    "requires_action": ("Waiting for your bank's confirmation", "Your bank needs to confirm it's you"),
    "succeeded": ("$24.00 was charged to your card.", "Payment successful"),
    "partially_refunded": (
        'Partly refunded: <strong data-field="amount-refunded">$4.00</strong> returned to your card.',
        'Partly refunded: <strong data-field="amount-refunded">$4.00</strong> returned to your card.',
    ),
    "refunded": (
        'Refunded: <strong data-field="amount-refunded">$24.00</strong> returned to your card.',
        'Refunded: <strong data-field="amount-refunded">$24.00</strong> returned to your card.',
    ),
    "failed": ("Declined", "Payment declined"),
    "canceled": ("The payment was canceled. Nothing was charged.", "Payment canceled"),
}
REFUNDED = {"partially_refunded": 400, "refunded": 2400}
CHALLENGE = "/sandbox-bank/authenticate/tds_challenge"
CHANGES = {"requires_action": {"next_action_url": CHALLENGE}}


@pytest.mark.parametrize("status", list(STATE_WORDS))
def test_every_state_is_told_in_its_own_words_on_the_order_page_and_the_wait_page(order_with_payment, status):
    order = order_with_payment(status, refunded=REFUNDED.get(status, 0), **CHANGES.get(status, {}))
    payment = Payment.objects.get(order=order)
    on_order_page, on_wait_page = STATE_WORDS[status]

    order_html = Client().get(order_page_path(order)).text
    assert _status_of(order_html) == status
    shown = _shown_sections(order_html)
    assert len(shown) == 1 and status in shown[0].split()
    assert on_order_page in order_html

    payer = Client()
    session = payer.session
    session[GUEST_SESSION_KEY] = str(payment.owner_guest_id)
    session.save()
    wait_html = payer.get(f"/payments/{payment.pk}/wait").text
    assert _status_of(wait_html) == status
    shown = _shown_sections(wait_html)
    assert len(shown) == 1 and status in shown[0].split()
    assert on_wait_page in wait_html
    # the wait page leads to the order page, in every state
    assert f'href="{order_page_path(order)}"' in wait_html
    # the "Payment successful … confirmed" of a refunded payment is gone: nothing else is shown but its own state
    if status in REFUNDED:
        assert "is confirmed" not in wait_html.split('data-when="succeeded"')[0]


@pytest.mark.parametrize("status", ["pending", "processing", "requires_action", "unknown"])
def test_without_javascript_the_order_page_refreshes_until_there_is_an_outcome(order_with_payment, status):
    assert 'http-equiv="refresh"' in Client().get(order_page_path(order_with_payment(status))).text


def test_the_order_page_tells_of_the_banks_question_but_never_links_to_it(order_with_payment):
    # The link may have been forwarded: the bank's page is for the cardholder, reached from the wait page.
    html = Client().get(order_page_path(order_with_payment("requires_action", next_action_url=CHALLENGE))).text
    assert "Waiting for your bank's confirmation" in html
    assert 'data-field="next-action"' not in html and "Confirm with your bank" not in html


@pytest.mark.parametrize("status", ["succeeded", "refunded", "failed"])
def test_with_an_outcome_the_order_page_does_not_refresh(order_with_payment, status):
    assert 'http-equiv="refresh"' not in Client().get(order_page_path(order_with_payment(status))).text


def test_the_json_is_the_status_document_with_the_order_and_its_refunds(order_with_payment):
    order = order_with_payment("partially_refunded", refunded=400)
    payment = Payment.objects.get(order=order)
    Refund.objects.create(payment=payment, amount=400, status=RefundStatus.SUCCEEDED, actor=Actor.STAFF)
    response = Client().get(order_page_path(order) + "/status")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = response.json()
    assert body["order"] == {
        "number": order.number,
        "status": order.status,
        "total": 2400,
        "currency": "USD",
        "created_at": order.created_at.isoformat(),
    }
    document = payment_status_payload(payment)
    assert set(body["payment"]) == set(document)
    assert (body["payment"]["status"], body["payment"]["seq"]) == ("partially_refunded", 5)
    assert body["payment"]["amount_refunded"] == 400
    assert body["payment"]["links"]["status"] == f"http://testserver{document['links']['status']}"
    [refund] = body["refunds"]
    assert (refund["amount"], refund["amount_display"], refund["status"], refund["status_display"]) == (
        400,
        "$4.00",
        "succeeded",
        "Returned to your card",
    )
    # the page lists the same refund in the same words
    html = Client().get(order_page_path(order)).text
    assert '$4.00</span> <span class="refund-state">Returned to your card' in html


def test_the_page_mints_its_own_socket_token_valid_a_day_from_now(order_with_payment):
    order = order_with_payment()
    payment = Payment.objects.get(order=order)
    Payment.objects.filter(pk=payment.pk).update(created_at=payment.created_at.replace(year=2020))
    payment.refresh_from_db()
    stale = payment_ws_token(payment)
    assert payment_id_from_ws_token(stale, now=time.time()) is None  # the document's token has expired
    html = Client().get(order_page_path(order)).text
    token = re.search(r'data-socket-url="ws://testserver/ws/payments/[0-9a-f-]+\?token=([^"]+)"', html)[1]
    assert payment_id_from_ws_token(token, now=time.time()) == str(payment.pk)
    assert payment_id_from_ws_token(token, now=time.time() + 2 * 24 * 3600) is None
    # the default stays deterministic, so the status document does not change while the payment does not
    assert payment_ws_token(payment) == stale


def _watchers_token(html: str) -> str:
    return re.search(r'data-socket-url="ws://testserver/ws/payments/[0-9a-f-]+\?token=([^"]+)"', html)[1]


def test_a_forwarded_link_never_reaches_the_banks_page_through_the_page_or_its_json(order_with_payment):
    # given: the bank waits for the cardholder, and the payer's status document links to its page
    order = order_with_payment("requires_action", next_action_url=CHALLENGE)
    payers = payment_status_payload(Payment.objects.get(order=order))
    assert payers["next_action"]["url"] == CHALLENGE
    payers_token = payers["links"]["websocket"].split("token=")[1]
    # when: whoever holds the order link opens the page and its JSON
    client = Client()
    html = client.get(order_page_path(order)).text
    body = client.get(order_page_path(order) + "/status").json()
    # then: neither carries the bank's page, nor the payer's socket (whose documents do)
    for text in (html, json.dumps(body)):
        assert CHALLENGE not in text and payers_token not in text
    assert body["payment"]["next_action"] is None and body["payment"]["status"] == "requires_action"
    assert "token=" in body["payment"]["links"]["websocket"]


@pytest.mark.django_db(transaction=True)
def test_the_order_pages_socket_is_watch_only_and_never_sends_the_banks_page(order_with_payment):
    order = order_with_payment("requires_action", next_action_url=CHALLENGE)
    payment = Payment.objects.get(order=order)
    html = Client().get(order_page_path(order)).text
    watchers_path = f"/ws/payments/{payment.pk}?token={_watchers_token(html)}"

    async def first_frame(path: str) -> dict:
        socket = WebsocketCommunicator(application, path)
        connected, _ = await socket.connect()
        assert connected
        frame = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return frame["payment"]

    watched = asyncio.run(first_frame(watchers_path))
    assert watched["status"] == "requires_action" and watched["next_action"] is None
    assert watched["links"]["websocket"] == watchers_path  # its own socket, not the payer's
    # while the payer's socket, from the payer's own document, does carry it
    payers = asyncio.run(first_frame(payment_status_payload(payment)["links"]["websocket"]))
    assert payers["next_action"]["url"] == CHALLENGE
