"""Between paying and the outcome: the cart is kept until the payment takes money, a decline leaves the cart, the
email and the address for the next try, and while a payment is under way every page points to it."""

import re

import pytest

from checkout.journey import IN_PROGRESS_KEY
from payments.models import Payment
from payments.services.payments import payment_process
from tests.conftest import VISA_DECLINED, VISA_OK
from tests.integration.shop import checkout_form

JSON = {"HTTP_ACCEPT": "application/json"}


def _token(html: str) -> str:
    return re.search(r'name="checkout_token" value="([^"]+)"', html).group(1)


def _input(html: str, name: str) -> str:
    return re.search(rf'<(?:input|select)[^>]*name="{name}"[^>]*>', html).group(0)


def _pay(client, card, **headers):
    form = checkout_form(card, cvc="123", token=_token(client.get("/checkout").text))
    return client.post("/checkout", form, **headers)


@pytest.mark.django_db(transaction=True)
def test_a_decline_keeps_the_cart_and_try_another_card_keeps_email_and_address(client, product):
    client.post("/cart/add", {"product_id": product.pk, "quantity": 2})
    declined = _pay(client, VISA_DECLINED, **JSON).json()
    payment_process(payment_id=declined["payment_id"])
    order = Payment.objects.get(pk=declined["payment_id"]).order
    # the cart is still there, in the header and on /cart, before any "try another card"
    cart_page = client.get("/cart").text
    assert 'aria-label="2 items"' in cart_page and "Espresso beans" in cart_page
    assert 'href="/checkout">Checkout</a>' in cart_page and IN_PROGRESS_KEY not in client.session
    # when
    assert client.post(f"/orders/{order.number}/retry")["Location"] == "/checkout"
    # then: the same two items (not four), email and address filled in, the card fields empty
    assert client.session["cart"] == {str(product.pk): 2}
    html = client.get("/checkout").text
    assert "Espresso beans × 2" in html
    assert 'value="ada@example.com"' in _input(html, "email")
    assert 'value="12 St James&#x27;s Square"' in _input(html, "shipping_address")
    assert "value=" not in _input(html, "card_number") and "value=" not in _input(html, "cvc")
    assert "value=" not in _input(html, "expiry")
    # and the next card pays, and only then the cart empties
    paid = _pay(client, VISA_OK, **JSON).json()
    payment_process(payment_id=paid["payment_id"])
    assert "Your cart is empty." in client.get("/cart").text


@pytest.mark.django_db(transaction=True)
def test_try_another_card_puts_the_lines_back_in_a_cart_that_is_gone(client, product):
    client.post("/cart/add", {"product_id": product.pk, "quantity": 2})
    declined = _pay(client, VISA_DECLINED, **JSON).json()
    payment_process(payment_id=declined["payment_id"])
    client.post("/cart/update", {"product_id": product.pk, "remove": "1"})
    order = Payment.objects.get(pk=declined["payment_id"]).order
    client.post(f"/orders/{order.number}/retry")
    assert client.session["cart"] == {str(product.pk): 2}


@pytest.mark.django_db(transaction=True)
def test_while_a_payment_is_under_way_every_page_points_to_it(client, product):
    client.post("/cart/add", {"product_id": product.pk})
    wait_url = _pay(client, VISA_OK)["Location"]
    link = f'<a href="{wait_url}">See your payment</a>'
    for path in ("/", "/cart", f"/products/{product.slug}"):
        assert link in client.get(path).text, path
    # the back button lands on /checkout: a pointer, not a second form, and no redirect (no back-button loop)
    checkout = client.get("/checkout")
    assert checkout.status_code == 200
    assert 'id="checkout-form"' not in checkout.text and f'href="{wait_url}"' in checkout.text
    assert 'href="/checkout">Checkout' not in client.get("/cart").text
    assert "See your payment" not in client.get(wait_url).text  # not on the page it points to
    payment_process(payment_id=Payment.objects.get().pk)
    assert "See your payment" not in client.get("/").text


