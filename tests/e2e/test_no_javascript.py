"""The shop with JavaScript off: plain form posts, a 303 to the wait page, and a page that refreshes itself."""

import pytest
from playwright.sync_api import expect

from checkout.models import Order, OrderStatus
from payments.models import Payment, PaymentStatus
from payments.sandbox.models import LedgerEntry
from tests.conftest import wait_until
from tests.e2e.conftest import (
    VISA_OK,
    WAIT_URL,
    add_to_cart,
    expect_status,
    fill_checkout,
    pay_button,
    payment_id_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REFRESH = 'meta[http-equiv="refresh"]'


def _is_checkout_post(response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/checkout")


@pytest.fixture
def no_js_page(new_context):
    return new_context(java_script_enabled=False).new_page()


def test_without_javascript_the_wait_page_refreshes_itself_to_the_outcome(shop, no_js_page, espresso):
    page = no_js_page
    # given: no worker yet, so the wait page has to refresh at least once before there is an outcome
    stack = shop(workers=0)
    add_to_cart(page, stack.http_url, espresso)
    checkout_url = page.url
    as_rendered = page.content()
    token = page.locator("input[name=checkout_token]").input_value()
    fill_checkout(page, VISA_OK)
    wait_loads = []
    page.on("response", lambda r: WAIT_URL.search(r.url) and r.request.method == "GET" and wait_loads.append(r))

    # when: Pay posts the form
    with page.expect_response(_is_checkout_post) as submitted:
        pay_button(page).click()

    # then: the server answers 303 to the wait page, which says "please wait" and will refresh
    page.wait_for_url(WAIT_URL)
    payment_id = payment_id_of(page)
    assert submitted.value.status == 303
    assert submitted.value.headers["location"] == f"/payments/{payment_id}/wait"
    expect_status(page, "pending", timeout=5_000)
    expect(page.get_by_role("heading", name="Please wait, your payment is being processed")).to_be_visible()
    expect(page.locator(REFRESH)).to_have_count(1)

    # when: a worker processes the payment
    stack.start_worker()

    # then: a refresh shows the outcome, and the refreshing stops
    expect_status(page, "succeeded", timeout=20_000)
    expect(page.get_by_role("heading", name="Payment successful")).to_be_visible()
    order = Order.objects.get()
    expect(page.locator("[data-field=order-number]")).to_have_text(order.number)
    expect(page.locator(REFRESH)).to_have_count(0)
    assert page.url.endswith(f"/payments/{payment_id}/wait")
    assert len(wait_loads) >= 2, "the wait page never refreshed"
    payment = Payment.objects.get()
    assert str(payment.id) == payment_id and payment.status == PaymentStatus.SUCCEEDED
    assert order.status == OrderStatus.PAID

    # when: the shopper goes back to the form they submitted and presses Pay again. Chromium asks the server for
    # /checkout again on Back (which, the cart being empty now, redirects to the cart); other browsers show
    # the page they kept. That page is what the route serves.
    def the_form_as_first_rendered(route):
        if route.request.method == "GET":
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=as_rendered)
        else:
            route.fallback()

    page.route(checkout_url, the_form_as_first_rendered)
    page.go_back()
    page.wait_for_url(checkout_url)
    assert page.locator("input[name=checkout_token]").input_value() == token, "not the same rendered form"
    fill_checkout(page, VISA_OK)
    with page.expect_response(_is_checkout_post) as resubmitted:
        pay_button(page).click()

    # then: they land on the same payment, already paid; nothing new was made or charged
    page.wait_for_url(WAIT_URL)
    assert resubmitted.value.status == 303
    assert payment_id_of(page) == payment_id
    expect_status(page, "succeeded", timeout=2_000)
    assert Payment.objects.count() == 1
    assert Order.objects.count() == 1
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT).count() == 1


def test_without_javascript_a_double_clicked_pay_makes_one_payment(shop, no_js_page, espresso):
    """Without JavaScript nothing disables the button: the second click posts the form again (the browser
    drops the first navigation, the server may already be working on it). The form's token keeps it to one
    payment.

    The wait page itself is not checked here: when the server had already taken the first click, the
    browser may keep a session that does not own the payment and get a 404 (a product bug, shown
    deterministically by test_double_submit.py::test_a_lost_answer_then_pay_again_shows_the_payment)."""
    page = no_js_page
    stack = shop()
    add_to_cart(page, stack.http_url, espresso)
    fill_checkout(page, VISA_OK)
    posts = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/checkout") and posts.append(r))

    pay_button(page).dblclick()

    page.wait_for_url(WAIT_URL)
    assert 1 <= len(posts) <= 2
    payment = wait_until(_the_only_payment_once_final, timeout=20, message="the payment's outcome")
    assert payment_id_of(page) == str(payment.id)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert Order.objects.get().status == OrderStatus.PAID
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT).count() == 1


def _the_only_payment_once_final():
    payment = Payment.objects.get()
    return payment if payment.has_outcome else None
