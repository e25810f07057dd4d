from __future__ import annotations

import uuid

from django.db import transaction
from django.db.models import F

from checkout.models import Order, OrderLine, Product
from payments.cards import CardDetails
from payments.models import Actor, Payment
from payments.services.cards import card_tokenize
from payments.services.payments import payment_create


class OutOfStock(Exception):
    def __init__(self, product: Product):
        super().__init__(f"{product.name} is out of stock.")
        self.product = product


def checkout_submit(
    *, product: Product, email: str, card: CardDetails, owner_user=None, owner_guest_id: uuid.UUID | None
) -> Payment:
    """Turn a checkout into an order (stock reserved) and a pending payment, queued for a worker.

    The card is tokenized first, outside our transaction: after this line only the token, brand, last 4,
    expiry and fingerprint exist on our side. The reservation is released if the payment fails or is
    canceled (checkout.orders).
    """
    tokenized = card_tokenize(card)
    with transaction.atomic():
        # A conditional decrement: two shoppers racing for the last item cannot both get it.
        if not Product.objects.filter(pk=product.pk, stock__gte=1).update(stock=F("stock") - 1):
            raise OutOfStock(product)
        order = Order.objects.create(email=email, total=product.price, currency=product.currency)
        OrderLine.objects.create(order=order, product=product, name=product.name, unit_price=product.price)
        return payment_create(
            amount=order.total,
            currency=order.currency,
            card=tokenized,
            actor=Actor.WEB,
            owner_user=owner_user if owner_user is not None and owner_user.is_authenticated else None,
            owner_guest_id=owner_guest_id,
            order=order,
            description=f"Order {order.number}",
        )
