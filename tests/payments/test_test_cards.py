"""Every sandbox test card, driven through the real payment job against the real sandbox bank."""

import pytest

from payments.gateway import DECLINE_MESSAGES
from payments.models import Payment, PaymentStatus
from payments.sandbox.behaviours import behaviour_for, opening_balance
from payments.sandbox.models import Charge
from payments.services.payments import payment_process
from tests.payments.bank import account_of, charges_for, debits_for, statuses_of

BLOCKED = "4100000000000019"
TRANSIENT = "4000000000000416"
ANSWER_LOST = "4000000000000424"
SLOW = "4000000000000440"


def _process(payment) -> Payment:
    payment_process(payment_id=payment.pk)
    return Payment.objects.get(pk=payment.pk)


@pytest.mark.parametrize("number", ["4242424242424242", "5555555555554444", "378282246310005"])
def test_approved_card_is_charged_once_and_debits_its_account(make_payment, number):
    # given
    payment = make_payment(number, amount=2400)
    opening = opening_balance(behaviour_for(number))  # the account opens at its first charge
    # when
    paid = _process(payment)
    # then
    assert paid.status == PaymentStatus.SUCCEEDED
    assert paid.amount_captured == 2400
    assert (paid.failure_code, paid.decline_code) == ("", "")
    charge = charges_for(paid).get()
    assert charge.approved and charge.reference == paid.gateway_reference
    assert debits_for(paid).get().amount == 2400
    assert account_of(paid).balance == opening - 2400


@pytest.mark.parametrize(
    ("number", "decline_code"),
    [
        ("4000000000000002", "card_declined"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000069", "expired_card"),
        ("4000000000000127", "incorrect_cvc"),
        ("4000000000009987", "lost_card"),
        ("4000000000009979", "stolen_card"),
    ],
)
def test_declining_card_fails_with_its_decline_code_and_moves_no_money(make_payment, number, decline_code):
    # given
    payment = make_payment(number)
    opening = opening_balance(behaviour_for(number))  # the account opens at its first charge
    # when
    failed = _process(payment)
    # then
    assert failed.status == PaymentStatus.FAILED
    assert (failed.failure_code, failed.decline_code) == ("card_declined", decline_code)
    assert failed.failure_message == DECLINE_MESSAGES[decline_code]
    assert failed.amount_captured == 0
    assert charges_for(failed).get().approved is False  # the bank was asked, and said no
    assert not debits_for(failed).exists()
    assert account_of(failed).balance == opening


def test_approve_card_with_too_small_a_balance_fails_insufficient_funds(make_payment, settings):
    # given: a fresh card whose account opens with less than the amount
    settings.SANDBOX_OPENING_BALANCE = 1000
    payment = make_payment("5555555555554444", amount=2400)
    # when
    failed = _process(payment)
    # then
    assert failed.status == PaymentStatus.FAILED
    assert (failed.failure_code, failed.decline_code) == ("card_declined", "insufficient_funds")
    assert not debits_for(failed).exists()
    assert account_of(failed).balance == 1000


def test_block_listed_card_is_refused_by_risk_before_the_bank_is_asked(make_payment):
    # given
    payment = make_payment(BLOCKED)
    # when
    failed = _process(payment)
    # then
    assert failed.status == PaymentStatus.FAILED
    assert (failed.failure_code, failed.decline_code) == ("risk_declined", "fraudulent")
    assert failed.events.get(to_status=PaymentStatus.FAILED).data["risk_rule"] == "block_list"
    assert not charges_for(failed).exists()


def test_transient_card_succeeds_on_the_third_try(make_payment, settings):
    # given
    settings.PAYMENTS_GATEWAY_BACKOFF_BASE = 0.001
    payment = make_payment(TRANSIENT)
    # when
    paid = _process(payment)
    # then
    assert paid.status == PaymentStatus.SUCCEEDED
    assert paid.events.get(to_status=PaymentStatus.SUCCEEDED).data["gateway_tries"] == 3
    assert debits_for(paid).count() == 1


def test_transient_card_with_too_few_retries_fails_as_processing_error_and_stays_failed(make_payment, settings):
    # given: one retry, so both tries hit the sandbox's two simulated failures
    settings.PAYMENTS_GATEWAY_RETRIES = 1
    settings.PAYMENTS_GATEWAY_BACKOFF_BASE = 0.001
    payment = make_payment(TRANSIENT)
    # when
    failed = _process(payment)
    # then: nothing reached the bank
    assert failed.status == PaymentStatus.FAILED
    assert (failed.failure_code, failed.decline_code) == ("processing_error", "")
    assert not charges_for(failed).exists()
    # and when the job runs again, a final payment is left as it is
    again = _process(failed)
    assert (again.status, again.seq) == (PaymentStatus.FAILED, failed.seq)
    assert not Charge.objects.exists()


def test_lost_answer_leaves_the_payment_unknown_until_a_settle_finds_the_one_debit(make_payment):
    # given: the bank charges, but its answer never comes back
    payment = make_payment(ANSWER_LOST)
    unknown = _process(payment)
    assert unknown.status == PaymentStatus.UNKNOWN
    assert unknown.amount_captured == 0
    assert debits_for(unknown).count() == 1
    # when: the job runs again
    settled = _process(unknown)
    # then
    assert settled.status == PaymentStatus.SUCCEEDED
    assert settled.amount_captured == settled.amount
    assert settled.gateway_reference == charges_for(settled).get().reference
    assert debits_for(settled).count() == 1
    assert settled.events.order_by("seq").last().reason.startswith("settled")


def test_slow_card_succeeds(make_payment, settings):
    # given
    settings.SANDBOX_SLOW_CARD_MS = 50
    payment = make_payment(SLOW)
    # when
    paid = _process(payment)
    # then
    assert paid.status == PaymentStatus.SUCCEEDED
    assert debits_for(paid).count() == 1


@pytest.mark.parametrize(
    ("number", "runs", "expected"),
    [
        ("4242424242424242", 1, ["pending", "processing", "succeeded"]),
        ("4000000000000002", 1, ["pending", "processing", "failed"]),
        (BLOCKED, 1, ["pending", "processing", "failed"]),
        (ANSWER_LOST, 2, ["pending", "processing", "unknown", "succeeded"]),
    ],
)
def test_every_state_change_is_an_event_numbered_one_to_n(make_payment, number, runs, expected):
    # given
    payment = make_payment(number)
    # when
    for _ in range(runs):
        payment = _process(payment)
    # then
    assert list(payment.events.order_by("seq").values_list("seq", flat=True)) == list(range(1, len(expected) + 1))
    assert payment.seq == len(expected)
    assert statuses_of(payment) == list(zip(["", *expected[:-1]], expected, strict=True))
