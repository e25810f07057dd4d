import time

import django_rq
import pytest
from django.utils import timezone

from payments.gateway import get_gateway
from payments.models import Payment, PaymentStatus
from payments.sandbox.gateway import SandboxGateway
from payments.sandbox.models import Charge
from payments.selectors import payment_id_from_ws_token, payment_status_payload
from payments.services.payments import payment_process
from tests.conftest import VISA_DECLINED


def test_an_approved_card_ends_succeeded_with_the_bank_reference(make_payment):
    payment = make_payment()
    payment_process(payment_id=payment.pk)
    stored = Payment.objects.get(pk=payment.pk)
    assert stored.status == PaymentStatus.SUCCEEDED
    assert stored.gateway_reference.startswith("ch_")
    assert list(stored.events.values_list("to_status", flat=True)) == ["pending", "processing", "succeeded"]


def test_a_declined_card_ends_failed_with_the_decline_code(make_payment):
    payment = make_payment(VISA_DECLINED)
    payment_process(payment_id=payment.pk)
    stored = Payment.objects.get(pk=payment.pk)
    assert stored.status == PaymentStatus.FAILED
    assert (stored.failure_code, stored.decline_code) == ("card_declined", "card_declined")
    assert "declined" in stored.failure_message


def test_running_the_job_twice_charges_once(make_payment):
    payment = make_payment()
    payment_process(payment_id=payment.pk)
    payment_process(payment_id=payment.pk)
    assert Charge.objects.filter(idempotency_key=payment.gateway_idempotency_key).count() == 1
    assert Payment.objects.get(pk=payment.pk).seq == 3


@pytest.mark.django_db(transaction=True)
def test_the_job_is_enqueued_after_commit_and_carries_only_the_payment_id(make_payment):
    queue = django_rq.get_queue("payments")
    payment = make_payment()
    jobs = queue.get_jobs()
    assert len(jobs) == 1
    assert jobs[0].args == (str(payment.pk),)
    assert jobs[0].kwargs == {}
    assert jobs[0].timeout == 60


def test_the_status_document_is_stable_while_the_payment_does_not_change(make_payment):
    payment = make_payment()
    first = payment_status_payload(payment)
    time.sleep(1.1)  # a timestamped signature would differ by now
    assert payment_status_payload(Payment.objects.get(pk=payment.pk)) == first
    token = first["links"]["websocket"].split("token=")[1]
    now = timezone.now().timestamp()
    assert payment_id_from_ws_token(token, now=now) == str(payment.pk)
    assert payment_id_from_ws_token(token, now=now + 2 * 86400) is None  # expired
    assert payment_id_from_ws_token(token + "x", now=now) is None  # tampered


class RamblingGateway(SandboxGateway):
    """A bank client whose failure message is long, and quotes the request it failed on (card number included)."""

    def charge(self, *, token, amount, currency, idempotency_key, return_url=""):
        raise RuntimeError(f"upstream reset while sending number=4000056655665556 for {token}; " + "detail " * 80)


@pytest.fixture
def rambling_gateway(settings):
    settings.PAYMENTS_GATEWAY = f"{__name__}.RamblingGateway"
    get_gateway.cache_clear()
    yield
    get_gateway.cache_clear()


def test_a_long_gateway_error_still_ends_unknown_with_a_short_scrubbed_reason(make_payment, rambling_gateway):
    payment = make_payment()
    payment_process(payment_id=payment.pk)
    stored = Payment.objects.get(pk=payment.pk)
    assert stored.status == PaymentStatus.UNKNOWN  # not left processing by a reason too long for its column
    reason = stored.events.get(to_status="unknown").reason
    assert reason.startswith("no answer from the gateway") and len(reason) <= 255
    assert "4000056655665556" not in reason
