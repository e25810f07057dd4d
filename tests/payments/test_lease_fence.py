"""A worker paused past its lease (SIGSTOP, a stalled VM) must not write its late answer over a payment the
reconciler has taken back: tx 2 carries the attempt it started in its WHERE (issue 10, item 11)."""

import threading

import pytest
from django.db import connection

from payments.gateway import GatewayUnavailable, get_gateway
from payments.models import Payment, PaymentStatus
from payments.sandbox.gateway import SandboxGateway
from payments.services.payments import payment_process
from payments.services.reconcile import payments_reconcile
from tests.payments.bank import debits_for, statuses_of


class PausedCallsGateway(SandboxGateway):
    """The real sandbox bank; the first charge call is paused before it reaches the bank and then finds its
    connection dead (a worker stopped mid-call), the second is paused after the bank charged, before its
    caller records the answer (a settle job in flight)."""

    calls = 0
    first_paused = threading.Event()
    release_first = threading.Event()
    second_charged = threading.Event()
    release_second = threading.Event()

    def charge(self, **kwargs):
        cls = type(self)
        cls.calls += 1
        if cls.calls == 1:
            cls.first_paused.set()
            cls.release_first.wait(30)
            raise GatewayUnavailable("connection reset before the request was sent")
        result = super().charge(**kwargs)
        cls.second_charged.set()
        cls.release_second.wait(30)
        return result


@pytest.fixture
def paused_gateway(settings):
    settings.PAYMENTS_GATEWAY = f"{__name__}.PausedCallsGateway"
    settings.PAYMENTS_GATEWAY_RETRIES = 0
    for name in ("first_paused", "release_first", "second_charged", "release_second"):
        setattr(PausedCallsGateway, name, threading.Event())
    PausedCallsGateway.calls = 0
    get_gateway.cache_clear()
    yield PausedCallsGateway
    PausedCallsGateway.release_first.set()
    PausedCallsGateway.release_second.set()
    get_gateway.cache_clear()


def _in_thread(target) -> threading.Thread:
    def run():
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_worker_woken_after_its_lease_cannot_overwrite_the_settled_outcome(make_payment, paused_gateway):
    # given: a worker took the payment and stalled in its bank call, past its lease
    payment = make_payment()
    zombie = _in_thread(lambda: payment_process(payment_id=payment.pk))
    assert paused_gateway.first_paused.wait(10)
    Payment.objects.filter(pk=payment.pk).update(recheck_at="2000-01-01T00:00:00Z")
    # and: the reconciler took it back (unknown), and a settle job charged it at the bank, not yet recorded
    assert payments_reconcile()["payments_lease_expired"] == 1
    settle = _in_thread(lambda: payment_process(payment_id=payment.pk))
    assert paused_gateway.second_charged.wait(10)

    # when: the stalled worker wakes with its late answer ("nothing was charged"), then the settle job records
    paused_gateway.release_first.set()
    zombie.join(10)
    paused_gateway.release_second.set()
    settle.join(10)

    # then: the payment says what the bank did (one debit: succeeded); the zombie wrote nothing
    payment.refresh_from_db()
    assert debits_for(payment).count() == 1
    assert payment.status == PaymentStatus.SUCCEEDED
    assert statuses_of(payment) == [
        ("", "pending"),
        ("pending", "processing"),
        ("processing", "unknown"),
        ("unknown", "succeeded"),
    ]
