"""The shopper's whole journey after the wait page (issue 15, "Done when"), in Chromium on the real stack: a purchase
sends a receipt, written as a file by the stack's email backend (`var/mail/` under `make run`); the receipt's link
opens the order in a fresh browser with no cookies and shows it live; a staff refund, made through the admin's
refund action by a staff user who may refund, turns that page to refunded without a reload and sends the refund
notice. Nothing is done through the ORM but setting up the product and the staff user, and reading what the stack
wrote."""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from playwright.sync_api import Page, expect

from checkout.models import Order
from payments.models import Payment
from tests.conftest import wait_until
from tests.e2e.conftest import VISA_OK, WAIT_URL, add_to_cart, expect_status, fill_checkout, payment_id_of

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long test password"  # noqa: S105 - a test user's


def _emails(mail_dir: Path) -> list[email.message.EmailMessage]:
    """Every email the file backend wrote: one file per connection, messages separated by a line of dashes."""
    found = []
    for path in sorted(mail_dir.glob("*.log")) if mail_dir.exists() else []:
        for chunk in path.read_text().split("-" * 79):
            if chunk.strip():
                found.append(email.message_from_string(chunk.strip() + "\n", policy=policy.default))
    return found


def _text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def _html_of(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


@pytest.fixture
def refunder(transactional_db) -> User:
    user = User.objects.create_user(username="desk", password=PASSWORD, is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="payments", codename__in=["view_payment", "refund_payment"])
    )
    return user


def _staff_refund_in_full(page: Page, base_url: str, payment_id: str, amount: str) -> None:
    page.goto(base_url + "/admin/payments/payment/")
    page.get_by_label("Username").fill("desk")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    row = page.locator("#result_list tbody tr", has_text=payment_id[:8])
    row.locator("input.action-select").check()
    page.get_by_role("combobox", name="Action").select_option("refund_amount")
    page.get_by_role("button", name="Go").click()
    expect(page.get_by_label("Amount to refund (USD)")).to_have_value(amount)
    page.get_by_role("button", name="Review refund").click()
    page.get_by_role("button", name="Yes, refund").click()
    expect(page.locator(".messagelist")).to_be_visible()


def test_a_purchase_sends_a_receipt_whose_link_shows_the_order_live_through_a_staff_refund(
    shop, new_context, espresso, refunder
):
    # given: the stack, its emails written as files into a directory of its own
    stack = shop()
    mail_dir = Path(stack.env["EMAIL_FILE_PATH"])

    # when: a shopper buys a bag of espresso beans
    payer = new_context().new_page()
    add_to_cart(payer, stack.http_url, espresso)
    fill_checkout(payer, VISA_OK)
    payer.locator("button.pay").click()
    payer.wait_for_url(WAIT_URL)
    payment_id = payment_id_of(payer)
    expect_status(payer, "succeeded")
    order = Order.objects.get(payments__pk=payment_id)

    # then: one receipt, to the shopper, in plain text and HTML: the lines, the total, the card, the order's link
    (receipt,) = wait_until(lambda: _emails(mail_dir) or None, timeout=30, message="the receipt")
    assert receipt["To"] == "ada@example.com"
    assert order.number in receipt["Subject"]
    text, html = _text_of(receipt), _html_of(receipt)
    for part in (text, html):
        assert "Espresso beans" in part and "$24.00" in part and "4242" in part
    (link,) = set(re.findall(rf"{re.escape(stack.http_url)}/orders/[^\s\"<]+", text))
    assert link in html

    # when: the link is opened in another browser, with no cookies at all
    reader_context = new_context()
    reader = reader_context.new_page()
    navigations = []
    reader.on("framenavigated", lambda frame: frame == reader.main_frame and navigations.append(frame.url))
    reader.goto(link)

    # then: the order, paid, and the page is live
    expect(reader.get_by_role("heading", name=f"Order {order.number}")).to_be_visible()
    expect_status(reader, "succeeded", timeout=5_000)
    assert not [cookie for cookie in reader_context.cookies() if cookie["name"] == "sessionid"]

    # when: staff refund the order in full through the admin
    _staff_refund_in_full(new_context().new_page(), stack.http_url, payment_id, "24.00")

    # then: the reader's page turns to refunded without a reload, and lists the refund
    expect_status(reader, "refunded")
    expect(reader.locator("#payment-status")).to_contain_text("Refunded")
    expect(reader.get_by_text("Returned to your card", exact=True)).to_be_visible()
    assert navigations == [link], navigations
    # ...as does the payer's wait page
    expect_status(payer, "refunded")
    assert Payment.objects.get(pk=payment_id).amount_refunded == 2400

    # and the refund notice follows the receipt, once
    emails = wait_until(lambda: len(_emails(mail_dir)) >= 2 and _emails(mail_dir), timeout=30, message="the notice")
    assert len(emails) == 2
    notice = emails[1]
    assert notice["To"] == "ada@example.com"
    assert "$24.00" in _text_of(notice) and "refunded in full" in _text_of(notice)
    assert link in _text_of(notice)
