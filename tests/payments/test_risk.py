"""The risk checks run before the bank is asked: amount limit, velocity per card, block list, fingerprints."""

from payments.cards import card_fingerprint
from payments.models import BlockedCard, Payment, PaymentStatus
from payments.services.payments import payment_process
from payments.services.risk import payment_risk_assess
from tests.conftest import VISA_OK
from tests.payments.bank import charges_for

MASTERCARD_OK = "5555555555554444"


def _process(payment) -> Payment:
    payment_process(payment_id=payment.pk)
    return Payment.objects.get(pk=payment.pk)


def _risk_rule(payment) -> str:
    return payment.events.get(to_status=PaymentStatus.FAILED).data["risk_rule"]


def test_amount_above_the_currency_limit_is_refused_without_asking_the_bank(make_payment, settings):
    # given
    payment = make_payment(amount=settings.RISK_AMOUNT_LIMITS["USD"] + 1)
    # when
    refusal = payment_risk_assess(payment)
    failed = _process(payment)
    # then
    assert (refusal.decline_code, refusal.rule) == ("amount_limit", "amount_limit")
    assert failed.status == PaymentStatus.FAILED
    assert (failed.failure_code, failed.decline_code) == ("risk_declined", "amount_limit")
    assert _risk_rule(failed) == "amount_limit"
    assert not charges_for(failed).exists()


def test_amount_exactly_at_the_limit_is_allowed(make_payment, settings):
    # given
    payment = make_payment(amount=settings.RISK_AMOUNT_LIMITS["USD"])
    # when / then
    assert payment_risk_assess(payment) is None
    assert _process(payment).status == PaymentStatus.SUCCEEDED


def test_third_payment_with_one_card_in_the_window_hits_velocity_but_another_card_does_not(make_payment, settings):
    # given: at most two other payments per card in the window
    settings.RISK_VELOCITY_MAX = 2
    first = _process(make_payment(VISA_OK))
    second = _process(make_payment(VISA_OK))
    # when
    third = _process(make_payment(VISA_OK))
    other_card = _process(make_payment(MASTERCARD_OK))
    # then
    assert [first.status, second.status] == [PaymentStatus.SUCCEEDED, PaymentStatus.SUCCEEDED]
    assert third.status == PaymentStatus.FAILED
    assert (third.failure_code, third.decline_code) == ("risk_declined", "velocity_limit")
    assert _risk_rule(third) == "velocity"
    assert not charges_for(third).exists()
    assert other_card.status == PaymentStatus.SUCCEEDED


def test_velocity_counts_only_payments_recorded_before_the_one_being_checked(make_payment, settings):
    """A queue backlog must not change the verdict: each payment is judged by the payments recorded before
    it, so of three waiting in the queue only the third is over the limit (once, all three were refused)."""
    # given: three payments with one card, recorded before any worker took them
    settings.RISK_VELOCITY_MAX = 2
    payments = [make_payment(VISA_OK) for _ in range(3)]
    # when: the worker takes them in order
    statuses = [_process(payment).status for payment in payments]
    # then: only the third one is over the limit
    assert statuses == [PaymentStatus.SUCCEEDED, PaymentStatus.SUCCEEDED, PaymentStatus.FAILED]


def test_card_on_the_block_list_table_is_refused_as_fraudulent(make_payment):
    # given
    BlockedCard.objects.create(card_fingerprint=card_fingerprint(MASTERCARD_OK), reason="chargeback")
    payment = make_payment(MASTERCARD_OK)
    # when
    failed = _process(payment)
    # then
    assert (failed.status, failed.failure_code, failed.decline_code) == ("failed", "risk_declined", "fraudulent")
    assert _risk_rule(failed) == "block_list"
    assert not charges_for(failed).exists()
    assert _process(make_payment(VISA_OK)).status == PaymentStatus.SUCCEEDED  # other cards are not affected


def test_fingerprint_is_stable_for_one_number_however_it_is_typed(make_payment):
    assert (
        card_fingerprint("4242 4242 4242 4242") == card_fingerprint(VISA_OK) == card_fingerprint("4242-4242-4242-4242")
    )
    assert make_payment(VISA_OK).card_fingerprint == make_payment(VISA_OK).card_fingerprint == card_fingerprint(VISA_OK)


def test_fingerprint_differs_between_numbers_and_does_not_contain_the_number():
    fingerprint = card_fingerprint(VISA_OK)
    assert fingerprint != card_fingerprint(MASTERCARD_OK)
    assert VISA_OK not in fingerprint
    assert len(fingerprint) == 64
