"""No payment is ever lost, none is charged twice: real workers killed mid-call, Redis gone at submit."""

import json
import signal
import time

import django_rq
import pytest

from infrastructure.embedded_redis import start_embedded_redis
from payments.models import Payment
from payments.sandbox.models import Charge, LedgerEntry
from payments.services.dispatch import PAYMENT_JOB
from tests.conftest import VISA_OK, wait_until
from tests.integration.shop import Shopper

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SLOW_CARD = "4000000000000440"


def status_of(payment_id) -> str:
    return Payment.objects.get(pk=payment_id).status


def debits_for(payment_id) -> int:
    return LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.DEBIT, charge__idempotency_key=f"payment-{payment_id}"
    ).count()


def assert_audit_passes(stack) -> dict:
    audit = stack.manage("payments_audit")
    report = json.loads(audit.stdout)
    assert audit.returncode == 0 and report["ok"], audit.stdout + audit.stderr
    return report


def test_a_worker_killed_mid_bank_call_still_ends_final_and_debited_once(live_stack_factory, product):
    # given: a bank call that takes 4 s, and a worker lease of 1 s
    stack = live_stack_factory(SANDBOX_SLOW_CARD_MS="4000", PAYMENTS_PROCESSING_LEASE="1", PAYMENTS_SETTLE_RETRY="1")
    payment_id = Shopper(stack.http_url, product.pk).pay(SLOW_CARD)["payment_id"]
    worker = stack.start_worker()
    wait_until(lambda: status_of(payment_id) == "processing", timeout=30, message="the worker to take the payment")

    # when: the worker is SIGKILLed in the middle of the bank call
    time.sleep(0.5)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    assert status_of(payment_id) == "processing"  # nobody will ever finish this job

    # then: once the lease has run out the reconciler says honestly that the outcome is unknown
    time.sleep(1.2)
    stack.run_reconciler_once()
    assert status_of(payment_id) == "unknown"
    assert list(Payment.objects.get(pk=payment_id).events.values_list("actor", flat=True))[-1] == "reconciler"

    # and the settle job it queued asks the bank with the same key: the payment ends final, debited once
    stack.run_worker_burst()
    assert status_of(payment_id) == "succeeded"
    assert debits_for(payment_id) == 1
    assert Charge.objects.filter(idempotency_key=f"payment-{payment_id}").count() == 1
    assert_audit_passes(stack)


def test_redis_down_at_submit_still_answers_202_and_the_payment_is_processed_once_redis_is_back(
    live_stack_factory, product
):
    # given: a stack on its own Redis-compatible server, which then goes away
    server, redis_url = start_embedded_redis(None)
    restarted = None
    try:
        stack = live_stack_factory(REDIS_URL=redis_url, PAYMENTS_PENDING_GRACE="1")
        shopper = Shopper(stack.http_url, product.pk)
        server.stop()

        # when: the shopper pays while Redis is down
        accepted = shopper.submit(VISA_OK)

        # then: they still get their 202 and status URL, and the payment is durably pending
        assert accepted.status_code == 202, accepted.text
        payment_id = accepted.json()["payment_id"]
        assert status_of(payment_id) == "pending"
        assert shopper.client.get(accepted.headers["Location"]).json()["status"] == "pending"

        # when Redis is back, the job that could not be queued is really gone...
        restarted, _ = start_embedded_redis(redis_url)
        stack.run_worker_burst()
        assert status_of(payment_id) == "pending"

        # ...and the reconciler re-drives it once the pending grace has passed
        time.sleep(1.1)
        stack.run_reconciler_once()
        stack.run_worker_burst()
        assert status_of(payment_id) == "succeeded"
        assert debits_for(payment_id) == 1
        shopper.close()
    finally:
        for running in (server, restarted):
            if running is not None and running.is_running():
                running.stop()


def test_two_worker_processes_racing_on_one_payment_charge_it_once(live_stack_factory, product):
    # given: one pending payment with two jobs queued for it (as a re-drive racing the original would do),
    # and a bank slow enough for the two workers to overlap
    stack = live_stack_factory(SANDBOX_LATENCY_MS="1500", SANDBOX_LATENCY_JITTER_MS="0")
    payment_id = Shopper(stack.http_url, product.pk).pay(VISA_OK)["payment_id"]
    django_rq.get_queue("payments").enqueue(PAYMENT_JOB, payment_id, job_id=f"duplicate-{payment_id}")
    assert django_rq.get_queue("payments").count == 2

    # when: two real worker processes (one thread each) start at once, each taking one of the jobs
    workers = [stack.start_worker(threads=1), stack.start_worker(threads=1)]
    wait_until(lambda: status_of(payment_id) == "succeeded", timeout=30, message="the payment to succeed")
    wait_until(lambda: django_rq.get_queue("payments").count == 0, timeout=10, message="both jobs taken")
    for worker in workers:
        worker.terminate()
        worker.wait(timeout=10)

    # then: each worker ran one of the jobs (they overlapped; the bank call alone outlasts both start-ups)
    for worker in workers:
        worker_log = (stack.log_dir / f"worker-{stack.processes.index(worker)}.log").read_text()
        # (a worker also sends the receipt when it is its thread that finds it queued: an `emails: Job OK`)
        assert worker_log.count("payments: Job OK") == 1, worker_log
    # and exactly one took it to processing, and the bank debited once
    moves = list(Payment.objects.get(pk=payment_id).events.values_list("from_status", "to_status"))
    assert moves == [("", "pending"), ("pending", "processing"), ("processing", "succeeded")]
    assert debits_for(payment_id) == 1
    assert_audit_passes(stack)
