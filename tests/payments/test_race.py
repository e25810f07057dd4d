"""Two callers on one payment at the same moment, each in its own thread with its own database connection.

The row lock taken by payment_transition (FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite) must make
one of them lose cleanly, and the bank must be asked to move money at most once.
"""

import threading

import pytest
from django.db import connection

from payments.models import Actor, Payment, PaymentStatus
from payments.services.payments import payment_cancel, payment_process
from payments.services.transitions import TransitionNotAllowed
from tests.payments.bank import charges_for, debits_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def slow_bank(settings):
    settings.SANDBOX_LATENCY_MS = 50  # so that the two calls overlap
    settings.SANDBOX_LATENCY_JITTER_MS = 0


def _race(*calls) -> list:
    """Start every call at the same moment (a barrier); return what each returned or raised."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            outcomes[index] = call()
        except Exception as error:  # reported to the test, which decides what was acceptable
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def _process(payment_id):
    return lambda: payment_process(payment_id=payment_id)


@pytest.mark.parametrize("round_", range(3))
def test_two_workers_on_one_pending_payment_charge_it_once(make_payment, round_):
    # given
    payment = make_payment()
    # when
    outcomes = _race(_process(payment.pk), _process(payment.pk))
    # then
    assert all(isinstance(outcome, Payment) for outcome in outcomes), outcomes
    stored = Payment.objects.get(pk=payment.pk)
    assert stored.status == PaymentStatus.SUCCEEDED
    assert charges_for(stored).count() == 1
    assert debits_for(stored).count() == 1
    assert stored.events.filter(from_status="pending", to_status="processing").count() == 1
    assert list(stored.events.values_list("to_status", flat=True)) == ["pending", "processing", "succeeded"]


def test_two_settles_of_one_unknown_payment_record_one_success_and_one_debit(make_payment):
    # given: the bank charged, its answer was lost
    payment = make_payment("4000000000000424")
    payment_process(payment_id=payment.pk)
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.UNKNOWN
    # when
    outcomes = _race(_process(payment.pk), _process(payment.pk))
    # then
    assert all(isinstance(outcome, Payment) for outcome in outcomes), outcomes
    stored = Payment.objects.get(pk=payment.pk)
    assert stored.status == PaymentStatus.SUCCEEDED
    assert stored.events.filter(to_status="succeeded").count() == 1
    assert debits_for(stored).count() == 1


def test_cancel_racing_a_worker_either_cancels_with_no_charge_or_is_refused_after_one(make_payment):
    # given
    payment = make_payment()
    # when
    processed, canceled = _race(_process(payment.pk), lambda: payment_cancel(payment_id=payment.pk, actor=Actor.STAFF))
    # then: exactly one of them won, and the bank agrees with whichever did
    stored = Payment.objects.get(pk=payment.pk)
    assert isinstance(processed, Payment), processed
    if stored.status == PaymentStatus.CANCELED:
        assert isinstance(canceled, Payment)
        assert not charges_for(stored).exists()
    else:
        assert isinstance(canceled, TransitionNotAllowed)
        assert stored.status == PaymentStatus.SUCCEEDED
        assert debits_for(stored).count() == 1
