import re
import uuid

import django_rq
import pytest
from django.test import Client

from checkout.models import Order
from payments.gateway import GatewayUnavailable, get_gateway
from payments.models import Payment
from payments.sandbox.gateway import SandboxGateway
from payments.services.payments import payment_process
from tests.conftest import VISA_DECLINED, VISA_OK
from tests.integration.shop import checkout_form

CARD_NUMBER = "4242 4242 4242 4242"


def add_to_cart(client, product, quantity=1):
    return client.post("/cart/add", {"product_id": product.pk, "quantity": quantity})


def pay(client, form=None, **headers):
    return client.post("/checkout", form or checkout_form(CARD_NUMBER, cvc="123"), **headers)


def test_catalog_lists_products_with_prices_and_the_cart_count(client, product):
    response = client.get("/")
    assert response.status_code == 200
    assert "Espresso beans" in response.text and "$24.00" in response.text
    add_to_cart(client, product, 2)
    assert 'aria-label="2 items"' in client.get("/").text


def test_cart_add_change_remove_and_totals(client, product):
    add_to_cart(client, product, 2)
    page = client.get("/cart")
    assert "$48.00" in page.text
    client.post("/cart/update", {"product_id": product.pk, "quantity": 3})
    assert "$72.00" in client.get("/cart").text
    client.post("/cart/update", {"product_id": product.pk, "remove": "1"})
    assert "Your cart is empty." in client.get("/cart").text


def test_product_page_and_out_of_stock(client, product):
    assert "10 in stock" in client.get(f"/products/{product.slug}").text
    product.stock = 0
    product.save()
    assert "Out of stock" in client.get(f"/products/{product.slug}").text
    add_to_cart(client, product)
    assert "Your cart is empty." in client.get("/cart").text
    assert client.get("/products/nope").status_code == 404


def test_checkout_with_an_empty_cart_goes_back_to_the_cart(client, db):
    response = client.get("/checkout")
    assert (response.status_code, response["Location"]) == (302, "/cart")


def test_checkout_form_has_the_exact_card_labels_and_a_pay_button(client, product):
    add_to_cart(client, product)
    html = client.get("/checkout").text
    labels = re.findall(r"<label[^>]*>([^<]+)</label>", html)
    assert labels[0] == "Email"
    assert labels[-3:] == ["Card number", "Expiry", "CVC"]
    assert 'placeholder="MM/YY"' in html
    assert re.search(r"<button[^>]*>Pay \$24\.00</button>", html)  # the button says what it charges
    assert re.search(r'name="checkout_token" value="[0-9a-f-]{36}"', html)


@pytest.mark.django_db(transaction=True)
def test_submit_with_javascript_answers_202_with_the_status_url(client, product):
    add_to_cart(client, product, 2)
    response = pay(client, HTTP_ACCEPT="application/json")
    assert response.status_code == 202
    body = response.json()
    payment = Payment.objects.get(pk=body["payment_id"])
    assert response["Location"] == body["status_url"] == f"http://testserver/api/v1/payments/{payment.pk}/status"
    assert body["wait_url"] == f"/payments/{payment.pk}/wait"
    assert (payment.amount, payment.currency, payment.card_brand, payment.card_last4) == (4800, "USD", "visa", "4242")
    order = payment.order
    assert (order.email, order.shipping_city, order.shipping_country) == ("ada@example.com", "London", "GB")
    assert [(line.name, line.quantity, line.unit_price) for line in order.lines.all()] == [("Espresso beans", 2, 2400)]
    assert [job.args for job in django_rq.get_queue("payments").get_jobs()] == [(str(payment.pk),)]
    # the cart is kept while the payment is under way, and points to it; once paid, the order's lines leave it
    cart_page = client.get("/cart").text
    assert "Espresso beans" in cart_page and f'href="/payments/{payment.pk}/wait">See your payment' in cart_page
    payment_process(payment_id=payment.pk)
    assert "Your cart is empty." in client.get("/cart").text


