"""The shopper's journey between the checkout and the outcome, remembered in their session.

The cart is not emptied when the shopper pays: it is what "try another card" needs after a decline, and what the
nav and /cart must keep showing meanwhile. Instead the session remembers the payment in progress (its id, its
order, the lines it pays for), and the shopper's next request settles it, lazily:

- the payment took money (succeeded, or was refunded since): the ordered lines leave the cart;
- it ended without money (failed, canceled) or is gone: the cart stays as it is, and the next checkout form is
  filled in with that order's email and shipping address;
- it is still under way: every shop page points to it (base.html's banner), and the checkout shows the pointer
  instead of a new form, so the back button cannot start a second payment by accident.

One query, and only while a payment is remembered.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from checkout.cart import cart_subtract
from checkout.models import Order
from payments.models import Payment, PaymentStatus

IN_PROGRESS_KEY = "checkout_in_progress"
PREFILL_KEY = "checkout_prefill_order"

TOOK_MONEY = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED})
ENDED_WITHOUT_MONEY = frozenset({PaymentStatus.FAILED, PaymentStatus.CANCELED})

_RESOLVED = "_checkout_in_progress"  # the request attribute that keeps one request to one query


@dataclass(frozen=True)
class PaymentInProgress:
    payment_id: str
    order_number: str
    checkout_token: str

    @property
    def wait_url(self) -> str:
        return reverse("checkout:wait", kwargs={"payment_id": self.payment_id})


def payment_in_progress_remember(session, *, payment: Payment, checkout_token) -> None:
    order = payment.order
    session[IN_PROGRESS_KEY] = {
        "payment_id": str(payment.pk),
        "order": order.number,
        "checkout_token": str(checkout_token),
        "lines": {str(line.product_id): line.quantity for line in order.lines.all()},
    }


def payment_in_progress(request) -> PaymentInProgress | None:
    """The session's payment still under way, after settling the one that has ended (see the module's doc)."""
    if hasattr(request, _RESOLVED):
        return getattr(request, _RESOLVED)
    resolved = _resolve(request.session) if hasattr(request, "session") else None
    setattr(request, _RESOLVED, resolved)
    return resolved


def _resolve(session) -> PaymentInProgress | None:
    marker = session.get(IN_PROGRESS_KEY)
    if not marker:
        return None
    status = Payment.objects.filter(pk=marker["payment_id"]).values_list("status", flat=True).first()
    if status in TOOK_MONEY:
        cart_subtract(session, {int(pk): quantity for pk, quantity in marker["lines"].items()})
        session.pop(PREFILL_KEY, None)
    elif status in ENDED_WITHOUT_MONEY or status is None:
        session[PREFILL_KEY] = marker["order"]
    else:
        return PaymentInProgress(
            payment_id=marker["payment_id"], order_number=marker["order"], checkout_token=marker["checkout_token"]
        )
    session.pop(IN_PROGRESS_KEY, None)
    return None


def checkout_prefill_remember(session, *, order: Order) -> None:
    session[PREFILL_KEY] = order.number


CONTACT_AND_SHIPPING = (
    "email",
    "shipping_name",
    "shipping_address",
    "shipping_city",
    "shipping_postcode",
    "shipping_country",
)


def checkout_prefill(session) -> dict[str, str]:
    """The email and shipping address of the shopper's last unpaid order, to fill in the next form (never the
    card). The session names the order only after the shopper was shown it was theirs."""
    number = session.get(PREFILL_KEY)
    if not number:
        return {}
    values = Order.objects.filter(number=number).values(*CONTACT_AND_SHIPPING).first()
    return values or {}
