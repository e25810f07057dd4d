"""A payment's description and metadata (and a refund's reason) are checked by payments.text, as the checkout
page's fields are: no bidi controls or other invisible formatting, no card number; never echoed back."""

import pytest

from payments.models import Payment
from payments.text import CARD_NUMBER_MESSAGE, UNPRINTABLE_MESSAGE
from tests.api.helpers import BODY, assert_problem, create

CARD = "4000 0566 5566 5556"  # not the payment's own card (BODY's 4242…), so "not echoed" means something

REFUSED = {
    "description: a card number": ({"description": f"Card {CARD}"}, "description", CARD_NUMBER_MESSAGE),
    "description: an RTL override": ({"description": "Invoice \u202e4321"}, "description", UNPRINTABLE_MESSAGE),
    "description: an isolate": ({"description": "Refund \u2066to\u2069 me"}, "description", UNPRINTABLE_MESSAGE),
    "metadata value: a card number": ({"metadata": {"note": CARD.replace(" ", "-")}}, "metadata", CARD_NUMBER_MESSAGE),
    "metadata value: a left-to-right mark": ({"metadata": {"note": "a\u200eb"}}, "metadata", UNPRINTABLE_MESSAGE),
    "metadata key: a card number": ({"metadata": {CARD.replace(" ", ""): "x"}}, "metadata", CARD_NUMBER_MESSAGE),
    "metadata key: an embedding": ({"metadata": {"\u202border": "1"}}, "metadata", UNPRINTABLE_MESSAGE),
    "metadata key: a newline": ({"metadata": {"or\nder": "1"}}, "metadata", UNPRINTABLE_MESSAGE),
}


@pytest.mark.parametrize(("change", "param", "message"), list(REFUSED.values()), ids=list(REFUSED))
def test_api_description_and_metadata_refuse_card_numbers_and_bidi(api, change, param, message):
    response = create(api, {**BODY, **change})

    problem = assert_problem(response, 422, "validation_error")
    assert problem["param"].split(".")[0] == param
    assert message in str(problem["errors"])
    body = response.content.decode()
    assert "5556" not in body and "202e" not in body.lower() and "202b" not in body.lower()  # nothing echoed
    assert not Payment.objects.exists()


def test_api_free_text_keeps_newlines_tabs_and_any_script(api):
    body = {
        **BODY,
        "description": "Order 1042\n\tTwo bags, one grinder",
        "metadata": {"customer": "میر\u200cرضا", "reference": "12345678901234567890123", "phone": "+44 20 7946 0958"},
    }
    response = create(api, body)
    assert response.status_code == 202, response.content
    payment = Payment.objects.get()
    assert (payment.description, payment.metadata) == (body["description"], body["metadata"])
