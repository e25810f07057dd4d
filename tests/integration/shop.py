"""A shopper on the live stack: one browser-like session (cookies, CSRF token) that can pay for a product."""

from __future__ import annotations

import re

import httpx

AMEX_PREFIXES = ("34", "37")


class Shopper:
    def __init__(self, base_url: str, product_slug: str):
        self.client = httpx.Client(base_url=base_url, timeout=30)
        self.checkout_path = f"/products/{product_slug}/checkout"
        page = self.client.get(self.checkout_path)
        self.csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)

    def submit(self, card_number: str, cvc: str | None = None) -> httpx.Response:
        cvc = cvc or ("1234" if card_number.startswith(AMEX_PREFIXES) else "737")
        return self.client.post(
            self.checkout_path,
            data={
                "csrfmiddlewaretoken": self.csrf,
                "email": "ada@example.com",
                "card_number": card_number,
                "expiry": "12/30",
                "cvc": cvc,
            },
            headers={"Accept": "application/json"},
        )

    def pay(self, card_number: str) -> dict:
        response = self.submit(card_number)
        assert response.status_code == 202, response.text
        return response.json()

    def close(self) -> None:
        self.client.close()
