from __future__ import annotations

import uuid

from django.db import transaction

from checkout.models import Order, OrderLine, Product
from payments.cards import CardDetails
from payments.gateway import get_gateway
from payments.models import Actor, Payment
from payments.services.payments import payment_create


def checkout_submit(
    *, product: Product, email: str, card: CardDetails, owner_user=None, owner_guest_id: uuid.UUID | None
) -> Payment:
    """Turn a checkout into an order and a pending payment, queued for a worker.

    The card is tokenized first, outside our transaction: after this line only the token, brand, last 4
    and expiry exist on our side.
    """
    card_token = get_gateway().tokenize(card)
    with transaction.atomic():
        order = Order.objects.create(email=email, total=product.price, currency=product.currency)
        OrderLine.objects.create(order=order, product=product, name=product.name, unit_price=product.price)
        return payment_create(
            amount=order.total,
            currency=order.currency,
            card=card_token,
            actor=Actor.WEB,
            owner_user=owner_user if owner_user is not None and owner_user.is_authenticated else None,
            owner_guest_id=owner_guest_id,
            order=order,
            description=f"Order {order.number}",
        )
