"""An order follows its payment: stock is reserved at submit and goes back on the shelf only if no money came."""

import pytest

from checkout.models import Order, OrderStatus, Product
from payments.models import Actor, Payment, PaymentStatus
from payments.services.payments import payment_cancel, payment_process
from payments.services.transitions import TransitionNotAllowed, payment_transition
from tests.integration.shop import checkout_form

pytestmark = pytest.mark.django_db(transaction=True)

OK_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"


def _submit(client, product, card_number=OK_CARD, *, add=True, **headers):
    if add:
        client.post("/cart/add", {"product_id": product.pk})
    return client.post(
        "/checkout", checkout_form(card_number, cvc="123"), **(headers or {"HTTP_ACCEPT": "application/json"})
    )


def _stock(product) -> int:
    return Product.objects.get(pk=product.pk).stock


def _checkout(client, product, card_number=OK_CARD) -> Payment:
    response = _submit(client, product, card_number)
    assert response.status_code == 202
    return Payment.objects.get(pk=response.json()["payment_id"])


def test_submit_reserves_one_item_and_opens_an_order_awaiting_payment(client, product):
    # when
    payment = _checkout(client, product)
    # then
    assert _stock(product) == product.stock - 1
    assert payment.order.status == OrderStatus.AWAITING_PAYMENT


def test_declined_payment_fails_the_order_and_puts_the_item_back(client, product):
    # given
    payment = _checkout(client, product, DECLINED_CARD)
    # when
    payment_process(payment_id=payment.pk)
    # then
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.PAYMENT_FAILED
    assert _stock(product) == product.stock


def test_successful_payment_pays_the_order_and_keeps_the_item_taken(client, product):
    # given
    payment = _checkout(client, product)
    # when
    payment_process(payment_id=payment.pk)
    # then
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.PAID
    assert _stock(product) == product.stock - 1


def test_canceling_a_pending_payment_cancels_the_order_and_puts_the_item_back(client, product):
    # given
    payment = _checkout(client, product)
    # when
    payment_cancel(payment_id=payment.pk, actor=Actor.STAFF)
    # then
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.CANCELED
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.CANCELED
    assert _stock(product) == product.stock


def test_a_payment_a_worker_has_taken_cannot_be_canceled(client, product):
    # given
    payment = _checkout(client, product)
    payment_transition(payment_id=payment.pk, to_status=PaymentStatus.PROCESSING, actor=Actor.WORKER)
    # when / then
    with pytest.raises(TransitionNotAllowed):
        payment_cancel(payment_id=payment.pk, actor=Actor.STAFF)
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.AWAITING_PAYMENT
    assert _stock(product) == product.stock - 1


def test_a_final_payment_cannot_be_canceled_and_its_order_stays_paid(client, product):
    # given
    payment = _checkout(client, product)
    payment_process(payment_id=payment.pk)
    # when / then
    with pytest.raises(TransitionNotAllowed):
        payment_cancel(payment_id=payment.pk, actor=Actor.STAFF)
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.PAID
    assert _stock(product) == product.stock - 1


def test_out_of_stock_is_a_409_problem_and_records_no_order_or_payment(client, product):
    # given: the last item sells out while it sits in this shopper's cart
    client.post("/cart/add", {"product_id": product.pk})
    Product.objects.filter(pk=product.pk).update(stock=0)
    # when
    response = _submit(client, product, add=False)
    # then
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"]) == (409, "out_of_stock")
    assert "sold out" in body["detail"]
    assert not Payment.objects.exists()
    assert not Order.objects.exists()
    assert _stock(product) == 0


def test_out_of_stock_without_javascript_shows_the_message_on_the_page(client, product):
    # given
    client.post("/cart/add", {"product_id": product.pk})
    Product.objects.filter(pk=product.pk).update(stock=0)
    # when
    page = _submit(client, product, add=False, HTTP_ACCEPT="text/html")
    # then
    assert page.status_code == 409
    assert "Sorry, Espresso beans has just sold out. Nothing was charged." in page.text
    assert not Payment.objects.exists()
    assert not Order.objects.exists()
