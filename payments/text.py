"""The one check for text a shopper or an API client writes freely (shipping details, a payment's description and
metadata, a refund's reason): the pages and the API both call `free_text_validate`, so they refuse the same things.

Refused:
- control characters (a NUL cannot even be stored by PostgreSQL; the others corrupt labels, CSV exports and logs),
  and lone surrogates (no JSON encoder can write them); a tab or a newline only where a field is `multiline`;
- invisible formatting characters, the bidi controls above all (U+202A–U+202E, U+2066–U+2069, U+200E/U+200F,
  U+061C): they make text display in another order than it is stored ("Trojan Source"), so what staff read on
  an order is not what was typed. ZWNJ and ZWJ (U+200C/U+200D) stay allowed: Persian and Indic names need them;
- a card number (see `contains_card_number`). Nothing recoverable from card data is ever stored, and a free-text
  field is where a shopper pastes one by mistake.

Messages never repeat the value: they end up in problem documents and on pages.
"""

from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError

from payments.cards import NUMBER_LENGTHS, detect_brand, luhn_valid

CARD_NUMBER_LENGTHS = range(13, 20)
# Far more than any free-text field takes (their own limits are a few hundred characters): longer text is refused
# before it is scanned, so a request body of megabytes cannot make the scan a denial of service.
MAX_FREE_TEXT_LENGTH = 10_000
# Kept though they are format (Cf) characters: words in Persian and in Indic scripts need them.
JOINERS = frozenset("\u200c\u200d")
MULTILINE_WHITESPACE = frozenset("\t\n")
# Between digit groups: anything that is neither a letter nor a digit (spaces of every kind, dashes, dots,
# slashes, commas, plus signs, brackets, underscores...), a few at most: "4242.4242.4242.4242" and
# "(4242) 4242    4242 4242" are card numbers as much as "4242 4242 4242 4242" is.
SEPARATOR = r"[\W_]"
# A run of digit groups; \d is any script's decimal digit on purpose.
DIGIT_RUN = re.compile(rf"\d+(?:{SEPARATOR}{{1,4}}\d+)*")
DIGIT_GROUP = re.compile(r"\d+")

UNPRINTABLE_MESSAGE = (
    "Remove the control or invisible formatting characters (such as text-direction overrides) from this text."
)
TOO_LONG_MESSAGE = f"This text is too long (at most {MAX_FREE_TEXT_LENGTH} characters)."
CARD_NUMBER_MESSAGE = "This looks like a card number. Card details go only in the payment fields, never here."


def _unprintable(char: str, *, multiline: bool) -> bool:
    category = unicodedata.category(char)
    if category in ("Cc", "Cs"):
        return not (multiline and char in MULTILINE_WHITESPACE)
    if category == "Cf":  # every bidi control is a format character, as are zero-width spaces and tag characters
        return char not in JOINERS
    return category in ("Zl", "Zp")  # U+2028/U+2029: line breaks that JSON and JavaScript treat differently


def _ascii_digits(group: str) -> str:
    # int() reads any script's decimal digit: a card number in Arabic-Indic digits is still one.
    return group if group.isascii() else "".join(str(int(digit)) for digit in group)


def _a_card_we_know(digits: str) -> bool:
    brand = detect_brand(digits)
    return brand is not None and len(digits) in NUMBER_LENGTHS[brand] and luhn_valid(digits)


def contains_card_number(value: str) -> bool:
    """Whether `value` holds a card number: a run of 13 to 19 digits (up to four characters that are neither
    letters nor digits between groups) that passes the Luhn check.

    Also a card number typed in one run with what came before or after it ("4242 4242 4242 4242 12 30"): whole
    digit groups at either end of the run, but only when they look like a card we take (its brand's prefix and
    length), so that an IBAN or a long reference number is not cut into windows, each passing Luhn one time in ten.
    """
    # NFKC first: superscript, circled and fullwidth digits become digits, odd spaces become spaces.
    for run in DIGIT_RUN.finditer(unicodedata.normalize("NFKC", value)):
        groups = [_ascii_digits(group) for group in DIGIT_GROUP.findall(run.group())]
        if sum(map(len, groups)) in CARD_NUMBER_LENGTHS and luhn_valid("".join(groups)):
            return True
        prefix = suffix = ""
        for head, tail in zip(groups[:-1], reversed(groups[1:]), strict=True):
            prefix, suffix = prefix + head, tail + suffix
            if min(len(prefix), len(suffix)) > CARD_NUMBER_LENGTHS.stop:
                break  # however long the run, the check stays linear in the text
            if _a_card_we_know(prefix) or _a_card_we_know(suffix):
                return True
    return False


def free_text_validate(value: str, *, multiline: bool = False) -> None:
    """Raises ValidationError (code `too_long`, `unprintable` or `card_number`) if `value` is not text to keep."""
    if len(value) > MAX_FREE_TEXT_LENGTH:
        raise ValidationError(TOO_LONG_MESSAGE, code="too_long")
    # isprintable() (in C) is false for every character refused here, so most text never takes the slow path.
    if not value.isprintable() and any(_unprintable(char, multiline=multiline) for char in value):
        raise ValidationError(UNPRINTABLE_MESSAGE, code="unprintable")
    if contains_card_number(value):
        raise ValidationError(CARD_NUMBER_MESSAGE, code="card_number")
