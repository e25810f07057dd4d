import pytest

from payments.models import Payment, PaymentStatus
from payments.services.payments import payment_process
from tests.conftest import VISA_OK


@pytest.fixture
def paid_payment(make_payment):
    """A payment the sandbox bank really charged (processed the way a worker does)."""

    def make(number: str = VISA_OK, amount: int = 2400) -> Payment:
        payment = make_payment(number, amount=amount)
        payment_process(payment_id=payment.pk)
        paid = Payment.objects.get(pk=payment.pk)
        assert paid.status == PaymentStatus.SUCCEEDED
        return paid

    return make
