"""The shop, the admin and the API docs in Chromium under the site's Content-Security-Policy: every script and style
they need still runs (a violation is reported on the console, and fails the test), the WebSocket still connects,
and a refused submit shows its error inline without the card number."""

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from checkout.models import Order
from payments.models import Payment
from tests.e2e.conftest import (
    VISA_OK,
    WAIT_URL,
    add_to_cart,
    expect_status,
    fill_checkout,
    pay,
    pay_button,
    screenshot,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CSP_VIOLATION = re.compile(r"Content Security Policy|Refused to (load|execute|apply|connect|frame|send)", re.I)


def watch_for_violations(page) -> list[str]:
    """Chromium reports every blocked script, style, connection or form post on the console."""
    violations: list[str] = []
    page.on("console", lambda message: CSP_VIOLATION.search(message.text) and violations.append(message.text))
    page.on("pageerror", lambda error: violations.append(f"page error: {error}"))
    return violations


def test_a_purchase_runs_under_the_policy_with_no_violation(shop, page, espresso):
    stack = shop()
    violations = watch_for_violations(page)
    pushes: list[str] = []
    page.on("websocket", lambda socket: socket.on("framereceived", lambda frame: pushes.append(str(frame))))

    with page.expect_response(lambda r: r.url.endswith("/checkout") and r.request.method == "GET") as rendered:
        add_to_cart(page, stack.http_url, espresso)
    assert "script-src 'self'" in rendered.value.headers["content-security-policy"]
    # checkout.js runs: Pay with nothing filled in shows the inline checks, no request is sent
    pay_button(page).click()
    expect(page.locator("[data-error-for=card_number]")).to_have_text("This field is required.")
    fill_checkout(page, VISA_OK)
    expect(page.locator("#card-brand")).to_have_text("Visa")
    pay(page)

    # wait.js runs and the outcome comes over the WebSocket (connect-src)
    expect_status(page, "succeeded")
    assert any("payment.status" in push for push in pushes), "no push came over the WebSocket"
    assert violations == []


def test_a_refused_submit_shows_its_error_inline_and_never_the_card_number(shop, new_context, espresso):
    stack = shop()
    card = "5555 5555 5555 4444"

    # without JavaScript: the server's page, 422, the card fields empty, the others as typed
    page = new_context(java_script_enabled=False).new_page()
    violations = watch_for_violations(page)
    add_to_cart(page, stack.http_url, espresso)
    fill_checkout(page, card, expiry="13/30")
    page.get_by_label("Address", exact=True).fill("12 St James\u202e's Square")
    with page.expect_response(lambda r: r.url.endswith("/checkout") and r.request.method == "POST") as submitted:
        pay_button(page).click()
    assert submitted.value.status == 422
    expect(page.locator("[data-error-for=shipping_address]")).to_contain_text("invisible formatting characters")
    expect(page.locator("[data-error-for=expiry]")).to_have_text("The expiry month must be between 01 and 12.")
    expect(page.get_by_label("Card number", exact=True)).to_have_value("")
    expect(page.get_by_label("CVC", exact=True)).to_have_value("")
    expect(page.get_by_label("Full name", exact=True)).to_have_value("Ada Lovelace")
    expect(page.get_by_label("Expiry", exact=True)).to_have_value("13/30")
    assert card not in page.content() and card.replace(" ", "") not in page.content()
    screenshot(page, "checkout-refused-no-js-desktop")

    # with JavaScript: a card number typed into the address is refused by the server, shown beside the field
    page = new_context().new_page()
    violations += watch_for_violations(page)
    add_to_cart(page, stack.http_url, espresso)
    fill_checkout(page, VISA_OK)
    page.get_by_label("Address", exact=True).fill("Flat 2, card 4000 0566 5566 5556")
    with page.expect_response(lambda r: r.url.endswith("/checkout") and r.request.method == "POST") as submitted:
        pay_button(page).click()
    assert submitted.value.status == 422
    expect(page.locator("[data-error-for=shipping_address]")).to_have_text(
        "This looks like a card number. Card details go only in the payment fields, never here."
    )
    expect(page.get_by_label("Address", exact=True)).to_be_focused()
    screenshot(page, "checkout-refused-card-in-address-desktop")

    assert not Order.objects.exists() and not Payment.objects.exists()
    assert violations == []


def test_someone_elses_form_in_the_browser_gets_a_form_of_their_own(shop, new_context, espresso):
    stack = shop()
    # given: a shopper's checkout form, and its token seen by an attacker in another browser session
    shopper = new_context().new_page()
    add_to_cart(shopper, stack.http_url, espresso)
    token = shopper.locator("input[name=checkout_token]").input_value()
    fill_checkout(shopper, VISA_OK)
    pay(shopper)
    attacker = new_context().new_page()
    violations = watch_for_violations(attacker)
    add_to_cart(attacker, stack.http_url, espresso)
    attacker.evaluate("token => { document.querySelector('input[name=checkout_token]').value = token; }", token)
    fill_checkout(attacker, VISA_OK)

    # when: the attacker pays on it
    with attacker.expect_response(lambda r: r.url.endswith("/checkout") and r.request.method == "POST") as answer:
        pay_button(attacker).click()

    # then: refused, nothing of the shopper's payment; the page now holds a token of the attacker's own
    assert answer.value.status == 409
    assert WAIT_URL.search(attacker.url) is None
    expect(attacker.locator("#form-error")).to_contain_text("opened in another browser session")
    fresh = attacker.locator("input[name=checkout_token]").input_value()
    assert fresh != token
    # and: paying again pays for the attacker's own cart, as the attacker
    pay(attacker)
    expect_status(attacker, "succeeded")
    assert Payment.objects.count() == 2
    assert violations == []


def test_the_admin_and_the_api_docs_work_under_the_policy(shop, page, espresso):
    stack = shop()
    get_user_model().objects.create_superuser("staff", password="a long test password")
    violations = watch_for_violations(page)

    page.goto(stack.http_url + "/admin/login/")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill("a long test password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    page.goto(stack.http_url + "/admin/checkout/product/")
    page.locator("#action-toggle").check()  # the admin's own actions.js
    expect(page.locator(".action-counter")).to_contain_text("1 of 1 selected")
    page.goto(stack.http_url + f"/admin/checkout/product/{espresso.pk}/change/")
    expect(page.get_by_label("Name:")).to_have_value("Espresso beans")
    admin_violations = list(violations)

    page.goto(stack.http_url + "/api/v1/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=15_000)
    expect(page.get_by_text("Payments API").first).to_be_visible()
    assert page.evaluate("() => document.querySelector('script[nonce]') !== null"), "the start-up script has no nonce"
    page.get_by_text("/api/v1/payments/{payment_id}/status", exact=True).first.click()  # Swagger UI's own scripts
    expect(page.get_by_role("button", name="Try it out").first).to_be_visible()
    screenshot(page, "api-docs-desktop")

    assert admin_violations == []
    # Swagger UI's icons are data: images: the docs view's own policy allows them (payments/api/urls.py).
    assert violations == []
