"""The sandbox bank's own records: in production these live at the provider, not in our database.

The card number is never stored, here or anywhere: an account is found by an HMAC of the number under the
bank's own key, and the vault keeps which test behaviour a token has.
"""

from django.db import models
from django.db.models import Q


class Account(models.Model):
    """One per card number: the balance a charge debits and a refund credits (in minor units).

    Opened by the first charge on any of its cards (with the behaviour's opening balance), not when a card is
    vaulted: storing a card then costs the accept path one INSERT and no read (make bench)."""

    account_key = models.CharField(max_length=64, unique=True)
    balance = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(balance__gte=0), name="sandbox_balance_not_negative")]

    def __str__(self) -> str:
        return f"account {self.account_key[:10]}… balance {self.balance}"


class VaultCard(models.Model):
    token = models.CharField(max_length=64, primary_key=True)
    account_key = models.CharField(max_length=64, db_index=True)  # its Account's, which may not be open yet
    behaviour = models.CharField(max_length=40)
    brand = models.CharField(max_length=20)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4} ({self.behaviour})"


class Charge(models.Model):
    """One row per idempotency key: the bank's memory of what it answered."""

    idempotency_key = models.CharField(max_length=128, unique=True)
    card = models.ForeignKey(VaultCard, on_delete=models.PROTECT, related_name="charges")
    amount = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    approved = models.BooleanField()
    decline_code = models.CharField(max_length=40, blank=True)
    reference = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        outcome = "approved" if self.approved else self.decline_code
        return f"{self.reference} {self.amount} {self.currency} {outcome}"


class Authentication(models.Model):
    """A 3-D Secure challenge: the bank holds a charge until the cardholder answers on its page.

    One per charge idempotency key. The charge is made (or declined) only when the merchant calls again with the
    key after the answer; voided, the key is recorded as declined at once, so nothing can charge it afterwards."""

    class Status(models.TextChoices):
        PENDING = "pending"  # waiting for the cardholder
        SUCCEEDED = "succeeded"  # the cardholder authenticated: the next charge call with the key charges
        FAILED = "failed"  # the cardholder failed: the next charge call is declined authentication_failed
        VOIDED = "voided"  # the merchant gave up (timeout, cancel): the key is declined for good

    # In the challenge URL: whoever holds it can answer, so it is random and long, and never logged.
    public_id = models.CharField(max_length=64, unique=True)
    reference = models.CharField(max_length=64, unique=True)  # what the bank calls it in answers and callbacks
    idempotency_key = models.CharField(max_length=128, unique=True)
    card = models.ForeignKey(VaultCard, on_delete=models.PROTECT, related_name="authentications")
    amount = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    # Where the page sends the cardholder afterwards: a path of the merchant's site, or "" (the bank's own page).
    return_url = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {self.currency} {self.status}"


class Refund(models.Model):
    idempotency_key = models.CharField(max_length=128, unique=True)
    charge = models.ForeignKey(Charge, on_delete=models.PROTECT, related_name="refunds")
    amount = models.PositiveBigIntegerField()
    approved = models.BooleanField()
    failure_code = models.CharField(max_length=40, blank=True)
    reference = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {'approved' if self.approved else self.failure_code}"


class LedgerEntry(models.Model):
    """Every movement of money on an account: debits from charges, credits from refunds."""

    class Kind(models.TextChoices):
        DEBIT = "debit"
        CREDIT = "credit"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=6, choices=Kind.choices)
    amount = models.PositiveBigIntegerField()
    charge = models.ForeignKey(Charge, null=True, on_delete=models.PROTECT, related_name="+")
    refund = models.ForeignKey(Refund, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # A charge debits once and a refund credits once, whatever the callers retry.
            models.UniqueConstraint(fields=["charge"], condition=Q(charge__isnull=False), name="ledger_one_debit"),
            models.UniqueConstraint(fields=["refund"], condition=Q(refund__isnull=False), name="ledger_one_credit"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} on account {self.account_id}"


class FailedAttempt(models.Model):
    """Calls the sandbox failed on purpose for a key (the transient test card), so it fails only twice."""

    idempotency_key = models.CharField(max_length=128, unique=True)
    count = models.PositiveSmallIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.idempotency_key}: failed {self.count}×"
