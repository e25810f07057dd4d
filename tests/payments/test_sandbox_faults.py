"""The sandbox bank's fault switch (SANDBOX_FAULTS_FILE), which `make chaos` flips to make the bank fail and time
out in bursts: off by default, `unavailable` touches nothing, `timeout` does the work and loses the answer."""

from __future__ import annotations

import os

import pytest

from payments.cards import validate_card
from payments.gateway import GatewayTimeout, GatewayUnavailable
from payments.sandbox.gateway import SandboxGateway, injected_fault
from payments.sandbox.models import Charge, LedgerEntry, Refund, VaultCard

pytestmark = pytest.mark.django_db

VISA_OK = "4242424242424242"


@pytest.fixture
def faults_file(settings, tmp_path):
    path = tmp_path / "sandbox-faults"
    settings.SANDBOX_FAULTS_FILE = str(path)
    settings.SANDBOX_LATENCY_MS = 0

    def switch(text: str | None) -> None:
        if text is None:
            path.unlink(missing_ok=True)
            return
        # As the harness does it: a new file renamed over the old one, so the change is seen at once.
        fresh = path.with_suffix(".new")
        fresh.write_text(text)
        os.replace(fresh, path)

    return switch


def _token(gateway: SandboxGateway) -> str:
    return gateway.tokenize(validate_card(number=VISA_OK, exp_month=12, exp_year=2030, cvc="123")).token


def test_the_switch_is_off_by_default(settings):
    # given: no SANDBOX_FAULTS_FILE
    settings.SANDBOX_FAULTS_FILE = ""
    settings.SANDBOX_LATENCY_MS = 0
    gateway = SandboxGateway()

    # when / then: the bank behaves
    assert injected_fault() == ""
    assert gateway.charge(token=_token(gateway), amount=500, currency="USD", idempotency_key="k-off").approved


def test_a_missing_file_or_an_unknown_word_is_no_fault(faults_file):
    faults_file(None)
    assert injected_fault() == ""
    faults_file("explode")
    assert injected_fault() == ""
    faults_file(" Timeout\n")
    assert injected_fault() == "timeout"


def test_unavailable_raises_before_the_bank_is_touched(faults_file):
    # given: a card in the vault, then the bank "unavailable"
    gateway = SandboxGateway()
    token = _token(gateway)
    cards = VaultCard.objects.count()
    faults_file("unavailable")

    # when / then: no call reaches the bank: nothing tokenized, charged or refunded
    with pytest.raises(GatewayUnavailable):
        _token(gateway)
    with pytest.raises(GatewayUnavailable):
        gateway.charge(token=token, amount=500, currency="USD", idempotency_key="k-1")
    with pytest.raises(GatewayUnavailable):
        gateway.charge_outcome(idempotency_key="k-1")
    assert VaultCard.objects.count() == cards
    assert not Charge.objects.exists() and not LedgerEntry.objects.exists()

    # and once the file is cleared, the same key charges normally
    faults_file("")
    assert gateway.charge(token=token, amount=500, currency="USD", idempotency_key="k-1").approved
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT).count() == 1


def test_timeout_charges_then_loses_the_answer_and_a_retry_with_the_key_charges_once(faults_file):
    # given: the bank "timing out"
    gateway = SandboxGateway()
    token = _token(gateway)
    faults_file("timeout")

    # when: a charge is made; its answer is lost
    with pytest.raises(GatewayTimeout):
        gateway.charge(token=token, amount=700, currency="USD", idempotency_key="k-2")

    # then: the bank did charge, once
    assert Charge.objects.get(idempotency_key="k-2").approved
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT).count() == 1

    # and after the burst the key's outcome and a repeated charge give the first answer, no second debit
    faults_file(None)
    first = gateway.charge_outcome(idempotency_key="k-2")
    again = gateway.charge(token=token, amount=700, currency="USD", idempotency_key="k-2")
    assert first.reference == again.reference and again.approved
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT).count() == 1


def test_timeout_on_a_refund_refunds_then_loses_the_answer(faults_file):
    gateway = SandboxGateway()
    charge = gateway.charge(token=_token(gateway), amount=900, currency="USD", idempotency_key="k-3")
    faults_file("timeout")

    with pytest.raises(GatewayTimeout):
        gateway.refund(charge_reference=charge.reference, amount=400, idempotency_key="r-3")
    with pytest.raises(GatewayTimeout):
        gateway.refund_outcome(idempotency_key="r-3")

    faults_file("")
    assert gateway.refund_outcome(idempotency_key="r-3").approved
    assert gateway.refund(charge_reference=charge.reference, amount=400, idempotency_key="r-3").approved
    assert Refund.objects.count() == 1
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CREDIT).count() == 1
