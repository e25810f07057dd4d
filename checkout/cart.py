"""The shopper's cart, kept in their session as {product id: quantity}.

One currency per cart: the first product added sets it, a product priced in another is refused, and a line in
another currency (a cart from before that rule) is shown as unavailable and never added to the total."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from checkout.models import Product

SESSION_KEY = "cart"
MAX_QUANTITY = 10


class CurrencyMismatch(Exception):
    def __init__(self, product: Product, cart_currency: str):
        super().__init__(
            f"{product.name} is priced in {product.currency} and your cart in {cart_currency}: "
            "pay for your cart first, or empty it, to buy it."
        )
        self.product = product


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int
    in_cart_currency: bool = True

    @property
    def total(self) -> int:
        return self.product.price * self.quantity

    @property
    def exceeds_stock(self) -> bool:
        return self.quantity > self.product.stock

    @property
    def is_unavailable(self) -> bool:
        return self.exceeds_stock or not self.in_cart_currency


@dataclass(frozen=True)
class Cart:
    lines: list[CartLine]
    currency: str | None = None

    @property
    def is_empty(self) -> bool:
        return not self.lines

    @property
    def payable_lines(self) -> list[CartLine]:
        return [line for line in self.lines if line.in_cart_currency]

    @property
    def total(self) -> int:
        # Never a sum of two currencies: a line in another one is not part of the total.
        return sum(line.total for line in self.payable_lines)

    @property
    def unavailable(self) -> list[CartLine]:
        return [line for line in self.lines if line.is_unavailable]

    @property
    def has_foreign_currency(self) -> bool:
        return any(not line.in_cart_currency for line in self.lines)

    @property
    def signature(self) -> str:
        """What the shopper is shown, as one string: the checkout form carries it, and a submit whose cart no
        longer has it (a price edit, a quantity changed in another tab, a product withdrawn) charges nothing."""
        seen = sorted(
            (line.product.pk, line.quantity, line.product.price, line.product.currency) for line in self.lines
        )
        return hashlib.sha256(json.dumps(seen).encode()).hexdigest()[:32]


def _raw(session) -> dict[str, int]:
    return dict(session.get(SESSION_KEY, {}))


def cart_get(session) -> Cart:
    raw = _raw(session)
    ids = [pk for pk in raw if pk.isascii() and pk.isdigit()]
    products = Product.objects.in_bulk([int(pk) for pk in ids])
    # The session keeps the order lines were added in: the first line's currency is the cart's.
    present = [
        (products[int(pk)], quantity)
        for pk, quantity in raw.items()
        if pk in ids and int(pk) in products and products[int(pk)].is_active
    ]
    currency = present[0][0].currency if present else None
    lines = [
        CartLine(product=product, quantity=quantity, in_cart_currency=product.currency == currency)
        for product, quantity in present
    ]
    return Cart(lines=sorted(lines, key=lambda line: line.product.name), currency=currency)


def cart_set_quantity(session, *, product: Product, quantity: int) -> None:
    raw = _raw(session)
    quantity = max(0, min(quantity, MAX_QUANTITY))
    if quantity:
        raw[str(product.pk)] = quantity
    else:
        raw.pop(str(product.pk), None)
    session[SESSION_KEY] = raw


def cart_add(session, *, product: Product, quantity: int = 1) -> None:
    """Raises CurrencyMismatch for a product priced in another currency than the cart's."""
    cart = cart_get(session)
    if cart.currency is not None and product.currency != cart.currency:
        raise CurrencyMismatch(product, cart.currency)
    current = _raw(session).get(str(product.pk), 0)
    cart_set_quantity(session, product=product, quantity=current + quantity)


def cart_replace(session, lines: dict[int, int]) -> None:
    session[SESSION_KEY] = {str(pk): min(quantity, MAX_QUANTITY) for pk, quantity in lines.items() if quantity > 0}


def cart_subtract(session, lines: dict[int, int]) -> None:
    """Take an order's lines out of the cart once it is paid for; whatever was added since stays."""
    raw = _raw(session)
    for pk, quantity in lines.items():
        left = raw.get(str(pk), 0) - quantity
        if left > 0:
            raw[str(pk)] = left
        else:
            raw.pop(str(pk), None)
    session[SESSION_KEY] = raw


def cart_clear(session) -> None:
    session.pop(SESSION_KEY, None)
