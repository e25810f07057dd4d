import itertools

import pytest

from payments.models import ALLOWED_REFUND_TRANSITIONS, Actor, Payment, PaymentStatus, Refund, RefundStatus
from payments.services.refunds import refund_create
from payments.services.transitions import TransitionNotAllowed, refund_transition

ALL_PAIRS = list(itertools.product(RefundStatus.values, repeat=2))
ALLOWED_PAIRS = [(a, b) for a, b in ALL_PAIRS if b in ALLOWED_REFUND_TRANSITIONS[a]]
FORBIDDEN_PAIRS = [(a, b) for a, b in ALL_PAIRS if b not in ALLOWED_REFUND_TRANSITIONS[a]]


def _refund_in(paid_payment, status) -> Refund:
    refund = refund_create(payment_id=paid_payment().pk, actor=Actor.STAFF)
    Refund.objects.filter(pk=refund.pk).update(status=status)
    return refund


def test_the_refund_machine_names_every_status_and_only_known_ones():
    assert set(ALLOWED_REFUND_TRANSITIONS) == set(RefundStatus.values)
    for targets in ALLOWED_REFUND_TRANSITIONS.values():
        assert targets <= set(RefundStatus.values)


@pytest.mark.parametrize(("from_status", "to_status"), ALLOWED_PAIRS)
def test_allowed_refund_transition_moves_and_only_success_changes_the_payment(paid_payment, from_status, to_status):
    # given
    refund = _refund_in(paid_payment, from_status)
    # when
    moved = refund_transition(refund_id=refund.pk, to_status=to_status, actor=Actor.STAFF, reason="test")
    # then
    stored = Refund.objects.get(pk=refund.pk)
    assert stored.status == to_status == moved.status
    payment = Payment.objects.get(pk=refund.payment_id)
    if to_status == RefundStatus.SUCCEEDED:
        assert (payment.status, payment.amount_refunded) == (PaymentStatus.REFUNDED, refund.amount)
        assert payment.events.order_by("seq").last().data == {"refund_id": str(refund.pk), "amount": refund.amount}
    else:
        assert (payment.status, payment.amount_refunded) == (PaymentStatus.SUCCEEDED, 0)


@pytest.mark.parametrize(("from_status", "to_status"), FORBIDDEN_PAIRS)
def test_forbidden_refund_transition_is_refused_and_changes_nothing(paid_payment, from_status, to_status):
    # given
    refund = _refund_in(paid_payment, from_status)
    payment_seq = Payment.objects.get(pk=refund.payment_id).seq
    # when / then
    with pytest.raises(TransitionNotAllowed):
        refund_transition(refund_id=refund.pk, to_status=to_status, actor=Actor.STAFF)
    assert Refund.objects.get(pk=refund.pk).status == from_status
    payment = Payment.objects.get(pk=refund.payment_id)
    assert (payment.status, payment.seq, payment.amount_refunded) == (PaymentStatus.SUCCEEDED, payment_seq, 0)


def test_moving_a_refund_into_processing_counts_an_attempt(paid_payment):
    refund = _refund_in(paid_payment, RefundStatus.PENDING)
    refund_transition(refund_id=refund.pk, to_status=RefundStatus.PROCESSING, actor=Actor.WORKER)
    assert Refund.objects.get(pk=refund.pk).attempts == 1
