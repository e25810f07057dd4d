"""However fast the shopper clicks Pay, one form makes one payment."""

import time

import pytest
from django.db import transaction

from checkout.models import Order, OrderStatus, Product
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

TWO_CLICKS_IN_ONE_TASK = """() => {
  const button = document.querySelector("#checkout-form button[type=submit]");
  button.click();
  button.click();
}"""

POST_THE_FORM_TWICE_AT_ONCE = """async () => {
  const form = document.getElementById("checkout-form");
  const send = () => fetch(form.action, {
    method: "POST", body: new FormData(form), headers: { Accept: "application/json" }, credentials: "same-origin",
  }).then(async (response) => ({ status: response.status, body: await response.json() }));
  return Promise.all([send(), send()]);
}"""

# What checkout.js sends, with a handle to give up on it.
SUBMIT_AND_KEEP_AN_ABORT_HANDLE = """() => {
  const form = document.getElementById("checkout-form");
  window.__e2eSubmission = new AbortController();
  fetch(form.action, {
    method: "POST", body: new FormData(form), headers: { Accept: "application/json" }, credentials: "same-origin",
    signal: window.__e2eSubmission.signal,
  }).catch(() => {});
}"""

# Two submit events, not clicks: they reach checkout.js even though the first one disabled the button.
TWO_SUBMIT_EVENTS = """() => {
  const form = document.getElementById("checkout-form");
  form.dispatchEvent(new SubmitEvent("submit", { bubbles: true, cancelable: true }));
  form.dispatchEvent(new SubmitEvent("submit", { bubbles: true, cancelable: true }));
}"""


def _double_click(page):
    pay_button(page).dblclick()


def _two_clicks_in_one_task(page):
    page.evaluate(TWO_CLICKS_IN_ONE_TASK)


def _two_submit_events(page):
    page.evaluate(TWO_SUBMIT_EVENTS)


@pytest.mark.parametrize(
    "press_pay_twice",
    [_double_click, _two_clicks_in_one_task, _two_submit_events],
    ids=["dblclick", "two-clicks", "two-submit-events"],
)
def test_pay_pressed_twice_sends_one_request_and_makes_one_payment(shop, page, espresso, press_pay_twice):
    stack = shop()
    checkout_posts = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/checkout") and checkout_posts.append(r))
    add_to_cart(page, stack.http_url, espresso)
    fill_checkout(page, VISA_OK)

    # when: Pay is pressed twice as fast as the browser can
    press_pay_twice(page)

    # then: one request, one wait page, one payment
    page.wait_for_url(WAIT_URL)
    expect_status(page, "succeeded")
    assert len(checkout_posts) == 1
    _assert_one_paid_payment(espresso)


def test_the_same_form_posted_twice_at_once_makes_one_payment(shop, page, espresso):
    """What the button's guard cannot stop (a replayed POST, a second tab with the same page): the server
    recognises the form's token and answers both with the same payment.

    Only the database is checked here: which of the two answers' sessions the browser keeps is a race, and
    when it keeps the wrong one the wait page is a 404 (test_a_lost_answer_then_pay_again_shows_the_payment)."""
    stack = shop(workers=0)
    add_to_cart(page, stack.http_url, espresso)
    fill_checkout(page, VISA_OK)

    answers = page.evaluate(POST_THE_FORM_TWICE_AT_ONCE)

    assert [answer["status"] for answer in answers] == [202, 202], answers
    first, second = (answer["body"] for answer in answers)
    assert first["payment_id"] == second["payment_id"]
    payment = Payment.objects.get()
    assert str(payment.id) == first["payment_id"]
    assert Order.objects.count() == 1
    stack.run_worker_burst()
    _assert_one_paid_payment(espresso)


def test_a_lost_answer_then_pay_again_shows_the_payment(shop, page, espresso):
    """The shopper presses Pay; the request reaches the shop, which makes the payment, but the answer never
    comes back (the connection dropped, or a no-JavaScript double click cancelled the first navigation).
    Paying again with the same form must lead to that payment's wait page."""
    stack = shop(workers=0)
    add_to_cart(page, stack.http_url, espresso)
    fill_checkout(page, VISA_OK)

    # when: a first submission is held inside the server (a row lock on the product it reserves), and the
    # browser gives up on it; then the server finishes it
    with transaction.atomic():
        Product.objects.select_for_update().get(pk=espresso.pk)  # SQLite: takes the database's write lock
        page.evaluate(SUBMIT_AND_KEEP_AN_ABORT_HANDLE)
        time.sleep(0.7)  # the view is now waiting for the lock
        page.evaluate("window.__e2eSubmission.abort()")
        time.sleep(0.5)  # daphne has seen the disconnect
    wait_until(lambda: Payment.objects.count() == 1, timeout=10, message="the first submission's payment")
    payment = Payment.objects.get()

    # and: the shopper presses Pay again, on the same form
    with page.expect_response(lambda r: WAIT_URL.search(r.url) is not None) as waited:
        pay_button(page).click()

    # then: one payment, and its wait page, not a 404
    page.wait_for_url(WAIT_URL)
    assert payment_id_of(page) == str(payment.id)
    assert Payment.objects.count() == 1
    assert waited.value.status == 200, f"the wait page of the shopper's own payment answered {waited.value.status}"
    stack.start_worker()
    expect_status(page, "succeeded")


def _assert_one_paid_payment(product):
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert Order.objects.get().status == OrderStatus.PAID
    assert Product.objects.get(pk=product.pk).stock == product.stock - 1
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT).count() == 1
