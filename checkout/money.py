"""Money is an integer in minor units plus an ISO 4217 code; this turns it into text for people."""

from decimal import Decimal

from payments.currencies import SUPPORTED_CURRENCIES

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def format_money(amount: int, currency: str) -> str:
    exponent = SUPPORTED_CURRENCIES.get(currency, 2)
    value = Decimal(amount).scaleb(-exponent)
    text = f"{value:,.{exponent}f}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{text}" if symbol else f"{text} {currency}"
