"""A staff member in Chromium opens a payment's admin page and reads its flight recorder: a shopper's purchase,
made through the checkout and processed by a real worker process, from submission to outcome."""

import re
from datetime import datetime

import pytest
from django.contrib.auth.models import Permission, User
from playwright.sync_api import expect

from payments.models import Payment, PaymentStatus
from payments.recording import JobAttempt
from tests.conftest import wait_until
from tests.e2e.conftest import VISA_OK, add_to_cart, expect_status, fill_checkout, pay, screenshot
from tests.e2e.test_content_security_policy import watch_for_violations

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MILLISECONDS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")


def test_staff_reads_a_purchase_on_the_payments_timeline(shop, new_context, espresso):
    # given: a shopper paid through the checkout; a worker process charged the card
    stack = shop()
    shopper = new_context().new_page()
    add_to_cart(shopper, stack.http_url, espresso)
    fill_checkout(shopper, VISA_OK)
    payment_id = pay(shopper)
    expect_status(shopper, "succeeded")
    # the attempt's end is written just after the outcome the page shows
    wait_until(
        lambda: JobAttempt.objects.filter(object_id=payment_id, finished_at__isnull=False).exists(),
        timeout=10,
        message="the job attempt's end",
    )
    desk = User.objects.create_user(username="dana", password="correct-horse-battery-9", is_staff=True)
    desk.user_permissions.add(Permission.objects.get(content_type__app_label="payments", codename="view_payment"))

    # when: a staff member signs in to the admin and opens the payment
    page = new_context().new_page()
    violations = watch_for_violations(page)
    page.goto(f"{stack.http_url}/admin/payments/payment/{payment_id}/change/")
    page.get_by_label("Username").fill("dana")
    page.get_by_label("Password").fill("correct-horse-battery-9")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{stack.http_url}/admin/payments/payment/{payment_id}/change/")

    # then: the flight recorder is on the page, read-only (no Save)
    timeline = page.get_by_role("table", name="Flight recorder")
    expect(timeline).to_be_visible()
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    screenshot(page, "admin-payment-flight-recorder")
    rows = timeline.locator("tbody tr")
    read = [
        {
            "kind": row.get_attribute("data-kind"),
            "at": row.locator(".timeline-at").inner_text(),
            "iso": row.locator("time").get_attribute("datetime"),
            "what": row.locator(".timeline-what").inner_text(),
            "who": row.locator(".timeline-who").inner_text(),
            "took": row.locator(".timeline-took").inner_text(),
        }
        for row in rows.all()
    ]
    # oldest first, to the millisecond
    assert all(MILLISECONDS.match(row["at"]) for row in read), read
    instants = [datetime.fromisoformat(row["iso"]) for row in read]
    assert instants == sorted(instants)
    # the submission through the web checkout, by a guest
    assert (read[0]["what"], read[0]["who"]) == ("Submitted through the web checkout", "guest shopper")
    # the worker process that ran the job, and the bank call inside it
    attempt = JobAttempt.objects.get(object_id=payment_id)
    started = next(row for row in read if row["kind"] == "attempt")
    assert started["what"] == "Job attempt 1 started"
    assert started["who"] == attempt.worker and attempt.worker.startswith("test-worker-")
    ended = next(row for row in read if row["kind"] == "attempt-end")
    assert ended["what"] == "Job attempt 1 ended: succeeded" and ended["took"].endswith(" ms")
    bank = next(row for row in read if row["kind"] == "gateway")
    assert bank["what"] == "Bank: charge (try 1) → approved"
    assert float(bank["took"].removesuffix(" ms")) >= 300  # the stack's sandbox bank answers in 300 ms
    # every transition, and the pushes that told the wait page
    assert [row["what"] for row in read if row["kind"] == "transition"] == [
        "#1 ∅ → pending",
        "#2 pending → processing",
        "#3 processing → succeeded",
    ]
    assert [row["what"] for row in read if row["kind"] == "push"] == [
        "Pushed #2 to waiting clients",
        "Pushed #3 to waiting clients",
    ]
    assert Payment.objects.get(pk=payment_id).status == PaymentStatus.SUCCEEDED
    # and its styles load under the site's Content-Security-Policy (a stylesheet, no inline style)
    first_time = timeline.locator(".timeline-at").first
    assert first_time.evaluate("(cell) => getComputedStyle(cell).whiteSpace") == "nowrap"
    assert violations == []
