"""payments.text: the one check behind every free-text field, on the pages and in the API."""

import time

import pytest
from django.core.exceptions import ValidationError

from payments.text import MAX_FREE_TEXT_LENGTH, contains_card_number, free_text_validate


@pytest.mark.parametrize(
    "text",
    [
        "4242424242424242",
        "4242 4242 4242 4242",
        "4242-4242-4242-4242",
        "4242\u00a04242\u2009-\u20094242 4242",  # no-break and thin spaces around a dash
        "5555 5555 5555 4444",
        "3782 822463 10005",
        "6011 1111 1111 1117",  # a card we do not take is still card data
        "4000 0566 5566 5556 12/30",  # with its expiry after it
        "4000 0566 5566 5556 12 30 123",
        "Flat 2 4000 0566 5566 5556",  # with a number before it
        "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢",  # Arabic-Indic digits
        "⁴²⁴² ⁴²⁴² ⁴²⁴² ⁴²⁴²",  # superscripts
        "④②④② ④②④② ④②④② ④②④②",  # circled
        "𝟒𝟐𝟒𝟐𝟒𝟐𝟒𝟐𝟒𝟐𝟒𝟐𝟒𝟐𝟒𝟐",  # mathematical bold
        # any separators that are neither letters nor digits, a few at a time
        "4242.4242.4242.4242",
        "4242/4242/4242/4242",
        "4242_4242_4242_4242",
        "4242,4242,4242,4242",
        "4242+4242+4242+4242",
        "4242    4242    4242    4242",
        "(4242) 4242 4242 4242",
    ],
)
def test_card_numbers_are_found_however_they_are_typed(text):
    assert contains_card_number(text)
    with pytest.raises(ValidationError) as refused:
        free_text_validate(f"note: {text}")
    assert refused.value.code == "card_number"


@pytest.mark.parametrize(
    "text",
    [
        "4242 4242 4242 4241",  # fails Luhn
        "+44 20 7946 0958",
        "SW1Y 4JH",
        "2026-12-01 16:35:53",
        "12345678901234567890123",  # a long reference is not cut into windows
        "GB82 WEST 1234 5698 7654 32",
        "DE89 3704 0044 0532 0130 00",
        "ISBN 978-3-16-148410-0",
        "00 44 20 7946 0958 00 44 20 7946 0959",
    ],
)
def test_ordinary_numbers_are_not_taken_for_card_numbers(text):
    assert not contains_card_number(text)
    free_text_validate(text)


@pytest.mark.parametrize(
    "char", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
             "\u200e", "\u200f", "\u061c", "\u200b", "\u2060", "\ufeff", "\U000e0041", "\x00", "\x1b", "\x7f",
             "\x85", "\u2028", "\u2029", "\ud800", "\r"],
)  # fmt: skip
def test_control_bidi_and_invisible_characters_are_refused(char):
    with pytest.raises(ValidationError) as refused:
        free_text_validate(f"a{char}b", multiline=True)
    assert refused.value.code == "unprintable"


def test_tab_and_newline_only_where_text_may_have_lines():
    free_text_validate("two\n\tlines", multiline=True)
    with pytest.raises(ValidationError):
        free_text_validate("two\nlines")


def test_names_in_any_script_are_kept():
    for name in ("میر\u200cرضا", "क्\u200dष", "Zoë Łukasiewicz-O’Brien", "רחוב הרצל 12", "東京都港区 1-2-3", "🙂"):
        free_text_validate(name)


def test_huge_text_is_refused_before_it_is_scanned():
    started = time.monotonic()
    with pytest.raises(ValidationError) as refused:
        free_text_validate("١ " * 1_000_000)
    assert refused.value.code == "too_long" and time.monotonic() - started < 0.5
    free_text_validate("1 " * (MAX_FREE_TEXT_LENGTH // 2))
