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


def format_major_units(amount: int, currency: str) -> str:
    """An amount in minor units as a plain number in major units, as a person types it: 2400 USD → "24.00"."""
    exponent = SUPPORTED_CURRENCIES.get(currency, 2)
    return f"{Decimal(amount).scaleb(-exponent):.{exponent}f}"


def parse_major_units(text: str, currency: str) -> int:
    """What a person typed ("24", "24.5", "24.50") in minor units of `currency`; CurrencyError says what is wrong
    with it. Digits and one decimal point only: "12,50" is refused rather than guessed at."""
    exponent = SUPPORTED_CURRENCIES.get(currency, 2)
    text = text.strip()
    if len(text) > 30:
        raise CurrencyError(f"The amount is above the largest single payment we take in {currency}.")
    whole, point, fraction = text.partition(".")
    if not (whole.isascii() and whole.isdecimal()) or (point and not (fraction.isascii() and fraction.isdecimal())):
        example = format_major_units(1250 * 10 ** max(exponent - 2, 0), currency)
        raise CurrencyError(f"Enter an amount in {currency} like {example}: digits, and a point before any decimals.")
    if len(fraction) > exponent:
        raise CurrencyError(
            f"{currency} has no decimals." if exponent == 0 else f"{currency} has at most {exponent} decimals."
        )
    return int(whole) * 10**exponent + int(fraction.ljust(exponent, "0") or 0)
