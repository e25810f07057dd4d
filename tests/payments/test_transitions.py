import itertools

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import IntegrityError, transaction

from payments.models import ALLOWED_TRANSITIONS, Actor, Payment, PaymentEvent, PaymentStatus
from payments.realtime import payment_group_name
from payments.services.transitions import TransitionNotAllowed, payment_transition

ALL_PAIRS = list(itertools.product(PaymentStatus.values, repeat=2))
ALLOWED_PAIRS = [(a, b) for a, b in ALL_PAIRS if b in ALLOWED_TRANSITIONS[a]]
FORBIDDEN_PAIRS = [(a, b) for a, b in ALL_PAIRS if b not in ALLOWED_TRANSITIONS[a]]


def _payment_in(make_payment, status):
    payment = make_payment()
    Payment.objects.filter(pk=payment.pk).update(status=status)
    return payment


def test_the_machine_names_every_status_and_only_known_ones():
    assert set(ALLOWED_TRANSITIONS) == set(PaymentStatus.values)
    for targets in ALLOWED_TRANSITIONS.values():
        assert targets <= set(PaymentStatus.values)


@pytest.mark.parametrize(("from_status", "to_status"), ALLOWED_PAIRS)
def test_allowed_transition_moves_and_records_a_numbered_event(make_payment, from_status, to_status):
    # given
    payment = _payment_in(make_payment, from_status)
    # when
    moved = payment_transition(payment_id=payment.pk, to_status=to_status, actor=Actor.STAFF, reason="test")
    # then
    stored = Payment.objects.get(pk=payment.pk)
    assert stored.status == to_status == moved.status
    assert stored.seq == 2
    event = PaymentEvent.objects.get(payment=payment, seq=2)
    assert (event.from_status, event.to_status, event.actor) == (from_status, to_status, Actor.STAFF)


@pytest.mark.parametrize(("from_status", "to_status"), FORBIDDEN_PAIRS)
def test_forbidden_transition_is_refused_and_changes_nothing(make_payment, from_status, to_status):
    # given
    payment = _payment_in(make_payment, from_status)
    # when / then
    with pytest.raises(TransitionNotAllowed):
        payment_transition(payment_id=payment.pk, to_status=to_status, actor=Actor.STAFF)
    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.status, stored.seq) == (from_status, 1)
    assert PaymentEvent.objects.filter(payment=payment).count() == 1


def test_moving_into_processing_counts_an_attempt(make_payment):
    payment = make_payment()
    payment_transition(payment_id=payment.pk, to_status=PaymentStatus.PROCESSING, actor=Actor.WORKER)
    assert Payment.objects.get(pk=payment.pk).attempts == 1


def test_database_refuses_an_unknown_status(make_payment):
    payment = make_payment()
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(status="teleported")


def test_status_is_pushed_to_the_payment_group_only_after_commit(make_payment, django_capture_on_commit_callbacks):
    # given: a listener on the payment's group, on the real Redis channel layer
    payment = make_payment()
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(payment_group_name(payment.pk), channel)
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        payment_transition(payment_id=payment.pk, to_status=PaymentStatus.PROCESSING, actor=Actor.WORKER)
    # then: nothing is pushed until the commit, then the new status document is
    assert len(callbacks) == 1
    callbacks[0]()
    message = async_to_sync(layer.receive)(channel)
    assert message["type"] == "payment.status"
    assert message["payment"]["status"] == "processing"
    assert message["payment"]["seq"] == 2
