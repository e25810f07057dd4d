"""The sandbox bank: behaves like a card gateway, with test cards that produce each outcome.

The test cards are documented in docs/test-cards.md. A charge is recorded once per idempotency key; asking
again with the same key returns the recorded answer.
"""

from __future__ import annotations

import random
import secrets
import time

from django.conf import settings
from django.db import IntegrityError, transaction

from payments.cards import CardDetails
from payments.gateway import CardToken, ChargeResult
from payments.sandbox.models import Charge, VaultCard

# Test card number → behaviour. Any other valid card is approved.
TEST_CARD_BEHAVIOURS = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card",
}
APPROVE = "approve"


class SandboxGateway:
    def tokenize(self, card: CardDetails) -> CardToken:
        vault_card = VaultCard.objects.create(
            token=f"tok_{secrets.token_hex(12)}",
            behaviour=TEST_CARD_BEHAVIOURS.get(card.number, APPROVE),
            brand=card.brand,
            last4=card.last4,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
        )
        return CardToken(
            token=vault_card.token,
            brand=vault_card.brand,
            last4=vault_card.last4,
            exp_month=vault_card.exp_month,
            exp_year=vault_card.exp_year,
        )

    def charge(self, *, token: str, amount: int, currency: str, idempotency_key: str) -> ChargeResult:
        self._simulate_latency()
        existing = Charge.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            existing = self._record_charge(token, amount, currency, idempotency_key)
        return ChargeResult(
            approved=existing.approved, reference=existing.reference, decline_code=existing.decline_code
        )

    def _record_charge(self, token: str, amount: int, currency: str, idempotency_key: str) -> Charge:
        card = VaultCard.objects.get(token=token)
        declined = card.behaviour != APPROVE
        try:
            with transaction.atomic():
                return Charge.objects.create(
                    idempotency_key=idempotency_key,
                    card=card,
                    amount=amount,
                    currency=currency,
                    approved=not declined,
                    decline_code=card.behaviour if declined else "",
                    reference=f"ch_{secrets.token_hex(10)}",
                )
        except IntegrityError:
            # Two calls with one key raced; the bank keeps the first answer and gives it to both.
            return Charge.objects.get(idempotency_key=idempotency_key)

    @staticmethod
    def _simulate_latency() -> None:
        base = settings.SANDBOX_LATENCY_MS
        jitter = settings.SANDBOX_LATENCY_JITTER_MS
        delay_ms = max(0, base + random.randint(-jitter, jitter)) if base else 0  # noqa: S311
        if delay_ms:
            time.sleep(delay_ms / 1000)
