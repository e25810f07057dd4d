"""3-D Secure in Chromium, as a new shopper meets it (issue 16): Pay with 4000 0027 6000 3184, the wait page asks
for the bank, the bank's page, and back to the same wait page, which turns to the outcome by itself. With
JavaScript and without; axe-core on the question and on the bank's page; one debit, and payments_audit holds."""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from payments.models import Payment, PaymentStatus
from tests.e2e.conftest import PHONE, add_to_cart, expect_status, fill_checkout, payment_id_of, screenshot
from tests.integration.test_recovery import assert_audit_passes
from tests.payments.bank import debits_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

THREE_DS = "4000 0027 6000 3184"
BANK_QUESTION = "Your bank needs to confirm it's you"
CHALLENGE_URL = re.compile(r"/sandbox-bank/authenticate/[^/?#]+$")
WAIT_PATH = re.compile(r"/payments/[0-9a-f-]{36}/wait$")


def _pay_and_meet_the_bank_question(page: Page, stack, espresso) -> str:
    add_to_cart(page, stack.http_url, espresso)
    fill_checkout(page, THREE_DS)
    page.locator("button.pay").click()
    page.wait_for_url(WAIT_PATH)
    payment_id = payment_id_of(page)
    expect_status(page, "requires_action")
    expect(page.get_by_role("heading", name=BANK_QUESTION)).to_be_visible()
    expect(page.get_by_text("This usually takes a few seconds")).to_be_hidden()
    return payment_id


def _to_the_bank(page: Page) -> None:
    page.get_by_role("link", name="Confirm with your bank").click()
    page.wait_for_url(CHALLENGE_URL)
    expect(page.get_by_role("heading", name="Confirm your payment")).to_be_visible()
    expect(page.get_by_test_id("amount")).to_have_text("$24.00")
    expect(page.get_by_test_id("merchant")).to_have_text("Roastery")


def _no_axe_violations(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def test_complete_authentication_leads_back_to_the_wait_page_that_turns_to_success_live(shop, new_context, espresso):
    stack = shop()
    page = new_context().new_page()
    payment_id = _pay_and_meet_the_bank_question(page, stack, espresso)
    wait_url = page.url
    _no_axe_violations(page)
    screenshot(page, "three-d-secure-wait-desktop")

    _to_the_bank(page)
    _no_axe_violations(page)
    screenshot(page, "three-d-secure-bank-desktop")

    page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_url(wait_url)
    expect_status(page, "succeeded")
    expect(page.get_by_role("heading", name="Payment successful")).to_be_visible()
    payment = Payment.objects.get(pk=payment_id)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert debits_for(payment).count() == 1
    assert_audit_passes(stack)


def test_the_bank_question_on_a_phone_and_back_from_the_bank_without_answering(shop, new_context, espresso):
    stack = shop()
    page = new_context(viewport=PHONE).new_page()
    payment_id = _pay_and_meet_the_bank_question(page, stack, espresso)
    screenshot(page, "three-d-secure-wait-phone")
    _to_the_bank(page)
    screenshot(page, "three-d-secure-bank-phone")

    # the shopper thinks better of it and goes Back: the question is still there, its link still works
    page.go_back()
    page.wait_for_url(WAIT_PATH)
    expect_status(page, "requires_action")
    _to_the_bank(page)
    # a double click on Complete: the bank keeps its first answer, the shop charges once
    page.get_by_role("button", name="Complete authentication").dblclick()
    page.wait_for_url(WAIT_PATH)
    expect_status(page, "succeeded")
    assert debits_for(Payment.objects.get(pk=payment_id)).count() == 1
    assert_audit_passes(stack)


def test_fail_authentication_ends_in_a_clear_decline_and_nothing_is_charged(shop, new_context, espresso):
    stack = shop()
    page = new_context().new_page()
    payment_id = _pay_and_meet_the_bank_question(page, stack, espresso)
    wait_url = page.url
    _to_the_bank(page)

    page.get_by_role("button", name="Fail authentication").click()
    page.wait_for_url(wait_url)
    expect_status(page, "failed")
    expect(page.get_by_role("heading", name="Payment declined")).to_be_visible()
    expect(page.get_by_text("Your bank could not confirm it was you. Try again, or use another card.")).to_be_visible()
    expect(page.get_by_text("Nothing was charged, and your cart is kept.")).to_be_visible()
    expect(page.get_by_role("button", name="Try another card")).to_be_visible()
    screenshot(page, "three-d-secure-declined-desktop")
    payment = Payment.objects.get(pk=payment_id)
    assert payment.decline_code == "authentication_failed"
    assert debits_for(payment).count() == 0
    assert_audit_passes(stack)


def test_without_javascript_the_bank_question_links_to_the_bank_and_the_outcome_shows_after_a_refresh(
    shop, new_context, espresso
):
    stack = shop()
    page = new_context(java_script_enabled=False).new_page()
    add_to_cart(page, stack.http_url, espresso)
    fill_checkout(page, THREE_DS)
    page.locator("button.pay").click()
    page.wait_for_url(WAIT_PATH)
    wait_url = page.url
    payment_id = payment_id_of(page)

    # the page refreshes itself while processing, then stops at the question: the link is the way on
    expect_status(page, "requires_action")
    expect(page.get_by_role("heading", name=BANK_QUESTION)).to_be_visible()
    expect(page.locator('meta[http-equiv="refresh"]')).to_have_count(0)
    _to_the_bank(page)

    page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_url(wait_url)
    # back on the wait page, which refreshes itself until the outcome
    expect_status(page, "succeeded")
    expect(page.get_by_role("heading", name="Payment successful")).to_be_visible()
    expect(page.locator('meta[http-equiv="refresh"]')).to_have_count(0)
    assert debits_for(Payment.objects.get(pk=payment_id)).count() == 1
    assert_audit_passes(stack)
