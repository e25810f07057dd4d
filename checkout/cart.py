"""The shopper's cart, kept in their session as {product id: quantity}."""

from __future__ import annotations

from dataclasses import dataclass

from checkout.models import Product

SESSION_KEY = "cart"
MAX_QUANTITY = 10


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def total(self) -> int:
        return self.product.price * self.quantity

    @property
    def exceeds_stock(self) -> bool:
        return self.quantity > self.product.stock


@dataclass(frozen=True)
class Cart:
    lines: list[CartLine]

    @property
    def is_empty(self) -> bool:
        return not self.lines

    @property
    def total(self) -> int:
        return sum(line.total for line in self.lines)

    @property
    def currency(self) -> str | None:
        return self.lines[0].product.currency if self.lines else None

    @property
    def unavailable(self) -> list[CartLine]:
        return [line for line in self.lines if line.exceeds_stock]


def _raw(session) -> dict[str, int]:
    return dict(session.get(SESSION_KEY, {}))


def cart_get(session) -> Cart:
    raw = _raw(session)
    ids = [pk for pk in raw if pk.isascii() and pk.isdigit()]
    products = Product.objects.in_bulk([int(pk) for pk in ids])
    lines = [
        CartLine(product=products[int(pk)], quantity=quantity)
        for pk, quantity in raw.items()
        if pk in ids and int(pk) in products and products[int(pk)].is_active
    ]
    return Cart(lines=sorted(lines, key=lambda line: line.product.name))


def cart_set_quantity(session, *, product: Product, quantity: int) -> None:
    raw = _raw(session)
    quantity = max(0, min(quantity, MAX_QUANTITY))
    if quantity:
        raw[str(product.pk)] = quantity
    else:
        raw.pop(str(product.pk), None)
    session[SESSION_KEY] = raw


def cart_add(session, *, product: Product, quantity: int = 1) -> None:
    current = _raw(session).get(str(product.pk), 0)
    cart_set_quantity(session, product=product, quantity=current + quantity)


def cart_replace(session, lines: dict[int, int]) -> None:
    session[SESSION_KEY] = {str(pk): min(quantity, MAX_QUANTITY) for pk, quantity in lines.items() if quantity > 0}


def cart_clear(session) -> None:
    session.pop(SESSION_KEY, None)
