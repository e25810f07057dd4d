from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from checkout.cart import Cart
from checkout.models import CheckoutAttempt, Order, OrderLine, Product
from checkout.selectors import order_latest_payment
from payments.cards import CardDetails
from payments.models import Actor, Payment, PaymentStatus
from payments.services.cards import card_tokenize
from payments.services.payments import payment_create

# A resubmitted form starts a new order only when its last payment ended without taking money.
RETRYABLE_STATUSES = frozenset({PaymentStatus.FAILED, PaymentStatus.CANCELED})


class OutOfStock(Exception):
    def __init__(self, product: Product):
        super().__init__(f"Sorry, {product.name} has just sold out.")
        self.product = product


class EmptyCart(Exception):
    pass


class MixedCurrency(Exception):
    """The cart holds prices in two currencies (a cart from before one currency per cart): it cannot be paid."""


class CartChanged(Exception):
    """The cart is not what the shopper's form showed them (a price, a quantity, a product withdrawn): nothing is
    charged, the shopper is shown the new total and asked again."""


class ForeignCheckoutToken(Exception):
    """The submitted form was rendered for another shopper: nothing of it (its payment, its order) is theirs."""


@dataclass(frozen=True)
class Shipping:
    name: str
    address: str
    city: str
    postcode: str
    country: str


def _owner_user(user):
    return user if user is not None and user.is_authenticated else None


def checkout_attempt_start(*, owner_user=None, owner_guest_id: uuid.UUID) -> CheckoutAttempt:
    """A new checkout form's token, bound to the shopper it is rendered for."""
    return CheckoutAttempt.objects.create(
        token=uuid.uuid4(), owner_guest_id=owner_guest_id, owner_user=_owner_user(owner_user)
    )


UNUSED_ATTEMPT_TTL = timedelta(hours=24)


def checkout_attempts_purge(*, limit: int = 1000) -> dict[str, int]:
    """Forget checkout forms rendered more than a day ago and never paid on (one row is made per render). A form
    submitted after that is treated as a token the shop never rendered: it belongs to its first submitter."""
    cutoff = timezone.now() - UNUSED_ATTEMPT_TTL
    stale = CheckoutAttempt.objects.filter(order__isnull=True, created_at__lt=cutoff).values_list("pk", flat=True)
    deleted, _ = CheckoutAttempt.objects.filter(pk__in=list(stale[:limit])).delete()
    return {"checkout_attempts_purged": deleted}


def _payment_of_attempt(attempt: CheckoutAttempt | None) -> Payment | None:
    if attempt is None or attempt.order_id is None:
        return None
    return order_latest_payment(order_id=attempt.order_id)


def checkout_submit(
    *,
    cart: Cart,
    email: str,
    shipping: Shipping,
    card: CardDetails,
    checkout_token: uuid.UUID,
    owner_user=None,
    owner_guest_id: uuid.UUID | None,
    expected_signature: str | None = None,
) -> Payment:
    """Turn the cart into an order (stock reserved) and a pending payment queued for a worker; or, for a form
    already submitted, the payment it made.

    The card is tokenized first, outside our transaction: after that only the token, brand, last 4, expiry
    and fingerprint exist on our side. Reservations are released if the payment fails or is canceled.

    Raises ForeignCheckoutToken, before anything is looked up or made, when the form was rendered for another
    shopper. A token the shop never rendered (or has forgotten) belongs to whoever submits it first.

    The total is a promise: `expected_signature` is the cart the form showed (Cart.signature), and the charge is
    exactly the prices in `cart`. A cart that changed since raises CartChanged; a product whose price changed
    after `cart` was read (a staff edit racing the submit) raises it too, from inside the transaction, so the
    amount charged is never one the shopper was not shown. A form without a signature (a script, not the shop's
    page) is charged the cart as read here. Raises EmptyCart, MixedCurrency and OutOfStock too; nothing is
    recorded then.
    """
    owner_user = _owner_user(owner_user)
    owner = {"user": owner_user, "guest_id": owner_guest_id}
    attempt = CheckoutAttempt.objects.filter(token=checkout_token).first()
    if attempt is not None and not attempt.belongs_to(**owner):
        raise ForeignCheckoutToken()
    earlier = _payment_of_attempt(attempt)
    if earlier is not None and earlier.status not in RETRYABLE_STATUSES:
        return earlier  # a double click: no second vault call, no second payment
    _cart_check(cart, expected_signature)  # before the vault call: a refused cart costs nothing
    tokenized = card_tokenize(card)
    with transaction.atomic():
        # The attempt's row lock makes concurrent submits of one form wait for each other; the first creates
        # the order, the others find it below.
        attempt, _ = CheckoutAttempt.objects.select_for_update().get_or_create(
            token=checkout_token, defaults={"owner_user": owner_user, "owner_guest_id": owner_guest_id}
        )
        # Again under the lock: two shoppers racing to claim one never-rendered token, only the first owns it.
        if not attempt.belongs_to(**owner):
            raise ForeignCheckoutToken()
        earlier = _payment_of_attempt(attempt)
        if earlier is not None and earlier.status not in RETRYABLE_STATUSES:
            return earlier
        order = Order.objects.create(
            email=email,
            shipping_name=shipping.name,
            shipping_address=shipping.address,
            shipping_city=shipping.city,
            shipping_postcode=shipping.postcode,
            shipping_country=shipping.country,
            total=cart.total,
            currency=cart.currency,
        )
        # Products in id order, so two checkouts reserving the same items lock them in the same order.
        for line in sorted(cart.lines, key=lambda line: line.product.pk):
            # A conditional decrement: two shoppers racing for the last item cannot both get it, and a price
            # edited since the cart was read matches nothing, so the order below is never priced differently
            # from what the shopper was shown.
            seen = line.product
            reserved = Product.objects.filter(
                pk=seen.pk, stock__gte=line.quantity, price=seen.price, currency=seen.currency, is_active=True
            ).update(stock=F("stock") - line.quantity)
            if not reserved:
                raise _why_not_reserved(seen)
            OrderLine.objects.create(
                order=order,
                product=line.product,
                name=line.product.name,
                unit_price=line.product.price,
                quantity=line.quantity,
            )
        attempt.order = order
        attempt.save(update_fields=["order"])
        return payment_create(
            amount=order.total,
            currency=order.currency,
            card=tokenized,
            actor=Actor.WEB,
            owner_user=owner_user,
            owner_guest_id=owner_guest_id,
            order=order,
            description=f"Order {order.number}",
        )


def _cart_check(cart: Cart, expected_signature: str | None) -> None:
    if cart.is_empty:
        raise EmptyCart()
    if cart.has_foreign_currency:
        raise MixedCurrency()
    if expected_signature is not None and expected_signature != cart.signature:
        raise CartChanged()
    short = next((line for line in cart.lines if line.exceeds_stock), None)
    if short is not None:
        raise OutOfStock(short.product)


def _why_not_reserved(seen: Product) -> Exception:
    """The reservation matched no row: the product's price (or its currency, or its sale) changed since the cart
    was read, or its stock ran out."""
    now = Product.objects.filter(pk=seen.pk).values("price", "currency", "is_active").first()
    if now != {"price": seen.price, "currency": seen.currency, "is_active": True}:
        return CartChanged()
    return OutOfStock(seen)


def order_lines_for_retry(*, order: Order) -> dict[int, int] | None:
    """What to put back in the cart to try again: the order's lines, if its payment took no money."""
    payment = order_latest_payment(order_id=order.pk)
    if payment is None or payment.status not in RETRYABLE_STATUSES:
        return None
    return {line.product_id: line.quantity for line in order.lines.all()}
