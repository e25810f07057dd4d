"""A shopper on the live stack: one browser-like session (cookies, CSRF token) that puts a product in the cart
and pays for it."""

from __future__ import annotations

import re
import uuid

import httpx

AMEX_PREFIXES = ("34", "37")
SHIPPING = {
    "email": "ada@example.com", "shipping_name": "Ada Lovelace", "shipping_address": "12 St James's Square",
    "shipping_city": "London", "shipping_postcode": "SW1Y 4JH", "shipping_country": "GB",
}  # fmt: skip


def checkout_form(card_number: str, *, cvc: str | None = None, token=None) -> dict:
    """The checkout form as a browser fills it in (a fresh render's token unless one is given)."""
    cvc = cvc or ("1234" if card_number.startswith(AMEX_PREFIXES) else "737")
    return {
        **SHIPPING,
        "card_number": card_number,
        "expiry": "12/30",
        "cvc": cvc,
        "checkout_token": str(token or uuid.uuid4()),
    }


class Shopper:
    def __init__(self, base_url: str, product_id: int):
        self.client = httpx.Client(base_url=base_url, timeout=30)
        self.product_id = product_id
        page = self.client.get("/")
        self.csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)

    def add_to_cart(self, quantity: int = 1) -> None:
        # Sets the quantity rather than adding to it: the cart is kept until a payment takes money, so a shopper
        # who pays again at once would otherwise pay for a growing cart.
        response = self.client.post(
            "/cart/update",
            data={"csrfmiddlewaretoken": self.csrf, "product_id": self.product_id, "quantity": quantity},
        )
        assert response.status_code == 302, response.text

    def submit(self, card_number: str, cvc: str | None = None) -> httpx.Response:
        self.add_to_cart()
        return self.client.post(
            "/checkout",
            data={"csrfmiddlewaretoken": self.csrf, **checkout_form(card_number, cvc=cvc)},
            headers={"Accept": "application/json"},
        )

    def pay(self, card_number: str) -> dict:
        response = self.submit(card_number)
        assert response.status_code == 202, response.text
        return response.json()

    def close(self) -> None:
        self.client.close()
