import re

import django_rq
import pytest
from django.urls import reverse

from checkout.models import Order
from payments.models import Payment
from tests.conftest import VISA_OK

CARD_FORM = {
    "email": "ada@example.com",
    "card_number": "4242 4242 4242 4242",
    "expiry": "12/30",
    "cvc": "123",
}


def checkout_url(product):
    return reverse("checkout:checkout", kwargs={"slug": product.slug})


def test_catalog_lists_products_with_prices(client, product):
    response = client.get("/")
    assert response.status_code == 200
    assert "Espresso beans" in response.text
    assert "$24.00" in response.text


def test_checkout_form_has_the_exact_labels_and_a_pay_button(client, product):
    html = client.get(checkout_url(product)).text
    labels = re.findall(r"<label[^>]*>([^<]+)</label>", html)
    assert labels == ["Email", "Card number", "Expiry", "CVC"]
    assert 'placeholder="MM/YY"' in html
    assert re.search(r"<button[^>]*>Pay</button>", html)


@pytest.mark.django_db(transaction=True)
def test_submit_with_javascript_answers_202_with_the_status_url(client, product):
    # when
    response = client.post(checkout_url(product), CARD_FORM, HTTP_ACCEPT="application/json")
    # then
    assert response.status_code == 202
    body = response.json()
    payment = Payment.objects.get(pk=body["payment_id"])
    assert response["Location"] == body["status_url"] == f"/api/v1/payments/{payment.pk}/status"
    assert body["wait_url"] == f"/payments/{payment.pk}/wait"
    assert body["payment"]["status"] == "pending"
    assert (payment.amount, payment.currency, payment.card_brand, payment.card_last4) == (
        2400,
        "USD",
        "visa",
        "4242",
    )
    assert payment.order.email == "ada@example.com"
    assert payment.order.lines.get().unit_price == 2400
    # the job is on the queue, carrying only the id
    assert [job.args for job in django_rq.get_queue("payments").get_jobs()] == [(str(payment.pk),)]


@pytest.mark.django_db(transaction=True)
def test_submit_without_javascript_redirects_303_to_the_wait_page(client, product):
    response = client.post(checkout_url(product), CARD_FORM)
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
    ],
)
def test_bad_input_is_refused_inline_and_records_nothing(client, product, field, value, message):
    page = client.post(checkout_url(product), {**CARD_FORM, field: value})
    assert page.status_code == 422
    assert message in page.text
    assert "value=" not in re.findall(r'<input[^>]*name="cvc"[^>]*>', page.text)[0]  # the CVC is never echoed

    api = client.post(checkout_url(product), {**CARD_FORM, field: value}, HTTP_ACCEPT="application/json")
    assert api.status_code == 422
    assert api["Content-Type"] == "application/problem+json"
    assert message in " ".join(api.json()["errors"][field])
    assert not Payment.objects.exists()
    assert not Order.objects.exists()


def test_unknown_product_is_404(client, db):
    assert client.get("/products/nope/checkout").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_status_url_belongs_to_the_session_that_paid(client, product, django_user_model):
    # given
    status_url = client.post(checkout_url(product), CARD_FORM, HTTP_ACCEPT="application/json")["Location"]
    # then: the owner sees it, with a Retry-After while it is not final
    own = client.get(status_url)
    assert own.status_code == 200
    assert own.json()["status"] == "pending"
    assert own["Retry-After"] == "2"
    # a stranger's session gets 404, and no session at all gets 401, both as problem+json
    from django.test import Client

    stranger = Client()
    stranger.post(checkout_url(product), CARD_FORM, HTTP_ACCEPT="application/json")  # a session of their own
    assert stranger.get(status_url).status_code == 404
    anonymous = Client().get(status_url)
    assert anonymous.status_code in (401, 403)
    assert anonymous["Content-Type"] == "application/problem+json"


@pytest.mark.django_db(transaction=True)
def test_wait_page_shows_status_and_is_404_for_strangers(client, product):
    wait_url = client.post(checkout_url(product), CARD_FORM)["Location"]
    page = client.get(wait_url)
    assert page.status_code == 200
    assert 'data-payment-status="pending"' in page.text
    assert "Please wait, your payment is being processed" in page.text
    assert '<meta http-equiv="refresh"' in page.text  # without JavaScript, it refreshes itself
    from django.test import Client

    assert Client().get(wait_url).status_code == 404
    assert VISA_OK not in page.text
