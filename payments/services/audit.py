"""The invariants a payments team checks, read-only: `manage.py payments_audit` prints them as JSON.

1. settled_in_time: every payment and refund older than the processing lease (plus the pending grace and a
   settle retry) has left pending/processing/unknown; requires_action may also take PAYMENTS_ACTION_TIMEOUT.
2. ledger_matches: for every card account at the bank, its debits minus credits equal what we recorded as
   captured minus refunded for the payments made with that card.
3. charged_once: no payment has more than one debit at the bank, every approved charge belongs to a payment
   we show as paid, and every paid payment points at an approved charge.
4. one_write_per_key: no client has two payments, or two refunds, under one Idempotency-Key. The database's
   unique constraints refuse that; this says so if they were ever missing (a restored dump, a hand edit).

The bank side is read from the sandbox bank's ledger; with a real provider it would be its settlement
report.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone

from payments.models import UNSETTLED_REFUND_STATUSES, UNSETTLED_STATUSES, Payment, PaymentStatus, Refund
from payments.sandbox.models import Charge, LedgerEntry, VaultCard

PAID_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)
MAX_LISTED = 50


def _check(violations: list) -> dict:
    return {"ok": not violations, "violations": violations[:MAX_LISTED], "violation_count": len(violations)}


def _settled_in_time(now) -> dict:
    age = settings.PAYMENTS_PENDING_GRACE + settings.PAYMENTS_PROCESSING_LEASE + settings.PAYMENTS_SETTLE_RETRY
    cutoff = now - timedelta(seconds=age)
    # A payment waiting for the cardholder may rightly wait their whole time at the bank on top.
    action_cutoff = cutoff - timedelta(seconds=settings.PAYMENTS_ACTION_TIMEOUT)
    late_payments = Payment.objects.filter(status__in=UNSETTLED_STATUSES, created_at__lt=cutoff).exclude(
        status=PaymentStatus.REQUIRES_ACTION, created_at__gte=action_cutoff
    )
    late_refunds = Refund.objects.filter(status__in=UNSETTLED_REFUND_STATUSES, created_at__lt=cutoff)
    violations = [{"payment": str(p), "status": s} for p, s in late_payments.values_list("id", "status")]
    violations += [{"refund": str(r), "status": s} for r, s in late_refunds.values_list("id", "status")]
    result = _check(violations)
    result["older_than_seconds"] = age
    return result


def _ledger_matches() -> dict:
    account_of_token = dict(VaultCard.objects.values_list("token", "account_key"))
    ours: dict[str, int] = defaultdict(int)
    for token, captured, refunded in (
        Payment.objects.values("card_token")
        .annotate(captured=Sum("amount_captured"), refunded=Sum("amount_refunded"))
        .values_list("card_token", "captured", "refunded")
    ):
        ours[account_of_token.get(token)] += captured - refunded
    bank: dict[str, int] = defaultdict(int)
    for account_key, kind, total in (
        LedgerEntry.objects.values("account__account_key", "kind")
        .annotate(total=Sum("amount"))
        .values_list("account__account_key", "kind", "total")
    ):
        bank[account_key] += total if kind == LedgerEntry.Kind.DEBIT else -total
    violations = [
        {"account": key, "bank_net_debit": bank.get(key, 0), "our_net_capture": ours.get(key, 0)}
        for key in sorted(set(ours) | set(bank), key=str)
        if bank.get(key, 0) != ours.get(key, 0)
    ]
    result = _check(violations)
    result["accounts"] = len(set(ours) | set(bank))
    return result


def _charged_once() -> dict:
    violations = []
    debits_per_key = (
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT)
        .values("charge__idempotency_key")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    violations += [{"key": row["charge__idempotency_key"], "debits": row["n"]} for row in debits_per_key]

    paid = dict(Payment.objects.filter(status__in=PAID_STATUSES).values_list("id", "gateway_reference"))
    approved = dict(Charge.objects.filter(approved=True).values_list("idempotency_key", "reference"))
    for key, reference in approved.items():
        payment_id = key.removeprefix("payment-")
        if not key.startswith("payment-") or paid.get(_uuid_or_none(payment_id)) != reference:
            violations.append({"charge": reference, "key": key, "problem": "approved at the bank, not paid here"})
    approved_references = set(approved.values())
    for payment_id, reference in paid.items():
        if reference not in approved_references:
            violations.append({"payment": str(payment_id), "problem": "paid here, no approved charge at the bank"})
    result = _check(violations)
    result["approved_charges"] = len(approved)
    return result


def _one_write_per_key() -> dict:
    violations = []
    for model, client_field, kind in ((Payment, "owner_user", "payment"), (Refund, "requested_by", "refund")):
        rows = (
            model.objects.exclude(idempotency_key="")
            .values(client_field, "idempotency_key")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .order_by()
        )
        violations += [
            {
                "client": row[client_field],
                "key": row["idempotency_key"],
                "problem": f"{row['n']} {kind}s for one key",
            }
            for row in rows
        ]
    return _check(violations)


def _uuid_or_none(raw: str):
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def payments_audit() -> dict:
    now = timezone.now()
    checks = {
        "settled_in_time": _settled_in_time(now),
        "ledger_matches": _ledger_matches(),
        "charged_once": _charged_once(),
        "one_write_per_key": _one_write_per_key(),
    }
    return {
        "checked_at": now.isoformat(),
        "ok": all(check["ok"] for check in checks.values()),
        "payments": Payment.objects.count(),
        "by_status": dict(Payment.objects.values_list("status").annotate(n=Count("id")).order_by()),
        "checks": checks,
    }
