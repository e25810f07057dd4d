"""Card number, expiry and CVC checks done before anything is recorded.

A `CardDetails` lives only for the length of the request that tokenizes it: nothing here is saved, logged
or put on a queue, and its repr masks the number so a traceback cannot leak it either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac

# ASCII digits only: str.isdigit() and the regex \d also accept other scripts' digits (and superscripts),
# which would give one card many spellings, and so many fingerprints.
ASCII_DIGITS = re.compile(r"[0-9]+")

BRAND_PATTERNS = (
    ("amex", re.compile(r"^3[47]")),
    ("visa", re.compile(r"^4")),
    ("mastercard", re.compile(r"^(5[1-5]|2(2[2-9][1-9]|2[3-9][0-9]|[3-6][0-9]{2}|7[01][0-9]|720))")),
)
NUMBER_LENGTHS = {"amex": (15,), "visa": (13, 16, 19), "mastercard": (16,)}
CVC_LENGTHS = {"amex": 4, "visa": 3, "mastercard": 3}
BRAND_NAMES = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express"}


class CardError(ValueError):
    """A card field is wrong; `field` names which one so the page can show the message beside it."""

    def __init__(self, field_name: str, message: str, code: str):
        super().__init__(message)
        self.field = field_name
        self.message = message
        self.code = code


@dataclass(frozen=True)
class CardDetails:
    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)
    brand: str

    @property
    def last4(self) -> str:
        return self.number[-4:]

    def __repr__(self) -> str:
        return f"CardDetails({self.brand} •••• {self.last4} {self.exp_month:02d}/{self.exp_year})"


def normalize_number(raw: str) -> str:
    return re.sub(r"[\s-]", "", raw or "")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def detect_brand(digits: str) -> str | None:
    for brand, pattern in BRAND_PATTERNS:
        if pattern.match(digits):
            return brand
    return None


def parse_expiry(raw: str) -> tuple[int, int]:
    """'MM/YY' (or MM/YYYY, MMYY) → (month, four-digit year)."""
    match = re.fullmatch(r"\s*([0-9]{1,2})\s*/?\s*([0-9]{2}|[0-9]{4})\s*", raw or "", re.ASCII)
    if not match:
        raise CardError("expiry", "Enter the expiry date as MM/YY.", "invalid_expiry")
    month, year = int(match.group(1)), int(match.group(2))
    if year < 100:
        year += 2000
    return month, year


def validate_card(*, number: str, exp_month: int, exp_year: int, cvc: str) -> CardDetails:
    digits = normalize_number(number)
    if not ASCII_DIGITS.fullmatch(digits):
        raise CardError("number", "Enter the card number using digits only.", "invalid_number")
    brand = detect_brand(digits)
    if brand is None:
        raise CardError("number", "We accept Visa, Mastercard and American Express.", "unsupported_brand")
    if len(digits) not in NUMBER_LENGTHS[brand] or not luhn_valid(digits):
        raise CardError("number", "This card number is not valid. Check it and try again.", "invalid_number")

    if not 1 <= exp_month <= 12:
        raise CardError("expiry", "The expiry month must be between 01 and 12.", "invalid_expiry_month")
    today = timezone.now().date()
    if (exp_year, exp_month) < (today.year, today.month):
        raise CardError("expiry", "This card has expired.", "expired_card")
    if exp_year > today.year + 20:
        raise CardError("expiry", "The expiry year is too far in the future.", "invalid_expiry_year")

    cvc = (cvc or "").strip()
    if not ASCII_DIGITS.fullmatch(cvc) or len(cvc) != CVC_LENGTHS[brand]:
        raise CardError("cvc", f"The security code is {CVC_LENGTHS[brand]} digits for this card.", "invalid_cvc")
    return CardDetails(number=digits, exp_month=exp_month, exp_year=exp_year, cvc=cvc, brand=brand)


def card_fingerprint(number: str) -> str:
    """A keyed HMAC of the card number: equal for one card, unguessable without CARD_FINGERPRINT_KEY."""
    return salted_hmac(
        "payments.card-fingerprint", normalize_number(number), secret=settings.CARD_FINGERPRINT_KEY, algorithm="sha256"
    ).hexdigest()
