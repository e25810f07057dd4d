from __future__ import annotations

from dataclasses import dataclass

from payments.cards import CardDetails, card_fingerprint
from payments.gateway import get_gateway
from payments.metrics import gateway_call_observed


@dataclass(frozen=True)
class TokenizedCard:
    """All of a card that we keep: the gateway's token, what may be shown, and our fingerprint."""

    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str


def card_tokenize(card: CardDetails) -> TokenizedCard:
    """Hand the number and CVC to the gateway's vault, at once; after this only the token travels."""
    with gateway_call_observed("tokenize"):
        token = get_gateway().tokenize(card)
    return TokenizedCard(
        token=token.token,
        brand=token.brand,
        last4=token.last4,
        exp_month=token.exp_month,
        exp_year=token.exp_year,
        fingerprint=card_fingerprint(card.number),
    )