@pytest.mark.parametrize(
    ("wrong", "names"),
    [
        ({"card_number": "4242 4242 4242 4241", "email": "nope"}, ("card_number", "email")),
        ({"expiry": ""}, ("expiry",)),
    ],
)
def test_server_rendered_errors_are_tied_to_their_fields(client, product, wrong, names):
    client.post("/cart/add", {"product_id": product.pk})
    html = client.post("/checkout", {**checkout_form("4242 4242 4242 4242", cvc="123"), **wrong}).text
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    for name in names:
        tag = _input(html, name)
        assert 'aria-invalid="true"' in tag, tag
        described = re.search(r'aria-describedby="([^"]+)"', tag).group(1).split()
        assert f"id_{name}_error" in described and set(described) <= ids, (described, name)
    assert "id_expiry_helptext" in re.search(r'aria-describedby="([^"]+)"', _input(html, "expiry")).group(1)
    assert "id_expiry_helptext" in ids
    assert "aria-invalid" not in _input(html, "shipping_city")


def test_the_shopper_never_reads_a_fraud_rule():
    from payments.gateway import DECLINE_MESSAGES

    for code in ("fraudulent", "lost_card", "stolen_card"):
        assert DECLINE_MESSAGES[code] == "Your card was declined. Please try another card, or contact your bank."
    assert not any("fraud" in message.lower() for message in DECLINE_MESSAGES.values())


def _signature(html: str) -> str:
    return re.search(r'name="cart_signature" value="([^"]+)"', html).group(1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("headers", [JSON, {}], ids=["json", "html"])
def test_a_second_tab_cannot_pay_again_for_a_cart_being_paid_for(client, product, headers):
    # given two checkout tabs opened on one cart, and the first one paid from
    client.post("/cart/add", {"product_id": product.pk, "quantity": 2})
    tab_a, tab_b = client.get("/checkout").text, client.get("/checkout").text
    first = client.post(
        "/checkout", checkout_form(VISA_OK, cvc="123", token=_token(tab_a)) | {"cart_signature": _signature(tab_a)}
    )
    wait_url = first["Location"]
    # when the second tab's form is submitted while that payment has no outcome yet
    second = client.post(
        "/checkout",
        checkout_form(VISA_OK, cvc="123", token=_token(tab_b)) | {"cart_signature": _signature(tab_b)},
        **headers,
    )
    # then nothing is charged a second time: the shopper is pointed to the payment under way
    assert second.status_code == 409
    assert Payment.objects.count() == 1
    if headers:
        assert second.json()["code"] == "payment_in_progress" and second.json()["wait_url"] == wait_url
    else:
        assert 'id="checkout-form"' not in second.text and f'href="{wait_url}"' in second.text
    # and the same form again (a double click) is still that one payment
    again = client.post("/checkout", checkout_form(VISA_OK, cvc="123", token=_token(tab_a)), **JSON)
    assert again.status_code == 202 and again.json()["wait_url"] == wait_url
    payment_process(payment_id=Payment.objects.get().pk)


@pytest.mark.django_db(transaction=True)
def test_a_script_without_the_pages_promise_still_pays_again_at_once(client, product):
    # a load test's shopper: a token the shop never rendered, no cart_signature, paying again before the outcome
    client.post("/cart/add", {"product_id": product.pk})
    first = client.post("/checkout", checkout_form(VISA_OK, cvc="123"), **JSON)
    second = client.post("/checkout", checkout_form(VISA_OK, cvc="123"), **JSON)
    assert (first.status_code, second.status_code) == (202, 202)
    for payment in Payment.objects.all():
        payment_process(payment_id=payment.pk)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["add", "update"])
def test_a_cart_change_after_a_paid_payment_applies_to_the_settled_cart(client, product, change):
    # given: a payment that took money while the shopper saw no page (a client that never renders one, or a
    # shopper who went straight to the cart's form)
    client.post("/cart/add", {"product_id": product.pk})
    paid = _pay(client, VISA_OK, **JSON).json()
    payment_process(payment_id=paid["payment_id"])
    # when: they put one in the cart for their next order
    if change == "add":
        client.post("/cart/add", {"product_id": product.pk})
    else:
        client.post("/cart/update", {"product_id": product.pk, "quantity": 1})
    # then: the paid order's line left the cart first, and their change stands: one in the cart, ready to pay.
    # (Before, the paid line was taken out only afterwards, from the cart they had just set: it came out empty,
    # and /checkout sent them back to it.)
    assert client.session["cart"] == {str(product.pk): 1}
    assert client.get("/checkout").status_code == 200
