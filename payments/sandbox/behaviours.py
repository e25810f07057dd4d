"""What each test card does (docs/test-cards.md). Any other valid card is approved."""

from django.conf import settings

APPROVE = "approve"
TRANSIENT_TWICE = "transient_twice"
ANSWER_LOST = "answer_lost"
SLOW = "slow"
# 3-D Secure: the bank asks the cardholder to authenticate on its own page before it charges.
REQUIRES_AUTHENTICATION = "requires_authentication"
# Declined by the bank with the behaviour's name as the decline code.
DECLINES = frozenset({"card_declined", "expired_card", "incorrect_cvc", "lost_card", "stolen_card"})

TEST_CARD_BEHAVIOURS = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card",
    "4000000000000416": TRANSIENT_TWICE,
    "4000000000000424": ANSWER_LOST,
    "4000000000000440": SLOW,
    "4000002760003184": REQUIRES_AUTHENTICATION,
}
TRANSIENT_FAILURES = 2


def behaviour_for(number: str) -> str:
    return TEST_CARD_BEHAVIOURS.get(number, APPROVE)


def opening_balance(behaviour: str) -> int:
    # The insufficient-funds card has nothing; every other card starts with SANDBOX_OPENING_BALANCE.
    return 0 if behaviour == "insufficient_funds" else settings.SANDBOX_OPENING_BALANCE
