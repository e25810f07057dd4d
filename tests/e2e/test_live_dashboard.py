"""A staff member watches the live dashboard in Chromium while a shopper pays: the payment, processed by a real
worker process, shows in the "succeeded" count and on the chart without a reload, pushed over the staff socket,
under the site's Content-Security-Policy with no violation."""

import re

import pytest
from django.contrib.auth.models import Permission, User
from playwright.sync_api import expect

from payments.queue_state import payments_queue_state
from tests.conftest import wait_until
from tests.e2e.conftest import VISA_OK, add_to_cart, expect_status, fill_checkout, pay, screenshot
from tests.e2e.test_content_security_policy import watch_for_violations

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_dashboard_counts_a_payment_live_without_a_reload(shop, new_context, espresso):
    # given: a staff member with view_payment, signed in, on the dashboard before anything was paid; no periodic
    # refresh within the test, so what updates the page is the payment's own status_changed tick
    stack = shop(PAYMENTS_DASHBOARD_REFRESH="600")
    # the worker process registers its RQ workers in its first second: the page's snapshot should count them
    wait_until(lambda: payments_queue_state().workers_live > 0, timeout=30, message="the worker to register")
    desk = User.objects.create_user(username="dana", password="correct-horse-battery-9", is_staff=True)
    desk.user_permissions.add(Permission.objects.get(content_type__app_label="payments", codename="view_payment"))
    page = new_context().new_page()
    violations = watch_for_violations(page)
    frames: list[str] = []
    page.on("websocket", lambda socket: socket.on("framereceived", lambda frame: frames.append(str(frame))))
    page.goto(f"{stack.http_url}/admin/")
    page.get_by_label("Username").fill("dana")
    page.get_by_label("Password").fill("correct-horse-battery-9")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Live dashboard").click()
    page.wait_for_url(f"{stack.http_url}/admin/payments/dashboard/")
    dashboard = page.locator("#staff-dashboard")
    expect(dashboard).to_have_attribute("data-live", "on")
    succeeded = page.locator("[data-total=succeeded]")
    expect(succeeded).to_have_text("0")
    # the worker process's RQ workers (one per thread), as /readyz counts them
    expect(page.locator("[data-figure='queue.workers']")).to_have_text(re.compile(r"^[1-9][0-9]*$"))
    expect(page.locator("[data-chart=per-minute] svg")).to_be_visible()
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: frame == page.main_frame and navigations.append(frame.url))

    # when: a shopper pays and a worker process charges the card
    shopper = new_context().new_page()
    add_to_cart(shopper, stack.http_url, espresso)
    fill_checkout(shopper, VISA_OK)
    pay(shopper)
    expect_status(shopper, "succeeded")

    # then: the dashboard counts it, in the tile, the chart and the table, without reloading
    expect(succeeded).to_have_text("1", timeout=10_000)
    expect(page.locator("[data-chart=per-minute] rect.bar-succeeded")).to_have_count(1)
    assert sum(int(cell) for cell in page.locator(".dashboard-table tbody tr td:nth-of-type(1)").all_inner_texts()) == 1
    expect(page.locator("[data-figure='time_to_outcome.sample']")).to_have_text("1")
    assert navigations == []
    assert any("dashboard.figures" in frame for frame in frames)
    screenshot(page, "admin-live-dashboard")
    # its stylesheet applies under the policy (no inline style), and nothing was blocked
    assert dashboard.locator(".dashboard-tiles").evaluate("(tiles) => getComputedStyle(tiles).display") == "flex"
    assert violations == []


def test_without_javascript_the_dashboard_is_a_snapshot(shop, new_context, espresso):
    # given: a payment already made, and a staff member whose browser runs no JavaScript
    stack = shop()
    shopper = new_context().new_page()
    add_to_cart(shopper, stack.http_url, espresso)
    fill_checkout(shopper, VISA_OK)
    pay(shopper)
    expect_status(shopper, "succeeded")
    User.objects.create_user(username="dana", password="correct-horse-battery-9", is_staff=True, is_superuser=True)
    page = new_context(java_script_enabled=False).new_page()

    # when
    page.goto(f"{stack.http_url}/admin/payments/dashboard/")
    page.get_by_label("Username").fill("dana")
    page.get_by_label("Password").fill("correct-horse-battery-9")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{stack.http_url}/admin/payments/dashboard/")

    # then: the table holds the figures; the page says it is not live
    table = page.get_by_role("table", name="Outcomes per minute")
    expect(table).to_be_visible()
    assert sum(int(cell) for cell in table.locator("tbody tr td:nth-of-type(1)").all_inner_texts()) == 1
    expect(page.locator("[data-total=succeeded]")).to_have_text("1")
    expect(page.locator("[data-figure=live]")).to_contain_text("not live")
