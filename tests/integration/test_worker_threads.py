"""The worker process `make run` starts (payments_worker): many jobs in flight on threads, each thread a full
RQ worker; real processes, the real Redis, the sandbox bank with latency."""

import signal

import django_rq
import pytest
from rq.job import Job

from bench.scenarios import most_running_at_once
from payments.models import Payment
from payments.services.dispatch import PAYMENT_JOB, payment_job_id
from tests.conftest import VISA_OK, wait_until
from tests.integration.test_recovery import assert_audit_passes, debits_for, status_of

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_one_process_keeps_several_bank_calls_in_flight(live_stack_factory, make_payment):
    # given: six payments queued and a bank that takes 1.5 s per call
    stack = live_stack_factory(SANDBOX_LATENCY_MS="1500", SANDBOX_LATENCY_JITTER_MS="0")
    payments = [make_payment() for _ in range(6)]

    # when: one worker process with six threads works the queue
    worker = stack.start_worker(threads=6)
    wait_until(
        lambda: Payment.objects.filter(pk__in=[p.pk for p in payments], status="succeeded").count() == 6,
        timeout=40,
        message="all six payments to succeed",
    )
    worker.terminate()
    assert worker.wait(timeout=15) == 0, stack.logs()

    # then: their bank calls overlapped inside that one process, and each payment was debited once
    queue = django_rq.get_queue("payments")
    jobs = Job.fetch_many([payment_job_id(p.pk) for p in payments], connection=queue.connection)
    assert most_running_at_once(jobs) >= 3
    assert all(debits_for(p.pk) == 1 for p in payments)
    assert_audit_passes(stack)


def test_two_threads_racing_on_one_payment_charge_it_once(live_stack_factory, make_payment):
    # given: one pending payment with a second job queued for it (a re-drive racing the original)
    stack = live_stack_factory(SANDBOX_LATENCY_MS="1000", SANDBOX_LATENCY_JITTER_MS="0")
    payment = make_payment()
    django_rq.get_queue("payments").enqueue(PAYMENT_JOB, str(payment.pk), job_id=f"duplicate-{payment.pk}")

    # when: one process whose threads take both jobs at once
    worker = stack.start_worker(threads=2)
    wait_until(lambda: django_rq.get_queue("payments").count == 0, timeout=20, message="both jobs taken")
    wait_until(lambda: status_of(payment.pk) == "succeeded", timeout=20, message="the payment to succeed")
    worker.terminate()
    assert worker.wait(timeout=15) == 0, stack.logs()

    # then: one took it to processing, the other found it taken; the bank debited once
    moves = list(payment.events.order_by("seq").values_list("from_status", "to_status"))
    assert moves == [("", "pending"), ("pending", "processing"), ("processing", "succeeded")]
    assert debits_for(payment.pk) == 1


def test_sigterm_lets_every_thread_finish_the_payment_it_holds(live_stack_factory, make_payment):
    # given: a worker process whose three threads are each waiting on a 3 s bank call
    stack = live_stack_factory(SANDBOX_LATENCY_MS="3000", SANDBOX_LATENCY_JITTER_MS="0")
    payments = [make_payment(VISA_OK) for _ in range(3)]
    worker = stack.start_worker(threads=3)
    wait_until(
        lambda: Payment.objects.filter(pk__in=[p.pk for p in payments], status="processing").count() == 3,
        timeout=20,
        message="three payments in flight",
    )

    # when: the process is asked to stop (what Ctrl-C on make run and a deploy do)
    worker.send_signal(signal.SIGTERM)

    # then: it exits cleanly only after each held payment reached its outcome, none left unknown
    assert worker.wait(timeout=20) == 0, stack.logs()
    assert sorted(status_of(p.pk) for p in payments) == ["succeeded"] * 3
    assert all(debits_for(p.pk) == 1 for p in payments)
