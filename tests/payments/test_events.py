"""One event per status change (payments/events.py): in-transaction receivers commit or roll back with the
change, after-commit receivers hear only of what committed, each on its own."""

import pytest
from django.db import transaction

from payments.events import PAYMENT, REFUND, status_changed, status_changing
from payments.models import Actor, Payment, PaymentEvent, PaymentStatus, RefundStatus
from payments.services.payments import payment_process
from payments.services.refunds import refund_create, refund_process
from payments.services.transitions import payment_transition

pytestmark = pytest.mark.django_db(transaction=True)  # real commits: after-commit receivers really run


class Boom(Exception):
    pass


@pytest.fixture
def heard():
    """Every change announced after commit, in order."""
    changes = []

    def record(sender, change, **kwargs):
        changes.append(change)

    status_changed.connect(record, dispatch_uid="test.heard")
    yield changes
    status_changed.disconnect(dispatch_uid="test.heard")


@pytest.fixture
def receiver_that_fails():
    def fail(sender, change, **kwargs):
        raise Boom(change.to_status)

    def connect(signal):
        signal.connect(fail, dispatch_uid="test.fails")
        return signal

    yield connect
    status_changed.disconnect(dispatch_uid="test.fails")
    status_changing.disconnect(dispatch_uid="test.fails")


def test_each_status_change_is_announced_once_with_its_status_document(make_payment, heard):
    # given: a payment
    payment = make_payment()
    # when: a worker takes it to its outcome (pending → processing → succeeded)
    payment_process(payment_id=payment.pk)
    # then: two changes, each once, in order, each carrying the document every channel sends
    assert [(c.kind, c.from_status, c.to_status, c.seq) for c in heard] == [
        (PAYMENT, "pending", "processing", 2),
        (PAYMENT, "processing", "succeeded", 3),
    ]
    assert [c.document["seq"] for c in heard] == [2, 3]
    assert heard[-1].document["status"] == "succeeded"
    assert {c.object_id for c in heard} == {str(payment.pk)}


def test_a_successful_refund_is_its_own_change_then_its_payments(make_payment, heard):
    # given: a paid payment and a full refund of it
    payment = make_payment()
    payment_process(payment_id=payment.pk)
    refund = refund_create(payment_id=payment.pk, actor=Actor.STAFF)
    heard.clear()
    # when: the refund's job runs
    refund_process(refund_id=refund.pk, actor=Actor.WORKER)
    # then: the refund's two changes, then the payment's one, each with its own document
    assert [(c.kind, c.to_status) for c in heard] == [
        (REFUND, RefundStatus.PROCESSING),
        (REFUND, RefundStatus.SUCCEEDED),
        (PAYMENT, PaymentStatus.REFUNDED),
    ]
    assert heard[1].document["id"] == str(refund.pk) and heard[1].document["status"] == "succeeded"
    assert heard[2].document["seq"] == heard[2].seq == 4


def test_a_change_that_rolls_back_is_never_announced(make_payment, heard):
    # given: a payment
    payment = make_payment()
    # when: its change is part of a transaction that fails afterwards
    with pytest.raises(Boom), transaction.atomic():
        payment_transition(payment_id=payment.pk, to_status=PaymentStatus.PROCESSING, actor=Actor.WORKER)
        raise Boom("after the transition")
    # then: nothing changed, and nobody was told it had
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING
    assert heard == []


def test_a_failing_after_commit_receiver_neither_undoes_the_change_nor_silences_the_others(
    make_payment, heard, receiver_that_fails, caplog
):
    # given: a receiver that fails, connected before another
    status_changed.disconnect(dispatch_uid="test.heard")
    receiver_that_fails(status_changed)
    status_changed.connect(lambda sender, change, **kw: heard.append(change), dispatch_uid="test.heard", weak=False)
    payment = make_payment()
    # when: the payment changes
    payment_transition(payment_id=payment.pk, to_status=PaymentStatus.PROCESSING, actor=Actor.WORKER)
    # then: the change stands, the next receiver still heard of it, and the failure is in the log
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PROCESSING
    assert [c.to_status for c in heard] == [PaymentStatus.PROCESSING]
    assert "status_changed receiver" in caplog.text and "failed" in caplog.text


def test_a_failing_in_transaction_receiver_aborts_the_change(make_payment, heard, receiver_that_fails):
    # given: an in-transaction receiver that fails
    receiver_that_fails(status_changing)
    payment = make_payment()
    # when: the payment is moved
    with pytest.raises(Boom):
        payment_transition(payment_id=payment.pk, to_status=PaymentStatus.PROCESSING, actor=Actor.WORKER)
    # then: the change, its event and its announcement are all gone with the transaction
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING
    assert not PaymentEvent.objects.filter(payment=payment, seq=2).exists()
    assert heard == []
