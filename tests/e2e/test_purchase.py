"""A shopper in Chromium: catalog → cart → checkout → Pay → the wait page, updated in place to the outcome."""

import pytest
from playwright.sync_api import expect

from checkout.models import Order, OrderStatus, Product
from payments.currencies import format_money
from payments.models import Payment, PaymentStatus
from payments.sandbox.models import LedgerEntry
from tests.e2e.conftest import (
    VISA_DECLINED,
    VISA_OK,
    add_to_cart,
    expect_status,
    fill_checkout,
    pay,
    payment_status,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WATCH_THE_PAGE = """() => {
  window.__e2eSameDocument = true;
  window.__e2eStatuses = [];
  const root = document.getElementById("payment-status");
  new MutationObserver(() => window.__e2eStatuses.push(root.dataset.paymentStatus))
    .observe(root, { attributes: true, attributeFilter: ["data-payment-status"] });
}"""


def test_a_purchase_succeeds_on_the_wait_page_without_a_reload(shop, page, espresso):
    # given: the shop is up, but no worker runs yet, so the wait page must first show a payment in progress
    stack = shop(workers=0)
    sockets = []
    page.on("websocket", lambda socket: sockets.append(socket))

    # when: the shopper buys one bag with a good card
    add_to_cart(page, stack.http_url, espresso)
    fill_checkout(page, VISA_OK)
    with page.expect_response(lambda r: r.url.endswith("/checkout") and r.request.method == "POST") as submitted:
        payment_id = pay(page)
    assert submitted.value.status == 202

    # then: the wait page says "please wait"
    expect_status(page, "pending", timeout=5_000)
    waiting = page.get_by_role("heading", name="Please wait, your payment is being processed")
    expect(waiting).to_be_visible()
    page.wait_for_load_state("load")
    wait_url = page.url
    navigations = []
    page.on("framenavigated", lambda frame: frame == page.main_frame and navigations.append(frame.url))
    page.evaluate(WATCH_THE_PAGE)

    # when: a worker comes up and processes the payment
    stack.start_worker()

    # then: the same document turns to success by itself: no reload, no navigation
    expect_status(page, "succeeded")
    assert page.url == wait_url
    assert navigations == []
    assert page.evaluate("window.__e2eSameDocument") is True
    statuses = page.evaluate("window.__e2eStatuses")
    assert statuses[-1] == "succeeded" and set(statuses) <= {"processing", "succeeded"}, statuses
    # and the outcome came over the WebSocket
    assert sockets, "the wait page opened no WebSocket"
    assert f"/ws/payments/{payment_id}" in sockets[0].url

    # and the page shows the order and what was bought
    order = Order.objects.get()
    expect(page.get_by_role("heading", name="Payment successful")).to_be_visible()
    expect(waiting).to_be_hidden()
    expect(page.locator("[data-field=order-number]")).to_have_text(order.number)
    expect(page.locator("[data-field=order-number]")).to_be_visible()
    receipt = page.locator(".receipt-lines")
    expect(receipt).to_contain_text("Espresso beans")
    expect(receipt).to_contain_text(format_money(2400, "USD"))
    expect(payment_status(page)).to_contain_text("4242")
    expect(page.get_by_role("button", name="Try another card")).to_be_hidden()

    # and the database agrees: one payment, succeeded, for this order, now paid; one debit at the bank
    payment = Payment.objects.get()
    assert str(payment.id) == payment_id
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.order_id == order.pk
    assert order.status == OrderStatus.PAID
    assert order.total == 2400
    assert [(line.name, line.quantity) for line in order.lines.all()] == [("Espresso beans", 1)]
    assert Product.objects.get(pk=espresso.pk).stock == 9
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT).count() == 1


def test_a_declined_card_then_another_card_succeeds(shop, page, espresso):
    stack = shop()

    # when: the shopper pays with a card the bank declines
    add_to_cart(page, stack.http_url, espresso)
    fill_checkout(page, VISA_DECLINED)
    declined_id = pay(page)

    # then: the wait page says so, in words
    expect_status(page, "failed")
    expect(page.get_by_role("heading", name="Payment declined")).to_be_visible()
    expect(page.get_by_text("Your card was declined by your bank.", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Payment successful")).to_be_hidden()
    declined = Payment.objects.get(pk=declined_id)
    assert declined.status == PaymentStatus.FAILED
    assert declined.order.status == OrderStatus.PAYMENT_FAILED
    # the reservation went back on the shelf
    assert Product.objects.get(pk=espresso.pk).stock == 10

    # when: they try another card
    page.get_by_role("button", name="Try another card").click()

    # then: back at checkout with the same cart
    page.wait_for_url(stack.http_url + "/checkout")
    summary = page.get_by_role("region", name="Order summary")
    expect(summary).to_contain_text("Espresso beans")
    expect(summary).to_contain_text(format_money(2400, "USD"))

    # when: they pay with a good card
    fill_checkout(page, VISA_OK)
    approved_id = pay(page)

    # then: success, on a new payment for a new order
    assert approved_id != declined_id
    expect_status(page, "succeeded")
    expect(page.get_by_role("heading", name="Payment successful")).to_be_visible()
    expect(page.locator(".receipt-lines")).to_contain_text("Espresso beans")

    # and two payments in all: the declined one and the approved one
    payments = {str(p.id): p for p in Payment.objects.select_related("order")}
    assert set(payments) == {declined_id, approved_id}
    assert payments[declined_id].status == PaymentStatus.FAILED
    assert payments[approved_id].status == PaymentStatus.SUCCEEDED
    assert payments[declined_id].order.status == OrderStatus.PAYMENT_FAILED
    assert payments[approved_id].order.status == OrderStatus.PAID
    expect(page.locator("[data-field=order-number]")).to_have_text(payments[approved_id].order.number)
    assert Product.objects.get(pk=espresso.pk).stock == 9
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT).count() == 1
