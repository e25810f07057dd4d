"""The reconciler re-drives what the happy path left behind; the jobs it queues then settle it with the bank.

Transactional tests: the queued jobs (payments.jobs) are run as a worker would run them, and those close
stale connections, which a test wrapped in one transaction would not survive.
"""

import signal
from datetime import timedelta
from io import StringIO

import django_rq
import pytest
from django.core.management import call_command
from django.utils import timezone

from payments.models import Actor, Payment, PaymentStatus, Refund, RefundStatus
from payments.services.payments import payment_process
from payments.services.reconcile import payments_reconcile
from payments.services.refunds import refund_create
from payments.services.transitions import payment_transition, refund_transition
from tests.payments.bank import charges_for, credits_for, debits_for

ANSWER_LOST = "4000000000000424"


def _past():
    return timezone.now() - timedelta(seconds=1)


def _run_queued_job(job_id: str) -> str:
    """Run the job exactly as it sits on the queue (its function and its arguments), as a worker would."""
    job = django_rq.get_queue("payments").fetch_job(job_id)
    assert job is not None, f"{job_id} is not on the queue"
    return job.func(*job.args, **job.kwargs)


@pytest.fixture
def keep_signal_handlers():
    """The reconciler command installs SIGINT/SIGTERM handlers; give the test process its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.django_db(transaction=True)
def test_pending_payment_whose_job_was_lost_is_queued_again_once(make_payment, redis_client):
    # given: the job was queued after commit, then lost with Redis's contents
    payment = make_payment()
    queue = django_rq.get_queue("payments")
    assert queue.job_ids == [f"payment-{payment.pk}"]
    redis_client.flushdb()
    Payment.objects.filter(pk=payment.pk).update(recheck_at=_past())
    # when
    done = payments_reconcile()
    # then
    assert done["payments_requeued"] == 1
    assert queue.job_ids == [f"payment-{payment.pk}"]
    assert Payment.objects.get(pk=payment.pk).recheck_at > timezone.now()  # looked at again later
    # when: another pass comes while that job still waits
    Payment.objects.filter(pk=payment.pk).update(recheck_at=_past())
    again = payments_reconcile()
    # then: no duplicate
    assert again["payments_requeued"] == 0
    assert queue.count == 1


def test_pending_payment_within_its_grace_is_left_alone(make_payment):
    # given: recheck_at is in the future, as payment_create sets it
    payment = make_payment()
    assert payment.recheck_at > timezone.now()
    # when
    done = payments_reconcile()
    # then
    assert not done
    assert django_rq.get_queue("payments").count == 0
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING


@pytest.mark.django_db(transaction=True)
def test_payment_stuck_in_processing_becomes_unknown_and_its_job_charges_it_once(make_payment, redis_client):
    # given: a worker took the payment and died before calling the bank; its lease has run out
    payment = make_payment()
    payment_transition(payment_id=payment.pk, to_status=PaymentStatus.PROCESSING, actor=Actor.WORKER)
    redis_client.flushdb()
    Payment.objects.filter(pk=payment.pk).update(recheck_at=_past())
    # when
    done = payments_reconcile()
    # then
    unknown = Payment.objects.get(pk=payment.pk)
    assert done["payments_lease_expired"] == 1
    assert unknown.status == PaymentStatus.UNKNOWN
    last = unknown.events.order_by("seq").last()
    assert (last.from_status, last.to_status, last.actor) == ("processing", "unknown", Actor.RECONCILER)
    # when: the queued job runs (the bank has no record of the key, so it charges with it)
    assert _run_queued_job(f"payment-{payment.pk}") == PaymentStatus.SUCCEEDED
    # then
    paid = Payment.objects.get(pk=payment.pk)
    assert paid.status == PaymentStatus.SUCCEEDED
    assert charges_for(paid).count() == 1
    assert debits_for(paid).count() == 1


@pytest.mark.django_db(transaction=True)
def test_unknown_payment_the_bank_did_charge_is_settled_without_a_second_debit(make_payment, redis_client):
    # given: the bank charged but its answer was lost
    payment = make_payment(ANSWER_LOST)
    redis_client.flushdb()
    payment_process(payment_id=payment.pk)
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.UNKNOWN
    Payment.objects.filter(pk=payment.pk).update(recheck_at=_past())
    # when
    assert payments_reconcile()["payments_requeued"] == 1
    _run_queued_job(f"payment-{payment.pk}")
    # then
    paid = Payment.objects.get(pk=payment.pk)
    assert paid.status == PaymentStatus.SUCCEEDED
    assert paid.events.order_by("seq").last().reason.startswith("settled")
    assert debits_for(paid).count() == 1


@pytest.mark.django_db(transaction=True)
def test_refund_stuck_in_processing_becomes_unknown_and_is_settled_by_its_job(paid_payment, redis_client):
    # given: a worker took the refund and died; its lease has run out
    payment = paid_payment()
    refund = refund_create(payment_id=payment.pk, actor=Actor.STAFF)
    refund_transition(refund_id=refund.pk, to_status=RefundStatus.PROCESSING, actor=Actor.WORKER)
    redis_client.flushdb()
    Refund.objects.filter(pk=refund.pk).update(recheck_at=_past())
    # when
    done = payments_reconcile()
    # then
    assert done["refunds_requeued"] == 1
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.UNKNOWN
    # when
    assert _run_queued_job(f"refund-{refund.pk}") == RefundStatus.SUCCEEDED
    # then
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.REFUNDED
    assert credits_for(refund).count() == 1


@pytest.mark.django_db(transaction=True)
def test_reconciler_command_once_runs_one_pass(make_payment, redis_client, keep_signal_handlers):
    # given: a pending payment whose job was lost
    payment = make_payment()
    redis_client.flushdb()
    Payment.objects.filter(pk=payment.pk).update(recheck_at=_past())
    out = StringIO()
    # when
    call_command("payments_reconciler", "--once", stdout=out)
    # then
    assert "reconciled: {'payments_requeued': 1}" in out.getvalue()
    assert django_rq.get_queue("payments").job_ids == [f"payment-{payment.pk}"]


@pytest.mark.django_db(transaction=True)
def test_a_row_held_by_a_stalled_transaction_does_not_stall_the_rest_of_the_pass(make_payment):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks and their timeouts are PostgreSQL's")
    import psycopg

    # given: payment X past its lease, its row held by a stalled transaction; payment Y pending past its grace
    stuck, waiting = make_payment(), make_payment()
    django_rq.get_queue("payments").empty()  # Y's job was lost
    payment_transition(payment_id=stuck.pk, to_status=PaymentStatus.PROCESSING, actor=Actor.WORKER)
    Payment.objects.filter(pk__in=[stuck.pk, waiting.pk]).update(recheck_at=timezone.now() - timedelta(seconds=1))
    Payment.objects.filter(pk=stuck.pk).update(recheck_at=timezone.now() - timedelta(seconds=60))  # sorts first
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    ) as holder:
        holder.execute("SELECT 1 FROM payments_payment WHERE id = %s FOR UPDATE", (stuck.pk,))
        # when
        done = payments_reconcile()
    # then: X is skipped for this pass, Y is re-driven all the same
    assert done["payments_skipped_busy"] == 1
    assert done["payments_requeued"] == 1
    assert Payment.objects.get(pk=stuck.pk).status == PaymentStatus.PROCESSING  # the next pass takes it
