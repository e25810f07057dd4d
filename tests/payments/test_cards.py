import pytest

from payments.cards import CardError, luhn_valid, parse_expiry, validate_card


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242 4242 4242 4242", "visa"),
        ("5555-5555-5555-4444", "mastercard"),
        ("378282246310005", "amex"),
        ("2223003122003222", "mastercard"),
    ],
)
def test_valid_cards_are_accepted_with_their_brand(number, brand):
    card = validate_card(number=number, exp_month=12, exp_year=2099 - 70, cvc="1234" if brand == "amex" else "123")
    assert card.brand == brand
    assert card.last4 == number.replace(" ", "").replace("-", "")[-4:]


def test_repr_never_shows_the_number_or_cvc():
    card = validate_card(number="4242424242424242", exp_month=12, exp_year=2030, cvc="987")
    assert "4242424242424242" not in repr(card)
    assert "987" not in repr(card)


@pytest.mark.parametrize(
    ("kwargs", "field", "code"),
    [
        ({"number": "4242424242424241"}, "number", "invalid_number"),
        ({"number": "6011111111111117"}, "number", "unsupported_brand"),
        ({"number": "4242abcd42424242"}, "number", "invalid_number"),
        ({"exp_month": 13}, "expiry", "invalid_expiry_month"),
        ({"exp_year": 2001}, "expiry", "expired_card"),
        ({"cvc": "12"}, "cvc", "invalid_cvc"),
        ({"number": "378282246310005", "cvc": "123"}, "cvc", "invalid_cvc"),
    ],
)
def test_invalid_card_fields_are_named(kwargs, field, code):
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123", **kwargs}
    with pytest.raises(CardError) as raised:
        validate_card(**card)
    assert (raised.value.field, raised.value.code) == (field, code)


def test_expiry_formats():
    assert parse_expiry("07/29") == (7, 2029)
    assert parse_expiry("0729") == (7, 2029)
    assert parse_expiry("7 / 2029") == (7, 2029)
    with pytest.raises(CardError):
        parse_expiry("July")


def test_luhn():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
