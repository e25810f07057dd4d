"""What the sandbox bank recorded, read straight from its tables, so tests assert on real money movements."""

from payments.models import Payment, Refund
from payments.sandbox.models import Account, Charge, LedgerEntry, VaultCard


def account_of(payment: Payment) -> Account:
    """The card's account at the bank, which its first charge opened."""
    return Account.objects.get(account_key=VaultCard.objects.get(token=payment.card_token).account_key)


def charges_for(payment: Payment):
    return Charge.objects.filter(idempotency_key=payment.gateway_idempotency_key)


def debits_for(payment: Payment):
    return LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.DEBIT, charge__idempotency_key=payment.gateway_idempotency_key
    )


def credits_for(refund: Refund):
    return LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.CREDIT, refund__idempotency_key=refund.gateway_idempotency_key
    )


def statuses_of(payment: Payment) -> list[tuple[str, str]]:
    return list(payment.events.order_by("seq").values_list("from_status", "to_status"))
