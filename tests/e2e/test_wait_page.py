"""The wait page when things are not ideal: a refresh mid-payment, and no WebSocket at all."""

import pytest
from playwright.sync_api import expect

from checkout.models import Order, OrderStatus
from payments.models import Payment, PaymentStatus
from payments.sandbox.models import LedgerEntry
from tests.e2e.conftest import (
    VISA_OK,
    VISA_SLOW,
    add_to_cart,
    expect_status,
    fill_checkout,
    pay,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _record_main_frame_navigations(page) -> list[str]:
    navigations = []
    page.on("framenavigated", lambda frame: frame == page.main_frame and navigations.append(frame.url))
    return navigations


def test_a_refresh_while_processing_shows_the_current_status_then_the_outcome(shop, page, espresso):
    # given: the slow test card keeps the bank busy for 4 s
    stack = shop(SANDBOX_SLOW_CARD_MS="4000")
    checkout_posts = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/checkout") and checkout_posts.append(r))
    add_to_cart(page, stack.http_url, espresso)
    fill_checkout(page, VISA_SLOW)
    payment_id = pay(page)
    wait_url = page.url
    expect_status(page, "processing", timeout=10_000)

    # when: the shopper refreshes while the bank is still busy
    with page.expect_response(wait_url) as reloaded:
        page.reload()

    # then: the reloaded page was rendered with the status the payment has, not a final one and not a stale one
    assert reloaded.value.status == 200
    assert 'data-payment-status="processing"' in reloaded.value.text()
    expect_status(page, "processing", timeout=2_000)
    expect(page.get_by_role("heading", name="Please wait, your payment is being processed")).to_be_visible()
    assert Payment.objects.get(pk=payment_id).status == PaymentStatus.PROCESSING
    navigations = _record_main_frame_navigations(page)

    # and: it turns to success by itself
    expect_status(page, "succeeded")
    expect(page.get_by_role("heading", name="Payment successful")).to_be_visible()
    assert page.url == wait_url and navigations == []
    # the refresh re-submitted nothing: one POST, one payment, one debit
    assert len(checkout_posts) == 1
    payment = Payment.objects.get()
    assert str(payment.id) == payment_id and payment.status == PaymentStatus.SUCCEEDED
    assert Order.objects.get().status == OrderStatus.PAID
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT).count() == 1


def test_with_the_websocket_blocked_the_status_url_brings_the_outcome(shop, page, espresso):
    # given: every WebSocket the page opens is closed at once; no worker yet, so the outcome comes later
    stack = shop(workers=0)
    blocked = []

    def block(ws):
        blocked.append(ws.url)
        ws.close()

    page.route_web_socket("**/ws/**", block)
    status_requests = []
    page.on("request", lambda r: "/status" in r.url and status_requests.append(r.url))

    add_to_cart(page, stack.http_url, espresso)
    fill_checkout(page, VISA_OK)
    payment_id = pay(page)
    wait_url = page.url
    expect_status(page, "pending", timeout=5_000)
    page.wait_for_load_state("load")
    navigations = _record_main_frame_navigations(page)

    # when: a worker processes the payment
    stack.start_worker()

    # then: the page learns the outcome from the status URL, in place
    expect_status(page, "succeeded")
    expect(page.get_by_role("heading", name="Payment successful")).to_be_visible()
    assert page.url == wait_url and navigations == []
    assert blocked, "the wait page never tried its WebSocket"
    assert all(f"/ws/payments/{payment_id}" in url for url in blocked)
    assert status_requests, "the wait page never asked the status URL"
    assert all(f"/api/v1/payments/{payment_id}/status" in url for url in status_requests)
    # and the database agrees
    payment = Payment.objects.get()
    assert str(payment.id) == payment_id and payment.status == PaymentStatus.SUCCEEDED
    assert Order.objects.get().status == OrderStatus.PAID
