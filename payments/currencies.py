"""The currencies we take, with their ISO 4217 minor-unit exponents.

Which currencies a shop accepts is a business decision, so this is a deliberate list rather than all of
ISO 4217. Amounts are always integers in minor units (cents for USD, yen for JPY, fils for KWD).
"""

from decimal import Decimal

SUPPORTED_CURRENCIES: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2,
    "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2, "SGD": 2, "HKD": 2,
    "JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3,
}  # fmt: skip

# The largest amount one payment may carry, in major units; the risk checks apply the business limit.
MAX_AMOUNT_MAJOR_UNITS = 1_000_000


class CurrencyError(ValueError):
    pass


def currency_exponent(code: str) -> int:
    try:
        return SUPPORTED_CURRENCIES[code]
    except KeyError:
        raise CurrencyError(f"{code!r} is not a currency we accept.") from None


def validate_amount(amount: int, currency: str) -> None:
    exponent = currency_exponent(currency)
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise CurrencyError("The amount must be a positive whole number of minor units.")
    if amount > MAX_AMOUNT_MAJOR_UNITS * 10**exponent:
        raise CurrencyError(f"The amount is above the largest single payment we take in {currency}.")


CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def format_money(amount: int, currency: str) -> str:
    """An amount in minor units as people read it: format_money(2400, "USD") == "$24.00"."""
    exponent = SUPPORTED_CURRENCIES.get(currency, 2)
    value = Decimal(amount).scaleb(-exponent)
    text = f"{value:,.{exponent}f}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{text}" if symbol else f"{text} {currency}"
