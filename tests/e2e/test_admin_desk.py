"""A payments desk in Chromium (issue 14): a staff user, signed in through the admin's login page, finds a payment by
its card's last 4 in the list, opens it, refunds part of it through the amount form and the confirmation page, and
sees the refund recorded once the stack's worker has asked the bank. Nothing is done through the ORM but setting up
the staff user and the payments, and reading what the stack wrote."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.auth.models import Permission, User
from playwright.sync_api import expect

from payments.models import Actor, Payment, PaymentStatus, Refund, RefundStatus
from payments.services.dispatch import PAYMENT_JOB, payment_job_id, payments_queue
from tests.e2e.conftest import screenshot
from tests.e2e.test_content_security_policy import watch_for_violations

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

AMEX_OK = "378282246310005"
VISA_OK = "4242424242424242"
PASSWORD = "a long test password"  # noqa: S105 - a test user's


def wait_for(predicate, *, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def refunder(transactional_db) -> User:
    user = User.objects.create_user(username="desk", password=PASSWORD, is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="payments", codename__in=["view_payment", "refund_payment"])
    )
    return user


def test_staff_find_a_payment_by_last4_and_refund_part_of_it_through_the_confirmation(
    shop, page, make_payment, refunder
):
    # given: the stack, and two payments its worker has charged
    stack = shop()
    wanted = make_payment(AMEX_OK, amount=4500)
    other = make_payment(VISA_OK, amount=1200)
    wait_for(
        lambda: set(Payment.objects.values_list("status", flat=True)) == {PaymentStatus.SUCCEEDED},
        what="the worker to charge both payments",
    )
    violations = watch_for_violations(page)

    # when: the staff user signs in and searches for the card's last 4
    page.goto(stack.http_url + "/admin/payments/payment/")
    page.get_by_label("Username").fill("desk")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Select payment to view")).to_be_visible()
    page.locator("#searchbar").fill("0005")
    page.locator("#searchbar").press("Enter")

    # then: one row, the one paid with that card, with its status badge and amount
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    row = rows.first
    expect(row).to_contain_text("•••• 0005")
    expect(row).to_contain_text("$45.00")
    expect(row.locator(".payment-status")).to_have_text("Succeeded")
    assert str(other.pk)[:8] not in row.inner_text()
    screenshot(page, "admin-payments-search-desktop")

    # when: they open it
    row.get_by_role("link", name=re.compile(str(wanted.pk)[:8])).click()
    page.wait_for_url(re.compile(rf"/admin/payments/payment/{wanted.pk}/change/"))
    expect(page.get_by_text(str(wanted.pk)).first).to_be_visible()
    expect(page.get_by_text("0005").first).to_be_visible()

    # and go back to the list to refund $20.00 of it
    page.go_back()
    rows.first.locator("input.action-select").check()
    page.get_by_role("combobox", name="Action").select_option("refund_amount")
    page.get_by_role("button", name="Go").click()

    # then: the form asks how much, defaulting to all of it
    amount = page.get_by_label("Amount to refund (USD)")
    expect(amount).to_have_value("45.00")
    # an amount above what is left is refused inline, and nothing is refunded
    amount.fill("50")
    page.get_by_role("button", name="Review refund").click()
    expect(page.locator(".errorlist")).to_contain_text("At most $45.00 is left to refund on this payment.")
    assert not Refund.objects.exists()
    page.get_by_label("Amount to refund (USD)").fill("20")
    page.get_by_role("button", name="Review refund").click()

    # then: the confirmation says exactly what will happen; nothing has happened yet
    expect(page.locator("#action-summary")).to_contain_text("giving back $20.00 in all")
    expect(page.locator("#action-plan")).to_contain_text("Refund $20.00 of the $45.00 left")
    screenshot(page, "admin-refund-confirmation-desktop")
    assert not Refund.objects.exists()
    page.get_by_role("button", name="Yes, refund").click()

    # then: back on the list, told the refund is queued; the worker gives the money back
    expect(page.locator(".messagelist")).to_contain_text("Refunds queued for 1 payment(s), $20.00 in all")
    wait_for(
        lambda: Refund.objects.filter(payment=wanted, status=RefundStatus.SUCCEEDED).exists(),
        what="the worker to refund",
    )
    refund = Refund.objects.get(payment=wanted)
    assert (refund.amount, refund.actor, refund.requested_by) == (2000, Actor.STAFF, refunder)

    # and the list and the payment's history show it, with who asked
    page.reload()
    expect(page.locator("#result_list tbody tr").first.locator(".payment-status")).to_have_text("Partially Refunded")
    expect(page.locator("#result_list tbody tr").first).to_contain_text("($20.00 refunded)")
    page.goto(stack.http_url + f"/admin/payments/payment/{wanted.pk}/history/")
    expect(page.locator("#change-history")).to_contain_text(f"Refund of $20.00 requested ({refund.pk}).")
    expect(page.locator("#change-history")).to_contain_text("desk")
    page.goto(stack.http_url + f"/admin/payments/payment/{wanted.pk}/change/")
    expect(page.get_by_text(str(refund.pk)).first).to_be_visible()
    assert Payment.objects.get(pk=other.pk).amount_refunded == 0
    assert violations == []


ANSWER_LOST = "4000000000000424"  # the sandbox bank charges, and its answer is lost on the way back: unknown


def test_staff_ask_the_bank_now_about_an_unknown_payment_and_see_it_settle(shop, page, make_payment):
    # given: a stack whose reconciler would not look at an unknown payment again for 10 minutes, and a payment the
    # worker left unknown
    stack = shop(PAYMENTS_SETTLE_RETRY="600")
    payment = make_payment(ANSWER_LOST, amount=3100)
    wait_for(
        lambda: Payment.objects.get(pk=payment.pk).status == PaymentStatus.UNKNOWN,
        what="the worker to leave the payment unknown",
    )
    asker = User.objects.create_user(username="ops", password=PASSWORD, is_staff=True)
    asker.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="payments", codename__in=["view_payment", "settle_payment"])
    )
    violations = watch_for_violations(page)

    # when: the staff user lists the unknown payments and asks the bank about this one
    page.goto(stack.http_url + "/admin/payments/payment/")
    page.get_by_label("Username").fill("ops")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.locator("#changelist-filter").get_by_role("link", name="Unknown", exact=True).click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".payment-status")).to_have_text("Unknown")
    rows.first.locator("input.action-select").check()
    page.get_by_role("combobox", name="Action").select_option("ask_bank_now")
    page.get_by_role("button", name="Go").click()

    # then: the confirmation says what will happen; nothing has happened yet
    expect(page.locator("#action-plan")).to_contain_text("Ask the bank now what it did with this payment")
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.UNKNOWN
    page.get_by_role("button", name="Yes, ask the bank now").click()

    # then: told so; the worker's settle job finds the bank's charge and the payment succeeds
    expect(page.locator(".messagelist")).to_contain_text("Asked the bank about 1 payment(s)")
    wait_for(
        lambda: Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED,
        what="the settle job to record the bank's answer",
    )
    page.goto(stack.http_url + "/admin/payments/payment/?q=" + str(payment.pk))
    expect(page.locator("#result_list tbody tr").first.locator(".payment-status")).to_have_text("Succeeded")
    page.goto(stack.http_url + f"/admin/payments/payment/{payment.pk}/history/")
    expect(page.locator("#change-history")).to_contain_text("Asked the bank now (it was unknown).")
    expect(page.locator("#change-history")).to_contain_text("ops")
    assert violations == []


def test_staff_requeue_a_failed_job_then_cancel_the_pending_payment(shop, page, make_payment):
    # given: no worker runs; a pending payment whose job a worker left in the failed job registry
    stack = shop(workers=0)
    payment = make_payment(amount=1800)
    queue = payments_queue()
    queue.empty()
    job = queue.create_job(PAYMENT_JOB, args=(str(payment.pk),), job_id=payment_job_id(payment.pk))
    job.save()
    queue.failed_job_registry.add(job, ttl=3600)
    operator = User.objects.create_user(username="queues", password=PASSWORD, is_staff=True)
    operator.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="payments", codename__in=["view_payment", "manage_queues", "cancel_payment"]
        )
    )
    violations = watch_for_violations(page)
    page.goto(stack.http_url + "/admin/payments/payment/")
    page.get_by_label("Username").fill("queues")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    def run_action(action: str, expected_plan: str, button: str) -> None:
        page.locator("#searchbar").fill(str(payment.pk)[:8])
        page.locator("#searchbar").press("Enter")
        page.locator("#result_list tbody tr").first.locator("input.action-select").check()
        page.get_by_role("combobox", name="Action").select_option(action)
        page.get_by_role("button", name="Go").click()
        expect(page.locator("#action-plan")).to_contain_text(expected_plan)
        page.get_by_role("button", name=button).click()

    # when: the failed job is re-queued
    run_action("requeue_failed_jobs", f"Re-queue payment-{payment.pk}", "Yes, re-queue")
    # then
    expect(page.locator(".messagelist")).to_contain_text("Re-queued 1 failed job(s).")
    assert queue.failed_job_registry.get_job_ids() == []
    assert queue.job_ids == [payment_job_id(payment.pk)]

    # when: the payment is canceled before any worker takes it
    run_action("cancel_pending", "Cancel", "Yes, cancel")
    # then
    expect(page.locator(".messagelist")).to_contain_text("1 payment(s) canceled.")
    expect(page.locator("#result_list tbody tr").first.locator(".payment-status")).to_have_text("Canceled")
    canceled = Payment.objects.get(pk=payment.pk)
    event = canceled.events.get(to_status=PaymentStatus.CANCELED)
    assert (event.actor, event.actor_user) == (Actor.STAFF, operator)
    assert violations == []
