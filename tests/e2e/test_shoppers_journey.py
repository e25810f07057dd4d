"""The shopper's journey in Chromium, around the payment: a decline keeps the cart, the email and the address for
the next card; a total that changed before Pay is shown and asked again, never charged; the back button during a
wait points to the payment in progress; and the form's errors are tied to their fields (axe-core)."""

from __future__ import annotations

import re

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from checkout.models import Order, Product
from payments.models import Payment, PaymentStatus
from tests.e2e.conftest import (
    PHONE,
    VISA_DECLINED,
    VISA_OK,
    add_to_cart,
    expect_status,
    fill_checkout,
    pay,
    pay_button,
    screenshot,
)


def _card_fields_only(page: Page, card_number: str) -> None:
    page.get_by_label("Card number", exact=True).fill(card_number)
    page.get_by_label("Expiry", exact=True).fill("12/30")
    page.get_by_label("CVC", exact=True).fill("123")


def _axe_violations(page: Page) -> str:
    """axe-core's report for the page as it is now ("" when it finds nothing)."""
    results = Axe().run(page)
    return results.generate_report() if results.violations_count else ""


def test_a_decline_then_another_card_keeps_the_cart_the_email_and_the_address(shop, page, espresso):
    stack = shop()
    add_to_cart(page, stack.http_url, espresso)
    fill_checkout(page, VISA_DECLINED)
    declined_id = pay(page)
    # the decline, in the shopper's words
    expect_status(page, "failed")
    expect(page.get_by_text("Your card was declined by your bank.", exact=True)).to_be_visible()

    # the cart is kept: the header counts it and /cart lists it, before "Try another card"
    page.get_by_role("link", name=re.compile(r"^Cart")).click()
    page.wait_for_url(stack.http_url + "/cart")
    expect(page.get_by_role("navigation", name="Shop").locator(".badge")).to_have_text("1")
    expect(page.get_by_role("table", name="Items in your cart")).to_contain_text(espresso.name)
    expect(page.get_by_role("link", name="Checkout", exact=True)).to_be_visible()

    # "Try another card": the form keeps email and address, the card fields are empty
    page.go_back()
    page.get_by_role("button", name="Try another card").click()
    page.wait_for_url(stack.http_url + "/checkout")
    expect(page.get_by_label("Email", exact=True)).to_have_value("ada@example.com")
    expect(page.get_by_label("Address", exact=True)).to_have_value("12 St James's Square")
    expect(page.get_by_label("Country", exact=True)).to_have_value("GB")
    for card_field in ("Card number", "Expiry", "CVC"):
        expect(page.get_by_label(card_field, exact=True)).to_have_value("")
    expect(page.get_by_role("region", name="Order summary")).to_contain_text(espresso.name)

    _card_fields_only(page, VISA_OK)
    approved_id = pay(page)
    expect_status(page, "succeeded")
    assert approved_id != declined_id
    assert Payment.objects.get(pk=approved_id).order.lines.get().quantity == 1  # the cart was not doubled
    page.goto(stack.http_url + "/cart")
    expect(page.get_by_text("Your cart is empty.")).to_be_visible()


def test_a_price_changed_before_pay_is_shown_and_asked_again_never_charged(shop, page, espresso):
    stack = shop()
    add_to_cart(page, stack.http_url, espresso)
    expect(pay_button(page)).to_have_text("Pay $24.00")
    fill_checkout(page, VISA_OK)
    # given: staff raise the price while the shopper fills in the form
    Product.objects.filter(pk=espresso.pk).update(price=7200)

    # when
    pay_button(page).click()

    # then: the new total, said and on the button, and nothing made
    expect(page.locator("#form-error")).to_have_text(
        "The total changed from $24.00 to $72.00 since you opened this page. "
        "Nothing was charged: check it and pay again."
    )
    expect(page.get_by_role("region", name="Order summary")).to_contain_text("$72.00")
    expect(pay_button(page)).to_have_text("Pay $72.00")
    assert not Payment.objects.exists() and not Order.objects.exists()
    screenshot(page, "checkout-total-changed")
    page.set_viewport_size(PHONE)
    screenshot(page, "checkout-total-changed-phone")

    # when: they pay again, having seen it
    payment_id = pay(page)

    # then: the total they were shown
    expect_status(page, "succeeded")
    assert Payment.objects.get(pk=payment_id).amount == 7200


def test_the_back_button_during_a_wait_points_to_the_payment_in_progress(shop, page, espresso):
    stack = shop(SANDBOX_LATENCY_MS="6000")
    add_to_cart(page, stack.http_url, espresso)
    fill_checkout(page, VISA_OK)
    payment_id = pay(page)
    wait_path = f"/payments/{payment_id}/wait"
    expect_status(page, "processing", timeout=5_000)

    # when: the shopper presses Back
    page.go_back()

    # then: the checkout says a payment is under way and links to it, instead of a second form
    page.wait_for_url(stack.http_url + "/checkout")
    expect(page.get_by_role("heading", name="Your payment is being processed")).to_be_visible()
    expect(page.locator("#checkout-form")).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="being processed")).to_contain_text("See your payment")
    expect(page.get_by_role("link", name="See your payment").first).to_have_attribute("href", wait_path)
    screenshot(page, "checkout-payment-in-progress")

    # and the shop's other pages point to it too, the cart's Checkout button included
    page.goto(stack.http_url + "/cart")
    expect(page.get_by_role("link", name="See your payment in progress")).to_have_attribute("href", wait_path)
    expect(page.get_by_role("link", name="Checkout", exact=True)).to_have_count(0)
    screenshot(page, "cart-payment-in-progress")
    page.set_viewport_size(PHONE)
    screenshot(page, "cart-payment-in-progress-phone")

    page.get_by_role("link", name="See your payment in progress").click()
    expect_status(page, "succeeded")
    assert Payment.objects.get().status == PaymentStatus.SUCCEEDED


def test_errors_are_tied_to_their_fields_for_screen_readers(shop, new_context, espresso):
    stack = shop()
    # without checkout.js: the form posts and the server renders the errors (the script is blocked rather than
    # JavaScript turned off, which axe itself needs)
    no_js = new_context().new_page()
    no_js.route("**/checkout.js", lambda route: route.abort())
    add_to_cart(no_js, stack.http_url, espresso)
    fill_checkout(no_js, "4242 4242 4242 4241")
    no_js.get_by_label("Email", exact=True).fill("not-an-email")
    pay_button(no_js).click()
    expect(no_js.get_by_label("Card number", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(no_js.get_by_label("Card number", exact=True)).to_have_accessible_description(re.compile("not valid"))
    expect(no_js.get_by_label("Email", exact=True)).to_have_accessible_description(re.compile("valid email"))
    assert _axe_violations(no_js) == ""

    # with JavaScript: checkout.js shows them, with the same ids
    page = new_context().new_page()
    add_to_cart(page, stack.http_url, espresso)
    pay_button(page).click()
    expiry = page.get_by_label("Expiry", exact=True)
    expect(expiry).to_have_attribute("aria-invalid", "true")
    expect(expiry).to_have_accessible_description(re.compile(r"MM/YY.*required"))
    assert _axe_violations(page) == ""

    page.goto(stack.http_url + "/cart")
    assert _axe_violations(page) == ""
