"""Request fields that take JSON's types as they are: DRF's own coerce `"100"` to 100 and 123 to "123"."""

from __future__ import annotations

from rest_framework import serializers


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: `"100"`, `100.0`, `1e2` and `true` are refused, not read as 100 (or 1)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return data


class StrictCharField(serializers.CharField):
    """A JSON string: a number is refused rather than turned into text (123 for a CVC of "0123" would lose its
    leading zero; 4.242424242424242e15 for a card number, its last digits)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class CurrencyField(serializers.ChoiceField):
    """An ISO 4217 code in any case (`"usd"` is how Stripe's clients send it), kept and answered upper case.

    Only ASCII is folded: `str.upper()` maps some other letters onto ASCII ones (`"uſd".upper() == "USD"`), and
    a code that only turns into ours that way is a typo or a trick, not a currency. Anything but a JSON string
    is refused, as by StrictCharField."""

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data.upper() if data.isascii() else data)
