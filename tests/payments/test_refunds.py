"""Refunds: created against what is still refundable, processed against the real sandbox bank, once."""

import django_rq
import pytest
from django.db import transaction

from payments.models import Actor, Payment, PaymentStatus, Refund, RefundStatus
from payments.services.payments import payment_process
from payments.services.refunds import RefundNotAllowed, refund_create, refund_process
from tests.payments.bank import account_of, credits_for


def _refund(payment, amount=None) -> Refund:
    refund = refund_create(payment_id=payment.pk, actor=Actor.STAFF, amount=amount)
    return refund_process(refund_id=refund.pk, actor=Actor.WORKER)


def test_full_refund_refunds_the_payment_and_credits_the_card(paid_payment):
    # given
    payment = paid_payment(amount=2400)
    balance_after_charge = account_of(payment).balance
    # when
    refund = _refund(payment)
    # then
    payment.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert refund.amount == 2400
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.REFUNDED, 2400)
    assert credits_for(refund).get().amount == 2400
    assert account_of(payment).balance == balance_after_charge + 2400


def test_partial_refund_then_the_rest_goes_partially_refunded_then_refunded(paid_payment):
    # given
    payment = paid_payment(amount=2400)
    # when
    _refund(payment, amount=1000)
    # then
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.PARTIALLY_REFUNDED, 1000)
    # when: the rest
    rest = _refund(payment)
    # then
    payment.refresh_from_db()
    assert rest.amount == 1400
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.REFUNDED, 2400)


def test_refund_larger_than_what_is_left_is_refused_and_records_nothing(paid_payment):
    # given
    payment = paid_payment(amount=2400)
    _refund(payment, amount=2000)
    # when / then
    with pytest.raises(RefundNotAllowed) as refused:
        refund_create(payment_id=payment.pk, actor=Actor.STAFF, amount=401)
    assert refused.value.code == "refund_exceeds_capture"
    assert Refund.objects.count() == 1


def test_a_pending_refund_counts_against_what_a_second_refund_may_take(paid_payment):
    # given: a refund still pending
    payment = paid_payment(amount=2400)
    refund_create(payment_id=payment.pk, actor=Actor.STAFF, amount=1500)
    # when / then
    with pytest.raises(RefundNotAllowed) as refused:
        refund_create(payment_id=payment.pk, actor=Actor.STAFF, amount=1000)
    assert refused.value.code == "refund_exceeds_capture"
    assert Refund.objects.count() == 1
    assert refund_create(payment_id=payment.pk, actor=Actor.STAFF).amount == 900  # the default: what is left


@pytest.mark.parametrize("number", ["4000000000000002", "4242424242424242"], ids=["failed", "pending"])
def test_a_failed_or_pending_payment_is_not_refundable(make_payment, number):
    # given
    payment = make_payment(number)
    if number == "4000000000000002":
        payment_process(payment_id=payment.pk)
    # when / then
    with pytest.raises(RefundNotAllowed) as refused:
        refund_create(payment_id=payment.pk, actor=Actor.STAFF)
    assert refused.value.code == "payment_not_refundable"
    assert not Refund.objects.exists()


def test_running_the_refund_job_twice_credits_once(paid_payment):
    # given
    payment = paid_payment()
    refund = refund_create(payment_id=payment.pk, actor=Actor.STAFF)
    # when
    refund_process(refund_id=refund.pk, actor=Actor.WORKER)
    refund_process(refund_id=refund.pk, actor=Actor.WORKER)
    # then
    assert credits_for(refund).count() == 1
    assert Payment.objects.get(pk=payment.pk).amount_refunded == payment.amount


@pytest.mark.django_db(transaction=True)
def test_refund_job_is_enqueued_after_commit_with_only_the_refund_id(paid_payment):
    # given
    payment = paid_payment()
    queue = django_rq.get_queue("payments")
    # when
    with transaction.atomic():
        refund = refund_create(payment_id=payment.pk, actor=Actor.STAFF)
        assert f"refund-{refund.pk}" not in queue.job_ids  # not before the commit
    # then
    job = queue.fetch_job(f"refund-{refund.pk}")
    assert f"refund-{refund.pk}" in queue.job_ids
    assert job.func_name == "payments.jobs.refund_process_job"
    assert (job.args, job.kwargs) == ((str(refund.pk),), {})


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_refund_leaves_no_job(paid_payment):
    # given
    payment = paid_payment()
    # when
    with pytest.raises(RuntimeError), transaction.atomic():
        refund_create(payment_id=payment.pk, actor=Actor.STAFF)
        raise RuntimeError("the caller's transaction fails")
    # then
    assert not Refund.objects.exists()
    assert not [job_id for job_id in django_rq.get_queue("payments").job_ids if job_id.startswith("refund-")]
