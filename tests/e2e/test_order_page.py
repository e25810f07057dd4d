"""The order page (issue 15): its link opens the order in a fresh browser with no cookies and shows it live; a staff
refund turns it (and the payer's wait page) to refunded without a reload; the wait page says when the shop cannot
be reached and keeps trying; both pages pass an accessibility check.

Pay is pressed as `button.pay`, whatever its label says."""

import sys

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from payments.models import Actor, Payment
from payments.services.refunds import refund_create
from tests.e2e.conftest import (
    PHONE,
    VISA_OK,
    VISA_SLOW,
    WAIT_URL,
    add_to_cart,
    expect_status,
    fill_checkout,
    payment_id_of,
    screenshot,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

OFFLINE_NOTICE = "We can't reach the shop right now. Your payment is safe; we'll keep trying."


def _buy(page: Page, base_url: str, product, card: str = VISA_OK) -> str:
    add_to_cart(page, base_url, product)
    fill_checkout(page, card)
    page.locator("button.pay").click()
    page.wait_for_url(WAIT_URL)
    return payment_id_of(page)


def _order_link(wait_page: Page) -> str:
    return wait_page.get_by_role("link", name="View your order").get_attribute("href")


def _record_main_frame_navigations(page: Page) -> list[str]:
    navigations = []
    page.on("framenavigated", lambda frame: frame == page.main_frame and navigations.append(frame.url))
    return navigations


def _expect_accessible(page: Page, what: str) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"{what}:\n{results.generate_report()}"


def test_the_link_opens_the_order_live_in_a_fresh_browser_and_a_staff_refund_turns_it_to_refunded(
    shop, new_context, espresso
):
    # given: a shopper paid and is on the wait page
    stack = shop()
    payer = new_context().new_page()
    payment_id = _buy(payer, stack.http_url, espresso)
    expect_status(payer, "succeeded")
    link = _order_link(payer)
    assert link.startswith("/orders/")

    # when: the link is opened in another browser, with no cookies at all
    stranger_context = new_context()
    order_page = stranger_context.new_page()
    order_page.goto(stack.http_url + link)

    # then: the order, its payment and no refunds yet
    assert stranger_context.cookies() == [] or all(c["name"] != "sessionid" for c in stranger_context.cookies())
    order = Payment.objects.get(pk=payment_id).order
    expect(order_page.get_by_role("heading", name=f"Order {order.number}")).to_be_visible()
    expect_status(order_page, "succeeded", timeout=5_000)
    expect(order_page.locator("#payment-status")).to_contain_text("Paid")
    expect(order_page.locator("#payment-status")).to_contain_text("Visa •••• 4242")
    expect(order_page.get_by_text("No refunds.")).to_be_visible()
    expect(order_page.get_by_text("London, United Kingdom")).to_be_visible()
    expect(order_page.get_by_text("St James")).to_have_count(0)
    screenshot(order_page, "order-page-paid-desktop")
    _expect_accessible(order_page, "the order page, paid")
    order_navigations = _record_main_frame_navigations(order_page)
    payer_navigations = _record_main_frame_navigations(payer)

    # when: staff refund it in full (the real service; a real worker asks the bank)
    refund_create(payment_id=payment_id, actor=Actor.STAFF, reason="customer asked")

    # then: both pages turn to refunded by themselves
    expect_status(order_page, "refunded")
    expect(order_page.locator("#payment-status")).to_contain_text("Refunded: $24.00 returned to your card.")
    expect(order_page.locator("#refunds li")).to_have_count(1)
    expect(order_page.locator("#refunds li")).to_contain_text("$24.00")
    expect(order_page.locator("#refunds li")).to_contain_text("Returned to your card")
    expect(order_page.get_by_text("No refunds.")).to_be_hidden()
    expect_status(payer, "refunded")
    expect(payer.get_by_role("heading", name="Order refunded")).to_be_visible()
    expect(payer.get_by_text("Refunded: $24.00 returned to your card.", exact=True)).to_be_visible()
    expect(payer.get_by_role("heading", name="Payment successful")).to_be_hidden()
    assert order_navigations == [] and payer_navigations == []
    screenshot(order_page, "order-page-refunded-desktop")
    screenshot(payer, "wait-page-refunded-desktop")
    _expect_accessible(order_page, "the order page, refunded")
    _expect_accessible(payer, "the wait page, refunded")

    # and: on a phone, the same page reads well
    phone = new_context(viewport=PHONE).new_page()
    phone.goto(stack.http_url + link)
    expect_status(phone, "refunded", timeout=5_000)
    screenshot(phone, "order-page-refunded-phone")
    _expect_accessible(phone, "the order page on a phone")


def test_a_partial_refund_shows_partly_refunded_and_the_order_page_keeps_listening(shop, new_context, espresso):
    stack = shop()
    payer = new_context().new_page()
    payment_id = _buy(payer, stack.http_url, espresso)
    expect_status(payer, "succeeded")
    order_page = new_context().new_page()
    order_page.goto(stack.http_url + _order_link(payer))
    expect_status(order_page, "succeeded", timeout=5_000)

    # when: $4 of $24 goes back
    refund_create(payment_id=payment_id, actor=Actor.STAFF, amount=400)

    # then
    expect_status(order_page, "partially_refunded")
    expect(order_page.locator("#payment-status")).to_contain_text("Partly refunded: $4.00 returned to your card.")
    expect(order_page.locator("#refunds li")).to_contain_text("$4.00")
    expect_status(payer, "partially_refunded")
    expect(payer.get_by_text("Partly refunded: $4.00 returned to your card.")).to_be_visible()
    screenshot(order_page, "order-page-partly-refunded-desktop")
    _expect_accessible(payer, "the wait page, partly refunded")

    # and: still listening, so the rest going back turns both pages to refunded
    refund_create(payment_id=payment_id, actor=Actor.STAFF)
    expect_status(order_page, "refunded")
    expect(order_page.locator("#payment-status")).to_contain_text("Refunded: $24.00 returned to your card.")
    expect(order_page.locator("#refunds li")).to_have_count(2)
    expect_status(payer, "refunded")


def test_the_wait_page_says_when_the_shop_cannot_be_reached_and_keeps_trying(shop, new_context, espresso):
    # given: the bank takes 8 s over the slow card; the shopper is on the wait page
    stack = shop(SANDBOX_SLOW_CARD_MS="8000")
    page = new_context().new_page()
    _buy(page, stack.http_url, espresso, card=VISA_SLOW)
    expect_status(page, "processing", timeout=10_000)
    usually = page.get_by_text("This usually takes a few seconds.")
    expect(usually).to_be_visible()
    _expect_accessible(page, "the wait page, processing")

    # when: the server goes away (its socket closes, its status URL refuses connections). The server is stopped
    # rather than the context set offline: a stopped server closes the open socket for certain, as a real outage does.
    daphne = stack.processes[0]
    daphne.terminate()
    daphne.wait(timeout=15)

    # then: the page says so, and no longer promises "a few seconds"
    notice = page.get_by_role("status").filter(has_text=OFFLINE_NOTICE)
    expect(notice).to_be_visible(timeout=10_000)
    expect(usually).to_be_hidden()
    screenshot(page, "wait-page-offline-desktop")
    _expect_accessible(page, "the wait page, offline")

    # when: it comes back on the same address
    port = stack.http_url.rsplit(":", 1)[1]
    daphne_argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", port, "config.asgi:application"]
    stack._spawn("daphne-again", daphne_argv)

    # then: the notice goes, and the outcome shows
    expect_status(page, "succeeded", timeout=40_000)
    expect(page.get_by_text(OFFLINE_NOTICE)).to_have_count(0)
    expect(page.get_by_role("heading", name="Payment successful")).to_be_visible()


def test_the_order_page_stays_live_without_a_websocket_by_polling_its_own_json(shop, new_context, espresso):
    stack = shop()
    payer = new_context().new_page()
    payment_id = _buy(payer, stack.http_url, espresso)
    expect_status(payer, "succeeded")
    link = _order_link(payer)
    order_page = new_context().new_page()
    order_page.route_web_socket("**/ws/**", lambda ws: ws.close())
    polled = []
    order_page.on("request", lambda r: r.url.endswith("/status") and polled.append(r.url))
    order_page.goto(stack.http_url + link)
    expect_status(order_page, "succeeded", timeout=5_000)

    refund_create(payment_id=payment_id, actor=Actor.STAFF)

    expect_status(order_page, "refunded", timeout=30_000)
    expect(order_page.locator("#refunds li")).to_contain_text("Returned to your card")
    assert polled and all(url == stack.http_url + link + "/status" for url in polled)