@pytest.mark.django_db(transaction=True)
def test_submit_without_javascript_redirects_303_to_the_wait_page(client, product):
    add_to_cart(client, product)
    response = pay(client)
    payment = Payment.objects.get()
    assert response.status_code == 303
    assert response["Location"] == f"/payments/{payment.pk}/wait"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("card_number", "4242 4242 4242 4241", "not valid"),
        ("expiry", "01/20", "expired"),
        ("expiry", "13/30", "between 01 and 12"),
        ("cvc", "12", "3 digits"),
        ("email", "not-an-email", "valid email"),
        ("shipping_name", "", "required"),
    ],
)
def test_bad_input_is_refused_inline_and_records_nothing(client, product, field, value, message):
    add_to_cart(client, product)
    form = {**checkout_form(CARD_NUMBER, cvc="123"), field: value}
    page = pay(client, form)
    assert page.status_code == 422
    assert message in page.text
    assert "value=" not in re.findall(r'<input[^>]*name="cvc"[^>]*>', page.text)[0]  # the CVC is never echoed
    api = pay(client, form, HTTP_ACCEPT="application/json")
    assert api.status_code == 422
    assert api["Content-Type"] == "application/problem+json"
    assert message in " ".join(api.json()["errors"][field])
    assert not Payment.objects.exists() and not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_one_form_makes_one_payment_however_often_it_is_submitted(client, product):
    add_to_cart(client, product)
    form = checkout_form(CARD_NUMBER, cvc="123")
    first = pay(client, form, HTTP_ACCEPT="application/json").json()
    again = pay(client, form, HTTP_ACCEPT="application/json").json()  # double click, resubmit, back + resubmit
    assert again["payment_id"] == first["payment_id"]
    assert pay(client, form)["Location"] == first["wait_url"]
    assert Payment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_after_a_decline_try_another_card_restores_the_cart_and_a_new_payment_follows(client, product):
    add_to_cart(client, product, 2)
    declined = pay(client, checkout_form(VISA_DECLINED, cvc="123"), HTTP_ACCEPT="application/json").json()
    payment_process(payment_id=declined["payment_id"])
    order = Payment.objects.get(pk=declined["payment_id"]).order
    wait_page = client.get(declined["wait_url"]).text
    assert "Your card was declined by your bank." in wait_page and "Try another card" in wait_page
    # when
    retry = client.post(f"/orders/{order.number}/retry")
    # then: back at checkout with the same two items
    assert retry["Location"] == "/checkout"
    assert "Espresso beans × 2" in client.get("/checkout").text
    second = pay(client, checkout_form(VISA_OK, cvc="123"), HTTP_ACCEPT="application/json").json()
    assert second["payment_id"] != declined["payment_id"]
    # and a retry of an order that did not fail changes nothing
    payment_process(payment_id=second["payment_id"])
    paid = Payment.objects.get(pk=second["payment_id"]).order
    assert client.post(f"/orders/{paid.number}/retry")["Location"] == second["wait_url"]


@pytest.mark.django_db(transaction=True)
def test_wait_page_shows_status_and_is_404_for_strangers(client, product):
    add_to_cart(client, product)
    wait_url = pay(client)["Location"]
    page = client.get(wait_url)
    assert page.status_code == 200
    assert 'data-payment-status="pending"' in page.text
    assert "Please wait, your payment is being processed" in page.text
    assert '<meta http-equiv="refresh"' in page.text  # without JavaScript, it refreshes itself
    assert Client().get(wait_url).status_code == 404
    assert VISA_OK not in page.text
    assert Client().post(f"/orders/{Payment.objects.get().order.number}/retry").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("number", ["%00", "AB%00CD", "%C3%A9", "x" * 300])
def test_a_retry_of_a_number_that_is_no_order_number_is_404_never_500(client, number):
    client.raise_request_exception = False
    assert client.post(f"/orders/{number}/retry").status_code == 404


def test_a_form_token_is_a_uuid(client, product):
    add_to_cart(client, product)
    form = {**checkout_form(CARD_NUMBER, cvc="123"), "checkout_token": "not-a-uuid"}
    assert pay(client, form).status_code == 422
    assert uuid.UUID(checkout_form(CARD_NUMBER)["checkout_token"])


class UnreachableVault(SandboxGateway):
    def tokenize(self, card):
        raise GatewayUnavailable("vault unreachable")


@pytest.fixture
def unreachable_vault(settings):
    settings.PAYMENTS_GATEWAY = f"{__name__}.UnreachableVault"
    get_gateway.cache_clear()
    yield
    get_gateway.cache_clear()


def test_an_unreachable_vault_is_a_503_page_that_keeps_the_form_and_records_nothing(client, product, unreachable_vault):
    client.post("/cart/add", {"product_id": product.pk})
    form = checkout_form("4242 4242 4242 4242")
    page = client.post("/checkout", form)
    assert page.status_code == 503
    html = page.content.decode()
    assert "nothing was charged" in html and form["checkout_token"] in html
    assert not re.search(r"value=\"4242[ 0-9]*\"", html)  # the card input is rendered empty
    problem = client.post("/checkout", form, HTTP_ACCEPT="application/json")
    assert (problem.status_code, problem.json()["code"], problem["Retry-After"]) == (503, "service_unavailable", "5")
    assert not Payment.objects.exists() and not Order.objects.exists()


@pytest.mark.parametrize("product_id", ["abc", "", "1e3", "99999999999999999999999", "-1"])
@pytest.mark.parametrize("path", ["/cart/add", "/cart/update"])
def test_a_cart_form_naming_no_product_is_a_404_not_a_500(client, db, path, product_id):
    assert client.post(path, {"product_id": product_id}).status_code == 404
