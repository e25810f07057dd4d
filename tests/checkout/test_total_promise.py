"""The total is a promise: the form carries the cart the shopper was shown, and a submit for any other cart (a
price edited by staff, a quantity changed in another tab, a product withdrawn) charges nothing and asks again.
One currency per cart."""

import re
import uuid

import pytest

from checkout.cart import cart_get
from checkout.models import Order, Product
from checkout.services import CartChanged, MixedCurrency, OutOfStock, Shipping, checkout_submit
from payments.cards import validate_card
from payments.models import Payment
from tests.integration.shop import checkout_form

JSON = {"HTTP_ACCEPT": "application/json"}
GUEST = uuid.UUID("5d0c4d8e-0000-4000-8000-000000000001")


def _hidden(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)


def _form_as_rendered(client) -> dict:
    """The checkout page's form, filled in as the shopper would: its token and its promise as rendered."""
    html = client.get("/checkout").text
    return {
        **checkout_form("4242 4242 4242 4242", cvc="123", token=_hidden(html, "checkout_token")),
        "cart_signature": _hidden(html, "cart_signature"),
        "expected_total": _hidden(html, "expected_total"),
    }


@pytest.fixture
def cart_of_two(client, product):
    client.post("/cart/add", {"product_id": product.pk, "quantity": 2})
    return client


def test_the_form_carries_the_total_it_shows_and_the_button_says_it(cart_of_two):
    html = cart_of_two.get("/checkout").text
    assert _hidden(html, "expected_total") == "4800"
    assert re.fullmatch(r"[0-9a-f]{32}", _hidden(html, "cart_signature"))
    assert ">Pay $48.00</button>" in html


@pytest.mark.django_db(transaction=True)
def test_a_price_edited_after_the_page_was_shown_is_not_charged_the_page_shows_the_new_total(cart_of_two, product):
    # given: the shopper sees $48.00, then staff raise the price
    form = _form_as_rendered(cart_of_two)
    Product.objects.filter(pk=product.pk).update(price=7200)
    # when
    page = cart_of_two.post("/checkout", form)
    # then: nothing made, the new total shown, a fresh form that keeps the address and promises the new total
    assert page.status_code == 409
    html = page.text
    assert "The total changed from $48.00 to $144.00 since you opened this page." in html
    assert ">Pay $144.00</button>" in html
    assert _hidden(html, "expected_total") == "14400"
    assert _hidden(html, "checkout_token") != form["checkout_token"]
    assert 'value="12 St James&#x27;s Square"' in html and not re.search(r'<input[^>]*value="4242', html)
    assert not Payment.objects.exists() and not Order.objects.exists()
    # and: paying on the new page charges the new total
    again = {**form, **{name: _hidden(html, name) for name in ("checkout_token", "cart_signature", "expected_total")}}
    assert cart_of_two.post("/checkout", again).status_code == 303
    assert Payment.objects.get().amount == 14400


@pytest.mark.django_db(transaction=True)
def test_the_json_answer_is_a_cart_changed_problem_with_the_new_summary(cart_of_two, product):
    form = _form_as_rendered(cart_of_two)
    cart_of_two.post("/cart/update", {"product_id": product.pk, "quantity": 3})  # another tab
    response = cart_of_two.post("/checkout", form, **JSON)
    assert (response.status_code, response["Content-Type"]) == (409, "application/problem+json")
    body = response.json()
    assert body["code"] == "cart_changed"
    assert (body["total"], body["currency"], body["pay_label"]) == (7200, "USD", "Pay $72.00")
    assert body["cart_signature"] != form["cart_signature"] and body["checkout_token"] != form["checkout_token"]
    assert "Espresso beans × 3" in body["summary_html"] and "$72.00" in body["summary_html"]
    assert "from $48.00 to $72.00" in body["detail"]
    assert not Payment.objects.exists() and not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_price_edited_after_the_cart_was_read_is_caught_inside_the_transaction(client, product):
    # given: the view has read the cart (the prices the shopper saw), then staff edit the price before the
    # reservation runs
    client.post("/cart/add", {"product_id": product.pk})
    seen = cart_get(client.session)
    Product.objects.filter(pk=product.pk).update(price=9900)
    card = validate_card(number="4242424242424242", exp_month=12, exp_year=2030, cvc="123")
    # when / then: the promise matches (the view's check passed), but the reservation refuses a price that moved
    with pytest.raises(CartChanged):
        checkout_submit(
            cart=seen,
            email="ada@example.com",
            shipping=Shipping("Ada", "12 St James's Square", "London", "SW1Y 4JH", "GB"),
            card=card,
            checkout_token="9b2d1a8e-6f1c-4d3b-9a51-6b7e4ff8b001",
            owner_guest_id=GUEST,
            expected_signature=seen.signature,
        )
    assert not Payment.objects.exists() and not Order.objects.exists()
    assert Product.objects.get(pk=product.pk).stock == 10  # nothing reserved either
    # and: stock that ran out instead is still "sold out", not "changed"
    Product.objects.filter(pk=product.pk).update(price=2400, stock=0)
    with pytest.raises(OutOfStock):
        checkout_submit(
            cart=seen,
            email="ada@example.com",
            shipping=Shipping("Ada", "12 St James's Square", "London", "SW1Y 4JH", "GB"),
            card=card,
            checkout_token="9b2d1a8e-6f1c-4d3b-9a51-6b7e4ff8b002",
            owner_guest_id=GUEST,
        )


def test_one_currency_per_cart(client, product):
    yen = Product.objects.create(slug="matcha", name="Matcha", price=3000, currency="JPY", stock=5)
    client.post("/cart/add", {"product_id": product.pk})
    response = client.post("/cart/add", {"product_id": yen.pk}, follow=True)
    assert "Matcha is priced in JPY and your cart in USD" in response.text
    assert list(client.session["cart"]) == [str(product.pk)]


@pytest.mark.django_db(transaction=True)
def test_a_cart_from_before_the_rule_never_adds_two_currencies_and_is_not_charged(client, product):
    yen = Product.objects.create(slug="matcha", name="Matcha", price=3000, currency="JPY", stock=5)
    session = client.session
    session["cart"] = {str(product.pk): 1, str(yen.pk): 1}
    session.save()
    cart_page = client.get("/cart").text
    assert "<strong>$24.00</strong>" in cart_page and "Priced in JPY" in cart_page
    assert 'href="/checkout">Checkout' not in cart_page
    assert client.get("/checkout")["Location"] == "/cart"
    response = client.post("/checkout", checkout_form("4242 4242 4242 4242", cvc="123"), **JSON)
    assert (response.status_code, response.json()["code"]) == (409, "mixed_currency")
    assert not Payment.objects.exists() and not Order.objects.exists()
    with pytest.raises(MixedCurrency):
        checkout_submit(
            cart=cart_get(client.session),
            email="ada@example.com",
            shipping=Shipping("Ada", "1 Road", "London", "N1", "GB"),
            card=validate_card(number="4242424242424242", exp_month=12, exp_year=2030, cvc="123"),
            checkout_token="9b2d1a8e-6f1c-4d3b-9a51-6b7e4ff8b003",
            owner_guest_id=GUEST,
        )
