"""Risk checks run before the bank is asked (the story's "multiple internal APIs"): a block list, an amount
limit per currency, and velocity per card. Reads only; the caller records the decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from django.conf import settings

from payments.cards import card_fingerprint
from payments.currencies import currency_exponent
from payments.models import BlockedCard, Payment

DEFAULT_LIMIT_MAJOR_UNITS = 5_000
# Every rule that can refuse a payment ({rule: what staff read}); a refusal's rule is recorded in the failing
# transition's event data ({"risk_rule": rule}), which the admin's list filters on.
RISK_RULES = {"block_list": "Block list", "amount_limit": "Amount limit", "velocity": "Velocity"}


@dataclass(frozen=True)
class RiskRefusal:
    decline_code: str  # what the shopper and the API see
    rule: str  # which check said no, for staff
    detail: str


@cache
def _blocked_test_card_fingerprints(key: str) -> frozenset[str]:
    return frozenset(card_fingerprint(number) for number in settings.RISK_BLOCKED_TEST_CARDS)


def payment_risk_assess(payment: Payment) -> RiskRefusal | None:
    fingerprint = payment.card_fingerprint
    if fingerprint in _blocked_test_card_fingerprints(settings.CARD_FINGERPRINT_KEY) or (
        BlockedCard.objects.filter(card_fingerprint=fingerprint).exists()
    ):
        return RiskRefusal("fraudulent", "block_list", "The card is on the block list.")

    limit = settings.RISK_AMOUNT_LIMITS.get(
        payment.currency, DEFAULT_LIMIT_MAJOR_UNITS * 10 ** currency_exponent(payment.currency)
    )
    if payment.amount > limit:
        return RiskRefusal("amount_limit", "amount_limit", f"{payment.amount} is above the limit of {limit}.")

    # Attempts with this card in the window that *ends when this payment was made*: a payment is judged by
    # what came before it, however long it waited in the queue (and whatever came after it meanwhile).
    since = payment.created_at - timedelta(seconds=settings.RISK_VELOCITY_WINDOW)
    # Counting stops at the limit: a card with a long history costs no more than one with none.
    recent = Payment.objects.filter(
        card_fingerprint=fingerprint, created_at__gte=since, created_at__lt=payment.created_at
    )[: settings.RISK_VELOCITY_MAX].count()
    if recent >= settings.RISK_VELOCITY_MAX:
        return RiskRefusal(
            "velocity_limit",
            "velocity",
            f"{recent} earlier payments with this card in the {settings.RISK_VELOCITY_WINDOW} s before it.",
        )
    return None
