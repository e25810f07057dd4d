"""Full-page screenshots of the checkout, the wait page and its outcomes, at desktop and phone width, into
tests/artifacts/screenshots/ (git-ignored) for a person to look at. Also checks what a machine can see: no page
scrolls sideways at phone width."""

import struct

import pytest
from playwright.sync_api import expect

from payments.models import Payment, PaymentStatus
from tests.e2e.conftest import (
    PHONE,
    VISA_DECLINED,
    VISA_OK,
    VISA_SLOW,
    add_to_cart,
    expect_status,
    fill_checkout,
    pay,
    pay_button,
    screenshot,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


def png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", header[16:24])


def test_screenshots_of_checkout_wait_and_outcomes(shop, new_context, espresso):
    stack = shop(SANDBOX_SLOW_CARD_MS="3000")
    shots = []

    # desktop: the checkout, empty-handed errors, filled in; the wait page while processing; success
    page = new_context().new_page()
    add_to_cart(page, stack.http_url, espresso)
    pay_button(page).click()  # nothing filled in: the inline errors
    expect(page.locator("[data-error-for=card_number]")).to_be_visible()
    shots.append(screenshot(page, "checkout-errors-desktop"))
    fill_checkout(page, VISA_SLOW)
    expect(page.locator("#card-brand")).to_have_text("Visa")
    shots.append(screenshot(page, "checkout-desktop"))
    pay(page)
    expect_status(page, "processing", timeout=10_000)
    shots.append(screenshot(page, "wait-processing-desktop"))
    expect_status(page, "succeeded")
    shots.append(screenshot(page, "result-succeeded-desktop"))

    # desktop: a decline
    add_to_cart(page, stack.http_url, espresso)
    fill_checkout(page, VISA_DECLINED)
    pay(page)
    expect_status(page, "failed")
    expect(page.get_by_role("button", name="Try another card")).to_be_visible()
    shots.append(screenshot(page, "result-declined-desktop"))

    # phone: the checkout, and the outcome
    phone = new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True).new_page()
    add_to_cart(phone, stack.http_url, espresso)
    assert phone.evaluate(NO_SIDEWAYS_SCROLL), "the cart scrolls sideways at phone width"
    fill_checkout(phone, VISA_OK)
    assert phone.evaluate(NO_SIDEWAYS_SCROLL), "the checkout scrolls sideways at phone width"
    shots.append(screenshot(phone, "checkout-phone"))
    pay(phone)
    expect_status(phone, "succeeded")
    assert phone.evaluate(NO_SIDEWAYS_SCROLL), "the wait page scrolls sideways at phone width"
    shots.append(screenshot(phone, "result-succeeded-phone"))

    # the PNGs are there, at the widths asked for
    for path in shots:
        width, height = png_size(path)
        assert width == (780 if path.stem.endswith("-phone") else 1280), (path, width)
        assert height >= 600, (path, height)
    statuses = sorted(Payment.objects.values_list("status", flat=True))
    assert statuses == sorted([PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.SUCCEEDED])
