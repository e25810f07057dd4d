"""The audit compares our records with the sandbox bank's ledger, and says when they disagree."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from payments.models import Actor, Payment, PaymentStatus
from payments.services.audit import payments_audit
from payments.services.payments import payment_process
from payments.services.refunds import refund_create, refund_process
from tests.conftest import VISA_DECLINED

BLOCKED = "4100000000000019"


@pytest.fixture
def settled_mix(make_payment, paid_payment):
    """Succeeded, partially refunded, refunded, declined by the bank, refused by risk."""
    paid_payment()
    for amount in (1000, None):
        refund = refund_create(payment_id=paid_payment().pk, actor=Actor.STAFF, amount=amount)
        refund_process(refund_id=refund.pk, actor=Actor.WORKER)
    for number in (VISA_DECLINED, BLOCKED):
        payment_process(payment_id=make_payment(number).pk)
    return Payment.objects.all()


def _audit_command() -> tuple[int, dict]:
    out = StringIO()
    try:
        call_command("payments_audit", stdout=out)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, json.loads(out.getvalue())


def test_a_settled_mix_of_payments_passes_every_check(settled_mix):
    # when
    report = payments_audit()
    # then
    assert report["ok"] is True, report
    assert report["payments"] == 5
    assert report["by_status"] == {"succeeded": 1, "partially_refunded": 1, "refunded": 1, "failed": 2}
    assert report["checks"]["charged_once"]["approved_charges"] == 3
    code, printed = _audit_command()
    assert code == 0
    assert {**printed, "checked_at": None} == {**report, "checked_at": None}


def test_a_failed_payment_shown_as_paid_breaks_ledger_and_charged_once(settled_mix):
    # given: a declined payment rewritten as succeeded behind the state machine's back
    failed = Payment.objects.get(card_last4="0002")
    Payment.objects.filter(pk=failed.pk).update(status=PaymentStatus.SUCCEEDED, amount_captured=failed.amount)
    # when
    report = payments_audit()
    # then
    assert report["ok"] is False
    assert report["checks"]["settled_in_time"]["ok"] is True
    assert report["checks"]["ledger_matches"]["ok"] is False
    assert report["checks"]["ledger_matches"]["violations"][0]["our_net_capture"] == failed.amount
    assert report["checks"]["charged_once"]["ok"] is False
    assert report["checks"]["charged_once"]["violations"] == [
        {"payment": str(failed.pk), "problem": "paid here, no approved charge at the bank"}
    ]


def test_an_old_pending_payment_breaks_settled_in_time(make_payment):
    # given
    payment = make_payment()
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(days=1))
    # when
    report = payments_audit()
    # then
    assert report["ok"] is False
    assert report["checks"]["settled_in_time"]["violations"] == [{"payment": str(payment.pk), "status": "pending"}]
    assert report["checks"]["ledger_matches"]["ok"] is True


def test_a_young_pending_payment_is_not_late(make_payment):
    make_payment()
    assert payments_audit()["checks"]["settled_in_time"]["ok"] is True


def test_audit_command_exits_1_and_prints_the_failing_report(make_payment):
    # given
    payment = make_payment()
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(days=1))
    # when
    code, printed = _audit_command()
    # then
    assert code == 1
    assert printed["ok"] is False
    assert printed["checks"]["settled_in_time"]["violation_count"] == 1


def test_two_payments_for_one_client_and_key_are_a_violation(make_payment):
    # given: the database's guard is missing (a restored dump, a hand edit) and one key made two payments
    from django.db import connection

    with connection.cursor() as cursor:  # a conditional unique constraint is a unique index, on both databases
        cursor.execute("DROP INDEX payment_idempotency_key_unique_per_client")
    client = get_user_model().objects.create_user(username="merchant")
    for _ in range(2):
        Payment.objects.filter(pk=make_payment().pk).update(owner_user=client, idempotency_key="order-1042")
    # then: the audit says so and fails
    report = payments_audit()
    assert not report["ok"]
    assert report["checks"]["one_write_per_key"]["violations"] == [
        {"client": client.pk, "key": "order-1042", "problem": "2 payments for one key"}
    ]
