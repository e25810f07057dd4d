"""3-D Secure on real processes: workers SIGKILLed on either side of the shopper's authentication still leave
exactly one debit (issue 16)."""

import signal
import time

import httpx
import pytest

from payments.models import Payment
from tests.conftest import wait_until
from tests.integration.shop import Shopper
from tests.integration.test_recovery import assert_audit_passes, debits_for, status_of

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

THREE_DS = "4000002760003184"


def _kill_mid_bank_call(stack, payment_id, *, waiting_for: str) -> None:
    worker = stack.start_worker()
    wait_until(lambda: status_of(payment_id) == "processing", timeout=30, message=waiting_for)
    time.sleep(0.5)  # inside the bank call (SANDBOX_LATENCY_MS)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    assert status_of(payment_id) == "processing"
    time.sleep(1.2)  # the lease (1 s) runs out
    stack.run_reconciler_once()
    assert status_of(payment_id) == "unknown"


def test_workers_killed_before_and_after_the_authentication_charge_once(live_stack_factory, product):
    stack = live_stack_factory(SANDBOX_LATENCY_MS="1500", PAYMENTS_PROCESSING_LEASE="1", PAYMENTS_SETTLE_RETRY="1")
    payment_id = Shopper(stack.http_url, product.pk).pay(THREE_DS)["payment_id"]

    # a worker dies while the bank is first asked; the settle finds the bank waiting for the cardholder
    _kill_mid_bank_call(stack, payment_id, waiting_for="the worker to take the payment")
    stack.run_worker_burst()
    payment = Payment.objects.get(pk=payment_id)
    assert payment.status == "requires_action" and payment.next_action_url
    assert debits_for(payment_id) == 0

    # the shopper completes the authentication on the bank's page and is sent back to the wait page
    answer = httpx.post(stack.http_url + payment.next_action_url, data={"action": "complete"}, timeout=30)
    assert answer.status_code == 303 and answer.headers["location"] == f"/payments/{payment_id}/wait"

    # the resume job's worker dies mid-charge too; the settle charges with the same key: one debit
    _kill_mid_bank_call(stack, payment_id, waiting_for="the resume job to take the payment")
    stack.run_worker_burst()
    assert status_of(payment_id) == "succeeded"
    assert debits_for(payment_id) == 1
    assert_audit_passes(stack)
