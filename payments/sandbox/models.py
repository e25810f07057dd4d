"""The sandbox bank's own records: in production these live at the provider, not in our database.

The vault keeps what the bank needs to act on a token (which test behaviour the card has) and what we may
show; the card number and CVC are never stored, here or anywhere.
"""

from django.db import models


class VaultCard(models.Model):
    token = models.CharField(max_length=64, primary_key=True)
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
        return f"{self.reference} {self.amount} {self.currency} {'approved' if self.approved else self.decline_code}"
